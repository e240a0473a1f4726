// Take-over: how a compute node that won leadership with epoch E continues an existing
// database as its primary, at term E (docs/replication.md, "Take-over").
//
// 1. Fence. The node's writes carry term E from now on, and fence(E) must reach a read
//    quorum (N - W + 1 page servers) before anything is read: each of them stores E
//    durably and refuses lower terms, so the old primary can no longer reach W servers and
//    no write of its can become durable after the log's end is read.
// 2. Recover the end of the log. Every record that may have been acknowledged (durable at
//    W) is on at least one server of any read quorum. The node reads, from each fenced
//    server, every record after its own commit point `from` (also past gaps in that
//    server's chain) and follows the chain from `from` through the union: at each link it
//    takes, among the records naming the current one as their predecessor, the one with the
//    highest (term, lsn). A newer term's record supersedes an older term's; within a term
//    the writer re-chains only after abandoning what followed, with LSNs it never reused,
//    so the higher LSN is the live branch. A write the old primary reported as "not
//    committed" is never revived: it said so only after its chain marker past the abandon
//    point was durable at W, and that marker wins the link on some fenced server.
// 3. Make it durable. The chain's records after `from` are written again, unchanged (their
//    own header terms, under request term E), until W servers hold them. Records off the
//    chain are dropped by the servers when the new primary's first record (its commit
//    marker, prev_lsn = the recovered end) skips them, or by the term conflict rule when a
//    new record meets an old one at the same LSN.
//
// The new primary then writes a LOG record whose commit point covers the recovered end, so
// every standby applies the whole recovered tail, and continues the chain with LSNs above
// every LSN the fenced servers hold. Nothing here asserts on what the servers return: a
// broken chain, a tail over its bound or too few servers is a typed error and the node
// stays a standby (it may campaign again).
#pragma once

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/planted_bugs.h"
#include "pagelog/record_writer.h"
#include "pagelog/replication_client.h"

namespace quire {

struct TakeOverOptions {
  Nanos fence_timeout = 5s;
  Nanos recover_timeout = 10s;
  // One scan of one server, and the recovered tail held in memory at most (the records
  // after the node's commit point: a node further behind must catch up first).
  size_t scan_bytes_max = 4u << 20;
  size_t tail_bytes_max = 256u << 20;
  // Records re-written per write.
  size_t write_bytes_max = 4u << 20;
  // The test seam (engine/planted_bugs.h); all off in a deployment.
  PlantedBugs planted_bugs;
};

struct RecoveredLog {
  Term term;
  Lsn from;      // the node's commit point: the chain was followed after it
  Lsn end;       // the recovered chain's last record (from when there is none after it)
  Lsn next_lsn;  // above every LSN a fenced server holds
  size_t servers_fenced = 0;
  MonoTime fenced_at;  // when the read quorum had stored the term
  uint64_t records_rewritten = 0;
  uint64_t records_off_chain = 0;  // seen after `from`, not on the chain: abandoned
};

// The chain after `from` through `seen` (records from several servers, in any order,
// duplicates allowed): at each link the record with the highest (term, lsn) among those
// whose prev_lsn is the current record. Ascending LSN.
std::vector<Record> follow_chain(Lsn from, const std::vector<Record>& seen);

// Whether one fenced server proves the node behind: its chain is complete up to `complete`,
// beyond the recovered `end`, and none of its records after `from` (`links`: lsn and
// prev_lsn) forks off `chain` (the LSNs the recovered chain took) by naming `from` or a
// chain record as predecessor without being on the chain. A server whose complete prefix
// forks holds an older term's branch that a newer term superseded: it proves nothing.
bool proves_behind(Lsn from, Lsn end, Lsn complete, const std::vector<std::pair<Lsn, Lsn>>& links,
                   const std::set<Lsn>& chain);

// Steps 1 to 3 with `client`, whose term the caller already raised to E (set_term).
// Fenced when a server holds a newer term; Unavailable / DeadlineExceeded when too few
// servers answered or the re-write did not reach W in time; Busy when the tail is over
// tail_bytes_max; Unavailable ("behind") when a fenced server proves the node behind
// (proves_behind: the node's `from` is below what a server already collected, or a link
// is missing): the node must catch up before it can take over.
Task<Result<RecoveredLog>> recover_log(Env& env, ReplicationClient& client, Lsn from,
                                       const TakeOverOptions& options);

// Writes one heartbeat LOG record at `ts` through `writer`, carrying `commit_point` (its
// backlink): the record a primary writes after an abandon point or to publish its commit
// point, and the first record of a new primary, after the recovered end. Only that first
// record is `term_start` (kRecordFlagTermStart: its predecessor may be of an older term):
// on any other marker the flag would let a standby join an old primary's uncommitted tail
// to the new term's chain. Returns its LSN. Errors are the writer's (the chain is then in
// doubt), or NotFound when the log DEK is not in the engine's key ring.
enum class MarkerKind : uint8_t { kTermStart, kWithinTerm };
Task<Result<Lsn>> write_commit_marker(Engine& engine, RecordWriter& writer, DekRef log_dek,
                                      Timestamp ts, Lsn commit_point, MarkerKind kind,
                                      Random& random, Deadline deadline);

}  // namespace quire
