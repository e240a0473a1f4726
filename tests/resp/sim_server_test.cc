// The RESP wire server in the simulator: deterministic, with streams that split every
// request and reply at random points.
#include <memory>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "resp_test_support.h"
#include "support/sim_node.h"

namespace quire::resp {
namespace {

using namespace std::chrono_literals;
using namespace quire::resp::testing;
using testing_support::IdleApp;
using testing_support::run_in_node;

const Address kServerAddress = "srv:6379";

struct SimServer {
  explicit SimServer(RespServerOptions options = {}, uint64_t seed = 11, bool deferring = false)
      : world(seed) {
    auto idle = [](Env&) { return std::make_unique<IdleApp>(); };
    srv = world.add_node("srv", idle);
    cli = world.add_node("cli", idle);
    world.start(srv);
    world.start(cli);
    if (deferring) {
      handler = std::make_unique<DeferringHandler>(*world.env(srv));
    } else {
      handler = std::make_unique<EchoHandler>(*world.env(srv));
    }
    server = std::make_unique<RespServer>(*world.env(srv), *handler, options);
    Status started = server->start(kServerAddress);
    EXPECT_TRUE(started.is_ok()) << started.to_string();
  }
  ~SimServer() { server.reset(); }

  Env& client_env() { return *world.env(cli); }
  DeferringHandler& deferring() { return static_cast<DeferringHandler&>(*handler); }
  template <typename F>
  bool run(F body, Nanos limit = 600s) {
    return run_in_node(world, client_env(), std::move(body), limit);
  }

  SimWorld world;
  NodeId srv = 0;
  NodeId cli = 0;
  std::unique_ptr<EchoHandler> handler;
  std::unique_ptr<RespServer> server;
};

TEST(RespSimServer, PipelineOfOneHundredThousandCommands) {
  SimServer s;
  uint64_t executed_at_first_reply = 0;
  ASSERT_TRUE(s.run([&]() {
    return pipeline_scenario(s.client_env(), kServerAddress, *s.handler, 100'000,
                             &executed_at_first_reply);
  }));
  EXPECT_EQ(s.server->stats().total_commands, 100'000u);
  // Replies left while the pipeline was still running.
  EXPECT_GT(executed_at_first_reply, 0u);
  EXPECT_LT(executed_at_first_reply, 10'000u);
}

TEST(RespSimServer, ClientThatNeverReadsIsDisconnectedAtTheHardLimit) {
  RespServerOptions o;
  o.output_hard_bytes = 4u << 20;
  SimServer s(o);
  ASSERT_TRUE(s.run([&]() {
    return non_reading_client_scenario(s.client_env(), kServerAddress, *s.server, 40);
  }));
  EXPECT_EQ(s.server->stats().output_limit_disconnects, 1u);
}

TEST(RespSimServer, ClientAboveTheSoftLimitForItsDurationIsDisconnected) {
  RespServerOptions o;
  o.output_soft_bytes = 1u << 20;
  o.output_soft_duration = 2s;
  SimServer s(o);
  MonoTime disconnected_at;
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> c = co_await connect_client(env, kServerAddress);
    if (!c) co_return;
    std::string big = "BIG 300000\r\n";
    // One 300 KB reply every 100 ms, never read.
    for (int i = 0; i < 100 && s.server->stats().output_limit_disconnects == 0; ++i) {
      (void)c->write(bytes_of(big));
      Status slept = co_await env.executor().sleep(100ms);
      if (!slept.is_ok()) co_return;
    }
    disconnected_at = env.executor().now();
  }));
  EXPECT_EQ(s.server->stats().output_limit_disconnects, 1u);
  // Above 1 MB after a few replies, then 2 s more.
  EXPECT_GE(disconnected_at.seconds(), 2.0);
  EXPECT_LT(disconnected_at.seconds(), 4.0);
}

TEST(RespSimServer, MalformedInputClosesOnlyThatConnection) {
  SimServer s;
  ASSERT_TRUE(s.run([&]() { return malformed_scenario(s.client_env(), kServerAddress); }));
  EXPECT_EQ(s.server->stats().protocol_errors, 1u);
  EXPECT_EQ(s.server->stats().connected_clients, 1u);  // the other one
}

TEST(RespSimServer, MaxClients) {
  RespServerOptions o;
  o.max_clients = 2;
  SimServer s(o);
  ASSERT_TRUE(
      s.run([&]() { return max_clients_scenario(s.client_env(), kServerAddress, *s.server); }));
}

TEST(RespSimServer, QuitRepliesThenCloses) {
  SimServer s;
  ASSERT_TRUE(s.run([&]() { return quit_scenario(s.client_env(), kServerAddress, *s.handler); }));
}

TEST(RespSimServer, SlowCommandsKeepTheirOrderAndIdsIncrease) {
  SimServer s;
  std::string got;
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> a = co_await connect_client(env, kServerAddress);
    std::unique_ptr<StreamConnection> b = co_await connect_client(env, kServerAddress);
    if (!a || !b) co_return;
    std::string request = "SLOW 50\r\nECHO a\r\nID\r\nADDR\r\n";
    std::string id = "ID\r\n";
    EXPECT_TRUE(a->write(bytes_of(request)).is_ok());
    EXPECT_TRUE(b->write(bytes_of(id)).is_ok());
    Status end;
    std::string want_b = ":2\r\n";
    std::string got_b;
    co_await read_bytes(*b, want_b.size(), &got_b, &end, env.executor().deadline_after(1s));
    EXPECT_EQ(got_b, want_b);  // not held up by a's slow command
    co_await read_bytes(*a, SIZE_MAX, &got, &end, env.executor().deadline_after(1s));
  }));
  const std::string prefix = "+OK\r\n" + echo_reply({"ECHO", "a"}) + ":1\r\n";
  EXPECT_EQ(got.substr(0, prefix.size()), prefix);
  // ADDR is the client's host and an ephemeral port.
  EXPECT_EQ(got.substr(prefix.size() + 4, 4), "cli:");
}

