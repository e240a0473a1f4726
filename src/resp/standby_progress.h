// What a primary knows about its standbys' progress: the answer to WAIT and the slaveN lines
// of INFO replication.
//
// Standbys read the log from the page servers, never from the primary, so the primary
// learns nothing about them by itself. Each standby reports instead: when its applied
// position moved (it looks every kProgressReportPoll; reports at least
// kProgressReportSpacing apart) and at least every kProgressReportInterval, it sends the
// primary (the leader its election names) one command,
//
//   QUIRE.REPORT <name> <client address> <applied ts> <applied lsn> <serving 0|1>
//
// (progress_report_args builds it), over the same RESP port clients use, authenticated as
// they are. The primary keeps the latest report per standby in this board; a report older
// than the TTL is forgotten (a standby that stopped reporting is not counted by WAIT).
// Reports only ever raise what WAIT counts for a standby while it keeps reporting, and
// never make a write more durable: WAIT remains, as in Redis, a count, not a guarantee.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "runtime/env.h"
#include "runtime/time.h"

namespace quire::resp {

struct StandbyProgress {
  std::string name;
  Address address;  // "host:port" of its client port
  Timestamp applied_ts;
  Lsn applied_lsn;
  bool serving = false;  // SECONDARY
};

inline constexpr Nanos kProgressReportInterval = std::chrono::milliseconds(50);
// How often a standby looks whether its applied position moved, and how far apart its
// reports are at least: one after a pause goes at once, a steady stream of writes gets one
// every 10 ms (each costs the primary a command; at 5 k writes/s a report per poll cost
// its acknowledgements about 0.5 ms at the median).
inline constexpr Nanos kProgressReportPoll = std::chrono::milliseconds(2);
inline constexpr Nanos kProgressReportSpacing = std::chrono::milliseconds(10);
inline constexpr Nanos kProgressReportTtl = std::chrono::seconds(2);
inline constexpr size_t kProgressReportersMax = 64;
inline constexpr size_t kProgressNameBytesMax = 256;

class StandbyProgressBoard {
 public:
  // Records `p` as its standby's latest report at `now`. False (nothing recorded) when the
  // board is full of live reporters and `p` names a new one.
  bool report(StandbyProgress p, MonoTime now);
  // The reports younger than kProgressReportTtl at `now`, by name.
  std::vector<StandbyProgress> current(MonoTime now) const;
  size_t size() const { return reports_.size(); }

 private:
  struct Entry {
    StandbyProgress progress;
    MonoTime at;
  };
  std::map<std::string, Entry> reports_;
};

// The QUIRE.REPORT command a standby sends: {"QUIRE.REPORT", name, address, ts, lsn, 0|1}.
std::vector<std::string> progress_report_args(const StandbyProgress& p);
// Parses QUIRE.REPORT's arguments (args[1..5]); nullopt when malformed.
std::optional<StandbyProgress> parse_progress_report(const std::vector<std::string>& args);

}  // namespace quire::resp
