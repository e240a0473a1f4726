#include "cluster/chaos_checkers.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

namespace fs = std::filesystem;

constexpr size_t kLineBytesMax = 400;
constexpr size_t kScanChunkBytes = size_t{1} << 20;

// Appends up to kViolationsPerCheckerMax violations, then one that counts the rest.
class Violations {
 public:
  explicit Violations(std::string checker) : checker_(std::move(checker)) {}
  void add(std::string detail) {
    if (list_.size() < kViolationsPerCheckerMax) {
      list_.push_back({checker_, std::move(detail)});
    } else {
      ++dropped_;
    }
  }
  std::vector<Violation> take() {
    if (dropped_ > 0) list_.push_back({checker_, fmt::format("... and {} more", dropped_)});
    return std::move(list_);
  }

 private:
  std::string checker_;
  std::vector<Violation> list_;
  uint64_t dropped_ = 0;
};

uint64_t key_of(uint32_t owner, uint32_t index) {
  return (uint64_t{owner} << 32) | index;
}

// A key's writes in its writer's order (one writer, one write at a time: seq order is
// start order is end order).
struct KeyWrites {
  std::vector<const Op*> writes;  // by seq
  const Op* find(uint64_t seq) const {
    auto it = std::lower_bound(writes.begin(), writes.end(), seq,
                               [](const Op* w, uint64_t s) { return w->seq < s; });
    return it != writes.end() && (*it)->seq == seq ? *it : nullptr;
  }
  // The newest write acknowledged before `t_us` (nullptr: none).
  const Op* newest_acked_before(int64_t t_us) const {
    for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
      if ((*it)->end_us < t_us && (*it)->outcome == OpOutcome::kOk) return *it;
    }
    return nullptr;
  }
  const Op* newest_acked() const { return newest_acked_before(INT64_MAX); }
};

std::unordered_map<uint64_t, KeyWrites> index_writes(const std::vector<Op>& history) {
  std::unordered_map<uint64_t, KeyWrites> by_key;
  for (const Op& op : history) {
    if (op.kind == OpKind::kWrite) by_key[key_of(op.owner, op.key_index)].writes.push_back(&op);
  }
  for (auto& [k, w] : by_key) {
    std::sort(w.writes.begin(), w.writes.end(),
              [](const Op* a, const Op* b) { return a->seq < b->seq; });
  }
  return by_key;
}

double secs(int64_t us) {
  return static_cast<double>(us) / 1e6;
}

// What is wrong with a read or final value naming (owner, seq) of `key`; "" when nothing.
std::string value_problem(const KeyWrites* writes, uint64_t seq, int64_t read_end_us) {
  const Op* w = writes ? writes->find(seq) : nullptr;
  if (w == nullptr) return fmt::format("seq {} that was never written", seq);
  if (w->outcome == OpOutcome::kError) {
    return fmt::format("seq {} whose write failed (sent {:.3f}s)", seq, secs(w->start_us));
  }
  if (w->start_us > read_end_us) {
    return fmt::format("seq {} written only at {:.3f}s", seq, secs(w->start_us));
  }
  return "";
}

void check_one_read(const Op& r, const KeyWrites* writes, const std::string& node,
                    Violations& out) {
  const std::string key = chaos_key(r.owner, r.key_index);
  if (r.foreign_value) {
    out.add(fmt::format("{} read {} at {:.3f}s: a value that is not its writer's", node, key,
                        secs(r.start_us)));
    return;
  }
  if (r.seq != 0) {
    const std::string problem = value_problem(writes, r.seq, r.end_us);
    if (!problem.empty()) {
      out.add(fmt::format("{} read {} at {:.3f}s: {}", node, key, secs(r.start_us), problem));
      return;
    }
  }
  if (r.path != ReadPath::kPrimary || writes == nullptr) return;
  const Op* floor = writes->newest_acked_before(r.start_us);
  if (floor != nullptr && r.seq < floor->seq) {
    out.add(fmt::format(
        "{} (as primary) read {} at {:.3f}-{:.3f}s: {}, older than seq {} acknowledged at {:.3f}s",
        node, key, secs(r.start_us), secs(r.end_us),
        r.seq == 0 ? std::string("no value") : fmt::format("seq {}", r.seq), floor->seq,
        secs(floor->end_us)));
  }
}

std::string node_name_of(const std::vector<std::string>& names, uint16_t node) {
  return node < names.size() ? names[node] : fmt::format("node#{}", node);
}

}  // namespace