TEST(RespSimServer, IdleTimeoutClosesASilentClient) {
  RespServerOptions o;
  o.idle_timeout = 1s;
  SimServer s(o);
  MonoTime closed_at;
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> c = co_await connect_client(env, kServerAddress);
    if (!c) co_return;
    std::string got;
    Status end;
    co_await read_to_end(*c, &got, &end, env.executor().deadline_after(10s));
    EXPECT_EQ(end.code(), Code::kUnavailable);
    closed_at = env.executor().now();
  }));
  EXPECT_GE(closed_at.seconds(), 1.0);
  EXPECT_LT(closed_at.seconds(), 1.5);
}

TEST(RespSimServer, StopClosesEveryConnectionAndEndsEveryTask) {
  SimServer s;
  std::vector<Status> ends(2);
  auto client = [](SimServer* s, Status* end) -> Task<void> {
    std::unique_ptr<StreamConnection> c = co_await connect_client(s->client_env(), kServerAddress);
    if (!c) co_return;
    std::string slow = "SLOW 10000\r\n";  // in the handler when the server stops
    EXPECT_TRUE(c->write(bytes_of(slow)).is_ok());
    std::string got;
    co_await read_to_end(*c, &got, end, s->client_env().executor().deadline_after(60s));
  };
  for (Status& end : ends) s.client_env().executor().spawn("client", client(&s, &end));
  s.world.run_for(100ms);
  EXPECT_EQ(s.server->stats().connected_clients, 2u);
  Env& srv_env = *s.world.env(s.srv);
  size_t tasks_before = s.world.scheduler().live_tasks(s.srv);
  EXPECT_GE(tasks_before, 3u);  // accept + 2 clients
  ASSERT_TRUE(run_in_node(
      s.world, srv_env, [&]() { return s.server->stop(); }, 5s));
  s.world.run_for(2s);
  EXPECT_EQ(s.world.scheduler().live_tasks(s.srv), 0u);
  EXPECT_EQ(s.server->stats().connected_clients, 0u);
  for (const Status& end : ends) EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
}

