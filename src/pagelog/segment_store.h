// SegmentStore: a page server's records on disk, through the runtime's Disk seam.
//
// Records are appended to the active segment file; concurrent appends are group
// committed (written together, one fdatasync for all of them) and acknowledged only once
// synced. seal() closes the active segment and opens the next; appends that were
// waiting to go into the sealed segment fail with the retriable Sealed status, and their
// writer re-sends them. A segment also rolls over when it would pass its size bound.
//
// open() recovers: it scans every segment, truncates a torn tail of the newest one,
// rebuilds the index, and reports corrupt ranges elsewhere as damaged. A record whose
// checksum fails is never served, at recovery or later. Before the scan it checks that a
// file can be created and removed in the segments directory, so a directory the node may
// not write (mode 0555, a read-only mount) is InvalidArgument naming the path at start-up,
// a configuration error, not an I/O failure at the first seal or roll-over.
//
// Every record names the writer's previous record (prev_lsn), so the records form a
// chain. complete_lsn() is how far the chain is unbroken from the retention point: the
// store holds every record up to it. abandon_after(P) drops every record above P (a
// marker in the segment makes that survive restarts); the writer's next record names P.
// Because one writer makes the chain, the chain itself also proves abandonment: a record
// whose prev_lsn skips over stored records means those were abandoned (they are dropped,
// under a range marker), and a record that a stored successor skips over is not stored at
// all. So a late copy, or a peer's copy from before it saw the marker, cannot come back:
// a peer's copy is dropped silently (nobody waits on it), while a writer's record is
// refused with Older (see append), so OK always means stored.
//
// Commit point: each LOG record's backlink_lsn is the LSN up to which the log was durable
// on a quorum when it was written (repl/primary.h), so nothing at or below it may ever be
// abandoned. commit_point() is the highest such backlink of any LOG record the store has
// held, or the retention point if higher (a checkpoint covers it); recovery recomputes it
// from the records it scans and the persisted retention point. The store refuses, with
// InvalidArgument and a log line, anything that would abandon committed records:
// abandon_after(P) with P < commit_point(), and a record whose prev_lsn skips stored records
// (an implicit abandon_after(prev_lsn)) when the first record it skips is at or below
// commit_point(); for a peer's copy only when the record's own LSN is also above it
// (below, it may be the committed chain replacing a stale branch this server kept).
//
// Terms: raise_term(T) durably fences every writer term below T: it appends a TERM marker
// and syncs it before returning. max_term() is the highest term of any marker or record
// the store holds, recomputed at recovery; a writer's append or abandon_after that names a
// term below it is Fenced, decided under the write lock, so once raise_term(T) returned no
// lower-term write is stored any more (and everything stored before it is in stats()).
// Retention keeps the segment of the newest marker.
//
// Term conflicts (Raft's log matching): a record that arrives where a different record is
// stored under the same LSN is decided by their terms. The stored one's term higher: the
// arriving record is stale (Older from a writer, dropped from a peer). Equal: a writer bug,
// InvalidArgument. Lower: the stored record is the tail of an older writer that a newer one
// replaces (it recovered that tail at take-over and re-writes it under its own term). Then
// the stored record and every record after the arriving one's prev_lsn are abandoned (one
// range marker, ending before the first stored record of the arriving record's term or a
// newer one, which the newer writer already wrote) and the arriving record is stored;
// unless that would abandon a record at or below commit_point(): InvalidArgument
// (committed records).
//
// Retention: set_retention(R) lets garbage collection drop what no reader at or above R
// can need: log records at or below R, and page versions superseded at or below R (the
// newest full image at or below R and everything after it stay). Callers pass the LSN of
// the oldest checkpoint they keep. Segments left with no live record are deleted. The
// point is persisted under the write lock; the drop and the deletion then run in steps
// with it free, so writes go on meanwhile (only one retention step runs at a time). A
// retention point above checkpoint_log_lsn() (the newest checkpoint completion's log
// position) is refused with NotYetMaterialized: the store has no checkpoint to read from
// there, and a server lagging behind the checkpoint gets it later from its peers.
//
// A retention point above complete_lsn() jumps a gap: the chain looks complete from the
// retention point on, but the store may lack records below it that are still live (the
// newest image of a page at or below it, which a checkpoint there uses). set_retention
// then first persists where its chain has gaps (copy_gaps(), the file COPY_GAPS); the
// page server copies them from peers that hold them whole, and finish_copy() clears them.
// A store opened empty or stale that receives a retention point before it caught up is
// the case (docs/pagelog.md, "Catching up").
//
// A failed write or fsync breaks the store: every later call fails with Io, and the node
// must restart and recover (the durable state after a failed fsync is unknown).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "pagelog/record.h"
#include "pagelog/segment_format.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"
#include "runtime/sync.h"