std::vector<Violation> check_reads(const std::vector<Op>& history, uint64_t* reads_checked,
                                   const std::vector<std::string>& node_names) {
  Violations out("read");
  const auto by_key = index_writes(history);
  std::vector<const Op*> reads;
  for (const Op& op : history) {
    if (op.kind == OpKind::kRead && op.outcome == OpOutcome::kOk) reads.push_back(&op);
  }
  // Per node, in the order they were issued: the per-node readers go one read at a time.
  std::stable_sort(reads.begin(), reads.end(),
                   [](const Op* a, const Op* b) { return a->start_us < b->start_us; });
  std::map<std::pair<uint16_t, uint64_t>, const Op*> last_seen;  // (node, key) -> last read
  for (const Op* r : reads) {
    if (reads_checked) ++*reads_checked;
    auto it = by_key.find(key_of(r->owner, r->key_index));
    const KeyWrites* writes = it == by_key.end() ? nullptr : &it->second;
    const std::string node = node_name_of(node_names, r->node);
    check_one_read(*r, writes, node, out);
    if (r->path != ReadPath::kNode || r->foreign_value) continue;
    const Op*& prev = last_seen[{r->node, key_of(r->owner, r->key_index)}];
    if (prev != nullptr && r->seq < prev->seq) {
      out.add(fmt::format("{} read {} at {:.3f}s: seq {}, after reading seq {} at {:.3f}s", node,
                          chaos_key(r->owner, r->key_index), secs(r->start_us), r->seq, prev->seq,
                          secs(prev->start_us)));
    }
    prev = r;
  }
  return out.take();
}

std::vector<Violation> check_lost_writes(const std::vector<Op>& history, const Content& content,
                                         const std::string& node) {
  Violations out("lost_write");
  const auto by_key = index_writes(history);
  for (const auto& [k, writes] : by_key) {
    const Op* acked = writes.newest_acked();
    if (acked == nullptr) continue;
    const std::string key = chaos_key(acked->owner, acked->key_index);
    auto it = content.find(key);
    if (it == content.end()) {
      out.add(fmt::format("{}: {} is missing; seq {} was acknowledged at {:.3f}s", node, key,
                          acked->seq, secs(acked->end_us)));
      continue;
    }
    auto v = parse_chaos_value(it->second);
    if (!v || v->owner != acked->owner) {
      out.add(fmt::format("{}: {} holds a value that is not its writer's", node, key));
    } else if (v->seq < acked->seq) {
      out.add(fmt::format("{}: {} holds seq {}, older than seq {} acknowledged at {:.3f}s", node,
                          key, v->seq, acked->seq, secs(acked->end_us)));
    }
  }
  for (const auto& [key, value] : content) {
    auto k = parse_chaos_key(key);
    auto v = parse_chaos_value(value);
    if (!k) continue;
    if (!v || v->owner != k->owner) continue;  // reported above when acknowledged
    auto it = by_key.find(key_of(k->owner, k->index));
    const std::string problem =
        value_problem(it == by_key.end() ? nullptr : &it->second, v->seq, INT64_MAX);
    if (!problem.empty()) out.add(fmt::format("{}: {} holds {}", node, key, problem));
  }
  return out.take();
}

std::vector<Violation> check_same_content(const Content& primary, const Content& standby,
                                          const std::string& standby_name) {
  Violations out("convergence");
  size_t missing = 0, extra = 0, differ = 0;
  std::string example;
  for (const auto& [key, value] : primary) {
    auto it = standby.find(key);
    if (it == standby.end()) {
      if (missing++ == 0 && example.empty()) example = fmt::format("{} missing", key);
    } else if (it->second != value) {
      if (differ++ == 0 && example.empty()) example = fmt::format("{} differs", key);
    }
  }
  for (const auto& [key, value] : standby) {
    if (primary.find(key) == primary.end() && extra++ == 0 && example.empty()) {
      example = fmt::format("{} only on the standby", key);
    }
  }
  if (missing + extra + differ > 0) {
    out.add(fmt::format(
        "{}'s content differs from the primary's: {} keys missing, {} extra, {} different (e.g. "
        "{}); {} keys on the primary, {} on {}",
        standby_name, missing, extra, differ, example, primary.size(), standby.size(),
        standby_name));
  }
  return out.take();
}