// Started commands (DSET: a blind write's stand-in) overlap up to the pipeline's bounds,
// replies keep the command order, and a command the handler does not start (ECHO) runs
// only once every earlier one finished.
TEST(RespSimServer, StartedCommandsOverlapWithinTheBoundsAndReplyInOrder) {
  struct Case {
    size_t commands_max;
    size_t bytes_max;
    uint64_t in_flight_max;  // what the bound allows
  };
  // "DSET 10" is 6 bytes of arguments: 30 bytes hold 5.
  for (const Case& c : {Case{8, size_t{16} << 20, 8}, Case{1024, 30, 5}}) {
    RespServerOptions o;
    o.pipeline_commands_max = c.commands_max;
    o.pipeline_bytes_max = c.bytes_max;
    SimServer s(o, 11, true);
    std::string request;
    std::string want;
    for (int i = 1; i <= 80; i++) {
      request += "DSET 10\r\n";
      want += fmt::format(":{}\r\n", i);
      if (i == 40) {
        request += "ECHO mid\r\n";
        want += echo_reply({"ECHO", "mid"});
      }
    }
    std::string got;
    MonoTime took;
    ASSERT_TRUE(s.run([&]() -> Task<void> {
      Env& env = s.client_env();
      std::unique_ptr<StreamConnection> conn = co_await connect_client(env, kServerAddress);
      if (!conn) co_return;
      const MonoTime begin = env.executor().now();
      EXPECT_TRUE(conn->write(bytes_of(request)).is_ok());
      Status end;
      co_await read_bytes(*conn, want.size(), &got, &end, env.executor().deadline_after(10s));
      took = MonoTime{} + (env.executor().now() - begin);
    }));
    EXPECT_EQ(got, want);
    DeferringHandler& h = s.deferring();
    EXPECT_EQ(h.started, 80u);
    EXPECT_EQ(h.finished, 80u);
    EXPECT_EQ(h.in_flight, 0u);
    EXPECT_EQ(h.in_flight_max, c.in_flight_max);
    EXPECT_EQ(h.executed_with_writes_in_flight, 0u);
    // One at a time would take 800 ms.
    EXPECT_LT(took.seconds(), 0.4);
  }
}

// A client that leaves with started commands unfinished: the server still finishes each
// (a write's locks must outlive it), then ends the connection's task.
TEST(RespSimServer, ClientLeavingWithStartedCommandsInFlight) {
  SimServer s({}, 11, true);
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> conn = co_await connect_client(env, kServerAddress);
    if (!conn) co_return;
    std::string request;
    for (int i = 0; i < 20; i++) request += "DSET 50\r\n";
    EXPECT_TRUE(conn->write(bytes_of(request)).is_ok());
    (void)co_await env.executor().sleep(5ms);
    conn->close();
  }));
  s.world.run_for(1s);
  DeferringHandler& h = s.deferring();
  EXPECT_EQ(h.started, 20u);
  EXPECT_EQ(h.finished, 20u);
  EXPECT_EQ(h.in_flight, 0u);
  EXPECT_EQ(s.server->stats().connected_clients, 0u);
  EXPECT_EQ(s.world.scheduler().live_tasks(s.srv), 1u);  // the accept loop
}

// CLIENT REPLY OFF drops every reply until ON, SKIP the next command's: started commands
// (their replies written later) included, in the connection's order.
TEST(RespSimServer, ClientReplyDropsReplies) {
  SimServer s({}, 11, true);
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> conn = co_await connect_client(env, kServerAddress);
    if (!conn) co_return;
    const std::string request =
        "A\r\nREPLYSKIP\r\nDSET 5\r\nB\r\nREPLYOFF\r\nDSET 1\r\nC\r\nREPLYSKIP\r\nREPLYON\r\n"
        "DSET 1\r\nD\r\nREPLYSKIP\r\nE\r\nF\r\nREPLYOFF\r\nQUIT\r\n";
    EXPECT_TRUE(conn->write(bytes_of(request)).is_ok());
    const std::string want = echo_reply({"A"}) + echo_reply({"B"}) + "+OK\r\n" + ":3\r\n" +
                             echo_reply({"D"}) + echo_reply({"F"});
    std::string got;
    Status end;
    co_await read_to_end(*conn, &got, &end, env.executor().deadline_after(10s));
    EXPECT_EQ(got, want);  // QUIT's +OK dropped too; the connection closed after it
    EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
  }));
  EXPECT_EQ(s.deferring().started, 3u);
  EXPECT_EQ(s.deferring().finished, 3u);
}

// stop() with started commands in flight ends every task at once and leaks none.
TEST(RespSimServer, StopWithStartedCommandsInFlight) {
  SimServer s({}, 11, true);
  Status end;
  auto client = [](SimServer* s, Status* end) -> Task<void> {
    std::unique_ptr<StreamConnection> c = co_await connect_client(s->client_env(), kServerAddress);
    if (!c) co_return;
    std::string request;
    for (int i = 0; i < 20; i++) request += "DSET 10000\r\n";
    EXPECT_TRUE(c->write(bytes_of(request)).is_ok());
    std::string got;
    co_await read_to_end(*c, &got, end, s->client_env().executor().deadline_after(60s));
  };
  s.client_env().executor().spawn("client", client(&s, &end));
  s.world.run_for(100ms);
  EXPECT_GT(s.deferring().in_flight, 0u);  // the first read's (a stream splits writes)
  const MonoTime before = s.world.now();
  ASSERT_TRUE(run_in_node(
      s.world, *s.world.env(s.srv), [&]() { return s.server->stop(); }, 5s));
  EXPECT_LT((s.world.now() - before), Nanos(1s));
  s.world.run_for(1s);
  EXPECT_EQ(s.world.scheduler().live_tasks(s.srv), 0u);
  EXPECT_EQ(s.deferring().in_flight, 0u);
  EXPECT_EQ(s.deferring().finished, 0u);
  EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
}

