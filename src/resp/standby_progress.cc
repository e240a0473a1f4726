#include "resp/standby_progress.h"

#include <fmt/format.h>

#include "resp/protocol.h"

namespace quire::resp {
bool StandbyProgressBoard::report(StandbyProgress p, MonoTime now) {
  auto it = reports_.find(p.name);
  if (it == reports_.end() && reports_.size() >= kProgressReportersMax) {
    std::erase_if(reports_,
                  [now](const auto& e) { return now - e.second.at > kProgressReportTtl; });
    if (reports_.size() >= kProgressReportersMax) return false;
  }
  std::string name = p.name;
  reports_[std::move(name)] = Entry{std::move(p), now};
  return true;
}

std::vector<StandbyProgress> StandbyProgressBoard::current(MonoTime now) const {
  std::vector<StandbyProgress> out;
  for (const auto& [name, e] : reports_) {
    if (now - e.at <= kProgressReportTtl) out.push_back(e.progress);
  }
  return out;
}

std::vector<std::string> progress_report_args(const StandbyProgress& p) {
  return {"QUIRE.REPORT",
          p.name,
          p.address,
          fmt::format("{}", p.applied_ts.value),
          fmt::format("{}", p.applied_lsn.value),
          p.serving ? "1" : "0"};
}

std::optional<StandbyProgress> parse_progress_report(const std::vector<std::string>& args) {
  if (args.size() != 6) return std::nullopt;
  if (args[1].empty() || args[1].size() > kProgressNameBytesMax) return std::nullopt;
  if (args[2].size() > kProgressNameBytesMax) return std::nullopt;
  auto ts = parse_uint64(args[3]);
  auto lsn = parse_uint64(args[4]);
  if (!ts || !lsn || (args[5] != "0" && args[5] != "1")) return std::nullopt;
  return StandbyProgress{args[1], args[2], Timestamp(*ts), Lsn(*lsn), args[5] == "1"};
}

}  // namespace quire::resp