std::optional<Violation> MonotonicTracker::observe(const StatusSample& s) {
  Track& t = tracks_[s.node];
  // A new process, or a primary that stepped down (a fresh engine): counts start again.
  if (t.pid != s.pid || t.step_downs != s.step_downs ||
      (t.role == "primary" && s.role != "primary")) {
    t = Track{s.pid, s.step_downs, s.role, s.checkpoint_lsn, s.keystore_version};
    return std::nullopt;
  }
  t.role = s.role;
  std::optional<Violation> v;
  if (s.checkpoint_lsn < t.checkpoint_lsn) {
    v = Violation{"monotonic",
                  fmt::format("{} (pid {}) at {:.3f}s: installed checkpoint LSN went from {} to {}",
                              s.node, s.pid, secs(s.at_us), t.checkpoint_lsn, s.checkpoint_lsn)};
  } else if (s.keystore_version < t.keystore_version) {
    v = Violation{"monotonic",
                  fmt::format("{} (pid {}) at {:.3f}s: keystore version went from {} to {}", s.node,
                              s.pid, secs(s.at_us), t.keystore_version, s.keystore_version)};
  }
  t.checkpoint_lsn = std::max(t.checkpoint_lsn, s.checkpoint_lsn);
  t.keystore_version = std::max(t.keystore_version, s.keystore_version);
  return v;
}

std::vector<ProcessExit> parse_supervisor_exits(const std::string& supervisor_log) {
  std::vector<ProcessExit> exits;
  std::istringstream in(supervisor_log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("supervisor: stopping the cluster") != std::string::npos) break;
    const size_t tag = line.find("supervisor: ");
    const size_t pid_at = line.find(" (pid ");
    const size_t ended = line.find(") ended: ");
    if (tag == std::string::npos || pid_at == std::string::npos || ended == std::string::npos ||
        pid_at < tag || ended < pid_at) {
      continue;
    }
    ProcessExit e;
    e.name = line.substr(tag + 12, pid_at - tag - 12);
    e.pid = std::atoi(line.c_str() + pid_at + 6);
    e.how = line.substr(ended + 9);
    e.at = line.substr(0, line.find(' '));
    exits.push_back(std::move(e));
  }
  return exits;
}

std::vector<Violation> check_exits(const std::vector<ProcessExit>& exits,
                                   const std::vector<std::string>& injected,
                                   const std::function<std::string(const ProcessExit&)>& why) {
  Violations out("abort");
  std::map<std::string, size_t> kills;
  for (const auto& name : injected) ++kills[name];
  for (const ProcessExit& e : exits) {
    if (e.how.rfind("signal 9", 0) == 0 && kills[e.name] > 0) {
      --kills[e.name];
      continue;
    }
    const std::string reason = why ? why(e) : "";
    out.add(fmt::format("{} (pid {}) ended: {}{}", e.name, e.pid, e.how,
                        reason.empty() ? "" : "; " + reason));
  }
  return out.take();
}

std::vector<Violation> check_crash_lines(const std::string& logs_dir) {
  static constexpr const char* kPatterns[] = {"terminate called", "AddressSanitizer",
                                              "runtime error:", "assertion failed", "Aborted"};
  Violations out("abort");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(logs_dir, ec)) {
    if (!entry.is_regular_file(ec) || entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path());
    std::string line;
    const bool supervisor = entry.path().filename() == "supervisor.log";
    while (std::getline(in, line)) {
      // The supervisor's record of an exit is check_exits's to judge.
      if (supervisor && line.find(") ended: ") != std::string::npos) continue;
      for (const char* p : kPatterns) {
        if (line.find(p) == std::string::npos) continue;
        out.add(
            fmt::format("{}: {}", entry.path().filename().string(), line.substr(0, kLineBytesMax)));
        break;
      }
    }
  }
  return out.take();
}

std::vector<Violation> check_plaintext(const std::vector<std::string>& dirs,
                                       uint64_t* bytes_scanned) {
  Violations out("plaintext");
  const std::string_view needles[] = {kValueCanary, kKeyCanary};
  constexpr size_t kOverlap = 32;  // longer than every needle
  std::error_code ec;
  for (const std::string& dir : dirs) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      std::ifstream in(it->path(), std::ios::binary);
      std::string buf;
      uint64_t offset = 0;  // of buf[0] in the file
      std::vector<char> chunk(kScanChunkBytes);
      bool found = false;
      while (!found && in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        const auto n = static_cast<size_t>(in.gcount());
        if (n == 0) break;
        if (bytes_scanned) *bytes_scanned += n;
        buf.append(chunk.data(), n);
        for (std::string_view needle : needles) {
          const size_t at = buf.find(needle);
          if (at == std::string::npos) continue;
          out.add(fmt::format("{} holds '{}' in plaintext at offset {}", it->path().string(),
                              needle, offset + at));
          found = true;
          break;
        }
        if (buf.size() > kOverlap) {
          offset += buf.size() - kOverlap;
          buf.erase(0, buf.size() - kOverlap);
        }
      }
    }
  }
  return out.take();
}

}  // namespace quire::cluster