namespace quire {

struct SegmentStoreOptions {
  std::string dir = "segments";
  uint64_t segment_bytes_max = 64u << 20;
  // The active segment's file is written with zeros this far past its last record before
  // records reach there, so a group's fdatasync only rewrites blocks the file has: no size
  // or extent change for the file system to journal. On ext4 that halves a sync's time
  // and CPU (docs/pagelog.md, "Zeros written ahead"). The zeros never pass
  // segment_bytes_max, and a sealed segment's file is cut back to its last record. Zero:
  // every write grows the file.
  uint64_t zero_ahead_bytes = 1u << 20;
  // Sealed segment files kept open for reads (the active segment is open besides).
  size_t open_segments_max = 64;
};

// Where one record is, and what it is.
struct RecordRef {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint32_t size = 0;
  uint32_t crc = 0;
  RecordType type = RecordType::kLog;
  TableId table;
  PageId page;
  Lsn lsn;
  Lsn prev_lsn;
  Term term;
  Lsn base_lsn;      // a checkpoint completion's log position (record.h)
  Lsn backlink_lsn;  // a LOG record's commit point
};

// Whose records an append stores. A writer is told OK or an error for each request, so
// its records are never dropped silently; a peer's catch-up copy may hold records the
// chain has since abandoned, and those are dropped.
enum class AppendSource : uint8_t { kWriter, kPeer };

struct SegmentStoreStats {
  Lsn last_lsn;      // the highest LSN stored
  Lsn complete_lsn;  // every record up to here is stored
  Lsn retention_lsn;
  uint64_t segments = 0;
  uint64_t sealed_segments = 0;
  uint64_t seals = 0;  // seal() calls since open
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t torn_bytes_truncated = 0;  // at open
  uint64_t no_space_refusals = 0;     // writes the full disk refused (NoSpace) since open
  uint64_t retention_overwrites = 0;  // RETENTION overwritten in place on a full disk
  uint64_t open_sealed_segments = 0;  // sealed segment files open in the descriptor cache
  std::vector<DamagedRange> damaged;
};

class SegmentStore {
 public:
  // Bounds on one append batch, so one group commit cannot grow without limit.
  static constexpr size_t kBatchBytesMax = 32u << 20;

  static Task<Result<std::unique_ptr<SegmentStore>>> open(Env& env, SegmentStoreOptions options);
  ~SegmentStore();

