// The RESP commands over a simulated replica set (a primary and a standby, each a
// ReplicaNode, the code a real process runs): every command's reply bytes, every error
// reply, binary-safe keys and values, the limits, READONLY / LOADING / MASTERDOWN, atomic
// INCR from concurrent clients, SCAN exactly once while other keys change, and WAIT.
#include <gtest/gtest.h>

#include <regex>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "resp/commands.h"
#include "resp/progress_reporter.h"
#include "resp/server.h"
#include "resp_test_support.h"
#include "sim/replica_set_sim.h"

namespace quire::resp {
namespace {

using Args = std::vector<std::string>;

ReplicaSetConfig fast_config(uint64_t seed, size_t standbys) {
  ReplicaSetConfig c;
  c.seed = seed;
  c.standbys = standbys;
  c.tables = 1;
  c.primary.checkpoint_interval = Nanos(0);
  c.primary.retention_min_age = Nanos(0);
  c.primary.heartbeat_interval = 10ms;
  // Only table 16 (database 0) gets its DEK at bootstrap (ReplicaSetSim sets the primary's
  // tables); every other database's table gets one on its first write.
  c.primary.write_timeout = 200ms;
  c.primary.write_attempts_max = 3;
  c.primary.write_retry_backoff = 20ms;
  c.primary.admission_wait_max = 300ms;
  c.primary.io_timeout = 1s;
  c.engine.io_timeout = 1s;
  c.standby.poll_interval = 5ms;
  c.standby.pickup_interval = 50ms;
  return c;
}

std::string bulk(std::string_view s) {
  return fmt::format("${}\r\n{}\r\n", s.size(), s);
}

// Where serve() listens: the primary node's host.
const Address kServerAddress = "primary:6379";

class RespCommandsTest : public ::testing::Test {
 protected:
  // `harness_progress`: the primary reads its standbys' progress from the standby objects;
  // otherwise only from QUIRE.REPORT commands (start_reporter).
  void make(RespCommandsOptions options = {}, size_t standbys = 1, bool harness_progress = true) {
    sim_ = std::make_unique<ReplicaSetSim>(fast_config(7, standbys));
    std::string why;
    ASSERT_TRUE(sim_->bring_up(30s, &why)) << why;
    RespCommandsOptions po = options;
    if (harness_progress)
      po.standby_progress = [this] {
        std::vector<StandbyProgress> out;
        for (size_t i = 0; i < sim_->standby_ids().size(); i++) {
          Standby* s = sim_->standby(i);
          if (s == nullptr) continue;
          out.push_back(StandbyProgress{fmt::format("standby{}", i), fmt::format("s{}:6380", i),
                                        s->applied_ts(), s->applied_lsn(),
                                        s->state() == StandbyState::kSecondary});
        }
        return out;
      };
    primary_ = std::make_unique<RespCommands>(*sim_->node(sim_->primary_id()), po);
    if (standbys > 0) {
      standby_ = std::make_unique<RespCommands>(*sim_->node(sim_->standby_ids()[0]), options);
    }
    client_.id = 1;
    standby_client_.id = 2;
  }

  std::string run(RespCommands& cmds, NodeId node, ClientState& c, Args args) {
    ReplyWriter out;
    const bool done = sim_->run_on(
        node, [&]() -> Task<void> { co_await cmds.execute(args, c, out); }, 20s);
    EXPECT_TRUE(done) << "command did not finish: " << args[0];
    return out.buffer();
  }
  // On the primary, as client_.
  std::string P(Args args) { return run(*primary_, sim_->primary_id(), client_, std::move(args)); }
  // On standby 0, as standby_client_.
  std::string S(Args args) {
    return run(*standby_, sim_->standby_ids()[0], standby_client_, std::move(args));
  }
  // Standby 0 reports its progress to the primary (standby_progress.h), as a
  // standby process does over the primary's RESP port (here the hop is a direct call).
  void start_reporter() {
    auto send = [this](std::vector<std::string> args) -> Task<Status> {
      ClientState reporter;
      reporter.id = 77;
      ReplyWriter out;
      co_await primary_->execute(std::move(args), reporter, out);
      if (out.buffer() == "+OK\r\n") co_return Status();
      co_return Status(Code::kUnavailable, out.buffer());
    };
    reporter_ = std::make_unique<ProgressReporter>(*sim_->node(sim_->standby_ids()[0]), "standby0",
                                                   "s0:6380", send);
    reporter_->start();
  }

  // Lets standby 0 apply everything the primary acknowledged.
  void catch_up() {
    const Timestamp ts = sim_->primary()->applied_ts();
    ASSERT_TRUE(sim_->run_until(
        [&] {
          Standby* s = sim_->standby(0);
          return s && s->state() == StandbyState::kSecondary && s->applied_ts() >= ts;
        },
        10s));
  }

  // A RESP server over primary_ on the primary node, at "primary:6379".
  void serve(RespServerOptions options = {}) {
    server_ = std::make_unique<RespServer>(*sim_->world().env(sim_->primary_id()), *primary_,
                                           std::move(options));
    Status started = server_->start(kServerAddress);
    ASSERT_TRUE(started.is_ok()) << started.to_string();
  }
  void TearDown() override {
    if (!server_) return;
    EXPECT_TRUE(sim_->run_on(
        sim_->primary_id(), [this]() -> Task<void> { co_await server_->stop(); }, 10s));
    server_.reset();
  }
  // Sends `request` on a new connection from the checker node, reads until the replies end
  // with `last` (or 20 s passed), and closes.
  std::string wire(std::string request, std::string last) {
    std::string got;
    const bool done = sim_->run_on(
        sim_->tool_id(),
        [&]() -> Task<void> {
          Env& env = *sim_->world().env(sim_->tool_id());
          std::unique_ptr<StreamConnection> c =
              co_await testing::connect_client(env, kServerAddress);
          if (!c) co_return;
          EXPECT_TRUE(c->write(testing::bytes_of(request)).is_ok());
          std::vector<uint8_t> buf(64 * 1024);
          const Deadline deadline = env.executor().deadline_after(20s);
          while (got.size() < last.size() ||
                 got.compare(got.size() - last.size(), last.size(), last) != 0) {
            Result<size_t> n = co_await c->read_some(std::span<uint8_t>(buf), deadline);
            if (!n.is_ok()) break;
            got.append(reinterpret_cast<const char*>(buf.data()), *n);
          }
        },
        30s);
    EXPECT_TRUE(done);
    return got;
  }

  std::unique_ptr<ReplicaSetSim> sim_;
  std::unique_ptr<RespCommands> primary_;
  std::unique_ptr<RespCommands> standby_;
  ClientState client_;
  ClientState standby_client_;
  std::unique_ptr<ProgressReporter> reporter_;
  std::unique_ptr<RespServer> server_;  // before primary_ goes
};

std::string inline_commands(const std::vector<Args>& commands) {
  std::string out;
  for (const Args& a : commands) out += encode_multibulk(a);
  return out;
}

// A server's connections as CLIENT LIST and CLIENT KILL see them.
class FixedDirectory : public ClientDirectory {
 public:
  explicit FixedDirectory(std::vector<ClientState*> states) : states_(std::move(states)) {}
  std::vector<const ClientState*> connected() const override {
    std::vector<const ClientState*> out;
    for (const ClientState* c : states_) {
      if (std::find(killed.begin(), killed.end(), c->id) == killed.end()) out.push_back(c);
    }
    return out;
  }
  bool kill(uint64_t id) override {
    for (const ClientState* c : connected()) {
      if (c->id == id) {
        killed.push_back(id);
        return true;
      }
    }
    return false;
  }
  std::vector<uint64_t> killed;

 private:
  std::vector<ClientState*> states_;
};

// The lines of a CLIENT LIST reply's bulk string, each cut to `id=N ... cmd=X` fields.
std::vector<std::string> client_lines(const std::string& reply) {
  std::vector<std::string> lines;
  const size_t start = reply.find("\r\n");
  if (reply.empty() || reply[0] != '$' || start == std::string::npos) return {"not a bulk"};
  std::string body = reply.substr(start + 2, reply.size() - start - 4);
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find('\n', at);
    if (end == std::string::npos) return {"unterminated line"};
    lines.push_back(body.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

TEST_F(RespCommandsTest, ClientListAndKill) {
  make();
  const NodeId pid = sim_->primary_id();
  client_.address = "127.0.0.1:5000";
  client_.local_address = "127.0.0.1:6379";
  ClientState other;
  other.id = 5;
  other.address = "10.0.0.5:4000";
  other.local_address = "127.0.0.1:6379";
  other.name = "worker";
  ClientState link;  // a standby's progress link
  link.id = 7;
  link.address = "10.0.0.7:4100";
  link.local_address = "127.0.0.1:6380";
  FixedDirectory dir({&client_, &other, &link});
  primary_->set_client_directory(&dir);
  EXPECT_EQ(run(*primary_, pid, other, {"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(run(*primary_, pid, link, {"QUIRE.REPORT", "standby0", "s0:6380", "0", "0", "0"}),
            "+OK\r\n");
  EXPECT_TRUE(link.standby_link);

  std::vector<std::string> lines = client_lines(P({"CLIENT", "LIST"}));
  ASSERT_EQ(lines.size(), 3u) << P({"CLIENT", "LIST"});
  EXPECT_EQ(lines[0].substr(0, 54), "id=1 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=-1 na");
  EXPECT_NE(lines[0].find(" flags=N "), std::string::npos);
  EXPECT_NE(lines[0].find(" cmd=client|list user=default "), std::string::npos);
  EXPECT_NE(lines[1].find("id=5 addr=10.0.0.5:4000 "), std::string::npos);
  EXPECT_NE(lines[1].find(" name=worker "), std::string::npos);
  EXPECT_NE(lines[1].find(" cmd=get "), std::string::npos);
  EXPECT_NE(lines[2].find(" flags=S "), std::string::npos);
  EXPECT_NE(lines[2].find(" cmd=quire.report "), std::string::npos);
  // CLIENT INFO is the caller's line.
  EXPECT_EQ(client_lines(P({"CLIENT", "INFO"})).size(), 1u);

  lines = client_lines(P({"CLIENT", "LIST", "type", "REPLICA"}));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].substr(0, 5), "id=7 ");
  EXPECT_EQ(client_lines(P({"CLIENT", "LIST", "TYPE", "slave"})), lines);
  EXPECT_EQ(client_lines(P({"CLIENT", "LIST", "TYPE", "normal"})).size(), 2u);
  EXPECT_EQ(P({"CLIENT", "LIST", "TYPE", "master"}), "$0\r\n\r\n");
  EXPECT_EQ(P({"CLIENT", "LIST", "TYPE", "bogus"}), "-ERR Unknown client type 'bogus'\r\n");
  lines = client_lines(P({"CLIENT", "LIST", "ID", "7", "5", "99", "7"}));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].substr(0, 5), "id=7 ");
  EXPECT_EQ(lines[1].substr(0, 5), "id=5 ");
  EXPECT_EQ(lines[2].substr(0, 5), "id=7 ");
  EXPECT_EQ(P({"CLIENT", "LIST", "ID", "x"}), "-ERR Invalid client ID\r\n");
  EXPECT_EQ(P({"CLIENT", "LIST", "TYPE"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"CLIENT", "LIST", "FOO", "bar"}), "-ERR syntax error\r\n");

  EXPECT_EQ(P({"CLIENT", "KILL", "ID", "0"}), "-ERR client-id should be greater than 0\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "ID", "x"}), "-ERR client-id should be greater than 0\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "ID", "5", "TYPE"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "USER", "bob"}), "-ERR No such user 'bob'\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "TYPE", "x"}), "-ERR Unknown client type 'x'\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "SKIPME", "maybe"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "1.2.3.4:5"}), "-ERR No such client\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL", "ID", "99"}), ":0\r\n");
  EXPECT_TRUE(dir.killed.empty());
  // SKIPME yes by default: the caller, a normal client too, stays.
  EXPECT_EQ(P({"CLIENT", "KILL", "TYPE", "normal", "USER", "default"}), ":1\r\n");
  EXPECT_EQ(dir.killed, std::vector<uint64_t>{5});
  EXPECT_EQ(P({"CLIENT", "KILL", "LADDR", "127.0.0.1:6380", "SKIPME", "no"}), ":1\r\n");
  EXPECT_EQ(dir.killed, (std::vector<uint64_t>{5, 7}));
  EXPECT_FALSE(client_.close_after_reply);
  // The old form may name the caller: it is closed after the reply.
  EXPECT_EQ(P({"CLIENT", "KILL", "127.0.0.1:5000"}), "+OK\r\n");
  EXPECT_TRUE(client_.close_after_reply);
  EXPECT_EQ(dir.killed.size(), 2u);
}