// The directory lists the connected clients; a kill closes that connection (its task ends
// and it leaves the count at once), not the others.
TEST(RespSimServer, DirectoryListsAndKillsClients) {
  SimServer s;
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> a = co_await connect_client(env, kServerAddress);
    std::unique_ptr<StreamConnection> b = co_await connect_client(env, kServerAddress);
    if (!a || !b) co_return;
    std::string ping = "PING\r\n";
    const std::string pong = echo_reply({"PING"});
    for (StreamConnection* c : {a.get(), b.get()}) {  // both admitted and served
      EXPECT_TRUE(c->write(bytes_of(ping)).is_ok());
      std::string got;
      Status end;
      co_await read_bytes(*c, pong.size(), &got, &end, env.executor().deadline_after(5s));
      EXPECT_EQ(got, pong);
    }
    ClientDirectory& dir = s.server->directory();
    std::vector<const ClientState*> listed = dir.connected();
    EXPECT_EQ(listed.size(), 2u);
    if (listed.size() != 2) co_return;
    const uint64_t first = listed[0]->id;
    const uint64_t second = listed[1]->id;
    EXPECT_LT(first, second);
    EXPECT_EQ(listed[0]->commands, 1u);
    EXPECT_TRUE(dir.kill(first));
    EXPECT_FALSE(dir.kill(first));  // already killed
    EXPECT_FALSE(dir.kill(999));
    EXPECT_EQ(s.server->stats().connected_clients, 1u);
    listed = dir.connected();
    EXPECT_EQ(listed.size(), 1u);
    if (!listed.empty()) {
      EXPECT_EQ(listed[0]->id, second);
    }
    // The first connection ends; the second is still served.
    std::string got;
    Status end;
    co_await read_to_end(*a, &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
    EXPECT_TRUE(b->write(bytes_of(ping)).is_ok());
    got.clear();
    co_await read_bytes(*b, pong.size(), &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got, pong);
    co_await env.executor().sleep(100ms);
    EXPECT_EQ(s.server->stats().connected_clients, 1u);  // counted once
    EXPECT_EQ(s.server->directory().connected().size(), 1u);
  }));
}