  // Stores `records` (each already checked with validate_record) durably, all or none:
  // OK means every record is stored (or was already). A record whose LSN is already
  // stored is skipped when it is the same record (a re-send) and is InvalidArgument when
  // it differs with the same term (other terms: the term conflict rule above). A record a stored
  // successor skips over (abandoned) is Older from a writer (the chain already holds something
  // newer than it: the writer must recover its chain, and no retry can store it) and dropped
  // silently from a peer. A record that would abandon committed records (see the commit point
  // above) is InvalidArgument. `writer_term` (a writer's request term) below max_term() when the
  // append is planned is Fenced (see Terms above). Sealed when a seal came first; Io breaks the
  // store.
  Task<Status> append(std::vector<Record> records, AppendSource source = AppendSource::kWriter,
                      std::optional<Term> writer_term = std::nullopt);
  Task<Status> seal();
  // InvalidArgument when lsn < commit_point(); Fenced when `writer_term` < max_term().
  Task<Status> abandon_after(Lsn lsn, std::optional<Term> writer_term = std::nullopt);
  // Fences every term below `term` durably (a synced TERM marker) when it is above
  // max_term(); changes nothing otherwise. Io breaks the store.
  Task<Status> raise_term(Term term);
  // NotYetMaterialized when lsn > checkpoint_log_lsn(); a point at or below the current
  // one changes nothing. A point above complete_lsn() sets copy_from() (when none is set)
  // durably before the retention point.
  Task<Status> set_retention(Lsn lsn);
  // Where a retention point jumped a gap the store has not had copied yet: records in
  // (copy_from, retention_lsn] may be missing although complete_lsn() is past them. Survives
  // restarts. None when the chain below complete_lsn() holds every live record.
  std::optional<Lsn> copy_from() const {
    return copy_gaps_.empty() ? std::nullopt : std::optional<Lsn>(copy_gaps_.front().from);
  }
  // The gaps themselves, oldest first (at most kCopyGapsMax): where the store may lack
  // records of its chain below complete_lsn(). Found when the retention point jumps, by
  // walking the chain back from it before anything below it is dropped (chain_gaps), so a
  // store that restarted stale and then took new writes copies only what it missed.
  // Persisted (COPY_GAPS) before the retention point; a corrupt file is one gap from 0.
  const std::vector<CopyGap>& copy_gaps() const { return copy_gaps_; }
  // Every live record in (copy_from, through] was copied from peers that held that range
  // whole: the gaps below `through` are cleared, one it falls in starts there. Durable when
  // it returns; Io breaks the store.
  Task<Status> finish_copy(Lsn through);

  // Reads a record back, verifying its checksum again (Corruption if it fails now).
  Task<Result<Record>> read(const RecordRef& ref);
  // Reads records back, in order, with the same checks: one file read for each run of
  // them that lies back to back in a segment (a standby's read of the tail is one run),
  // at most kReadRunBytesMax bytes unless a single record is larger.
  Task<Result<std::vector<Record>>> read_many(std::span<const RecordRef> refs);
  static constexpr uint64_t kReadRunBytesMax = 4 << 20;

  const RecordRef* find(Lsn lsn) const;
  // The records get_page needs for (table, page) as of `as_of`: the newest full image at
  // or below it and every later delta up to it, oldest first. NotFound, or Discarded
  // when the newest record at or below `as_of` is a tombstone.
  Result<std::vector<RecordRef>> page_chain(TableId table, PageId page, Lsn as_of) const;
  // Records with LSN in (after, until], in LSN order, up to `max_bytes` (at least one
  // record if any); only LOG records when `log_only`. `through` (optional) receives the
  // LSN the scan covered: `until`, or the last record returned when the budget ran out.
  std::vector<RecordRef> scan_after(Lsn after, Lsn until, size_t max_bytes, bool log_only,
                                    Lsn* through = nullptr) const;
  // Checkpoint completion records, oldest first.
  std::vector<RecordRef> checkpoints() const;

  Lsn last_lsn() const;
  Lsn complete_lsn() const { return complete_lsn_; }
  Lsn retention_lsn() const { return retention_lsn_; }
  // No abandon may drop anything at or below this (see the commit point above).
  Lsn commit_point() const { return std::max(max_backlink_lsn_, retention_lsn_); }
  // The highest log position (base_lsn) of the checkpoint completions the store holds:
  // how far retention may go. 0 without one. Not only those at or below complete_lsn():
  // a server restarted empty gets its chain whole only from a retention point, once its
  // peers collected the log below it.
  Lsn checkpoint_log_lsn() const;
  // The highest writer term of any TERM marker or record stored (fencing survives
  // restarts through it).
  Term max_term() const { return max_term_; }
  bool broken() const { return !broken_.is_ok(); }
  SegmentStoreStats stats() const;
  // How long the latest write's fdatasync took (zero before the first): the disk's speed
  // as the writers see it (AppendAck).
  Nanos last_sync() const { return last_sync_; }

