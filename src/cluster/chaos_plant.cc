#include "cluster/chaos_plant.h"

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cluster/chaos_checkers.h"
#include "cluster/chaos_rotation.h"
#include "cluster/chaos_workload.h"
#include "cluster/cluster_ops.h"
#include "cluster/resp_client.h"

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPlantWaitMax = std::chrono::seconds(15);
constexpr auto kPlantPoll = std::chrono::milliseconds(200);
constexpr size_t kPlantedPageBytes = 4096;

size_t exits_of(const ClusterSpec& spec, const std::string& name) {
  std::ifstream in(spec.log_path("supervisor"));
  std::stringstream text;
  text << in.rdbuf();
  size_t n = 0;
  for (const ProcessExit& e : parse_supervisor_exits(text.str())) n += e.name == name ? 1 : 0;
  return n;
}

// SIGKILL a page server outside the schedule, then wait until the supervisor recorded it.
Result<std::string> plant_abort(const ClusterSpec& spec, uint64_t seed) {
  const std::string name = spec.pageserver_name(seed % spec.pageservers);
  const size_t before = exits_of(spec, name);
  if (Status st = kill_process(spec, name, SIGKILL); !st.is_ok()) return st;
  const auto until = Clock::now() + kPlantWaitMax;
  while (exits_of(spec, name) == before) {
    if (Clock::now() >= until) {
      return Status(Code::kUnavailable,
                    fmt::format("the supervisor did not record {}'s end within {} s", name,
                                kPlantWaitMax.count()));
    }
    std::this_thread::sleep_for(kPlantPoll);
  }
  return fmt::format("SIGKILL to {} outside the schedule (left down)", name);
}

const Op* newest_acked_write(const std::vector<Op>& history) {
  const Op* newest = nullptr;
  for (const Op& op : history) {
    if (op.kind != OpKind::kWrite || op.outcome != OpOutcome::kOk) continue;
    if (newest == nullptr || op.end_us > newest->end_us) newest = &op;
  }
  return newest;
}

// DEL the newest acknowledged write's key on the primary, behind the history's back.
Result<std::string> plant_lost_write(const ClusterSpec& spec, const std::vector<Op>& history) {
  const Op* op = newest_acked_write(history);
  if (op == nullptr) return Status(Code::kNotFound, "no write was acknowledged: nothing to drop");
  const std::string key = chaos_key(op->owner, op->key_index);
  std::vector<std::string> addresses;
  for (size_t i = 0; i < spec.compute_nodes(); ++i) addresses.push_back(spec.node_address(i));
  PrimaryLocator locator(addresses);
  auto answer = locator.command_until(
      {"DEL", key},
      [](const RespReply& r) { return r.type == RespReply::Type::kInteger && r.integer == 1; },
      kPlantWaitMax, kPlantPoll, kAdminTimeout);
  if (!answer.is_ok()) {
    return Status(Code::kUnavailable, "cannot drop " + key + ": " + answer.status().message());
  }
  return fmt::format("DEL {} on {} (seq {} acknowledged at {:.3f} s): dropped", key,
                     spec.node_name(answer->index), op->seq, static_cast<double>(op->end_us) / 1e6);
}

// A page-sized file of zeros with one acknowledged value, in clear, in its middle.
Result<std::string> plant_plaintext(const ClusterSpec& spec, const std::vector<Op>& history,
                                    uint64_t seed) {
  const Op* op = newest_acked_write(history);
  const std::string value = op != nullptr ? chaos_value(op->owner, op->seq) : chaos_value(0, 1);
  const std::string path = fmt::format("{}/{}/planted-plaintext.page", spec.dir,
                                       spec.pageserver_name(seed % spec.pageservers));
  std::string page(kPlantedPageBytes, '\0');
  page.replace(kPlantedPageBytes / 2, value.size(), value);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(page.data(), static_cast<std::streamsize>(page.size()));
  out.close();
  if (!out) return Status(Code::kUnavailable, "cannot write " + path);
  return fmt::format("{} bytes with a workload value in clear written to {}", page.size(), path);
}

}  // namespace

Result<PlantedFault> parse_planted_fault(std::string_view name) {
  if (name.empty()) return PlantedFault::kNone;
  if (name == "abort") return PlantedFault::kAbort;
  if (name == "lost_write") return PlantedFault::kLostWrite;
  if (name == "plaintext") return PlantedFault::kPlaintext;
  return Status(Code::kInvalidArgument,
                fmt::format("unknown planted fault '{}' (abort, lost_write, plaintext)", name));
}

std::string_view planted_fault_name(PlantedFault f) {
  switch (f) {
    case PlantedFault::kNone:
      return "";
    case PlantedFault::kAbort:
      return "abort";
    case PlantedFault::kLostWrite:
      return "lost_write";
    case PlantedFault::kPlaintext:
      return "plaintext";
  }
  return "";
}

Result<std::string> plant_fault(PlantedFault f, const ClusterSpec& spec,
                                const std::vector<Op>& history, uint64_t seed) {
  switch (f) {
    case PlantedFault::kNone:
      return std::string();
    case PlantedFault::kAbort:
      return plant_abort(spec, seed);
    case PlantedFault::kLostWrite:
      return plant_lost_write(spec, history);
    case PlantedFault::kPlaintext:
      return plant_plaintext(spec, history, seed);
  }
  return std::string();
}

}  // namespace quire::cluster
