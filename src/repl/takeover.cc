#include "repl/takeover.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "repl/log_entry.h"

namespace quire {

namespace {
constexpr const char* kComponent = "takeover";
}  // namespace

std::vector<Record> follow_chain(Lsn from, const std::vector<Record>& seen) {
  // prev_lsn -> the best record naming it.
  std::map<Lsn, const Record*> best;
  for (const Record& r : seen) {
    if (r.lsn <= from || r.prev_lsn >= r.lsn) continue;  // not after `from`, or no link
    const Record*& b = best[r.prev_lsn];
    if (b == nullptr || std::tie(r.term, r.lsn) > std::tie(b->term, b->lsn)) b = &r;
  }
  std::vector<Record> chain;
  Lsn cur = from;
  while (true) {
    auto it = best.find(cur);
    if (it == best.end()) break;
    chain.push_back(*it->second);
    cur = it->second->lsn;  // strictly above the previous link: the walk ends
  }
  return chain;
}

bool proves_behind(Lsn from, Lsn end, Lsn complete, const std::vector<std::pair<Lsn, Lsn>>& links,
                   const std::set<Lsn>& chain) {
  if (complete <= end) return false;
  for (const auto& [lsn, prev] : links) {
    const bool names_chain = prev == from || chain.contains(prev);
    if (names_chain && !chain.contains(lsn)) return false;  // a fork: a superseded branch
  }
  return true;
}

namespace {

// Every record after `from` on the fenced servers, each read to its last LSN; `links`
// gets each server's (lsn, prev_lsn) pairs, in the order of `fenced`.
Task<Result<std::vector<Record>>> read_tails(
    Env& env, ReplicationClient& client, Lsn from,
    const std::vector<ReplicationClient::FencedServer>& fenced, const TakeOverOptions& options,
    Deadline deadline, std::vector<std::vector<std::pair<Lsn, Lsn>>>* links) {
  std::vector<Record> seen;
  size_t bytes = 0;
  for (const auto& f : fenced) {
    links->emplace_back();
    Lsn after = from;
    while (after < f.status.last_lsn) {
      auto chunk = co_await client.scan_server(f.index, after, options.scan_bytes_max, deadline);
      if (!chunk.is_ok()) co_return Status(chunk.status()).at("takeover:read_tail");
      if (chunk->through <= after) break;  // nothing more (a server that lost records since)
      for (auto& r : chunk->records) {
        links->back().emplace_back(r.lsn, r.prev_lsn);
        bytes += r.payload.size();
        seen.push_back(std::move(r));
      }
      if (bytes > options.tail_bytes_max) {
        co_return busy("the log's tail after this node's commit point is too large to take over")
            .with("from", from.value)
            .with("tail_bytes_max", options.tail_bytes_max);
      }
      after = chunk->through;
    }
    (void)env;
  }
  co_return seen;
}

// Writes `chain` again at W, in batches of at most write_bytes_max.
Task<Status> rewrite_chain(ReplicationClient& client, std::vector<Record> chain,
                           const TakeOverOptions& options, Deadline deadline) {
  size_t i = 0;
  while (i < chain.size()) {
    std::vector<Record> batch;
    size_t bytes = 0;
    while (i < chain.size() &&
           (batch.empty() || bytes + chain[i].payload.size() <= options.write_bytes_max)) {
      bytes += chain[i].payload.size();
      batch.push_back(std::move(chain[i]));
      i++;
    }
    Status st = co_await client.write(std::move(batch), deadline);
    if (!st.is_ok()) co_return std::move(st).at("takeover:rewrite");
  }
  co_return Status();
}

}  // namespace

Task<Result<RecoveredLog>> recover_log(Env& env, ReplicationClient& client, Lsn from,
                                       const TakeOverOptions& options) {
  RecoveredLog out;
  out.term = client.term();
  out.from = from;
  const Deadline fence_deadline = env.executor().deadline_after(options.fence_timeout);
  auto fenced = co_await client.fence(fence_deadline);
  if (!fenced.is_ok()) co_return Status(fenced.status()).at("takeover:fence");
  out.servers_fenced = fenced->size();
  out.fenced_at = env.executor().now();
  env.log().info(kComponent, 48001, "page servers fenced",
                 {{"term", out.term}, {"servers", out.servers_fenced}});

  const Deadline deadline = env.executor().deadline_after(options.recover_timeout);
  std::vector<std::vector<std::pair<Lsn, Lsn>>> links;
  auto seen = co_await read_tails(env, client, from, *fenced, options, deadline, &links);
  if (!seen.is_ok()) co_return seen.status();
  std::vector<Record> chain = follow_chain(from, *seen);
  const bool planted_drop = options.planted_bugs.takeover_from_checkpoint;
  if (planted_drop) chain.clear();  // the planted bug: keep none of the tail
  out.end = chain.empty() ? from : chain.back().lsn;

  std::set<Lsn> on_chain;
  for (const auto& r : chain) on_chain.insert(r.lsn);
  Lsn highest = out.end;
  for (size_t i = 0; i < fenced->size(); ++i) {
    const PageServerStatus& st = (*fenced)[i].status;
    highest = std::max(highest, st.last_lsn);
    if (!planted_drop && proves_behind(from, out.end, st.durable_lsn, links[i], on_chain)) {
      // A server holds the whole chain beyond what this node could follow: `from` lies
      // below what the servers still keep, or a link is missing from every server's reply.
      co_return Status(Code::kUnavailable, "this node is behind the log: catch up, then take over")
          .with("from", from.value)
          .with("recovered_end", out.end.value)
          .with("server_complete_lsn", st.durable_lsn.value);
    }
  }
  // Everything seen but not on the chain, counted once per LSN.
  std::set<Lsn> off_chain;
  for (const auto& r : *seen) {
    highest = std::max(highest, r.lsn);
    if (!on_chain.contains(r.lsn)) off_chain.insert(r.lsn);
  }
  out.records_off_chain = off_chain.size();
  out.records_rewritten = chain.size();
  out.next_lsn = highest.next();
  Status st = co_await rewrite_chain(client, std::move(chain), options, deadline);
  if (!st.is_ok()) co_return st;
  env.log().info(kComponent, 48002, "log end recovered",
                 {{"term", out.term},
                  {"from", out.from},
                  {"end", out.end},
                  {"next_lsn", out.next_lsn},
                  {"rewritten", out.records_rewritten},
                  {"off_chain", out.records_off_chain}});
  co_return out;
}

Task<Result<Lsn>> write_commit_marker(Engine& engine, RecordWriter& writer, DekRef log_dek,
                                      Timestamp ts, Lsn commit_point, MarkerKind kind,
                                      Random& random, Deadline deadline) {
  DataKey* dek = engine.key_ring().find(log_dek);
  if (dek == nullptr)
    co_return Status(Code::kNotFound, "the log DEK is not in the key ring").at("commit_marker");
  LogEntry hb;
  hb.kind = LogEntryKind::kHeartbeat;
  hb.ts = ts;
  const Lsn lsn = writer.allocate();
  auto record = seal_log_record(hb, *dek, lsn, writer.client().term(), random);
  if (!record.is_ok()) co_return record.status();
  record->backlink_lsn = commit_point;
  if (kind == MarkerKind::kTermStart) record->flags = kRecordFlagTermStart;
  std::vector<Record> one;
  one.push_back(std::move(record).value());
  Status st = co_await writer.write(std::move(one), deadline);
  if (!st.is_ok()) co_return st;
  co_return lsn;
}

}  // namespace quire