 private:
  struct Pending;
  struct Segment;
  struct FlushPlan;

  SegmentStore(Env& env, SegmentStoreOptions options);
  Task<Status> recover();
  // Creates and removes kProbeFile in the segments directory (see open()).
  Task<Status> probe_writable();
  Task<Status> recover_segment(uint64_t number, bool newest);
  // Indexes the records of one recovered segment, applying its markers in file order.
  void recover_records(uint64_t number, const std::vector<ScannedRecord>& records);
  // Creates segment `number` and makes it the active one; any failure breaks the store.
  Task<Status> create_segment(uint64_t number);
  // The same without breaking the store, for recovery, whose failures open() reports.
  Task<Status> create_segment_file(uint64_t number);
  // The active segment; when recovery found no room for one, creates it first (NoSpace
  // while the disk is still full).
  Task<Result<Segment*>> active_segment();
  // The descriptor cache of sealed segments. segment_file() returns the open file of a
  // segment (the active one's, a cached one, or one it opens and caches).
  Task<Result<std::shared_ptr<File>>> segment_file(uint64_t number);
  void cache_insert(Segment& seg, std::shared_ptr<File> file);
  void cache_forget(Segment& seg);
  // One group commit: plans every pending write (re-sends, abandoned records and range
  // markers decided here), then writes, syncs and indexes the plan.
  Task<Status> flush(std::vector<std::shared_ptr<Pending>>& batch);
  struct PlanUndo;
  // Adds one request's records to the plan, or none of them: on a refusal the plan is
  // rolled back to where it was and the request ends with the refusal.
  void plan_pending(Pending& p, FlushPlan& plan);
  Status plan_record(const Record& r, AppendSource source, FlushPlan& plan, PlanUndo& undo);
  // A record under an LSN already stored: a re-send, or the term conflict rule. Sets
  // `store` when the record replaces the stored one (its range marker is planned).
  Status plan_stored_lsn(const Record& r, const RecordRef& have, AppendSource source,
                         FlushPlan& plan, PlanUndo& undo, bool* store);
  // Plans a record that skips over stored records: refused below the commit point, else
  // an abandon range marker ahead of it.
  Status plan_chain_skip(const Record& r, AppendSource source, FlushPlan& plan, PlanUndo& undo);
  void rollback_plan(FlushPlan& plan, PlanUndo& undo);
  // Marks the records in (after, before) abandoned (before zero: every record after).
  void plan_abandon_marker(Lsn after, Lsn before, FlushPlan& plan, PlanUndo& undo);
  Status fenced(Term writer_term) const;
  Status refuse(Status why);
  // The stored or planned record following `lsn`, as (lsn, prev).
  std::optional<std::pair<Lsn, Lsn>> successor(const FlushPlan& plan, Lsn lsn) const;
  Task<Status> write_plan(FlushPlan& plan);
  // Writes `buf` after the active segment's last record (unsynced) and returns where;
  // when it passes the zeros written ahead, a second write lays down the next ones.
  Task<Result<uint64_t>> write_at_end(Segment& seg, ByteView buf);
  // Cuts the zeros written ahead off a segment's file (the segment is being sealed), and
  // any part of them a full disk let through, without a sync: recovery cuts them off a
  // sealed segment that still has them.
  Task<Status> trim_zeros(Segment& seg);
  // RETENTION and COPY_GAPS (or an older COPY_FROM): read at open, written by temp file
  // and rename.
  Task<Status> recover_lsn_files(const std::vector<std::string>& names);
  Task<Status> write_lsn_file(const char* name, Lsn lsn);
  Task<Status> write_gaps_file(const std::vector<CopyGap>& gaps);
  Task<Status> write_dir_file(const char* name, Bytes bytes);
  Task<Status> overwrite_retention_file(Lsn lsn);
  // Retention's steps: what no reader at or above `lsn` needs (a record can be dead for
  // two reasons and is then listed twice); dropping it from the indexes; deleting sealed
  // segments that hold nothing live.
  std::vector<Lsn> dead_below_retention(Lsn lsn) const;
  void drop_records(std::span<const Lsn> dead);
  Task<Status> drop_records_in_steps(const std::vector<Lsn>& dead);
  Task<Result<size_t>> delete_dead_segments();
  // Appends one marker to the active segment and syncs it; its place on disk.
  Task<Result<RecordRef>> write_marker(const Record& marker);
  Status break_store(Status why);
  // A write the full disk refused (NoSpace): the store stays up, for reads and for later
  // writes once space is freed; only a failure to undo the write breaks it. The segment's
  // file is cut back (and synced) to its last record, so no part of the refused write
  // lies past it, where a later roll-over would seal it into the segment.
  Task<Status> refuse_for_space(Segment& seg, Status why);
  // Counts and logs (rate-limited) a NoSpace refusal; returns it.
  Status no_space(Status why);
  void index_record(const RecordRef& ref);
  // Removes a record from every index, by_lsn_ included; the next entry of by_lsn_.
  std::map<Lsn, RecordRef>::iterator erase_record(std::map<Lsn, RecordRef>::iterator it);
  // One record fewer in indexed_per_segment_ for `segment`.
  void uncount(uint64_t segment);
  void unindex(const RecordRef& ref);
  void unindex_above(Lsn lsn);
  // Drops the records in (after, before) (before zero: no bound).
  void unindex_range(Lsn after, Lsn before);
  void advance_complete();
  std::vector<CopyGap> chain_gaps(Lsn lsn, Lsn floor) const;
  static std::vector<CopyGap> bounded_gaps(std::vector<CopyGap> gaps);
  void recompute_complete();
  std::string path(uint64_t segment) const;

