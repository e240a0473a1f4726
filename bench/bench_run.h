// What the bench subcommands share: running one task on the real loop, asking page servers
// where their record chain ends, and turning what was measured into rates and a JSON file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelog/page_server.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::bench {

// Spawns `task` on `env`'s node and runs the loop until it ends (true), or until `timeout`
// passed or a signal stopped the loop (false: loop.stop_signal() says which). A task that
// did not end is left to its node, whose destruction ends it.
bool run_task_to_end(RealLoop& loop, RealEnv& env, std::string name, Task<void> task,
                     Nanos timeout);

// What page servers said before a run: where to continue their chain, and the term.
struct ProbeResult {
  size_t answered = 0;
  Lsn last_lsn;
  Term term;
  Status first_error;  // of the first server that did not answer
};

// Asks each server for its status, one at a time, each within `timeout`.
Task<void> probe_servers(Env& env, std::vector<Address> servers, Nanos timeout, ProbeResult* out);

// Events per second; 0 when no time passed.
double per_second(uint64_t n, double seconds);
// The middle value (the mean of the two middle ones for an even count); 0 when empty.
double median(std::vector<double> values);

// Writes `j` (indented) to `path`; Io naming the file when it cannot.
Status write_json_file(const std::string& path, const nlohmann::ordered_json& j);

}  // namespace quire::bench