// INFO stats: total_commands_processed counts the commands that ran (as Redis: not those
// refused before running, an unknown command or a wrong arity), keyspace_hits and _misses
// every key a command read, and the run_id is 40 hex digits that stay the node's.
TEST_F(RespCommandsTest, InfoStatsCountsCommandsThatRanAndTheKeysRead) {
  make();
  auto field = [&](const std::string& info, const std::string& name) {
    const size_t at = info.find("\r\n" + name + ":");
    EXPECT_NE(at, std::string::npos) << name << "\n" << info;
    if (at == std::string::npos) return std::string();
    const size_t from = at + 3 + name.size();
    return info.substr(from, info.find("\r\n", from) - from);
  };
  EXPECT_EQ(P({"CONFIG", "RESETSTAT"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "a", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "a"}), "$1\r\n1\r\n");
  EXPECT_EQ(P({"GET", "b"}), "$-1\r\n");
  EXPECT_EQ(P({"MGET", "a", "b", "c"}), "*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n");
  EXPECT_EQ(P({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(P({"NOSUCH", "x"}).substr(0, 20), "-ERR unknown command");
  const std::string stats = P({"INFO", "stats"});
  EXPECT_EQ(field(stats, "total_commands_processed"), "5");  // SET, GET, GET, MGET, INFO
  EXPECT_EQ(field(stats, "keyspace_hits"), "2");
  EXPECT_EQ(field(stats, "keyspace_misses"), "3");
  EXPECT_EQ(field(stats, "expired_keys"), "0");
  EXPECT_EQ(field(stats, "evicted_keys"), "0");
  EXPECT_EQ(P({"CONFIG", "RESETSTAT"}), "+OK\r\n");
  const std::string after = P({"INFO", "stats"});
  EXPECT_EQ(field(after, "total_commands_processed"), "1");
  EXPECT_EQ(field(after, "keyspace_hits"), "0");
  EXPECT_EQ(field(after, "keyspace_misses"), "0");
  const std::string id = field(P({"INFO", "server"}), "run_id");
  EXPECT_EQ(id.size(), 40u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  EXPECT_EQ(field(P({"INFO", "server"}), "run_id"), id);
}

TEST_F(RespCommandsTest, MemoryUsageAndInfoMemory) {
  RespCommandsOptions o;
  o.process_memory = [] {
    return ProcessMemory{.allocated_bytes = 3u << 20, .resident_bytes = 1000, .allocator = "x-1"};
  };
  o.process_cpu = [] { return ProcessCpu{.user = 1500ms, .system = 2s + 7us}; };
  make(o);
  EXPECT_EQ(P({"SET", "k", "hello"}), "+OK\r\n");
  // Its entry in a page: length-prefixed key and value, and the commit timestamp.
  EXPECT_EQ(P({"MEMORY", "USAGE", "k"}), ":16\r\n");
  EXPECT_EQ(P({"memory", "usage", "k", "SAMPLES", "0"}), ":16\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE", "nosuch"}), "$-1\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE", "k", "SAMPLES", "x"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE", "k", "SAMPLES", "-1"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE", "k", "SAMPLES"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE"}),
            "-ERR wrong number of arguments for 'memory|usage' command\r\n");
  EXPECT_EQ(P({"MEMORY", "DOCTOR"}), "-ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.\r\n");
  EXPECT_EQ(P({"MEMORY", "HELP"}).substr(0, 25), "*6\r\n+MEMORY <subcommand> ");
  const std::string big(100'000, 'v');
  EXPECT_EQ(P({"SET", "big", big}), "+OK\r\n");
  EXPECT_EQ(P({"MEMORY", "USAGE", "big"}), fmt::format(":{}\r\n", 1 + 3 + 3 + 100'000 + 8));
  catch_up();
  EXPECT_EQ(S({"MEMORY", "USAGE", "k"}), ":16\r\n");

  const std::string info = P({"INFO", "memory"});
  EXPECT_NE(info.find("# Memory\r\nused_memory:3145728\r\nused_memory_human:3.00M\r\n"
                      "used_memory_rss:1000\r\nused_memory_rss_human:1000B\r\nmaxmemory:0\r\n"),
            std::string::npos)
      << info;
  EXPECT_NE(info.find("mem_allocator:x-1\r\n"), std::string::npos);
  EXPECT_NE(P({"INFO", "cpu"}).find("# CPU\r\nused_cpu_sys:2.000007\r\nused_cpu_user:1.500000\r\n"),
            std::string::npos);
  EXPECT_NE(P({"INFO"}).find("# Memory\r\n"), std::string::npos);
  EXPECT_NE(S({"INFO", "memory"}).find("maxmemory_policy:noeviction\r\n"), std::string::npos);
}

TEST_F(RespCommandsTest, CommandListAndGetKeys) {
  make();
  const std::string all = P({"COMMAND", "LIST"});
  EXPECT_NE(all.find(bulk("get")), std::string::npos);
  EXPECT_NE(all.find(bulk("client|kill")), std::string::npos);
  EXPECT_NE(all.find(bulk("memory|usage")), std::string::npos);
  EXPECT_NE(all.find(bulk("quire.status")), std::string::npos);
  EXPECT_EQ(P({"COMMAND", "LIST", "FILTERBY", "PATTERN", "MEMORY|*"}),
            "*2\r\n" + bulk("memory|usage") + bulk("memory|help"));
  EXPECT_EQ(P({"COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"}), "*0\r\n");
  EXPECT_EQ(P({"COMMAND", "LIST", "FILTERBY", "MODULE", "m"}), "*0\r\n");
  EXPECT_EQ(P({"COMMAND", "LIST", "FILTERBY", "FOO", "x"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"COMMAND", "LIST", "FILTERBY", "PATTERN"}), "-ERR syntax error\r\n");

  EXPECT_EQ(P({"COMMAND", "GETKEYS", "SET", "a", "b", "NX"}), "*1\r\n" + bulk("a"));
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"}),
            "*2\r\n" + bulk("a") + bulk("b"));
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "del", "a", "b", "c"}),
            "*3\r\n" + bulk("a") + bulk("b") + bulk("c"));
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "memory", "usage", "k"}), "*1\r\n" + bulk("k"));
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "get"}),
            "-ERR wrong number of arguments for 'command|getkeys' command\r\n");
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "get", "a", "b"}),
            "-ERR Invalid number of arguments specified for command\r\n");
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "ping", "x"}), "-ERR The command has no key arguments\r\n");
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "lpush", "a", "b"}), "-ERR Invalid command specified\r\n");
  EXPECT_EQ(P({"COMMAND", "GETKEYS", "client", "foo", "x"}), "-ERR Invalid command specified\r\n");
  // A subcommand's own key positions and flags, in COMMAND INFO too.
  EXPECT_EQ(P({"COMMAND", "INFO", "memory|usage"}).substr(0, 60),
            "*1\r\n*10\r\n$12\r\nmemory|usage\r\n:-3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n");
}