// MONITOR: a monitor receives a line for every command other clients run, after its own
// +OK; one that never reads is closed at the output hard limit while the others go on; a
// monitor that goes leaves none behind.
TEST(RespSimServer, MonitorsSeeEveryCommandAndOneThatNeverReadsIsClosed) {
  RespServerOptions o;
  o.output_hard_bytes = 1u << 20;
  SimServer s(o);
  s.handler->directory = &s.server->directory();
  ASSERT_TRUE(s.run([&]() -> Task<void> {
    Env& env = s.client_env();
    std::unique_ptr<StreamConnection> m = co_await connect_client(env, kServerAddress);
    std::unique_ptr<StreamConnection> idle = co_await connect_client(env, kServerAddress);
    std::unique_ptr<StreamConnection> a = co_await connect_client(env, kServerAddress);
    if (!m || !idle || !a) co_return;
    std::string monitor = "MONITOR\r\n";
    EXPECT_TRUE(m->write(bytes_of(monitor)).is_ok());
    EXPECT_TRUE(idle->write(bytes_of(monitor)).is_ok());
    std::string got;
    Status end;
    co_await read_bytes(*m, 5, &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got, "+OK\r\n");
    co_await env.executor().sleep(100ms);  // idle's +OK flushed: both monitor now
    EXPECT_TRUE(s.server->directory().monitored());
    std::string pings = "PING\r\nECHO x\r\n";
    EXPECT_TRUE(a->write(bytes_of(pings)).is_ok());
    const std::string want_a = echo_reply({"PING"}) + echo_reply({"ECHO", "x"});
    std::string got_a;
    co_await read_bytes(*a, want_a.size(), &got_a, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got_a, want_a);
    got.clear();
    const std::string lines = "+PING\r\n+ECHO x\r\n";
    co_await read_bytes(*m, lines.size(), &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got, lines);
    // 40 commands of 300 KB each: `idle` never reads its 12 MB of lines.
    const std::string payload(300'000, 'y');
    std::string big = "*2\r\n$4\r\nECHO\r\n$300000\r\n" + payload + "\r\n";
    const std::string big_reply = echo_reply({"ECHO", payload});
    const std::string big_line = "+ECHO " + payload + "\r\n";
    for (int i = 0; i < 40 && s.server->stats().output_limit_disconnects == 0; ++i) {
      EXPECT_TRUE(a->write(bytes_of(big)).is_ok());
      std::string reply;
      co_await read_bytes(*a, big_reply.size(), &reply, &end, env.executor().deadline_after(5s));
      EXPECT_EQ(reply.size(), big_reply.size());
      got.clear();
      co_await read_bytes(*m, big_line.size(), &got, &end, env.executor().deadline_after(5s));
      EXPECT_EQ(got, big_line);
    }
    EXPECT_EQ(s.server->stats().output_limit_disconnects, 1u);
    std::string rest;
    co_await read_to_end(*idle, &rest, &end, env.executor().deadline_after(20s));
    EXPECT_EQ(end.code(), Code::kUnavailable) << end.to_string();
    // The reading monitor goes on; once it goes too, no connection monitors.
    EXPECT_TRUE(a->write(bytes_of(pings)).is_ok());
    got.clear();
    co_await read_bytes(*m, lines.size(), &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got, lines);
    // A monitor's own command: its reply, then its line.
    std::string ping = "PING\r\n";
    EXPECT_TRUE(m->write(bytes_of(ping)).is_ok());
    const std::string own = echo_reply({"PING"}) + "+PING\r\n";
    got.clear();
    co_await read_bytes(*m, own.size(), &got, &end, env.executor().deadline_after(5s));
    EXPECT_EQ(got, own);
    m->close();
    co_await env.executor().sleep(500ms);
    EXPECT_FALSE(s.server->directory().monitored());
  }));
}

// A monitor that pipelines a command that waits behind one that does not: its reply to
// the first goes out before the lines of what other clients run meanwhile, as in Redis
// (the line of another client's PING once overtook the monitor's own earlier reply).
TEST(RespSimServer, AMonitorsOwnRepliesAreNotOvertakenByOtherClientsLines) {
  // The streams split bytes at random points: over these seeds the two commands arrive in
  // one read at least once (with both in one read, the first one's reply used to wait).
  for (uint64_t seed = 1; seed <= 24; seed++) {
    SCOPED_TRACE(fmt::format("seed {}", seed));
    SimServer s({}, seed);
    s.handler->directory = &s.server->directory();
    ASSERT_TRUE(s.run([&]() -> Task<void> {
      Env& env = s.client_env();
      std::unique_ptr<StreamConnection> m = co_await connect_client(env, kServerAddress);
      std::unique_ptr<StreamConnection> a = co_await connect_client(env, kServerAddress);
      if (!m || !a) co_return;
      std::string monitor = "MONITOR\r\n";
      EXPECT_TRUE(m->write(bytes_of(monitor)).is_ok());
      std::string got;
      Status end;
      co_await read_bytes(*m, 5, &got, &end, env.executor().deadline_after(5s));
      EXPECT_EQ(got, "+OK\r\n");
      std::string own = "PING\r\nSLOW 300\r\n";
      EXPECT_TRUE(m->write(bytes_of(own)).is_ok());
      (void)co_await env.executor().sleep(100ms);  // SLOW is sleeping
      std::string ping = "PING\r\n";
      EXPECT_TRUE(a->write(bytes_of(ping)).is_ok());
      const std::string want =
          echo_reply({"PING"}) + "+PING\r\n" + "+PING\r\n" + "+OK\r\n" + "+SLOW 300\r\n";
      got.clear();
      co_await read_bytes(*m, want.size(), &got, &end, env.executor().deadline_after(5s));
      EXPECT_EQ(got, want);
    }));
  }
}

TEST(RespSimServer, SameSeedSameRun) {
  auto run = [](uint64_t seed) {
    SimServer s({}, seed);
    uint64_t first = 0;
    EXPECT_TRUE(s.run([&]() {
      return pipeline_scenario(s.client_env(), kServerAddress, *s.handler, 2'000, &first);
    }));
    return std::make_pair(first, s.world.trace_hash());
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3).second, run(4).second);
}

}  // namespace
}  // namespace quire::resp
