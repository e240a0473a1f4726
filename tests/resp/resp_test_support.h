// Test support for the RESP wire server: a CommandHandler that echoes, and client-side
// scenarios that run the same in the simulator and over real TCP.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "resp/handler.h"
#include "resp/protocol.h"
#include "resp/server.h"
#include "runtime/env.h"

namespace quire::resp::testing {

using Args = std::vector<std::string>;

// Replies with its arguments as an array of bulks, except (names in any case):
//   QUIT     +OK, then the server closes the connection
//   SLOW ms  sleeps ms milliseconds, then +OK
//   BIG n    a bulk of n bytes
//   ID       the client's id;  ADDR  the client's address
//   AUTH     marks the client authenticated, +OK
class EchoHandler : public CommandHandler {
 public:
  explicit EchoHandler(Env& env) : env_(env) {}

  Task<void> execute(std::vector<std::string> args, ClientState& client,
                     ReplyWriter& out) override {
    executed++;
    std::string name = args[0];
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (name == "QUIT") {
      out.ok();
      client.close_after_reply = true;
    } else if (name == "SLOW" && args.size() == 2) {
      Status slept =
          co_await env_.executor().sleep(std::chrono::milliseconds(std::atoi(args[1].c_str())));
      if (slept.is_ok()) {
        out.ok();
      } else {
        out.err(slept.to_string());
      }
    } else if (name == "BIG" && args.size() == 2) {
      out.bulk(std::string(static_cast<size_t>(std::atoll(args[1].c_str())), 'x'));
    } else if (name == "ID") {
      out.integer(static_cast<int64_t>(client.id));
    } else if (name == "ADDR") {
      out.bulk(client.address);
    } else if (name == "AUTH") {
      client.authenticated = true;
      out.ok();
    } else if (name == "REPLYOFF") {  // as CLIENT REPLY OFF, SKIP, ON
      client.reply_off = true;
    } else if (name == "REPLYSKIP") {
      if (!client.reply_off) client.reply_skip_next = true;
    } else if (name == "REPLYON") {
      client.reply_off = false;
      client.reply_skip = false;
      out.ok();
    } else if (name == "MONITOR") {  // as RespCommands: the server registers it after the reply
      client.monitor = true;
      out.ok();
    } else {
      out.array(args.size());
      for (const std::string& a : args) out.bulk(a);
    }
    // Each command, once run, as "+NAME arg...": to the monitors (the server's directory).
    if (directory != nullptr && directory->monitored() && name != "MONITOR") {
      std::string line = "+" + name;
      for (size_t j = 1; j < args.size(); j++) line += " " + args[j];
      directory->feed_monitors(line + "\r\n", client.id);
      if (client.monitor) out.buffer() += line + "\r\n";
    }
  }

  uint64_t executed = 0;
  ClientDirectory* directory = nullptr;  // set: commands are fed to monitors

 protected:
  Env& env_;
};

// EchoHandler that also starts "DSET ms" (CommandHandler::start), as a node starts a
// blind write: its reply, ":n" (n: its start order, from 1), is ready ms milliseconds
// after it started, whenever the server finishes it. It records what the server does
// with started commands.
class DeferringHandler : public EchoHandler {
 public:
  using EchoHandler::EchoHandler;

  Task<std::unique_ptr<PendingReply>> start(std::vector<std::string>& args,
                                            ClientState& client) override {
    (void)client;
    if (args.size() != 2 || (args[0] != "DSET" && args[0] != "dset")) co_return nullptr;
    const Nanos delay = std::chrono::milliseconds(std::atoi(args[1].c_str()));
    co_return std::make_unique<Deferred>(*this, env_.executor().now() + delay, ++started);
  }
  Task<void> execute(std::vector<std::string> args, ClientState& client,
                     ReplyWriter& out) override {
    if (in_flight > 0) executed_with_writes_in_flight++;
    co_await EchoHandler::execute(std::move(args), client, out);
  }

  uint64_t started = 0;
  uint64_t finished = 0;   // finish() ran to its end
  uint64_t in_flight = 0;  // started, not yet destroyed
  uint64_t in_flight_max = 0;
  uint64_t executed_with_writes_in_flight = 0;  // must stay 0: execute() is a barrier

