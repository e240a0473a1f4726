#include "bench/bench_run.h"

#include <algorithm>
#include <fstream>
#include <utility>

#include <fmt/format.h>

namespace quire::bench {

bool run_task_to_end(RealLoop& loop, RealEnv& env, std::string name, Task<void> task,
                     Nanos timeout) {
  TaskId id = env.executor().spawn(std::move(name), std::move(task));
  return loop.run_until([&] { return env.executor().is_done(id); }, timeout);
}

Task<void> probe_servers(Env& env, std::vector<Address> servers, Nanos timeout, ProbeResult* out) {
  for (const Address& a : servers) {
    PageServerClient client(env, a);
    auto st = co_await client.status(env.executor().deadline_after(timeout));
    client.disconnect();
    if (!st.is_ok()) {
      if (out->first_error.is_ok())
        out->first_error = Status(st.code(), fmt::format("{}: {}", a, st.status().to_string()));
      continue;
    }
    out->answered++;
    out->last_lsn = std::max(out->last_lsn, st->last_lsn);
    out->term = std::max(out->term, st->term);
  }
}

double per_second(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

Status write_json_file(const std::string& path, const nlohmann::ordered_json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return io_error(fmt::format("cannot write {}", path));
  return Status::ok();
}

}  // namespace quire::bench