TEST_F(RespCommandsTest, ConnectionCommands) {
  make();
  EXPECT_EQ(P({"PING"}), "+PONG\r\n");
  EXPECT_EQ(P({"ping", "hi\r\nthere"}), bulk("hi\r\nthere"));
  EXPECT_EQ(P({"PING", "a", "b"}), "-ERR wrong number of arguments for 'ping' command\r\n");
  EXPECT_EQ(P({"ECHO", std::string("a\0b", 3)}), bulk(std::string("a\0b", 3)));
  EXPECT_EQ(P({"ECHO"}), "-ERR wrong number of arguments for 'echo' command\r\n");
  EXPECT_EQ(P({"HELLO", "3"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(P({"HELLO", "x"}), "-ERR Protocol version is not an integer or out of range\r\n");
  EXPECT_EQ(P({"HELLO", "2", "FOO"}), "-ERR Syntax error in HELLO option 'FOO'\r\n");
  EXPECT_EQ(P({"HELLO", "2", "SETNAME", "conn1"}),
            "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
            "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
            "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n");
  EXPECT_EQ(P({"CLIENT", "GETNAME"}), bulk("conn1"));
  EXPECT_EQ(P({"CLIENT", "SETNAME", "a b"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(P({"client", "setname", "mine"}), "+OK\r\n");
  EXPECT_EQ(P({"CLIENT", "GETNAME"}), bulk("mine"));
  EXPECT_EQ(P({"CLIENT", "ID"}), ":1\r\n");
  EXPECT_EQ(P({"CLIENT", "ID", "x"}), "-ERR wrong number of arguments for 'client|id' command\r\n");
  EXPECT_EQ(P({"CLIENT", "KILL"}), "-ERR wrong number of arguments for 'client|kill' command\r\n");
  EXPECT_EQ(P({"CLIENT", "PAUSE", "1"}), "-ERR unknown subcommand 'PAUSE'. Try CLIENT HELP.\r\n");
  // No process to measure (the simulator): INFO memory has only the limits.
  EXPECT_EQ(
      P({"INFO", "memory"}),
      bulk("# Memory\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n"));
  EXPECT_NE(P({"CLIENT", "INFO"}).find("id=1 "), std::string::npos);
  EXPECT_EQ(P({"SELECT", "15"}), "+OK\r\n");
  EXPECT_EQ(client_.db, 15u);
  EXPECT_EQ(P({"SELECT", "16"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(P({"SELECT", "-1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(P({"SELECT", "one"}), "-ERR value is not an integer or out of range\r\n");
  // Redis reads a long long, then checks an int's range, each with its own message.
  EXPECT_EQ(P({"SELECT", "2147483648"}),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n");
  EXPECT_EQ(P({"SELECT", "-2147483649"}),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n");
  EXPECT_EQ(P({"SELECT", "2147483647"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(P({"SELECT", "99999999999999999999"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(P({"AUTH", "pw"}),
            "-ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?\r\n");
  EXPECT_EQ(P({"AUTH", "default", "anything"}), "+OK\r\n");
  EXPECT_EQ(P({"AUTH", "bob", "anything"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(P({"FOO", "a", "b"}),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(P({"foo"}), "-ERR unknown command 'foo', with args beginning with: \r\n");
  // Redis prints the name and the arguments as C strings: each ends at a NUL byte, and the
  // shorter length is what counts against the 128 characters.
  EXPECT_EQ(P({"FOO", std::string("a\0b", 3), "c"}),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'c' \r\n");
  EXPECT_EQ(P({std::string("GET\0", 4), "x"}),
            "-ERR unknown command 'GET', with args beginning with: 'x' \r\n");
  EXPECT_EQ(P({"FOO", std::string("\0", 1) + std::string(200, 'x'), "next"}),
            "-ERR unknown command 'FOO', with args beginning with: '' 'next' \r\n");
  EXPECT_EQ(P({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(P({"set", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT_FALSE(client_.close_after_reply);
  EXPECT_EQ(P({"QUIT"}), "+OK\r\n");
  EXPECT_TRUE(client_.close_after_reply);
}

TEST_F(RespCommandsTest, AuthWithRequirepass) {
  RespCommandsOptions o;
  o.requirepass = "s3cret";
  make(o);
  EXPECT_EQ(P({"GET", "k"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(P({"PING"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", "save"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(P({"NOPE"}), "-ERR unknown command 'NOPE', with args beginning with: \r\n");
  EXPECT_EQ(P({"HELLO", "2"}),
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time\r\n");
  // As Redis 7.0: a container's subcommand is checked (existence, arity) before NOAUTH.
  EXPECT_EQ(P({"CLIENT", "SETNAME"}),
            "-ERR wrong number of arguments for 'client|setname' command\r\n");
  EXPECT_EQ(P({"CONFIG", "NOPE"}), "-ERR unknown subcommand 'NOPE'. Try CONFIG HELP.\r\n");
  EXPECT_EQ(P({"CLIENT", "GETNAME"}), "-NOAUTH Authentication required.\r\n");
  // HELLO applies each option as it reads it: the name stays, and AUTH then counts.
  EXPECT_EQ(P({"HELLO", "2", "SETNAME", "early"}).substr(0, 8), "-NOAUTH ");
  EXPECT_EQ(client_.name, "early");
  EXPECT_EQ(P({"HELLO", "2", "AUTH", "default", "s3cret", "FOO"}),
            "-ERR Syntax error in HELLO option 'FOO'\r\n");
  EXPECT_TRUE(client_.authenticated);
  client_.authenticated = false;
  EXPECT_EQ(P({"AUTH", "wrong"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(P({"HELLO", "2", "AUTH", "default", "wrong"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_FALSE(client_.authenticated);
  EXPECT_EQ(P({"AUTH", "s3cret"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "k"}), "$-1\r\n");
  ClientState other;
  other.id = 9;
  const std::string hello =
      run(*primary_, sim_->primary_id(), other, {"HELLO", "2", "AUTH", "default", "s3cret"});
  EXPECT_EQ(hello.substr(0, 4), "*14\r");
  EXPECT_TRUE(other.authenticated);
  EXPECT_EQ(P({"QUIT"}), "+OK\r\n");
}

TEST_F(RespCommandsTest, StringCommands) {
  make();
  EXPECT_EQ(P({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(P({"SET", "k", "v1"}), "+OK\r\n");
  EXPECT_FALSE(client_.last_write.is_zero());
  EXPECT_EQ(P({"GET", "k"}), bulk("v1"));
  EXPECT_EQ(P({"SET", "k", "v2", "NX"}), "$-1\r\n");
  EXPECT_EQ(P({"SET", "k", "v2", "XX"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "new", "v", "XX"}), "$-1\r\n");
  EXPECT_EQ(P({"SET", "k", "v3", "GET"}), bulk("v2"));
  EXPECT_EQ(P({"SET", "k", "v4", "NX", "GET"}), bulk("v3"));  // not set, old value
  EXPECT_EQ(P({"GET", "k"}), bulk("v3"));
  EXPECT_EQ(P({"SET", "fresh", "v", "nx", "get"}), "$-1\r\n");
  EXPECT_EQ(P({"GET", "fresh"}), bulk("v"));
  EXPECT_EQ(P({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"SET", "k", "v", "BOGUS"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"SET", "k", "v", "EX", "10"}),
            "-ERR SET EX is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"SET", "k", "v", "keepttl"}),
            "-ERR SET keepttl is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"SETNX", "k", "x"}), ":0\r\n");
  EXPECT_EQ(P({"SETNX", "nx1", "x"}), ":1\r\n");
  EXPECT_EQ(P({"STRLEN", "k"}), ":2\r\n");
  EXPECT_EQ(P({"STRLEN", "missing"}), ":0\r\n");
  EXPECT_EQ(P({"TYPE", "k"}), "+string\r\n");
  EXPECT_EQ(P({"TYPE", "missing"}), "+none\r\n");
  EXPECT_EQ(P({"TTL", "k"}), ":-1\r\n");
  EXPECT_EQ(P({"TTL", "missing"}), ":-2\r\n");
  EXPECT_EQ(P({"pttl", "k"}), ":-1\r\n");
  EXPECT_EQ(P({"PTTL", "missing"}), ":-2\r\n");
  EXPECT_EQ(P({"TYPE"}), "-ERR wrong number of arguments for 'type' command\r\n");
  EXPECT_EQ(P({"TTL", "k", "x"}), "-ERR wrong number of arguments for 'ttl' command\r\n");
  EXPECT_EQ(P({"EXISTS", "k", "k", "missing", "nx1"}), ":3\r\n");
  EXPECT_EQ(P({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(P({"MSET", "a", "1", "b"}), "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT_EQ(P({"MGET", "a", "missing", "b"}), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
  EXPECT_EQ(P({"MSETNX", "a", "9", "c", "3"}), ":0\r\n");
  EXPECT_EQ(P({"GET", "c"}), "$-1\r\n");  // all or nothing
  EXPECT_EQ(P({"MSETNX", "c", "3", "d", "4"}), ":1\r\n");
  EXPECT_EQ(P({"MGET", "c", "d"}), "*2\r\n$1\r\n3\r\n$1\r\n4\r\n");
  EXPECT_EQ(P({"DEL", "a", "a", "missing", "b"}), ":2\r\n");
  EXPECT_EQ(P({"DEL", "a"}), ":0\r\n");
  EXPECT_EQ(P({"EXISTS", "a", "b"}), ":0\r\n");
  // The empty key is a key.
  EXPECT_EQ(P({"SET", "", "empty"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", ""}), bulk("empty"));
  EXPECT_EQ(P({"SET", "e", ""}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "e"}), bulk(""));
  EXPECT_EQ(P({"EXISTS", "", "e"}), ":2\r\n");
  EXPECT_EQ(P({"KEYS", "*"}).substr(0, 10), "*7\r\n$0\r\n\r\n");
}

TEST_F(RespCommandsTest, IncrFamily) {
  make();
  EXPECT_EQ(P({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(P({"INCRBY", "n", "41"}), ":42\r\n");
  EXPECT_EQ(P({"DECR", "n"}), ":41\r\n");
  EXPECT_EQ(P({"DECRBY", "n", "-9"}), ":50\r\n");
  EXPECT_EQ(P({"GET", "n"}), bulk("50"));
  EXPECT_EQ(P({"INCRBY", "n", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"INCRBY", "n", "+1"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"INCRBY", "n", "01"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SET", "s", "abc"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SET", "s", " 1"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SET", "max", "9223372036854775807"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "max"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(P({"GET", "max"}), bulk("9223372036854775807"));
  EXPECT_EQ(P({"SET", "min", "-9223372036854775808"}), "+OK\r\n");
  EXPECT_EQ(P({"DECR", "min"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(P({"DECRBY", "n", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
  EXPECT_EQ(P({"INCRBY", "n", "9223372036854775808"}),
            "-ERR value is not an integer or out of range\r\n");
}

// The string commands beyond the issue's list, as Redis 7.0 answers them
// (redis_diff_test compares them with a real redis-server); a standby sees each result.
TEST_F(RespCommandsTest, MoreStringCommands) {
  make();
  EXPECT_EQ(P({"APPEND", "s", "ab"}), ":2\r\n");
  EXPECT_EQ(P({"APPEND", "s", "cd"}), ":4\r\n");
  EXPECT_EQ(P({"APPEND", "e", ""}), ":0\r\n");  // creates an empty key
  EXPECT_EQ(P({"EXISTS", "e"}), ":1\r\n");
  EXPECT_EQ(P({"GETRANGE", "s", "1", "2"}), bulk("bc"));
  EXPECT_EQ(P({"GETRANGE", "s", "-3", "-1"}), bulk("bcd"));
  EXPECT_EQ(P({"GETRANGE", "s", "-1", "-3"}), bulk(""));
  EXPECT_EQ(P({"SUBSTR", "s", "0", "100"}), bulk("abcd"));
  EXPECT_EQ(P({"GETRANGE", "nokey", "0", "1"}), bulk(""));
  EXPECT_EQ(P({"GETRANGE", "s", "x", "1"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SETRANGE", "s", "6", "Z"}), ":7\r\n");
  EXPECT_EQ(P({"GET", "s"}), bulk(std::string("abcd\0\0Z", 7)));
  EXPECT_EQ(P({"SETRANGE", "s", "-1", "Z"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(P({"SETRANGE", "nokey", "5", ""}), ":0\r\n");
  EXPECT_EQ(P({"EXISTS", "nokey"}), ":0\r\n");
  EXPECT_EQ(P({"SETRANGE", "big", "536870911", "x"}),  // refused before it allocates
            "-ERR value is 536870912 bytes; Quire's value limit is 1048576 bytes "
            "(kValueBytesMax)\r\n");
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "10.5"}), bulk("10.5"));
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "0.1"}), bulk("10.6"));
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "-10.6"}), bulk("0"));
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "5.0e3"}), bulk("5000"));
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "0x10"}), bulk("5016"));
  EXPECT_EQ(P({"INCRBYFLOAT", "f", "inf"}), "-ERR increment would produce NaN or Infinity\r\n");
  EXPECT_EQ(P({"INCRBYFLOAT", "f", std::string("1\0", 2)}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(P({"INCRBYFLOAT", "s", "1"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(P({"GETSET", "g", "new"}), "$-1\r\n");
  EXPECT_EQ(P({"GETSET", "g", "newer"}), bulk("new"));
  EXPECT_EQ(P({"GETDEL", "g"}), bulk("newer"));
  EXPECT_EQ(P({"GETDEL", "g"}), "$-1\r\n");
  EXPECT_EQ(P({"RENAME", "nokey", "x"}), "-ERR no such key\r\n");
  EXPECT_EQ(P({"RENAME", "f", "f"}), "+OK\r\n");
  EXPECT_EQ(P({"RENAMENX", "f", "e"}), ":0\r\n");
  EXPECT_EQ(P({"RENAME", "f", "e"}), "+OK\r\n");
  EXPECT_EQ(P({"MGET", "f", "e"}), "*2\r\n$-1\r\n$4\r\n5016\r\n");
  EXPECT_EQ(P({"RENAMENX", "e", "r"}), ":1\r\n");
  EXPECT_EQ(P({"TOUCH", "r", "r", "nokey"}), ":2\r\n");
  EXPECT_EQ(P({"PERSIST", "r"}), ":0\r\n");
  EXPECT_EQ(P({"UNLINK", "r", "s", "nokey"}), ":2\r\n");
  catch_up();
  EXPECT_EQ(S({"MGET", "r", "s", "e", "f", "g"}), "*5\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
  EXPECT_EQ(S({"PERSIST", "r"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(P({"APPEND", "z", "12"}), ":2\r\n");
  EXPECT_EQ(P({"RENAME", "z", "y"}), "+OK\r\n");
  catch_up();
  EXPECT_EQ(S({"MGET", "z", "y"}), "*2\r\n$-1\r\n$2\r\n12\r\n");
}

// No key expires: the commands that would set an expiration are refused with a clear
// error; those that read or remove one answer as for a key without one.
TEST_F(RespCommandsTest, ExpiryCommandsAndFlushall) {
  make();
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(P({"SETEX", "k", "10", "v"}),
            "-ERR SETEX is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"psetex", "k", "10", "v"}),
            "-ERR PSETEX is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"EXPIRE", "k", "10", "NX"}),
            "-ERR EXPIRE is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"SETEX", "k", "10"}), "-ERR wrong number of arguments for 'setex' command\r\n");
  EXPECT_EQ(P({"GETEX", "k"}), bulk("v"));
  EXPECT_EQ(P({"GETEX", "k", "PERSIST", "persist"}), bulk("v"));
  EXPECT_EQ(P({"GETEX", "k", "EX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"GETEX", "k", "ex", "10"}),
            "-ERR GETEX ex is not supported: Quire keys never expire\r\n");
  EXPECT_EQ(P({"EXPIRETIME", "k"}), ":-1\r\n");
  EXPECT_EQ(P({"PEXPIRETIME", "nokey"}), ":-2\r\n");
  EXPECT_EQ(P({"GET", "k"}), bulk("v"));
  // FLUSHALL empties every database.
  EXPECT_EQ(P({"SELECT", "3"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "k3", "v"}), "+OK\r\n");
  EXPECT_EQ(P({"FLUSHALL", "SYNC", "x"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"FLUSHALL"}), "+OK\r\n");
  EXPECT_EQ(P({"DBSIZE"}), ":0\r\n");
  EXPECT_EQ(P({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(P({"DBSIZE"}), ":0\r\n");
  catch_up();
  EXPECT_EQ(S({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(S({"GETEX", "k"}), "-READONLY You can't write against a read only replica.\r\n");
}

TEST_F(RespCommandsTest, BinarySafeKeysValuesAndLimits) {
  make();
  const std::string key("k\r\n\0key", 7);
  const std::string value("v\r\n\0\r\nvalue", 11);
  EXPECT_EQ(P({"SET", key, value}), "+OK\r\n");
  EXPECT_EQ(P({"GET", key}), bulk(value));
  std::string mib(1u << 20, 'x');
  mib[0] = '\0';
  mib[12345] = '\r';
  mib[12346] = '\n';
  EXPECT_EQ(P({"SET", "big", mib}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "big"}), bulk(mib));
  EXPECT_EQ(P({"STRLEN", "big"}), ":1048576\r\n");
  EXPECT_EQ(
      P({"SET", "big", mib + "y"}),
      "-ERR value is 1048577 bytes; Quire's value limit is 1048576 bytes (kValueBytesMax)\r\n");
  EXPECT_EQ(P({"SET", std::string(4097, 'k'), "v"}),
            "-ERR key is 4097 bytes; Quire's key limit is 4096 bytes (kKeyBytesMax)\r\n");
  EXPECT_EQ(P({"SET", std::string(4096, 'k'), "v"}), "+OK\r\n");
  // Sixteen 1 MiB values fit no log entry: refused before anything is sent.
  Args mset{"MSET"};
  for (int i = 0; i < 17; i++) {
    mset.push_back(fmt::format("m{}", i));
    mset.push_back(mib);
  }
  const std::string r = P(mset);
  EXPECT_EQ(r.rfind("-ERR a command may write at most ", 0), 0u) << r;
  EXPECT_EQ(P({"GET", "m0"}), "$-1\r\n");
  Args many{"MSET"};
  for (int i = 0; i < 10'001; i++) {
    many.push_back(fmt::format("x{}", i));
    many.push_back("v");
  }
  EXPECT_EQ(P(many),
            "-ERR a command may write at most 10000 keys at once (Quire's log entry bound, "
            "kLogEntryOpsMax); this one writes 10001\r\n");
}

TEST_F(RespCommandsTest, DatabasesAreTables) {
  make();
  EXPECT_EQ(P({"SET", "k", "zero"}), "+OK\r\n");
  EXPECT_EQ(P({"SELECT", "3"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(P({"SET", "k", "three"}), "+OK\r\n");
  EXPECT_EQ(P({"DBSIZE"}), ":1\r\n");
  auto got = sim_->primary()->engine().tables();
  EXPECT_NE(std::find(got.begin(), got.end(), TableId(19)), got.end());
  EXPECT_EQ(P({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "k"}), bulk("zero"));
  // The standby learned table 19's DEK from the log and reads it.
  catch_up();
  EXPECT_EQ(S({"SELECT", "3"}), "+OK\r\n");
  EXPECT_EQ(S({"GET", "k"}), bulk("three"));
  EXPECT_EQ(S({"SELECT", "7"}), "+OK\r\n");
  EXPECT_EQ(S({"GET", "k"}), "$-1\r\n");  // a database never written reads as empty
  EXPECT_EQ(S({"DBSIZE"}), ":0\r\n");
}

TEST_F(RespCommandsTest, StandbyServesReadsAndRefusesWrites) {
  make();
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  catch_up();
  EXPECT_EQ(S({"GET", "k"}), bulk("v"));
  EXPECT_EQ(S({"MGET", "k", "x"}), "*2\r\n$1\r\nv\r\n$-1\r\n");
  EXPECT_EQ(S({"EXISTS", "k"}), ":1\r\n");
  EXPECT_EQ(S({"DBSIZE"}), ":1\r\n");
  EXPECT_EQ(S({"SET", "k", "w"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"INCR", "n"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"FLUSHDB"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"QUIRE.ROTATEKEK"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"WAIT", "1", "0"}),
            "-ERR WAIT cannot be used with replica instances. Please also note that since Redis "
            "4.0 if a replica is configured to be writable (which is not the default) writes to "
            "replicas are just local and are not propagated.\r\n");
  EXPECT_EQ(S({"PING"}), "+PONG\r\n");
  const std::string hello = S({"HELLO", "2"});
  EXPECT_NE(hello.find("$4\r\nrole\r\n$7\r\nreplica\r\n"), std::string::npos);
  const std::string info = S({"INFO", "replication"});
  EXPECT_NE(info.find("role:slave\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("master_link_status:up\r\n"), std::string::npos) << info;

  // A re-syncing standby: reads answer LOADING with the reason, writes still READONLY.
  sim_->standby(0)->step_down("test");
  EXPECT_EQ(S({"GET", "k"}), "-LOADING the standby is re-syncing\r\n");
  EXPECT_EQ(S({"SET", "k", "w"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"PING"}), "+PONG\r\n");
  EXPECT_NE(S({"INFO", "persistence"}).find("loading:1\r\n"), std::string::npos);
  catch_up();
  EXPECT_EQ(S({"GET", "k"}), bulk("v"));
}

TEST_F(RespCommandsTest, MasterdownWhenNoPrimaryIsKnown) {
  RespCommandsOptions o;
  o.primary_address = [] { return std::optional<Address>(); };
  make(o);
  catch_up();
  EXPECT_EQ(S({"SET", "k", "v"}),
            "-MASTERDOWN no primary is known to this node (no leader elected); retry later\r\n");
  EXPECT_EQ(S({"GET", "k"}), "$-1\r\n");  // reads are still served
}

TEST_F(RespCommandsTest, ConcurrentIncrementsLoseNothing) {
  make();
  constexpr int kClients = 12;
  constexpr int kEach = 15;
  std::vector<ClientState> clients(kClients);
  std::vector<std::vector<std::string>> replies(kClients);
  int finished = 0;
  for (int i = 0; i < kClients; i++) {
    clients[i].id = 100 + i;
    sim_->spawn_on(sim_->primary_id(), fmt::format("client-{}", i), [&, i]() -> Task<void> {
      for (int j = 0; j < kEach; j++) {
        ReplyWriter out;
        // Every third command is a blind SET of another key, so groups mix both kinds.
        Args a = j % 3 == 2 ? Args{"SET", fmt::format("other{}", i), "x"}
                            : Args{i % 2 ? "INCR" : "INCRBY", "counter"};
        if (i % 2 == 0 && a[0] == "INCRBY") a.push_back("1");
        co_await primary_->execute(std::move(a), clients[i], out);
        replies[i].push_back(out.buffer());
      }
      finished++;
    });
  }
  ASSERT_TRUE(sim_->run_until([&] { return finished == kClients; }, 60s));
  std::set<std::string> seen;
  int increments = 0;
  for (const auto& rs : replies) {
    for (const std::string& r : rs) {
      if (r == "+OK\r\n") continue;
      ASSERT_EQ(r[0], ':') << r;
      EXPECT_TRUE(seen.insert(r).second) << "two increments answered " << r;
      increments++;
    }
  }
  EXPECT_EQ(P({"GET", "counter"}), bulk(fmt::format("{}", increments)));
  EXPECT_EQ(increments, kClients * 10);
  EXPECT_EQ(primary_->locks_active(), 0u);
  // Several increments shared a commit group (the locks did not serialize everything).
  EXPECT_LT(sim_->primary()->stats().groups_written, sim_->primary()->stats().batches_acked);
}

// A blind SET racing increments of the same key: every reply must fit one serial order.
// Increments answered before the SET count 1, 2, ...; the SET makes the key 1000; those
// after it count 1001, 1002, ...; the final value is the last of them. A SET committed
// between an increment's read and its write would show up as a reply or a final value
// outside that order.
TEST_F(RespCommandsTest, BlindSetAndIncrementsSerialize) {
  make();
  constexpr int kClients = 8;
  constexpr int kEach = 10;
  std::vector<ClientState> clients(kClients + 1);
  std::vector<int64_t> replies;
  int finished = 0;
  for (int i = 0; i < kClients; i++) {
    clients[i].id = 200 + i;
    sim_->spawn_on(sim_->primary_id(), fmt::format("incr-{}", i), [&, i]() -> Task<void> {
      for (int j = 0; j < kEach; j++) {
        ReplyWriter out;
        Args a{"INCR", "c"};
        co_await primary_->execute(std::move(a), clients[i], out);
        EXPECT_EQ(out.buffer()[0], ':') << out.buffer();
        replies.push_back(std::stoll(out.buffer().substr(1)));
      }
      finished++;
    });
  }
  clients[kClients].id = 299;
  sim_->spawn_on(sim_->primary_id(), "setter", [&]() -> Task<void> {
    co_await sim_->world().env(sim_->primary_id())->executor().sleep(3ms);
    ReplyWriter out;
    Args a{"SET", "c", "1000"};
    co_await primary_->execute(std::move(a), clients[kClients], out);
    EXPECT_EQ(out.buffer(), "+OK\r\n");
    finished++;
  });
  ASSERT_TRUE(sim_->run_until([&] { return finished == kClients + 1; }, 60s));
  std::sort(replies.begin(), replies.end());
  ASSERT_EQ(replies.size(), static_cast<size_t>(kClients * kEach));
  size_t before = 0;
  while (before < replies.size() && replies[before] < 1000) before++;
  ASSERT_GT(before, 0u) << "the SET did not race the increments";
  ASSERT_LT(before, replies.size()) << "the SET did not race the increments";
  for (size_t i = 0; i < before; i++) EXPECT_EQ(replies[i], static_cast<int64_t>(i + 1));
  for (size_t i = before; i < replies.size(); i++) {
    EXPECT_EQ(replies[i], static_cast<int64_t>(1001 + (i - before)));
  }
  EXPECT_EQ(P({"GET", "c"}), bulk(fmt::format("{}", replies.back())));
}

TEST_F(RespCommandsTest, ScanReturnsEveryStableKeyExactlyOnce) {
  make();
  Args mset{"MSET"};
  for (int i = 0; i < 300; i++) {
    mset.push_back(fmt::format("k{:03d}", i));
    mset.push_back("v");
  }
  EXPECT_EQ(P(mset), "+OK\r\n");
  std::map<std::string, int> seen;
  std::string cursor = "0";
  int calls = 0;
  int churn = 0;
  do {
    const std::string r = P({"SCAN", cursor, "COUNT", "7"});
    // Parse "*2\r\n$n\r\n<cursor>\r\n*m\r\n($l\r\n<key>\r\n)*".
    size_t at = r.find("\r\n$") + 3;
    size_t nl = r.find("\r\n", at);
    const size_t clen = std::stoul(r.substr(at, nl - at));
    cursor = r.substr(nl + 2, clen);
    at = nl + 2 + clen + 2;
    ASSERT_EQ(r[at], '*');
    nl = r.find("\r\n", at);
    const size_t n = std::stoul(r.substr(at + 1, nl - at - 1));
    at = nl + 2;
    for (size_t i = 0; i < n; i++) {
      nl = r.find("\r\n", at);
      const size_t len = std::stoul(r.substr(at + 1, nl - at - 1));
      seen[r.substr(nl + 2, len)]++;
      at = nl + 2 + len + 2;
    }
    // Other keys change between calls: new keys before and after the cursor, deletions.
    EXPECT_EQ(P({"SET", fmt::format("a{:03d}", churn), "x"}), "+OK\r\n");
    EXPECT_EQ(P({"SET", fmt::format("z{:03d}", churn), "x"}), "+OK\r\n");
    if (churn > 0) P({"DEL", fmt::format("z{:03d}", churn - 1)});
    churn++;
    ASSERT_LT(++calls, 200);
  } while (cursor != "0");
  for (int i = 0; i < 300; i++) {
    EXPECT_EQ(seen[fmt::format("k{:03d}", i)], 1) << i;
  }
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k;

  EXPECT_EQ(
      P({"SCAN", "0", "MATCH", "k29*", "COUNT", "1000"}), "*2\r\n$1\r\n0\r\n*10\r\n" + [] {
        std::string s;
        for (int i = 290; i < 300; i++) s += bulk(fmt::format("k{}", i));
        return s;
      }());
  EXPECT_EQ(P({"SCAN", "0", "TYPE", "hash", "COUNT", "1000"}), "*2\r\n$1\r\n0\r\n*0\r\n");
  // The last MATCH counts, "*" included (found by redis_diff_test, seed 107).
  EXPECT_EQ(P({"SCAN", "0", "MATCH", "nothing*", "MATCH", "k29*", "COUNT", "1000"}),
            P({"SCAN", "0", "MATCH", "k29*", "COUNT", "1000"}));
  EXPECT_EQ(P({"SCAN", "0", "MATCH", "nothing*", "MATCH", "*", "COUNT", "1000"}),
            P({"SCAN", "0", "COUNT", "1000"}));
  EXPECT_EQ(P({"SCAN", "x"}), "-ERR invalid cursor\r\n");
  // The cursor read as Redis's strtoul reads it: empty, +0 and -0 are 0; a leading space,
  // a sign alone, trailing bytes or more than 64 bits are refused; -1 wraps (a cursor no
  // node hands out), and the options are checked first.
  for (const char* zero : {"", "+0", "-0", "00"}) {
    EXPECT_EQ(P({"SCAN", zero, "MATCH", "k29*", "COUNT", "1000"}).substr(0, 14),
              "*2\r\n$1\r\n0\r\n*10")
        << zero;
  }
  for (const char* bad : {" 0", "-", "+", "0x0", "1 ", "18446744073709551616"}) {
    EXPECT_EQ(P({"SCAN", bad}), "-ERR invalid cursor\r\n") << bad;
  }
  EXPECT_EQ(P({"SCAN", "-1"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(P({"SCAN", "-1", "FOO"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"SCAN", "", "COUNT", "abc"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SCAN", "123456789"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(P({"SCAN", "0", "COUNT", "0"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"SCAN", "0", "COUNT"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"SCAN", "0", "FOO", "1"}), "-ERR syntax error\r\n");
  EXPECT_EQ(
      P({"KEYS", "k00?"}), "*10\r\n" + [] {
        std::string s;
        for (int i = 0; i < 10; i++) s += bulk(fmt::format("k00{}", i));
        return s;
      }());
}

TEST_F(RespCommandsTest, DbsizeAndFlushdb) {
  make();
  Args mset{"MSET"};
  for (int i = 0; i < 700; i++) {
    mset.push_back(fmt::format("f{}", i));
    mset.push_back("v");
  }
  EXPECT_EQ(P(mset), "+OK\r\n");
  EXPECT_EQ(P({"DBSIZE"}), ":700\r\n");
  EXPECT_NE(P({"INFO", "keyspace"}).find("db0:keys=700,expires=0,avg_ttl=0\r\n"),
            std::string::npos);
  EXPECT_EQ(P({"SELECT", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "keep", "me"}), "+OK\r\n");
  EXPECT_EQ(P({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(P({"FLUSHDB", "NOW"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"FLUSHDB"}), "+OK\r\n");
  EXPECT_EQ(P({"DBSIZE"}), ":0\r\n");
  EXPECT_EQ(P({"KEYS", "*"}), "*0\r\n");
  EXPECT_EQ(P({"SELECT", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "keep"}), bulk("me"));
  EXPECT_EQ(primary_->locks_active(), 0u);
}

TEST_F(RespCommandsTest, WaitCountsStandbysThatAppliedTheLastWrite) {
  make();
  EXPECT_EQ(P({"WAIT", "x", "0"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"WAIT", "1", "-1"}), "-ERR timeout is negative\r\n");
  EXPECT_EQ(P({"WAIT", "1", "y"}), "-ERR timeout is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  const Timestamp last = client_.last_write;
  EXPECT_EQ(P({"WAIT", "1", "0"}), ":1\r\n");  // blocks until the standby applied it
  EXPECT_GE(sim_->standby(0)->applied_ts(), last);
  EXPECT_EQ(S({"GET", "k"}), bulk("v"));  // read-your-writes on the standby after WAIT
  // More standbys than exist: the timeout passes, and the count reached is the reply.
  const MonoTime before = sim_->world().now();
  EXPECT_EQ(P({"WAIT", "2", "100"}), ":1\r\n");
  EXPECT_GE(sim_->world().now() - before, 100ms);
  // A standby that stopped applying (re-syncing) is not counted.
  sim_->standby(0)->step_down("test");
  EXPECT_EQ(P({"SET", "k", "v2"}), "+OK\r\n");
  EXPECT_EQ(P({"WAIT", "1", "0"}), ":1\r\n");  // it comes back, applies, and counts
  EXPECT_GE(sim_->standby(0)->applied_ts(), client_.last_write);
}

TEST_F(RespCommandsTest, WaitLearnsStandbyProgressFromReports) {
  make({}, 1, /*harness_progress=*/false);
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  // No report yet: the primary knows of no standby.
  EXPECT_EQ(P({"WAIT", "1", "50"}), ":0\r\n");
  EXPECT_NE(P({"INFO", "replication"}).find("connected_slaves:0\r\n"), std::string::npos);
  start_reporter();
  EXPECT_EQ(P({"WAIT", "1", "0"}), ":1\r\n");
  EXPECT_EQ(S({"GET", "k"}), bulk("v"));
  EXPECT_NE(P({"INFO", "replication"}).find("slave0:ip=s0,port=6380,state=online,offset="),
            std::string::npos);
  EXPECT_GT(reporter_->sent(), 0u);
  EXPECT_EQ(reporter_->failed(), 0u);
  // A report goes as soon as the standby applied more, not at the next interval: WAIT after
  // a lone write takes the standby's log poll (20 ms in the simulator) and a few ms, not
  // the report interval on top of the heartbeat (the write's commit point goes out at once,
  // as a commit hint).
  Nanos slowest{0};
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(P({"SET", "k", std::to_string(i)}), "+OK\r\n");
    const MonoTime before = sim_->world().now();
    EXPECT_EQ(P({"WAIT", "1", "0"}), ":1\r\n");
    slowest = std::max(slowest, sim_->world().now() - before);
    sim_->run_until([] { return false; }, 37ms);
  }
  EXPECT_LT(slowest, Nanos(30ms));
  // Idle, it reports once an interval, not once a poll.
  const uint64_t sent_before = reporter_->sent();
  sim_->run_until([] { return false; }, 1s);
  EXPECT_LE(reporter_->sent() - sent_before, 1s / kProgressReportInterval + 1);
  // A standby that stops reporting is forgotten after kProgressReportTtl.
  reporter_->stop();
  sim_->run_until([] { return false; }, kProgressReportTtl + 100ms);
  EXPECT_EQ(P({"WAIT", "1", "10"}), ":0\r\n");
  // Malformed reports, and reports to a standby, are refused.
  EXPECT_EQ(P({"QUIRE.REPORT", "s", "a", "x", "1", "1"}),
            "-ERR QUIRE.REPORT <name> <address> <applied-ts> <applied-lsn> <serving 0|1>\r\n");
  EXPECT_EQ(P({"QUIRE.REPORT", "s", "a", "1"}),
            "-ERR wrong number of arguments for 'quire.report' command\r\n");
  EXPECT_EQ(S({"QUIRE.REPORT", "s", "a", "1", "1", "1"}),
            "-READONLY You can't write against a read only replica.\r\n");
}

TEST(StandbyProgressBoardTest, BoundedAndExpiring) {
  StandbyProgressBoard board;
  const MonoTime t0{1'000'000'000};
  for (size_t i = 0; i < kProgressReportersMax; i++) {
    EXPECT_TRUE(
        board.report(StandbyProgress{fmt::format("s{}", i), "", Timestamp(1), Lsn(1), true}, t0));
  }
  EXPECT_FALSE(board.report(StandbyProgress{"late", "", Timestamp(1), Lsn(1), true}, t0));
  EXPECT_TRUE(board.report(StandbyProgress{"s0", "", Timestamp(2), Lsn(2), true}, t0));
  EXPECT_EQ(board.current(t0).size(), kProgressReportersMax);
  const MonoTime later = t0 + kProgressReportTtl + 1ms;
  EXPECT_TRUE(board.current(later).empty());
  EXPECT_TRUE(board.report(StandbyProgress{"late", "", Timestamp(1), Lsn(1), true}, later));
  EXPECT_EQ(board.size(), 1u);
  auto args = progress_report_args(StandbyProgress{"n", "h:1", Timestamp(5), Lsn(6), false});
  EXPECT_EQ(args, (std::vector<std::string>{"QUIRE.REPORT", "n", "h:1", "5", "6", "0"}));
  auto back = parse_progress_report(args);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->applied_ts, Timestamp(5));
  EXPECT_EQ(back->applied_lsn, Lsn(6));
  EXPECT_FALSE(back->serving);
}

TEST_F(RespCommandsTest, ServerCommands) {
  make();
  EXPECT_EQ(P({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", "nope"}), "*0\r\n");
  EXPECT_EQ(P({"CONFIG", "GET"}), "-ERR wrong number of arguments for 'config|get' command\r\n");
  EXPECT_EQ(P({"CONFIG", "SET", "save", ""}).substr(0, 24), "-ERR CONFIG SET is not s");
  EXPECT_EQ(P({"CONFIG", "REWRITE"}), "-ERR The server is running without a config file\r\n");
  // A name is answered as typed, a pattern with the parameters' names, each once.
  EXPECT_EQ(P({"CONFIG", "GET", "SAVE", "save", "sa*"}), "*2\r\n$4\r\nSAVE\r\n$0\r\n\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", "sav[e]", "SAVE"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", std::string("save\0x", 6)}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(P({"CLIENT", "HELP", "x"}),
            "-ERR wrong number of arguments for 'client|help' command\r\n");
  EXPECT_EQ(P({"CLIENT", std::string("a\0b", 3)}),
            "-ERR unknown subcommand 'a'. Try CLIENT HELP.\r\n");
  EXPECT_EQ(P({"COMMAND", "getkeysandflags", "get", "k"}),
            "-ERR unknown subcommand 'getkeysandflags'. Try COMMAND HELP.\r\n");
  // CONFIG RESETSTAT: INFO stats counts from it (the INFO itself is the one command).
  EXPECT_EQ(P({"PING"}), "+PONG\r\n");
  EXPECT_EQ(P({"CONFIG", "RESETSTAT"}), "+OK\r\n");
  const std::string stats = P({"INFO", "stats"});
  EXPECT_NE(stats.find("quire_commands_executed:1\r\nquire_commands_rejected:0\r\n"),
            std::string::npos)
      << stats;
  EXPECT_EQ(P({"CONFIG", "GET", "data*"}), "*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
  EXPECT_EQ(P({"COMMAND", "COUNT"}), fmt::format(":{}\r\n", command_table().size()));
  EXPECT_EQ(P({"COMMAND", "INFO", "get", "nosuch"}),
            "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
            "*0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n");
  EXPECT_EQ(P({"COMMAND", "DOCS", "get"}),
            "*2\r\n$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$34\r\nReturns the string value of a "
            "key.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n"
            "$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n*6\r\n$4\r\nname\r\n"
            "$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n");
  // SET's arguments: what redis-cli shows as `key value [NX|XX] [GET]`.
  const std::string set_docs = P({"COMMAND", "DOCS", "set"});
  for (const char* want :
       {"$9\r\ncondition\r\n$4\r\ntype\r\n$5\r\noneof\r\n", "$5\r\nflags\r\n*1\r\n+optional\r\n",
        "$5\r\ntoken\r\n$2\r\nNX\r\n", "$5\r\ntoken\r\n$3\r\nGET\r\n"}) {
    EXPECT_NE(set_docs.find(want), std::string::npos) << want << "\n" << set_docs;
  }
  EXPECT_EQ(set_docs.find("KEEPTTL"), std::string::npos);
  EXPECT_NE(P({"COMMAND", "DOCS", "client"}).find("$9\r\nclient|id\r\n"), std::string::npos);
  EXPECT_EQ(P({"COMMAND", "INFO", "client|setname"}).substr(0, 34),
            "*1\r\n*10\r\n$14\r\nclient|setname\r\n:3\r\n");
  EXPECT_EQ(P({"COMMAND"}).substr(0, 4), fmt::format("*{}\r", command_table().size()));
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  const std::string info = P({"INFO"});
  for (const char* want :
       {"# Server\r\nredis_version:7.0.15\r\n", "# Clients\r\nconnected_clients:0\r\n",
        "# "
        "Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=s0,port=6380,state=online,",
        "# Persistence\r\nloading:0\r\n", "aof_enabled:1\r\n", "# Keyspace\r\ndb0:keys=1,",
        "# Quire\r\nquire_role:primary\r\nquire_state:SERVING\r\nquire_term:1\r\n",
        "quire_keystore_version:", "quire_kek_version:1\r\n"}) {
    EXPECT_NE(info.find(want), std::string::npos) << want << "\n" << info;
  }
  const std::string server = P({"INFO", "SERVER"});
  EXPECT_EQ(server.find("# Clients"), std::string::npos);
  EXPECT_NE(server.find("tcp_port:6379"), std::string::npos);
  catch_up();
  const std::string sinfo = S({"INFO", "quire"});
  EXPECT_NE(sinfo.find("quire_role:standby\r\nquire_state:SECONDARY\r\n"), std::string::npos)
      << sinfo;
  EXPECT_NE(sinfo.find("quire_pickups_installed:"), std::string::npos);
  // TIME: seconds and microseconds as bulk strings, from the node's clock.
  const std::string time = P({"TIME"});
  EXPECT_TRUE(std::regex_match(
      time, std::regex("\\*2\r\n\\$[0-9]+\r\n[0-9]+\r\n\\$[0-9]+\r\n[0-9]{1,6}\r\n")))
      << time;
  // ROLE: the primary with its standby; the standby with its state and offset.
  EXPECT_EQ(P({"ROLE"}).substr(0, 17), "*3\r\n$6\r\nmaster\r\n:");
  EXPECT_NE(P({"ROLE"}).find("*1\r\n*3\r\n$2\r\ns0\r\n$4\r\n6380\r\n"), std::string::npos);
  EXPECT_EQ(S({"ROLE"}).substr(0, 15), "*5\r\n$5\r\nslave\r\n");
  EXPECT_NE(S({"ROLE"}).find("$9\r\nconnected\r\n:"), std::string::npos) << S({"ROLE"});
}

// Every command of the table: too few arguments answer Redis's arity error naming it, and
// COMMAND DOCS gives summary, since and group.
TEST_F(RespCommandsTest, EveryCommandChecksItsArity) {
  make();
  for (const CommandSpec& c : command_table()) {
    SCOPED_TRACE(std::string(c.name));
    EXPECT_FALSE(c.summary.empty());
    EXPECT_FALSE(c.since.empty());
    EXPECT_FALSE(c.group.empty());
    const size_t need = static_cast<size_t>(c.arity > 0 ? c.arity : -c.arity);
    if (need >= 2) {
      Args too_few(need - 1, "x");
      too_few[0] = std::string(c.name);
      EXPECT_EQ(P(too_few),
                fmt::format("-ERR wrong number of arguments for '{}' command\r\n", c.name));
    }
    if (c.arity > 0) {
      Args too_many(static_cast<size_t>(c.arity) + 1, "x");
      too_many[0] = std::string(c.name);
      // EXEC's refusal is an EXECABORT, as in Redis 7.0.
      const std::string_view prefix =
          c.id == CommandId::kExec ? "EXECABORT Transaction discarded because of:" : "ERR";
      EXPECT_EQ(P(too_many),
                fmt::format("-{} wrong number of arguments for '{}' command\r\n", prefix, c.name));
    }
    const std::string docs = P({"COMMAND", "DOCS", std::string(c.name)});
    EXPECT_NE(docs.find("$7\r\nsummary\r\n"), std::string::npos);
    EXPECT_NE(docs.find(fmt::format("$5\r\nsince\r\n${}\r\n{}\r\n", c.since.size(), c.since)),
              std::string::npos);
    EXPECT_NE(docs.find("$5\r\ngroup\r\n"), std::string::npos);
  }
}

TEST_F(RespCommandsTest, QuireCommands) {
  make();
  EXPECT_EQ(P({"QUIRE.ROTATEKEK"}), ":2\r\n");
  EXPECT_EQ(P({"QUIRE.ROTATEKEK", "5"}), ":3\r\n");
  EXPECT_EQ(P({"QUIRE.ROTATEKEK", "-1"}), "-ERR gap-ms must be an integer from 0 to 60000\r\n");
  const std::string cmk = P({"QUIRE.ROTATECMK"});
  EXPECT_EQ(cmk, ":2\r\n");
  const std::string ckpt = P({"QUIRE.CHECKPOINT"});
  ASSERT_EQ(ckpt[0], ':') << ckpt;
  const uint64_t lsn = std::stoull(ckpt.substr(1));
  EXPECT_EQ(sim_->primary()->engine().installed_checkpoint_lsn(), Lsn(lsn));
  EXPECT_EQ(P({"QUIRE.SEAL", "3"}), "+OK\r\n");
  EXPECT_EQ(P({"QUIRE.SEAL", "0"}), "-ERR count must be an integer from 1 to 100\r\n");
  EXPECT_EQ(P({"QUIRE.STATUS", "x"}),
            "-ERR wrong number of arguments for 'quire.status' command\r\n");
  const std::string status = P({"QUIRE.STATUS"});
  ASSERT_EQ(status[0], '$');
  auto j = nlohmann::json::parse(
      status.substr(status.find("\r\n") + 2, status.size() - status.find("\r\n") - 4));
  EXPECT_EQ(j["role"], "primary");
  EXPECT_EQ(j["state"], "SERVING");
  EXPECT_EQ(j["term"], 1);
  EXPECT_EQ(j["kek_version"], 3);
  EXPECT_EQ(j["cmk_version"], 2);
  EXPECT_EQ(j["checkpoint_lsn"], lsn);
  catch_up();
  const std::string ss = S({"QUIRE.STATUS"});
  auto sj = nlohmann::json::parse(ss.substr(ss.find("\r\n") + 2, ss.size() - ss.find("\r\n") - 4));
  EXPECT_EQ(sj["role"], "standby");
  EXPECT_TRUE(sj.contains("pickups"));
}

TEST_F(RespCommandsTest, SteppedDownPrimaryAnswersAsAStandby) {
  make();
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  catch_up();      // a heartbeat published the write's commit point (a standby applies only then)
  ClientState tx;  // a transaction queued while primary, EXEC after the step-down
  tx.id = 5;
  EXPECT_EQ(run(*primary_, sim_->primary_id(), tx, {"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(run(*primary_, sim_->primary_id(), tx, {"MULTI"}), "+OK\r\n");
  EXPECT_EQ(run(*primary_, sim_->primary_id(), tx, {"SET", "k", "t"}), "+QUEUED\r\n");
  sim_->node(sim_->primary_id())->step_down(Status(Code::kFenced, "test: a newer primary"));
  EXPECT_EQ(run(*primary_, sim_->primary_id(), tx, {"EXEC"}),
            "-EXECABORT Transaction discarded because of: READONLY You can't write against a "
            "read only replica.\r\n");
  EXPECT_EQ(primary_->watched_keys(), 0u);
  EXPECT_EQ(P({"SET", "k", "w"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(P({"WAIT", "0", "0"}).rfind("-ERR WAIT cannot be used with replica instances.", 0), 0u);
  const std::string get = P({"GET", "k"});
  EXPECT_EQ(get.rfind("-LOADING the standby is ", 0), 0u) << get;
  ASSERT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->node(sim_->primary_id())->standby();
        return s && s->state() == StandbyState::kSecondary;
      },
      10s));
  EXPECT_EQ(P({"GET", "k"}), bulk("v"));
  EXPECT_NE(P({"INFO", "replication"}).find("role:slave\r\n"), std::string::npos);
}

TEST_F(RespCommandsTest, MultiExecRunsQueuedCommandsAsOneBatch) {
  make();
  EXPECT_EQ(P({"SET", "n", "10"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "-ERR EXEC without MULTI\r\n");
  EXPECT_EQ(P({"DISCARD"}), "-ERR DISCARD without MULTI\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "-ERR MULTI calls can not be nested\r\n");
  EXPECT_EQ(P({"INCR", "n"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"SET", "a", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"APPEND", "a", "2"}), "+QUEUED\r\n");  // sees the SET before it
  EXPECT_EQ(P({"GET", "a"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"INCR", "a"}), "+QUEUED\r\n");  // 12 -> 13
  EXPECT_EQ(P({"SET", "s", "text"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"INCR", "s"}), "+QUEUED\r\n");  // a command's own error is its element
  EXPECT_EQ(P({"RENAME", "s", "t"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"MGET", "n", "a", "s", "t"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"DEL", "n"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXISTS", "n"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"PING"}), "+QUEUED\r\n");
  // Nothing ran yet: others see the old state.
  EXPECT_EQ(S({"GET", "a"}), "$-1\r\n");
  EXPECT_EQ(run(*primary_, sim_->primary_id(), standby_client_, {"GET", "n"}), bulk("10"));
  EXPECT_TRUE(client_.multi.has_value());
  EXPECT_EQ(client_.multi->queued.size(), 12u);
  const uint64_t groups = sim_->primary()->stats().groups_written;
  const uint64_t batches = sim_->primary()->stats().batches_acked;
  EXPECT_EQ(P({"EXEC"}), "*12\r\n:11\r\n+OK\r\n:2\r\n" + bulk("12") +
                             ":13\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
                             "*4\r\n" +
                             bulk("11") + bulk("13") + "$-1\r\n" + bulk("text") +
                             ":1\r\n:0\r\n+PONG\r\n");
  // One batch, committed once.
  EXPECT_EQ(sim_->primary()->stats().batches_acked, batches + 1);
  EXPECT_GE(sim_->primary()->stats().groups_written, groups + 1);
  EXPECT_EQ(P({"MGET", "n", "a", "s", "t"}),
            "*4\r\n$-1\r\n" + bulk("13") + "$-1\r\n" + bulk("text"));
  EXPECT_EQ(primary_->locks_active(), 0u);
  catch_up();
  EXPECT_EQ(S({"GET", "a"}), bulk("13"));

  // A refused command discards the transaction; DISCARD drops one.
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "x", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"NOSUCH"}), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
  EXPECT_EQ(P({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(P({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SCAN", "0"}).rfind("-ERR Command not allowed inside a transaction", 0), 0u);
  EXPECT_EQ(P({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "x", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"DISCARD"}), "+OK\r\n");
  // A refused EXEC drops the transaction, as Redis 7.0's execCommandAbort.
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "x", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC", "now"}),
            "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' "
            "command\r\n");
  EXPECT_EQ(P({"DISCARD"}), "-ERR DISCARD without MULTI\r\n");
  EXPECT_EQ(P({"GET", "x"}), "$-1\r\n");
  // A read-only transaction, and an empty one.
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "a"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*1\r\n" + bulk("13"));
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "*0\r\n");
  // On a standby a write cannot be queued; reads run.
  EXPECT_EQ(S({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(S({"GET", "a"}), "+QUEUED\r\n");
  EXPECT_EQ(S({"SET", "a", "2"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(S({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(S({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(S({"GET", "a"}), "+QUEUED\r\n");
  EXPECT_EQ(S({"EXEC"}), "*1\r\n" + bulk("13"));
}

TEST_F(RespCommandsTest, WatchAbortsExecAfterAWriteToAWatchedKey) {
  make();
  const NodeId pid = sim_->primary_id();
  ClientState other;
  other.id = 9;
  const auto O = [&](Args a) { return run(*primary_, pid, other, std::move(a)); };
  // Another client's write between WATCH and EXEC: EXEC answers a null array, runs nothing.
  EXPECT_EQ(P({"WATCH", "k", "j"}), "+OK\r\n");
  EXPECT_EQ(primary_->watched_keys(), 2u);
  EXPECT_EQ(O({"SET", "k", "theirs"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "k", "mine"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*-1\r\n");
  EXPECT_EQ(P({"GET", "k"}), bulk("theirs"));
  EXPECT_EQ(primary_->watched_keys(), 0u);  // EXEC forgets the watches
  // Unchanged: EXEC runs.
  EXPECT_EQ(P({"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(O({"SET", "other-key", "x"}), "+OK\r\n");
  EXPECT_EQ(O({"SET", "k", "x", "NX"}), "$-1\r\n");  // no write: not a change
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"APPEND", "k", "!"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*1\r\n:7\r\n");
  // APPEND of nothing changes no value but counts as a write, as in Redis.
  EXPECT_EQ(P({"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(O({"APPEND", "k", ""}), ":7\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "*-1\r\n");
  // The connection's own write counts too; UNWATCH forgets.
  EXPECT_EQ(P({"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "*-1\r\n");
  EXPECT_EQ(P({"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(P({"UNWATCH"}), "+OK\r\n");
  EXPECT_EQ(O({"DEL", "k"}), ":1\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "*0\r\n");
  // WATCH inside MULTI is refused without discarding the transaction.
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"WATCH", "k"}), "-ERR WATCH inside MULTI is not allowed\r\n");
  EXPECT_EQ(P({"SET", "k", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*1\r\n+OK\r\n");
  // DISCARD and the connection's end forget the watches.
  EXPECT_EQ(P({"WATCH", "a"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"DISCARD"}), "+OK\r\n");
  EXPECT_EQ(primary_->watched_keys(), 0u);
  EXPECT_EQ(O({"WATCH", "a", "b"}), "+OK\r\n");
  EXPECT_EQ(P({"WATCH", "a"}), "+OK\r\n");
  EXPECT_EQ(primary_->watched_keys(), 2u);
  primary_->disconnected(other);
  EXPECT_EQ(primary_->watched_keys(), 1u);
  EXPECT_EQ(P({"UNWATCH"}), "+OK\r\n");
  EXPECT_EQ(primary_->watched_keys(), 0u);
  // A standby does not count writes: WATCH is the primary's.
  EXPECT_EQ(S({"WATCH", "k"}).rfind("-ERR WATCH is answered by the primary only", 0), 0u);
  EXPECT_EQ(P({"WATCH"}), "-ERR wrong number of arguments for 'watch' command\r\n");
  EXPECT_EQ(P({"WATCH", std::string(kKeyBytesMax + 1, 'k')}),
            "-ERR key is 4097 bytes; Quire's key limit is 4096 bytes (kKeyBytesMax)\r\n");
  // A watched key of another database: a write to it aborts an EXEC of this one.
  EXPECT_EQ(P({"SELECT", "3"}), "+OK\r\n");
  EXPECT_EQ(P({"WATCH", "w3"}), "+OK\r\n");
  EXPECT_EQ(P({"SELECT", "0"}), "+OK\r\n");
  other.db = 3;
  EXPECT_EQ(O({"SET", "w3", "x"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "z", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*-1\r\n");
  EXPECT_EQ(P({"GET", "z"}), "$-1\r\n");
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// WATCH waits for a write to its key that was already under way: the connection's reads
// after WATCH see it, and EXEC is not fooled by it.
TEST_F(RespCommandsTest, WatchWaitsForAWriteUnderWay) {
  make();
  ClientState writer;
  writer.id = 11;
  EXPECT_EQ(P({"SET", "c", "1"}), "+OK\r\n");
  bool written = false;
  sim_->spawn_on(sim_->primary_id(), "incr", [&]() -> Task<void> {
    ReplyWriter out;
    Args a{"INCR", "c"};
    co_await primary_->execute(std::move(a), writer, out);
    EXPECT_EQ(out.buffer(), ":2\r\n");
    written = true;
  });
  EXPECT_FALSE(written);
  EXPECT_EQ(P({"WATCH", "c"}), "+OK\r\n");
  EXPECT_TRUE(written);
  EXPECT_EQ(P({"GET", "c"}), bulk("2"));
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "c", "3"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*1\r\n+OK\r\n");
}

TEST_F(RespCommandsTest, BitCommands) {
  make();
  EXPECT_EQ(P({"SETBIT", "b", "7", "1"}), ":0\r\n");  // creates "\x01"
  EXPECT_EQ(P({"GET", "b"}), bulk(std::string("\x01", 1)));
  EXPECT_EQ(P({"SETBIT", "b", "7", "1"}), ":1\r\n");
  EXPECT_EQ(P({"SETBIT", "b", "0", "1"}), ":0\r\n");  // "\x81"
  EXPECT_EQ(P({"GETBIT", "b", "0"}), ":1\r\n");
  EXPECT_EQ(P({"GETBIT", "b", "1"}), ":0\r\n");
  EXPECT_EQ(P({"GETBIT", "b", "100"}), ":0\r\n");
  EXPECT_EQ(P({"GETBIT", "nosuch", "3"}), ":0\r\n");
  EXPECT_EQ(P({"SETBIT", "b", "23", "1"}), ":0\r\n");  // grows, zero padded
  EXPECT_EQ(P({"GET", "b"}), bulk(std::string("\x81\x00\x01", 3)));
  EXPECT_EQ(P({"BITCOUNT", "b"}), ":3\r\n");
  EXPECT_EQ(P({"BITCOUNT", "b", "1", "-1"}), ":1\r\n");
  EXPECT_EQ(P({"BITCOUNT", "b", "1", "7", "BIT"}), ":1\r\n");
  EXPECT_EQ(P({"BITCOUNT", "b", "-1", "-2"}), ":0\r\n");
  EXPECT_EQ(P({"BITCOUNT", "b", "0"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"BITCOUNT", "nosuch", "0"}), ":0\r\n");  // as Redis: no key, no check
  EXPECT_EQ(P({"BITCOUNT", "b", "0", "1", "WORD"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "1"}), ":0\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "0"}), ":1\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "1", "1"}), ":23\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "1", "1", "22", "BIT"}), ":7\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "0", "0", "0", "BIT"}), ":-1\r\n");
  EXPECT_EQ(P({"BITPOS", "nosuch", "0"}), ":0\r\n");
  EXPECT_EQ(P({"BITPOS", "nosuch", "1"}), ":-1\r\n");
  EXPECT_EQ(P({"BITPOS", "b", "2"}), "-ERR The bit argument must be 1 or 0.\r\n");
  EXPECT_EQ(P({"SETBIT", "b", "-1", "1"}), "-ERR bit offset is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SETBIT", "b", "4294967296", "1"}),
            "-ERR bit offset is not an integer or out of range\r\n");
  EXPECT_EQ(P({"SETBIT", "b", "1", "2"}), "-ERR bit is not an integer or out of range\r\n");
  // Past Quire's value limit: refused before the value grows.
  EXPECT_EQ(P({"SETBIT", "b", "8388608", "1"}),
            "-ERR value is 1048577 bytes; Quire's value limit is 1048576 bytes "
            "(kValueBytesMax)\r\n");
  EXPECT_EQ(P({"GETBIT", "b", "4294967295"}), ":0\r\n");
  catch_up();
  EXPECT_EQ(S({"BITCOUNT", "b"}), ":3\r\n");
  EXPECT_EQ(S({"SETBIT", "b", "1", "1"}),
            "-READONLY You can't write against a read only replica.\r\n");
}

TEST_F(RespCommandsTest, BitopAndLcs) {
  make();
  EXPECT_EQ(P({"SET", "a", "foobar"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "b", "abcdef"}), "+OK\r\n");
  EXPECT_EQ(P({"BITOP", "AND", "d", "a", "b"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("`bc`ab"));
  EXPECT_EQ(P({"BITOP", "or", "d", "a", "b"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("goofev"));
  // XOR with a missing key (zeros) and a shorter one (zero padded).
  EXPECT_EQ(P({"SET", "s", "\x01"}), "+OK\r\n");
  EXPECT_EQ(P({"BITOP", "XOR", "d", "a", "nosuch", "s"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("goobar"));
  EXPECT_EQ(P({"BITOP", "NOT", "d", "s"}), ":1\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("\xfe"));
  EXPECT_EQ(P({"BITOP", "NOT", "s", "s"}), ":1\r\n");  // the destination may be a source
  EXPECT_EQ(P({"GET", "s"}), bulk("\xfe"));
  // An empty result deletes the destination.
  EXPECT_EQ(P({"BITOP", "AND", "d", "nosuch", "nosuch2"}), ":0\r\n");
  EXPECT_EQ(P({"EXISTS", "d"}), ":0\r\n");
  // A source named twice: once for AND and OR; for XOR it cancels out, its length counting.
  EXPECT_EQ(P({"BITOP", "XOR", "d", "a", "b", "a"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("abcdef"));
  EXPECT_EQ(P({"BITOP", "XOR", "d", "a", "a"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk(std::string(6, '\0')));
  EXPECT_EQ(P({"BITOP", "AND", "d", "a", "a", "a"}), ":6\r\n");
  EXPECT_EQ(P({"GET", "d"}), bulk("foobar"));
  EXPECT_EQ(P({"BITOP", "NOT", "d", "a", "b"}),
            "-ERR BITOP NOT must be called with a single source key.\r\n");
  EXPECT_EQ(P({"BITOP", "NAND", "d", "a"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"BITOP", "AND", "d"}), "-ERR wrong number of arguments for 'bitop' command\r\n");
  // LCS, Redis's own example.
  EXPECT_EQ(P({"SET", "k1", "ohmytext"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "k2", "mynewtext"}), "+OK\r\n");
  EXPECT_EQ(P({"LCS", "k1", "k2"}), bulk("mytext"));
  EXPECT_EQ(P({"LCS", "k1", "k2", "LEN"}), ":6\r\n");
  EXPECT_EQ(P({"LCS", "k1", "k2", "IDX"}),
            "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n"
            "*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n");
  EXPECT_EQ(P({"LCS", "k1", "k2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"}),
            "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n"
            "$3\r\nlen\r\n:6\r\n");
  EXPECT_EQ(P({"LCS", "k1", "nosuch"}), bulk(""));
  EXPECT_EQ(P({"LCS", "k1", "k2", "LEN", "IDX"}),
            "-ERR If you want both the length and indexes, please just use IDX.\r\n");
  EXPECT_EQ(P({"LCS", "k1", "k2", "MINMATCHLEN", "x"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"LCS", "k1", "k2", "FOO"}), "-ERR syntax error\r\n");
  // The table's bound: (4097 * 4097) counters of 4 bytes pass 64 MiB.
  EXPECT_EQ(P({"SET", "big1", std::string(4096, 'a')}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "big2", std::string(4096, 'a')}), "+OK\r\n");
  EXPECT_EQ(P({"LCS", "big1", "big2", "LEN"}),
            "-ERR Insufficient memory, transient memory for LCS exceeds Quire's "
            "lcs_table_bytes_max (67108864 bytes; this one needs 67141636)\r\n");
  catch_up();
  EXPECT_EQ(S({"LCS", "k1", "k2", "LEN"}), ":6\r\n");  // a read: a standby answers it
  EXPECT_EQ(S({"BITOP", "AND", "d", "a"}),
            "-READONLY You can't write against a read only replica.\r\n");
}

TEST_F(RespCommandsTest, CopyAndMove) {
  make();
  EXPECT_EQ(P({"SET", "a", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"COPY", "a", "b"}), ":1\r\n");
  EXPECT_EQ(P({"GET", "b"}), bulk("1"));
  EXPECT_EQ(P({"SET", "a", "2"}), "+OK\r\n");
  EXPECT_EQ(P({"COPY", "a", "b"}), ":0\r\n");  // exists: no REPLACE
  EXPECT_EQ(P({"GET", "b"}), bulk("1"));
  EXPECT_EQ(P({"COPY", "a", "b", "REPLACE"}), ":1\r\n");
  EXPECT_EQ(P({"GET", "b"}), bulk("2"));
  EXPECT_EQ(P({"COPY", "nosuch", "c"}), ":0\r\n");
  EXPECT_EQ(P({"COPY", "a", "a"}), "-ERR source and destination objects are the same\r\n");
  EXPECT_EQ(P({"COPY", "a", "a", "DB", "2"}), ":1\r\n");
  EXPECT_EQ(P({"COPY", "a", "z", "DB", "16"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(P({"COPY", "a", "z", "DB", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"COPY", "a", "z", "DB"}), "-ERR syntax error\r\n");
  // MOVE: to another database when the key is missing there.
  EXPECT_EQ(P({"MOVE", "a", "2"}), ":0\r\n");  // "a" is in database 2 already
  EXPECT_EQ(P({"MOVE", "b", "2"}), ":1\r\n");
  EXPECT_EQ(P({"EXISTS", "b"}), ":0\r\n");
  EXPECT_EQ(P({"MOVE", "b", "2"}), ":0\r\n");  // gone from here
  EXPECT_EQ(P({"MOVE", "a", "0"}), "-ERR source and destination objects are the same\r\n");
  EXPECT_EQ(P({"MOVE", "a", "-1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(P({"SELECT", "2"}), "+OK\r\n");
  EXPECT_EQ(P({"MGET", "a", "b"}), "*2\r\n$1\r\n2\r\n$1\r\n2\r\n");
  // Inside a transaction: COPY within the database runs, MOVE is refused at MULTI, COPY to
  // another database is an error of its own element.
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"COPY", "a", "c"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"GET", "c"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"COPY", "a", "c", "DB", "5"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}),
            "*3\r\n:1\r\n$1\r\n2\r\n-ERR COPY to another database is not run inside a "
            "transaction by Quire (a transaction writes one database)\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"MOVE", "a", "0"}).rfind("-ERR Command not allowed inside a transaction", 0), 0u);
  EXPECT_EQ(P({"DISCARD"}), "+OK\r\n");
  // A MOVE into a watched key's database breaks the watch.
  ClientState other;
  other.id = 9;
  const auto O = [&](Args a) { return run(*primary_, sim_->primary_id(), other, std::move(a)); };
  EXPECT_EQ(P({"WATCH", "m"}), "+OK\r\n");
  EXPECT_EQ(O({"SET", "m", "x"}), "+OK\r\n");  // database 0
  EXPECT_EQ(O({"MOVE", "m", "2"}), ":1\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"EXEC"}), "*-1\r\n");
  EXPECT_EQ(P({"GET", "m"}), bulk("x"));
  EXPECT_EQ(primary_->locks_active(), 0u);
  catch_up();
  EXPECT_EQ(S({"SELECT", "2"}), "+OK\r\n");
  EXPECT_EQ(S({"GET", "m"}), bulk("x"));
  EXPECT_EQ(S({"COPY", "m", "n"}), "-READONLY You can't write against a read only replica.\r\n");
}

// Commands that lock keys of two databases (COPY ... DB, MOVE, EXEC with WATCH of another
// database) run side by side without waiting for each other in a cycle.
TEST_F(RespCommandsTest, CrossDatabaseCommandsNeverDeadlock) {
  make();
  constexpr int kClients = 6;
  constexpr int kEach = 10;
  std::vector<ClientState> clients(kClients);
  int finished = 0;
  int failures = 0;
  for (int i = 0; i < kClients; i++) {
    clients[i].id = 400 + i;
    sim_->spawn_on(sim_->primary_id(), fmt::format("x-{}", i), [&, i]() -> Task<void> {
      ClientState& c = clients[i];
      for (int j = 0; j < kEach; j++) {
        std::vector<Args> script;
        switch (i % 3) {
          case 0:  // database 0 -> 1 and back
            script = {{"SELECT", "0"},
                      {"SET", "k", "v"},
                      {"MOVE", "k", "1"},
                      {"SELECT", "1"},
                      {"MOVE", "k", "0"}};
            break;
          case 1:  // from database 1 into database 0
            script = {{"SELECT", "1"}, {"SET", "k", "w"}, {"COPY", "k", "k", "DB", "0", "REPLACE"}};
            break;
          default:  // a transaction in database 1 watching a key of database 0
            script = {{"SELECT", "0"}, {"WATCH", "k"}, {"SELECT", "1"}, {"MULTI"},
                      {"INCR", "n"},   {"GET", "k"},   {"EXEC"}};
            break;
        }
        for (Args& a : script) {
          ReplyWriter out;
          co_await primary_->execute(std::move(a), c, out);
          if (out.buffer().rfind("-TRYAGAIN", 0) == 0) failures++;
        }
      }
      finished++;
    });
  }
  ASSERT_TRUE(sim_->run_until([&] { return finished == kClients; }, 120s));
  EXPECT_EQ(failures, 0);  // no lock wait ran out (lock_wait_max: 10 s)
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// INFO commandstats and errorstats count as Redis 7.0 does: calls and failures of commands
// that ran (inside EXEC too), refusals before they ran, error replies by code.
TEST_F(RespCommandsTest, CommandstatsAndErrorstats) {
  make();
  EXPECT_EQ(P({"SET", "n", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "t", "x"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "n"}), ":2\r\n");
  EXPECT_EQ(P({"INCR", "t"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(P({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(P({"NOSUCH"}).rfind("-ERR unknown command", 0), 0u);
  EXPECT_EQ(P({"CLIENT", "ID"}), ":1\r\n");
  EXPECT_EQ(P({"CLIENT", "NOSUCH"}).rfind("-ERR unknown subcommand", 0), 0u);
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "t"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"INCR", "n"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "*2\r\n-ERR value is not an integer or out of range\r\n:3\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"KEYS", "*"}).rfind("-ERR Command not allowed inside a transaction", 0), 0u);
  EXPECT_EQ(P({"EXEC"}).rfind("-EXECABORT", 0), 0u);
  const std::string all = P({"INFO", "commandstats"});
  for (const char* want :
       {"# Commandstats\r\n", "cmdstat_set:calls=2,usec=", "cmdstat_incr:calls=4,",
        "rejected_calls=0,failed_calls=2\r\n",
        "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,"
        "rejected_calls=1,failed_calls=0\r\n",
        "cmdstat_client|id:calls=1,",
        "cmdstat_keys:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n",
        "cmdstat_exec:calls=2,"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\n" << all;
  }
  EXPECT_EQ(all.find("cmdstat_client:"), std::string::npos) << all;  // unknown subcommand
  EXPECT_EQ(all.find("cmdstat_nosuch"), std::string::npos) << all;
  const std::string errors = P({"INFO", "errorstats"});
  EXPECT_EQ(errors,
            bulk("# Errorstats\r\nerrorstat_ERR:count=6\r\nerrorstat_EXECABORT:count=1\r\n"));
  EXPECT_NE(P({"INFO", "stats"}).find("total_error_replies:7\r\n"), std::string::npos);
  // The default sections have errorstats, not commandstats; "all" has both.
  const std::string defaults = P({"INFO"});
  EXPECT_NE(defaults.find("# Errorstats\r\n"), std::string::npos);
  EXPECT_EQ(defaults.find("# Commandstats\r\n"), std::string::npos);
  EXPECT_NE(P({"INFO", "all"}).find("# Commandstats\r\n"), std::string::npos);
  EXPECT_EQ(P({"CONFIG", "RESETSTAT"}), "+OK\r\n");
  EXPECT_EQ(P({"INFO", "errorstats"}), bulk("# Errorstats\r\n"));
  EXPECT_EQ(P({"INFO", "commandstats"}).find("cmdstat_set"), std::string::npos);
}

// SLOWLOG keeps the newest slowlog_max_len calls that took slowlog_log_slower_than or more,
// with their arguments cut as Redis cuts them.
// A read of several keys stops at read_bytes_max of values (MGET, BITOP's sources), with
// nothing written.
TEST_F(RespCommandsTest, ReadsOfManyValuesAreBounded) {
  RespCommandsOptions o;
  o.read_bytes_max = 10;
  make(o);
  EXPECT_EQ(P({"SET", "k", "123456"}), "+OK\r\n");
  EXPECT_EQ(P({"MGET", "k", "nosuch"}), "*2\r\n$6\r\n123456\r\n$-1\r\n");
  const std::string refused =
      "-ERR the values read pass 10 bytes (Quire's read_bytes_max, a reply's bound); read "
      "fewer keys at once\r\n";
  EXPECT_EQ(P({"MGET", "k", "k"}), refused);
  EXPECT_EQ(P({"SET", "j", "abcdef"}), "+OK\r\n");
  EXPECT_EQ(P({"BITOP", "OR", "d", "k", "j"}), refused);
  EXPECT_EQ(P({"EXISTS", "d"}), ":0\r\n");
  EXPECT_EQ(P({"BITOP", "OR", "d", "k", "k", "k"}), ":6\r\n");  // one source, read once
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "t", "123456"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"MGET", "t", "t"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}),
            "-ERR transaction not run, nothing written: the values read pass 10 "
            "bytes (Quire's read_bytes_max, a reply's bound); read fewer keys at "
            "once\r\n");
  EXPECT_EQ(P({"EXISTS", "t"}), ":0\r\n");
}

TEST_F(RespCommandsTest, Slowlog) {
  RespCommandsOptions o;
  o.slowlog_log_slower_than = Nanos(0);  // every call
  o.slowlog_max_len = 3;
  make(o);
  client_.address = "10.0.0.1:5000";
  client_.name = "me";
  EXPECT_EQ(P({"SLOWLOG", "RESET"}), "+OK\r\n");
  EXPECT_EQ(P({"SET", "k", std::string(130, 'v')}), "+OK\r\n");
  Args many{"MGET"};
  for (int i = 0; i < 40; i++) many.push_back(fmt::format("k{}", i));
  EXPECT_EQ(P(many).substr(0, 5), "*40\r\n");
  EXPECT_EQ(P({"AUTH", "secret"}).substr(0, 1), "-");  // never logged
  EXPECT_EQ(P({"SLOWLOG", "LEN"}), ":3\r\n");          // RESET, SET, MGET
  const std::string got = P({"SLOWLOG", "GET", "3"});
  // Newest first: the SLOWLOG LEN (id 3), MGET (2), SET (1); RESET (0) fell out.
  EXPECT_EQ(got.substr(0, 13), "*3\r\n*6\r\n:3\r\n:") << got;
  EXPECT_NE(got.find("*32\r\n$4\r\nMGET\r\n$2\r\nk0\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("$23\r\n... (10 more arguments)\r\n$13\r\n10.0.0.1:5000\r\n$2\r\nme\r\n"),
            std::string::npos)
      << got;
  EXPECT_NE(got.find("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$146\r\n" + std::string(128, 'v') +
                     "... (2 more bytes)\r\n"),
            std::string::npos)
      << got;
  EXPECT_EQ(got.find("AUTH"), std::string::npos);
  EXPECT_EQ(P({"SLOWLOG", "GET", "-1"}).substr(0, 4), "*3\r\n");  // at most slowlog_max_len
  EXPECT_EQ(P({"SLOWLOG", "GET", "-2"}), "-ERR count should be greater than or equal to -1\r\n");
  EXPECT_EQ(P({"SLOWLOG", "GET", "x"}), "-ERR count should be greater than or equal to -1\r\n");
  EXPECT_EQ(
      P({"SLOWLOG", "get", "1", "2"}),
      "-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n");
  EXPECT_EQ(P({"CONFIG", "GET", "slowlog-*"}),
            "*4\r\n$23\r\nslowlog-log-slower-than\r\n$1\r\n0\r\n$15\r\nslowlog-max-len\r\n"
            "$1\r\n3\r\n");
  // A long client name is cut as an argument is; CONFIG SET's values are redacted.
  client_.name = std::string(200, 'n');
  EXPECT_EQ(P({"CONFIG", "SET", "requirepass", "secret"}).substr(0, 4), "-ERR");
  const std::string last = P({"SLOWLOG", "GET", "1"});
  EXPECT_NE(last.find("$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$10\r\n(redacted)\r\n"),
            std::string::npos)
      << last;
  EXPECT_EQ(last.find("secret"), std::string::npos) << last;
  EXPECT_NE(last.find(std::string(128, 'n') + "... (72 more bytes)\r\n"), std::string::npos)
      << last;
  EXPECT_EQ(P({"SLOWLOG", "RESET"}), "+OK\r\n");
  EXPECT_EQ(P({"SLOWLOG", "LEN"}), ":1\r\n");  // the RESET itself, logged once it ended
  // The default threshold (10 ms) logs none of these quick calls.
  make();
  EXPECT_EQ(P({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(P({"SLOWLOG", "LEN"}), ":0\r\n");
  EXPECT_EQ(P({"SLOWLOG", "GET"}), "*0\r\n");
}

TEST_F(RespCommandsTest, ResetAndClientReply) {
  RespCommandsOptions o;
  o.requirepass = "pw";
  make(o);
  EXPECT_EQ(P({"AUTH", "pw"}), "+OK\r\n");
  EXPECT_EQ(P({"SELECT", "3"}), "+OK\r\n");
  EXPECT_EQ(P({"CLIENT", "SETNAME", "me"}), "+OK\r\n");
  EXPECT_EQ(P({"WATCH", "k"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"RESET"}), "+RESET\r\n");  // not queued
  EXPECT_FALSE(client_.multi.has_value());
  EXPECT_EQ(primary_->watched_keys(), 0u);
  EXPECT_EQ(client_.db, 0u);
  EXPECT_EQ(P({"CLIENT", "GETNAME"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(P({"RESET"}), "+RESET\r\n");  // allowed before AUTH
  EXPECT_EQ(P({"AUTH", "pw"}), "+OK\r\n");
  EXPECT_EQ(P({"CLIENT", "GETNAME"}), "$-1\r\n");
  // CLIENT REPLY sets what the server drops (resp/server.cc); OFF and SKIP answer nothing.
  EXPECT_EQ(P({"CLIENT", "REPLY", "SKIP"}), "");
  EXPECT_TRUE(client_.reply_skip_next);
  client_.reply_skip_next = false;  // the server's move, after the command
  EXPECT_EQ(P({"CLIENT", "REPLY", "OFF"}), "");
  EXPECT_TRUE(client_.replies_dropped());
  EXPECT_EQ(P({"CLIENT", "REPLY", "SKIP"}), "");
  EXPECT_FALSE(client_.reply_skip_next);  // no SKIP while OFF
  EXPECT_EQ(P({"CLIENT", "REPLY", "ON"}), "+OK\r\n");
  EXPECT_FALSE(client_.replies_dropped());
  EXPECT_EQ(P({"CLIENT", "REPLY", "MAYBE"}), "-ERR syntax error\r\n");
  EXPECT_EQ(P({"CLIENT", "REPLY", "OFF"}), "");
  EXPECT_EQ(P({"RESET"}), "+RESET\r\n");
  EXPECT_FALSE(client_.reply_off);
}

// A transaction whose writes cannot be one log entry stops as soon as they cannot.
TEST_F(RespCommandsTest, TransactionPastOneLogEntryWritesNothing) {
  make();
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  const int n = static_cast<int>(kLogEntryBytesMax / kValueBytesMax) + 1;
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(P({"SETRANGE", fmt::format("r{}", i), "1048575", "x"}), "+QUEUED\r\n");
  }
  const std::string too_big = P({"EXEC"});
  EXPECT_EQ(too_big.rfind("-ERR transaction not run, nothing written: a transaction may write "
                          "at most",
                          0),
            0u)
      << too_big.substr(0, 200);
  EXPECT_EQ(P({"EXISTS", "r0", "r1"}), ":0\r\n");
  EXPECT_EQ(primary_->locks_active(), 0u);
}

TEST_F(RespCommandsTest, MultiLimitsAndAFailedCommitWriteNothing) {
  RespCommandsOptions o;
  o.multi_commands_max = 3;
  o.multi_reply_bytes_max = 300'000;
  make(o);
  EXPECT_EQ(P({"SET", "s", "0123456789"}), "+OK\r\n");
  EXPECT_EQ(P({"SETRANGE", "s", "200000", "x"}), ":200001\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"GET", "s"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"SET", "t", "1"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"GET", "s"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}),
            "-ERR transaction not run, nothing written: the transaction's replies pass 300000 "
            "bytes (Quire's multi_reply_bytes_max)\r\n");
  EXPECT_EQ(P({"GET", "t"}), "$-1\r\n");
  // After a refused command the rest is acknowledged, not kept (Redis 7.0).
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  for (int i = 0; i < 5; i++) EXPECT_EQ(P({"SET", "k", "v"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  for (int i = 0; i < 3; i++) EXPECT_EQ(P({"SET", "k", "v"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"SET", "k", "v"}).rfind("-ERR a transaction may queue at most 3 commands", 0), 0u);
  EXPECT_EQ(P({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(P({"GET", "k"}), "$-1\r\n");
  // The page servers unreachable: EXEC answers the commit's error, nothing applies.
  EXPECT_EQ(P({"SET", "n", "1"}), "+OK\r\n");
  EXPECT_EQ(P({"MULTI"}), "+OK\r\n");
  EXPECT_EQ(P({"INCR", "n"}), "+QUEUED\r\n");
  EXPECT_EQ(P({"SET", "m", "1"}), "+QUEUED\r\n");
  const NodeId p = sim_->primary_id();
  for (NodeId s : sim_->server_ids()) sim_->world().network().partition(p, s);
  const std::string r = P({"EXEC"});
  EXPECT_EQ(r.rfind("-TRYAGAIN write ", 0), 0u) << r;
  EXPECT_EQ(P({"MGET", "n", "m"}), "*2\r\n" + bulk("1") + "$-1\r\n");
  EXPECT_EQ(primary_->locks_active(), 0u);
  sim_->world().network().heal_all();
}

// EXEC holds its keys for its whole run: increments of the same key from other clients
// never land between a transaction's read and its write.
TEST_F(RespCommandsTest, ExecIsIsolatedFromConcurrentIncrements) {
  make();
  constexpr int kClients = 6;
  constexpr int kEach = 8;
  std::vector<ClientState> clients(kClients);
  std::vector<std::string> replies;
  int finished = 0;
  for (int i = 0; i < kClients; i++) {
    clients[i].id = 300 + i;
    sim_->spawn_on(sim_->primary_id(), fmt::format("tx-{}", i), [&, i]() -> Task<void> {
      for (int j = 0; j < kEach; j++) {
        for (Args a : {Args{"MULTI"}, Args{"INCR", "c"}, Args{"INCR", "c"}, Args{"EXEC"}}) {
          ReplyWriter out;
          co_await primary_->execute(std::move(a), clients[i], out);
          replies.push_back(out.buffer());
        }
      }
      finished++;
    });
  }
  ASSERT_TRUE(sim_->run_until([&] { return finished == kClients; }, 60s));
  std::set<int64_t> pairs;
  for (const std::string& r : replies) {
    if (r.rfind("*2\r\n", 0) != 0) continue;
    // "*2\r\n:X\r\n:Y\r\n": Y follows X, and X is odd (pairs never interleave).
    const size_t first_end = r.find("\r\n", 4);
    const int64_t x = std::stoll(r.substr(5, first_end - 5));
    const int64_t y = std::stoll(r.substr(first_end + 3));
    EXPECT_EQ(y, x + 1) << r;
    EXPECT_EQ(x % 2, 1) << r;
    EXPECT_TRUE(pairs.insert(x).second) << r;
  }
  EXPECT_EQ(pairs.size(), static_cast<size_t>(kClients * kEach));
  EXPECT_EQ(P({"GET", "c"}), bulk(fmt::format("{}", 2 * kClients * kEach)));
  EXPECT_EQ(primary_->locks_active(), 0u);
}

TEST_F(RespCommandsTest, UnreachableLogAnswersTryagainAndTheWriteNeverApplies) {
  make();
  EXPECT_EQ(P({"SET", "n", "10"}), "+OK\r\n");
  const NodeId p = sim_->primary_id();
  for (NodeId s : sim_->server_ids()) sim_->world().network().partition(p, s);
  const std::string r = P({"INCR", "n"});
  EXPECT_EQ(r.rfind("-TRYAGAIN write ", 0), 0u) << r;
  EXPECT_TRUE(r.find("not committed") != std::string::npos ||
              r.find("outcome unknown") != std::string::npos)
      << r;
  EXPECT_EQ(primary_->locks_active(), 0u);
  EXPECT_EQ(P({"GET", "n"}), bulk("10"));  // reads still answer from the applied state
  sim_->world().network().heal_all();
  // The failed increment never shows: the next one lands on 10.
  std::string next;
  for (int i = 0; i < 20 && next != ":11\r\n"; i++) {
    next = P({"INCR", "n"});
    if (next[0] == ':') break;
    sim_->run_until([] { return false; }, 200ms);
  }
  EXPECT_EQ(next, ":11\r\n");
  EXPECT_EQ(P({"GET", "n"}), bulk("11"));
}

// Blind writes started one after another (as a pipeline's are) queue at the primary before
// the first is durable, so they share a commit group; one at a time, each is a group.
TEST_F(RespCommandsTest, StartedBlindWritesShareACommitGroup) {
  make();
  Primary* p = sim_->primary();
  const uint64_t g0 = p->stats().groups_written;
  for (int i = 0; i < 16; i++) EXPECT_EQ(P({"SET", "seq", fmt::format("{}", i)}), "+OK\r\n");
  const uint64_t one_at_a_time = p->stats().groups_written - g0;
  std::vector<std::string> replies;
  const uint64_t g1 = p->stats().groups_written;
  ASSERT_TRUE(sim_->run_on(
      sim_->primary_id(),
      [&]() -> Task<void> {
        std::vector<std::unique_ptr<PendingReply>> started;
        for (int i = 0; i < 16; i++) {
          const std::string v = fmt::format("{}", i);
          Args a = i % 4 == 3 ? Args{"MSET", "m", v, "k", v} : Args{"set", "k", v};
          std::unique_ptr<PendingReply> r = co_await primary_->start(a, client_);
          EXPECT_NE(r, nullptr) << i;
          if (r) started.push_back(std::move(r));
        }
        EXPECT_GT(primary_->locks_active(), 0u);  // held until finished
        for (auto& r : started) {
          ReplyWriter out;
          co_await r->finish(client_, out);
          replies.push_back(out.buffer());
        }
      },
      20s));
  const uint64_t started = p->stats().groups_written - g1;
  EXPECT_GE(one_at_a_time, 16u);
  EXPECT_LE(started, 2u);
  EXPECT_EQ(replies, std::vector<std::string>(16, "+OK\r\n"));
  EXPECT_EQ(P({"GET", "k"}), bulk("15"));  // the last one of the order they queued in
  EXPECT_EQ(P({"GET", "m"}), bulk("15"));
  EXPECT_EQ(primary_->locks_active(), 0u);
  EXPECT_GT(client_.last_write, Timestamp());
  EXPECT_LE(client_.last_write, p->applied_ts());
}

// What start() leaves to execute(): anything but SET key value and MSET, and writes on a
// node that is not a serving primary (execute() answers the refusal).
TEST_F(RespCommandsTest, StartTakesOnlyBlindWritesOnAServingPrimary) {
  make();
  auto starts = [&](RespCommands& cmds, NodeId node, ClientState& c, Args a) {
    bool started = false;
    EXPECT_TRUE(sim_->run_on(
        node,
        [&]() -> Task<void> {
          std::unique_ptr<PendingReply> r = co_await cmds.start(a, c);
          started = r != nullptr;
          if (r) {
            ReplyWriter out;
            co_await r->finish(c, out);
          }
        },
        20s));
    return started;
  };
  const NodeId p = sim_->primary_id();
  EXPECT_TRUE(starts(*primary_, p, client_, {"SET", "k", "v"}));
  EXPECT_TRUE(starts(*primary_, p, client_, {"mset", "a", "1", "b", "2"}));
  for (const Args& a : std::vector<Args>{{"SET", "k", "v", "NX"},
                                         {"SET", "k", "v", "GET"},
                                         {"SET", "k"},
                                         {"MSET", "a"},
                                         {"MSETNX", "a", "1"},
                                         {"SETNX", "k", "v"},
                                         {"GET", "k"},
                                         {"INCR", "n"},
                                         {"DEL", "k"},
                                         {"FLUSHDB"},
                                         {"PING"}}) {
    EXPECT_FALSE(starts(*primary_, p, client_, a)) << a[0];
  }
  EXPECT_FALSE(starts(*standby_, sim_->standby_ids()[0], standby_client_, {"SET", "k", "v"}));
  EXPECT_EQ(S({"SET", "k", "v"}), "-READONLY You can't write against a read only replica.\r\n");
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// One connection's pipeline over the wire: each command observes the earlier ones (GET
// after SET, INCR after SET, the later SET of a key wins), errors answer in place, and the
// replies keep the command order.
TEST_F(RespCommandsTest, PipelineKeepsTheConnectionsOrder) {
  make();
  serve();
  const std::string long_key(kKeyBytesMax + 1, 'k');
  const std::string got = wire(inline_commands({{"SET", "a", "1"},
                                                {"SET", "a", "2"},
                                                {"GET", "a"},
                                                {"SET", "b", "x"},
                                                {"MSET", "c", "1", "d", "2"},
                                                {"SET", "a", "3"},
                                                {"MGET", "a", "b", "c", "d"},
                                                {"INCR", "n"},
                                                {"SET", "n", "10"},
                                                {"INCR", "n"},
                                                {"SET", "k"},
                                                {"SET", long_key, "v"},
                                                {"SET", "b", "y"},
                                                {"SET", "b", "z"},
                                                {"INCR", "b"},
                                                {"SET", "a", "4"},
                                                {"GET", "b"},
                                                {"GET", "a"}}),
                               bulk("4"));
  const std::string want =
      "+OK\r\n+OK\r\n" + bulk("2") + "+OK\r\n+OK\r\n+OK\r\n*4\r\n" + bulk("3") + bulk("x") +
      bulk("1") + bulk("2") + ":1\r\n+OK\r\n:11\r\n" +
      "-ERR wrong number of arguments for 'set' command\r\n" +
      fmt::format("-ERR key is {} bytes; Quire's key limit is {} bytes (kKeyBytesMax)\r\n",
                  kKeyBytesMax + 1, kKeyBytesMax) +
      "+OK\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n" + bulk("z") +
      bulk("4");
  EXPECT_EQ(got, want);
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// Another client never sees a pipeline's writes out of order: while one connection
// pipelines SETs of w000..w199, MGETs of all 200 keys (each at one timestamp) always see
// a prefix of them. The pipeline shares commit groups.
TEST_F(RespCommandsTest, PipelinedWritesBecomeVisibleInCommandOrder) {
  make();
  serve();
  std::vector<Args> sets;
  Args mget{"MGET"};
  for (int i = 0; i < 200; i++) {
    sets.push_back({"SET", fmt::format("w{:03}", i), "1"});
    mget.push_back(fmt::format("w{:03}", i));
  }
  bool pipeline_done = false;
  size_t partial_views = 0;
  ClientState observer;
  observer.id = 900;
  sim_->spawn_on(sim_->primary_id(), "observer", [&]() -> Task<void> {
    Env& env = *sim_->world().env(sim_->primary_id());
    while (!pipeline_done) {
      ReplyWriter out;
      co_await primary_->execute(mget, observer, out);
      // Each value is "$1\r\n1\r\n" (present) or "$-1\r\n" (absent); absent ones come last.
      const std::string& r = out.buffer();
      size_t present = 0;
      size_t pos = r.find("\r\n") + 2;  // after "*200"
      bool gap = false;
      for (int i = 0; i < 200; i++) {
        const bool here = r.compare(pos, 4, "$1\r\n") == 0;
        pos += here ? 7 : 5;
        if (here && gap) ADD_FAILURE() << "w" << i << " visible after a missing earlier key";
        gap = gap || !here;
        present += here ? 1 : 0;
      }
      if (present > 0 && present < 200) partial_views++;
      (void)co_await env.executor().sleep(200us);
    }
  });
  const uint64_t g0 = sim_->primary()->stats().groups_written;
  std::string want;
  for (int i = 0; i < 200; i++) want += "+OK\r\n";
  want += "+PONG\r\n";
  Args ping{"PING"};
  sets.push_back(ping);
  EXPECT_EQ(wire(inline_commands(sets), "+PONG\r\n"), want);
  pipeline_done = true;
  sim_->run_until([] { return false; }, 10ms);
  EXPECT_GT(partial_views, 0u) << "the observer never looked while the pipeline ran";
  EXPECT_LT(sim_->primary()->stats().groups_written - g0, 50u);
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// Writes that fail mid-pipeline (the log unreachable) answer -TRYAGAIN in place, and the
// commands between them still run in order.
TEST_F(RespCommandsTest, FailedWritesMidPipelineAnswerInPlace) {
  make();
  serve();
  EXPECT_EQ(P({"SET", "a", "0"}), "+OK\r\n");
  const NodeId p = sim_->primary_id();
  for (NodeId s : sim_->server_ids()) sim_->world().network().partition(p, s);
  const std::string got = wire(
      inline_commands({{"SET", "a", "1"}, {"SET", "b", "2"}, {"GET", "a"}, {"PING"}}), "+PONG\r\n");
  // -TRYAGAIN, -TRYAGAIN, the old value, +PONG.
  const size_t first = got.find("\r\n");
  const size_t second = got.find("\r\n", first + 2);
  ASSERT_NE(second, std::string::npos) << got;
  EXPECT_EQ(got.rfind("-TRYAGAIN write ", 0), 0u) << got;
  EXPECT_EQ(got.compare(first + 2, 16, "-TRYAGAIN write "), 0) << got;
  EXPECT_EQ(got.substr(second + 2), bulk("0") + "+PONG\r\n");
  sim_->world().network().heal_all();
  EXPECT_EQ(primary_->locks_active(), 0u);
}

// A client that leaves while its pipelined writes are in flight: the writes still commit
// (they were queued), their locks are released once durable, and the connection ends.
TEST_F(RespCommandsTest, ClientLeavingWithPipelinedWritesInFlight) {
  make();
  serve();
  std::vector<Args> sets;
  for (int i = 0; i < 100; i++) sets.push_back({"SET", "gone", fmt::format("{}", i)});
  const std::string request = inline_commands(sets);
  ASSERT_TRUE(sim_->run_on(
      sim_->tool_id(),
      [&]() -> Task<void> {
        Env& env = *sim_->world().env(sim_->tool_id());
        std::unique_ptr<StreamConnection> c = co_await testing::connect_client(env, kServerAddress);
        if (!c) co_return;
        EXPECT_TRUE(c->write(testing::bytes_of(request)).is_ok());
        c->close();
      },
      10s));
  ASSERT_TRUE(sim_->run_until(
      [&] {
        return server_->stats().connected_clients == 0 && server_->stats().total_commands > 0;
      },
      10s));
  EXPECT_EQ(primary_->locks_active(), 0u);
  const uint64_t n = server_->stats().total_commands;
  EXPECT_GT(n, 0u);
  EXPECT_EQ(P({"GET", "gone"}), bulk(fmt::format("{}", n - 1)));  // the last one it ran
}

// A client waiting in WAIT (timeout 0: for ever) that is killed, or that closes its
// connection, ends: its task once kept polling and its place among max_clients stayed
// taken for good.
TEST_F(RespCommandsTest, AWaitingClientThatIsKilledOrGoesAwayEnds) {
  make({}, /*standbys=*/0);
  RespServerOptions o;
  o.max_clients = 2;
  serve(o);
  primary_->set_client_directory(&server_->directory());
  const bool done = sim_->run_on(
      sim_->tool_id(),
      [&]() -> Task<void> {
        Env& env = *sim_->world().env(sim_->tool_id());
        auto read_all = [&](StreamConnection& c,
                            Nanos within) -> Task<std::pair<std::string, Code>> {
          std::string got;
          std::vector<uint8_t> buf(4096);
          const Deadline deadline = env.executor().deadline_after(within);
          while (true) {
            Result<size_t> n = co_await c.read_some(std::span<uint8_t>(buf), deadline);
            if (!n.is_ok()) co_return std::pair(got, n.code());
            got.append(reinterpret_cast<const char*>(buf.data()), *n);
          }
        };
        std::unique_ptr<StreamConnection> a = co_await testing::connect_client(env, kServerAddress);
        if (!a) co_return;
        EXPECT_TRUE(a->write(testing::bytes_of(encode_multibulk({"WAIT", "1", "0"}))).is_ok());
        (void)co_await env.executor().sleep(100ms);
        std::vector<const ClientState*> listed = server_->directory().connected();
        EXPECT_EQ(listed.size(), 1u);
        if (listed.size() != 1) co_return;
        const uint64_t waiting = listed[0]->id;
        std::unique_ptr<StreamConnection> b = co_await testing::connect_client(env, kServerAddress);
        if (!b) co_return;
        EXPECT_TRUE(b->write(testing::bytes_of(encode_multibulk(
                                 {"CLIENT", "KILL", "ID", fmt::format("{}", waiting)})))
                        .is_ok());
        std::string got;
        Status end_b;
        co_await testing::read_bytes(*b, 4, &got, &end_b, env.executor().deadline_after(5s));
        EXPECT_EQ(got, ":1\r\n");
        auto [rest, end] = co_await read_all(*a, 5s);
        EXPECT_EQ(end, Code::kUnavailable);  // closed, not still waiting
        (void)co_await env.executor().sleep(50ms);
        EXPECT_EQ(server_->stats().connected_clients, 1u);
        // A second waiter closes its own connection: its task ends too, and its place
        // among the two is free again.
        std::unique_ptr<StreamConnection> c = co_await testing::connect_client(env, kServerAddress);
        if (!c) co_return;
        EXPECT_TRUE(c->write(testing::bytes_of(encode_multibulk({"WAIT", "1", "0"}))).is_ok());
        (void)co_await env.executor().sleep(100ms);
        EXPECT_EQ(server_->directory().connected().size(), 2u);
        c->close();
        (void)co_await env.executor().sleep(100ms);
        EXPECT_EQ(server_->directory().connected().size(), 1u);
        EXPECT_EQ(server_->stats().connected_clients, 1u);
        std::unique_ptr<StreamConnection> d = co_await testing::connect_client(env, kServerAddress);
        if (!d) co_return;
        EXPECT_TRUE(d->write(testing::bytes_of(encode_multibulk({"PING"}))).is_ok());
        got.clear();
        co_await testing::read_bytes(*d, 7, &got, &end_b, env.executor().deadline_after(5s));
        EXPECT_EQ(got, "+PONG\r\n");
      },
      60s);
  EXPECT_TRUE(done);
  EXPECT_EQ(P({"WAIT", "1", "9223372036854775807"}), "-ERR timeout is out of range\r\n");
}

// Replies a few arguments can make huge are cut at the output hard limit and the
// connection closed (as Redis at its client output buffer limit), before they are built
// whole: COMMAND DOCS or CLIENT LIST ID naming one thing over and over; KEYS past the
// limit answers an error.
TEST_F(RespCommandsTest, RepliesPastTheOutputLimitAreNotBuiltWhole) {
  make();
  RespServerOptions o;
  o.output_hard_bytes = 256 << 10;
  serve(o);
  primary_->set_client_directory(&server_->directory());
  Args docs{"COMMAND", "DOCS"};
  for (int i = 0; i < 20'000; i++) docs.push_back("client");
  // Nothing comes back: the reply was cut, the connection closed.
  EXPECT_EQ(wire(encode_multibulk(docs), "never"), "");
  EXPECT_EQ(server_->stats().output_limit_disconnects, 1u);
  Args list{"CLIENT", "LIST", "ID"};
  for (int i = 0; i < 20'000; i++) list.push_back("1000");  // none: an empty reply
  EXPECT_EQ(wire(encode_multibulk(list), "\r\n"), "$0\r\n\r\n");
  EXPECT_EQ(server_->stats().output_limit_disconnects, 1u);
  // The connection's own id, 20,000 times: about 5 MB of lines, cut.
  std::string own;
  const bool listed = sim_->run_on(
      sim_->tool_id(),
      [&]() -> Task<void> {
        Env& env = *sim_->world().env(sim_->tool_id());
        std::unique_ptr<StreamConnection> c = co_await testing::connect_client(env, kServerAddress);
        if (!c) co_return;
        EXPECT_TRUE(c->write(testing::bytes_of(encode_multibulk({"CLIENT", "ID"}))).is_ok());
        Status end;
        co_await testing::read_bytes(*c, 4, &own, &end, env.executor().deadline_after(5s));
        const std::string id = own.substr(1, own.find('\r') - 1);
        Args mine{"CLIENT", "LIST", "ID"};
        for (int i = 0; i < 20'000; i++) mine.push_back(id);
        EXPECT_TRUE(c->write(testing::bytes_of(encode_multibulk(mine))).is_ok());
        std::string rest;
        co_await testing::read_to_end(*c, &rest, &end, env.executor().deadline_after(10s));
        own += rest;
      },
      30s);
  EXPECT_TRUE(listed);
  EXPECT_EQ(own.find("$"), std::string::npos) << own.substr(0, 100);  // ":N\r\n", then closed
  EXPECT_EQ(server_->stats().output_limit_disconnects, 2u);
  for (int i = 0; i < 100; i++) {
    EXPECT_EQ(P({"SET", fmt::format("{:04}", i) + std::string(3000, 'k'), "v"}), "+OK\r\n");
  }
  const std::string keys = wire(encode_multibulk({"KEYS", "*"}), "\r\n");
  EXPECT_EQ(keys, "-ERR KEYS would return more than 262144 bytes; use SCAN\r\n");
  EXPECT_EQ(wire(encode_multibulk({"PING"}), "\r\n"), "+PONG\r\n");  // the server goes on
}

TEST_F(RespCommandsTest, ClientNamesDuplicateWatchesAndKeyCountsAreBoundedBeforeWork) {
  make();
  const std::string name(kClientNameBytesMax, 'n');
  EXPECT_EQ(P({"CLIENT", "SETNAME", name}), "+OK\r\n");
  EXPECT_EQ(P({"CLIENT", "SETNAME", name + "n"}),
            "-ERR Client names are limited to 4096 bytes in Quire (kClientNameBytesMax)\r\n");
  EXPECT_EQ(P({"HELLO", "2", "SETNAME", name + "n"}),
            "-ERR Client names are limited to 4096 bytes in Quire (kClientNameBytesMax)\r\n");
  EXPECT_EQ(client_.name, name);
  // A key named 100,000 times is one watch.
  Args watch{"WATCH"};
  for (int i = 0; i < 100'000; i++) watch.push_back("w");
  EXPECT_EQ(P(watch), "+OK\r\n");
  EXPECT_EQ(client_.watching.size(), 1u);
  // More distinct keys than a connection may watch: refused whole, before any lock.
  Args many{"WATCH"};
  for (int i = 0; i < 10'001; i++) many.push_back(fmt::format("w{}", i));
  EXPECT_EQ(P(many).rfind("-ERR a connection may watch at most ", 0), 0u);
  EXPECT_EQ(client_.watching.size(), 1u);
  EXPECT_EQ(P({"UNWATCH"}), "+OK\r\n");
  // DEL of more keys than a command may write: refused before a lock is taken.
  Args del{"DEL"};
  for (int i = 0; i < 10'001; i++) del.push_back(fmt::format("d{}", i));
  EXPECT_EQ(P(del),
            "-ERR a command may write at most 10000 keys at once (Quire's log entry bound, "
            "kLogEntryOpsMax); this one writes 10001\r\n");
  Args bitop{"BITOP", "OR", "dest"};
  for (int i = 0; i < 10'001; i++) bitop.push_back(fmt::format("s{}", i));
  EXPECT_EQ(P(bitop).rfind("-ERR BITOP may name at most 10000 distinct keys", 0), 0u);
  EXPECT_EQ(primary_->locks_active(), 0u);
}

}  // namespace
}  // namespace quire::resp