  Env& env_;
  SegmentStoreOptions options_;
  AsyncMutex write_mu_;
  // One retention step at a time (each drops its records in steps, the write lock free).
  AsyncMutex retention_mu_;
  std::deque<std::shared_ptr<Pending>> queue_;
  Status broken_;
  uint64_t seal_epoch_ = 0;
  uint64_t seals_ = 0;
  Nanos last_sync_{0};
  uint64_t abandoned_dropped_ = 0;  // records refused because the chain skips them
  uint64_t torn_bytes_truncated_ = 0;
  std::map<uint64_t, std::unique_ptr<Segment>> segments_;
  uint64_t active_ = 0;  // 0: none yet, recovery had no room for it (pending_segment_)
  uint64_t pending_segment_ = 0;
  std::list<uint64_t> open_sealed_;  // the descriptor cache: most recently used first
  std::vector<DamagedRange> damaged_;

  std::map<Lsn, RecordRef> by_lsn_;
  // Per segment, how many records of by_lsn_ it holds (absent: none), so retention finds
  // dead segments without walking every record.
  std::unordered_map<uint64_t, size_t> indexed_per_segment_;
  std::map<std::pair<TableId, PageId>, std::vector<Lsn>> pages_;
  std::map<Lsn, Lsn> next_by_prev_;  // prev_lsn -> lsn: the chain's links
  std::set<Lsn> checkpoint_lsns_;    // CHECKPOINT_COMPLETE records
  std::vector<RecordRef> markers_;   // abandon markers: always live
  Lsn complete_lsn_;
  Lsn retention_lsn_;
  std::vector<CopyGap> copy_gaps_;  // copy_gaps()
  Term max_term_;
  uint64_t term_marker_segment_ = 0;  // holds the newest TERM marker (0: none)
  Lsn max_backlink_lsn_;              // the highest commit point of any LOG record indexed
  LogLimiter refusal_log_{std::chrono::seconds(1)};      // refused writes
  LogLimiter zero_write_log_{std::chrono::seconds(10)};  // failed writes of zeros ahead
  LogLimiter no_space_log_{std::chrono::seconds(10)};    // writes a full disk refused
  uint64_t no_space_refusals_ = 0;
  uint64_t overwrites_in_place_ = 0;  // RETENTION written in place on a full disk
  Bytes zeros_;                       // zero_ahead_bytes of them, written past the records
};

}  // namespace quire
