// Test support: drive coroutines on a node of a simulated world.
#pragma once

#include <utility>

#include "runtime/sim/sim_world.h"

namespace quire::testing_support {

// A node that runs nothing of its own; tests spawn their coroutines on it.
class IdleApp : public NodeApp {
 public:
  void start() override {}
};

// Runs `body` (a callable returning Task<void>) as a task of the node whose Env is `env`,
// and the world until it finishes or `limit` of simulated time passes. True when it
// finished.
template <typename F>
bool run_in_node(SimWorld& world, Env& env, F body,
                 Nanos limit = Nanos(std::chrono::seconds(600))) {
  bool done = false;
  auto wrap = [](F b, bool& d) -> Task<void> {
    co_await b();
    d = true;
  };
  env.executor().spawn("test", wrap(std::move(body), done));
  world.run_until([&] { return done; }, world.now() + limit);
  return done;
}

}  // namespace quire::testing_support
