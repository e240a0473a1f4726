// The same node code, unchanged, in the simulated world and as real nodes over loopback
// TCP and real files: the promise the runtime seam exists to keep.
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"
#include "runtime/sim/sim_world.h"

namespace quire {
namespace {

struct PingResult {
  int pongs = 0;
  int served = 0;
  bool file_ok = false;
};

// Listens on `listen_at`; sends `rounds` pings to `peer` (retrying until it is up), each
// acknowledged by a pong; appends every pong to a file, syncs it, and reads it back.
class PingNode : public NodeApp {
 public:
  PingNode(Env& env, Address listen_at, Address peer, int rounds, PingResult& result)
      : env_(env),
        listen_at_(std::move(listen_at)),
        peer_(std::move(peer)),
        rounds_(rounds),
        result_(result) {}

  void start() override {
    auto l = env_.net().listen(listen_at_);
    if (!l.is_ok()) return;
    listener_ = std::move(l).value();
    env_.executor().spawn("serve", serve());
    env_.executor().spawn("ping", ping());
  }

 private:
  Task<void> serve() {
    auto conn = co_await listener_->accept(env_.executor().deadline_after(10s));
    if (!conn.is_ok()) co_return;
    while (true) {
      auto m = co_await (*conn)->receive(env_.executor().deadline_after(10s));
      if (!m.is_ok()) co_return;
      Bytes reply = *m;
      reply.push_back('!');
      if (!(*conn)->send(reply).is_ok()) co_return;
      result_.served++;
    }
  }

  Task<void> ping() {
    std::unique_ptr<Connection> conn;
    for (int attempt = 0; attempt < 100 && !conn; ++attempt) {
      auto c = co_await env_.net().connect(peer_, env_.executor().deadline_after(1s));
      if (c.is_ok()) {
        conn = std::move(c).value();
      } else if (!(co_await env_.executor().sleep(10ms)).is_ok()) {
        co_return;
      }
    }
    if (!conn) co_return;
    if (!(co_await env_.disk().make_dirs("d")).is_ok()) co_return;
    auto file = co_await env_.disk().open("d/pongs", {.create = true});
    if (!file.is_ok()) co_return;
    // The directory entries are durable only once their directories are synced.
    if (!(co_await env_.disk().sync_dir("")).is_ok() ||
        !(co_await env_.disk().sync_dir("d")).is_ok())
      co_return;
    Bytes expected;
    for (int i = 0; i < rounds_; ++i) {
      Bytes ping{static_cast<uint8_t>('a' + i % 26)};
      if (!conn->send(ping).is_ok()) co_return;
      auto pong = co_await conn->receive(env_.executor().deadline_after(5s));
      if (!pong.is_ok() || pong->size() != 2 || (*pong)[0] != ping[0] || (*pong)[1] != '!')
        co_return;
      if (!(co_await (*file)->append(*pong)).is_ok()) co_return;
      expected.insert(expected.end(), pong->begin(), pong->end());
      result_.pongs++;
    }
    if (!(co_await (*file)->sync()).is_ok()) co_return;
    Bytes back(expected.size());
    auto n = co_await (*file)->read(0, back);
    result_.file_ok = n.is_ok() && *n == expected.size() && back == expected;
  }

  Env& env_;
  Address listen_at_;
  Address peer_;
  int rounds_;
  PingResult& result_;
  std::unique_ptr<Listener> listener_;
};

constexpr int kRounds = 200;

TEST(BothWorlds, PingNodeRunsInTheSimulator) {
  PingResult ra, rb;
  SimWorld world(3);
  NodeId a = world.add_node(
      "a", [&](Env& env) { return std::make_unique<PingNode>(env, "a:1", "b:1", kRounds, ra); });
  NodeId b = world.add_node(
      "b", [&](Env& env) { return std::make_unique<PingNode>(env, "b:1", "a:1", kRounds, rb); });
  world.start(a);
  world.start(b);
  world.run_until([&] { return ra.file_ok && rb.file_ok; }, world.now() + 60s);
  EXPECT_EQ(ra.pongs, kRounds);
  EXPECT_EQ(rb.pongs, kRounds);
  EXPECT_EQ(ra.served, kRounds);
  EXPECT_TRUE(ra.file_ok && rb.file_ok);
  auto durable = world.disk(a).durable_content("d/pongs");
  ASSERT_TRUE(durable.has_value());
  EXPECT_EQ(durable->size(), 2u * kRounds);
}

TEST(BothWorlds, PingNodeRunsAsRealNodesOverLoopback) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "quire-both-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  fs::path root(tmpl);

  // Two free ports: bind to port 0 and read what the kernel chose.
  RealLoop loop;
  PingResult ra, rb;
  RealEnv env_a(loop, 1, "a", (root / "a").string(), nullptr, Severity::kError);
  RealEnv env_b(loop, 2, "b", (root / "b").string(), nullptr, Severity::kError);
  auto probe_a = env_a.net().listen("127.0.0.1:0");
  auto probe_b = env_b.net().listen("127.0.0.1:0");
  ASSERT_TRUE(probe_a.is_ok() && probe_b.is_ok());
  Address addr_a = (*probe_a)->address();
  Address addr_b = (*probe_b)->address();
  probe_a->reset();
  probe_b->reset();
  PingNode a(env_a, addr_a, addr_b, kRounds, ra);
  PingNode b(env_b, addr_b, addr_a, kRounds, rb);
  a.start();
  b.start();
  EXPECT_TRUE(loop.run_until([&] { return ra.file_ok && rb.file_ok; }, 30s));
  EXPECT_EQ(ra.pongs, kRounds);
  EXPECT_EQ(rb.pongs, kRounds);
  EXPECT_TRUE(ra.file_ok && rb.file_ok);
  EXPECT_EQ(fs::file_size(root / "a" / "d" / "pongs"), 2u * kRounds);
  loop.scheduler().destroy_node(1);
  loop.scheduler().destroy_node(2);
  fs::remove_all(root);
}

}  // namespace
}  // namespace quire