 private:
  class Deferred : public PendingReply {
   public:
    Deferred(DeferringHandler& h, MonoTime ready_at, uint64_t n)
        : h_(h), ready_at_(ready_at), n_(n) {
      h_.in_flight++;
      h_.in_flight_max = std::max(h_.in_flight_max, h_.in_flight);
    }
    ~Deferred() override { h_.in_flight--; }
    Task<void> finish(ClientState& client, ReplyWriter& out) override {
      (void)client;
      const MonoTime now = h_.env_.executor().now();
      if (now < ready_at_) {
        Status slept = co_await h_.env_.executor().sleep(ready_at_ - now);
        if (!slept.is_ok()) {
          out.err(slept.to_string());
          co_return;
        }
      }
      out.integer(static_cast<int64_t>(n_));
      h_.finished++;
    }

   private:
    DeferringHandler& h_;
    MonoTime ready_at_;
    uint64_t n_;
  };
};

// The bytes EchoHandler replies to `args` (not one of its special commands).
inline std::string echo_reply(const Args& args) {
  ReplyWriter w;
  w.array(args.size());
  for (const std::string& a : args) w.bulk(a);
  return w.buffer();
}

inline ByteView bytes_of(const std::string& s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Reads until `want` bytes arrived or the stream ended (*end: its status) or `deadline`.
inline Task<void> read_bytes(StreamConnection& c, size_t want, std::string* got, Status* end,
                             Deadline deadline) {
  std::vector<uint8_t> buf(64 * 1024);
  while (got->size() < want) {
    Result<size_t> n = co_await c.read_some(std::span<uint8_t>(buf), deadline);
    if (!n.is_ok()) {
      *end = n.status();
      co_return;
    }
    got->append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

// Reads to the end of the stream (or `deadline`); *end is Unavailable when it ended.
inline Task<void> read_to_end(StreamConnection& c, std::string* got, Status* end,
                              Deadline deadline) {
  co_await read_bytes(c, SIZE_MAX, got, end, deadline);
}

inline Task<std::unique_ptr<StreamConnection>> connect_client(Env& env, Address address) {
  Result<std::unique_ptr<StreamConnection>> c = co_await env.net().connect_stream(
      address, env.executor().deadline_after(std::chrono::seconds(5)));
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  if (!c.is_ok()) co_return nullptr;
  co_return std::move(c).value();
}

// Sends `count` pipelined SETs in one write, reads every reply, and checks them all; the
// number of commands the handler had run when the first reply arrived goes to
// *executed_at_first_reply (replies are flushed as the pipeline runs, not at its end).
inline Task<void> pipeline_scenario(Env& env, Address address, const EchoHandler& handler,
                                    size_t count, uint64_t* executed_at_first_reply) {
  std::unique_ptr<StreamConnection> c = co_await connect_client(env, address);
  if (!c) co_return;
  std::string request;
  std::string expected;
  for (size_t i = 0; i < count; ++i) {
    Args args = {"SET", "key:" + std::to_string(i), "value-" + std::to_string(i * 7)};
    request +=
        i % 2 == 0 ? encode_multibulk(args) : args[0] + " " + args[1] + " " + args[2] + "\r\n";
    expected += echo_reply(args);
  }
  EXPECT_TRUE(c->write(bytes_of(request)).is_ok());
  std::string got;
  Status end;
  const Deadline deadline = env.executor().deadline_after(std::chrono::seconds(60));
  co_await read_bytes(*c, 1, &got, &end, deadline);
  *executed_at_first_reply = handler.executed;
  co_await read_bytes(*c, expected.size(), &got, &end, deadline);
  EXPECT_EQ(got.size(), expected.size()) << end.to_string();
  EXPECT_TRUE(got == expected);
}

// One PING round trip on a fresh connection: true when it came back.
inline Task<bool> ping_works(Env& env, Address address) {
  std::unique_ptr<StreamConnection> c = co_await connect_client(env, address);
  if (!c) co_return false;
  std::string ping = "PING\r\n";
  if (!c->write(bytes_of(ping)).is_ok()) co_return false;
  std::string got;
  Status end;
  std::string want = echo_reply({"PING"});
  co_await read_bytes(*c, want.size(), &got, &end,
                      env.executor().deadline_after(std::chrono::seconds(5)));
  EXPECT_EQ(got, want) << end.to_string();
  co_return got == want;
}

// Sends `request` on a fresh connection and reads until the server closes it.
inline Task<void> send_and_read_to_end(Env& env, Address address, std::string request,
                                       std::string* got, Status* end) {
  std::unique_ptr<StreamConnection> c = co_await connect_client(env, address);
  if (!c) co_return;
  EXPECT_TRUE(c->write(bytes_of(request)).is_ok());
  co_await read_to_end(*c, got, end, env.executor().deadline_after(std::chrono::seconds(10)));
}

// A client that asks for 1 MB replies and never reads them is disconnected once its unsent
// replies pass the server's hard limit; a client that reads is served meanwhile.
inline Task<void> non_reading_client_scenario(Env& env, Address address, const RespServer& server,
                                              size_t requests) {
  std::unique_ptr<StreamConnection> greedy = co_await connect_client(env, address);
  if (!greedy) co_return;
  std::string big = "BIG 1000000\r\n";
  for (size_t i = 0; i < requests; ++i) {
    if (!greedy->write(bytes_of(big)).is_ok()) break;
  }
  // Until the server gave up on it.
  for (int i = 0; i < 200 && server.stats().output_limit_disconnects == 0; ++i) {
    Status slept = co_await env.executor().sleep(std::chrono::milliseconds(50));
    if (!slept.is_ok()) co_return;
  }
  EXPECT_EQ(server.stats().output_limit_disconnects, 1u);
  const bool served = co_await ping_works(env, address);
  EXPECT_TRUE(served);
  // The greedy client's stream ends (after some of its replies, or at once on a reset).
  std::string got;
  Status end;
  co_await read_to_end(*greedy, &got, &end,
                       env.executor().deadline_after(std::chrono::seconds(20)));
  EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
  EXPECT_LT(got.size(), requests * 1'000'000);
}

// Malformed input closes that connection only, after the replies to what came before and
// Redis's error reply.
inline Task<void> malformed_scenario(Env& env, Address address) {
  std::unique_ptr<StreamConnection> other = co_await connect_client(env, address);
  if (!other) co_return;
  std::string got;
  Status end;
  std::string request = "*1\r\n$4\r\nPING\r\n*1\r\nx\r\nPING\r\n";
  co_await send_and_read_to_end(env, address, request, &got, &end);
  EXPECT_EQ(got, echo_reply({"PING"}) + "-ERR Protocol error: expected '$', got 'x'\r\n");
  EXPECT_EQ(end.code(), Code::kUnavailable);
  // The other connection still works.
  std::string echo = "ECHO still\r\n";
  EXPECT_TRUE(other->write(bytes_of(echo)).is_ok());
  std::string reply;
  std::string want = echo_reply({"ECHO", "still"});
  co_await read_bytes(*other, want.size(), &reply, &end,
                      env.executor().deadline_after(std::chrono::seconds(5)));
  EXPECT_EQ(reply, want);
}

// At max_clients (2) a third connection gets Redis's error and is closed; once one leaves,
// a new one is served.
inline Task<void> max_clients_scenario(Env& env, Address address, const RespServer& server) {
  std::unique_ptr<StreamConnection> a = co_await connect_client(env, address);
  std::unique_ptr<StreamConnection> b = co_await connect_client(env, address);
  if (!a || !b) co_return;
  // Both are admitted once each got a reply.
  for (StreamConnection* c : {a.get(), b.get()}) {
    std::string id = "ID\r\n";
    EXPECT_TRUE(c->write(bytes_of(id)).is_ok());
    std::string got;
    Status end;
    co_await read_bytes(*c, 4, &got, &end, env.executor().deadline_after(std::chrono::seconds(5)));
  }
  std::string got;
  Status end;
  std::string ping = "PING\r\n";
  co_await send_and_read_to_end(env, address, ping, &got, &end);
  EXPECT_EQ(got, "-ERR max number of clients reached\r\n");
  EXPECT_EQ(server.stats().rejected_connections, 1u);
  a.reset();
  for (int i = 0; i < 100 && server.stats().connected_clients > 1; ++i) {
    Status slept = co_await env.executor().sleep(std::chrono::milliseconds(10));
    if (!slept.is_ok()) co_return;
  }
  const bool served = co_await ping_works(env, address);
  EXPECT_TRUE(served);
}

// QUIT: +OK, then the connection closes; nothing after it in the pipeline runs.
inline Task<void> quit_scenario(Env& env, Address address, const EchoHandler& handler) {
  const uint64_t before = handler.executed;
  std::string got;
  Status end;
  std::string request = "PING\r\nQUIT\r\nPING\r\n";
  co_await send_and_read_to_end(env, address, request, &got, &end);
  EXPECT_EQ(got, echo_reply({"PING"}) + "+OK\r\n");
  EXPECT_EQ(end.code(), Code::kUnavailable);
  EXPECT_EQ(handler.executed - before, 2u);
}

}  // namespace quire::resp::testing
