#include "pagelog/segment_store.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/crc32c.h"

namespace quire {

namespace {
constexpr const char* kComponent = "pagelog";
constexpr const char* kRetentionFile = "RETENTION";
// Where a retention point jumped over a gap in the chain (SegmentStore::copy_from).
constexpr const char* kCopyFromFile = "COPY_FROM";
constexpr const char* kCopyGapsFile = "COPY_GAPS";
// A jump's walk back along its own chain (chain_gaps) gives up past this many records,
// and takes the rest down to complete_lsn for one gap.
constexpr size_t kGapWalkMax = size_t{1} << 20;
constexpr size_t kLsnFileBytes = 12;  // RETENTION and COPY_FROM: fixed64 lsn, masked crc32c
// Created and removed at open to learn that the directory takes new files. Not a segment
// name, so a copy a crash left between the two steps is ignored, and removed at next open.
constexpr const char* kProbeFile = ".probe";

// Reads a whole file.
Task<Result<Bytes>> read_all(File& f) {
  auto size = f.size();
  if (!size.is_ok()) co_return size.status();
  Bytes out(*size);
  size_t done = 0;
  while (done < out.size()) {
    auto n = co_await f.read(done, std::span<uint8_t>(out).subspan(done));
    if (!n.is_ok()) co_return n.status();
    if (*n == 0) break;
    done += *n;
  }
  out.resize(done);
  co_return out;
}

// A file of the segments directory, whose names are `names`: NotFound when there is none.
Task<Result<Bytes>> read_dir_file(Disk& disk, const std::string& dir, const char* name,
                                  const std::vector<std::string>& names) {
  if (std::find(names.begin(), names.end(), name) == names.end()) co_return not_found(name);
  auto f = co_await disk.open(dir + "/" + name, {});
  if (!f.is_ok()) co_return f.status();
  co_return co_await read_all(**f);
}

// An LSN file (RETENTION, COPY_FROM): NotFound when there is none, Corruption when its
// bytes do not check.
// RETENTION and COPY_FROM's bytes: the LSN, then its masked CRC.
Bytes encode_lsn_file(Lsn lsn) {
  Bytes b(kLsnFileBytes);
  encode_fixed64(b.data(), lsn.value);
  encode_fixed32(b.data() + 8, crc32c::mask(crc32c::value(b.data(), 8)));
  return b;
}

Task<Result<Lsn>> read_lsn_file(Disk& disk, const std::string& dir, const char* name,
                                const std::vector<std::string>& names) {
  auto bytes = co_await read_dir_file(disk, dir, name, names);
  if (!bytes.is_ok()) co_return bytes.status();
  if (bytes->size() != kLsnFileBytes ||
      crc32c::unmask(decode_fixed32(bytes->data() + 8)) != crc32c::value(bytes->data(), 8)) {
    co_return Status(Code::kCorruption, fmt::format("{} does not check", name));
  }
  co_return Lsn(decode_fixed64(bytes->data()));
}

// COPY_GAPS, as an LSN file.
Task<Result<std::vector<CopyGap>>> read_gaps_file(Disk& disk, const std::string& dir,
                                                  const char* name,
                                                  const std::vector<std::string>& names) {
  auto bytes = co_await read_dir_file(disk, dir, name, names);
  if (!bytes.is_ok()) co_return bytes.status();
  co_return decode_copy_gaps_file(*bytes);
}
}  // namespace

struct SegmentStore::Pending {
  std::vector<Record> records;
  AppendSource source = AppendSource::kWriter;
  std::optional<Term> writer_term;
  uint64_t epoch = 0;
  bool done = false;
  Status status;
};

struct SegmentStore::Segment {
  uint64_t number = 0;
  // Open while this is the active segment, or while a sealed one is in the descriptor
  // cache (then `cached` is its place in open_sealed_). Shared, so a read that is using it
  // keeps it open past an eviction.
  std::shared_ptr<File> file;
  std::optional<std::list<uint64_t>::iterator> cached;
  uint64_t size = 0;      // the end of the last record: where the next one goes
  uint64_t file_end = 0;  // the file's length: `size` and the zeros written past it
};

SegmentStore::SegmentStore(Env& env, SegmentStoreOptions options)
    : env_(env),
      options_(std::move(options)),
      write_mu_(env.executor().scheduler()),
      retention_mu_(env.executor().scheduler()) {}

SegmentStore::~SegmentStore() = default;

std::string SegmentStore::path(uint64_t segment) const {
  return options_.dir + "/" + segment_file_name(segment);
}

Task<Result<std::unique_ptr<SegmentStore>>> SegmentStore::open(Env& env,
                                                               SegmentStoreOptions options) {
  std::unique_ptr<SegmentStore> store(new SegmentStore(env, std::move(options)));
  Status st = co_await store->recover();
  if (!st.is_ok()) co_return st;
  co_return std::move(store);
}

Task<Status> SegmentStore::refuse_for_space(Segment& seg, Status why) {
  QUIRE_ASSERT(why.code() == Code::kNoSpace);
  // Cutting never needs space. Synced, so a crash cannot bring the part back.
  Status cut = co_await seg.file->truncate(seg.size);
  if (cut.is_ok()) cut = co_await seg.file->sync();
  if (!cut.is_ok()) co_return break_store(std::move(cut).at("cut_refused_write"));
  seg.file_end = seg.size;
  co_return no_space(std::move(why));
}

Status SegmentStore::no_space(Status why) {
  QUIRE_ASSERT(why.code() == Code::kNoSpace);
  no_space_refusals_++;
  if (auto suppressed = no_space_log_.admit(env_.executor().now())) {
    env_.log().warn(
        kComponent, 30023, "the disk is full; writes are refused until space is freed, reads go on",
        {{"error", why}, {"refusals", no_space_refusals_}, {"suppressed", *suppressed}});
  }
  return why;
}

Status SegmentStore::break_store(Status why) {
  // Whatever broke it (a refused create is InvalidArgument), a store that was serving
  // reports Io from here on: the node must restart and recover.
  if (why.code() != Code::kIo) why = io_error(why.to_string());
  if (broken_.is_ok()) {
    env_.log().error(kComponent, 30001, "disk failure; the segment store stops until restart",
                     {{"error", why}});
    broken_ = why;
  }
  return why;
}

Task<Status> SegmentStore::recover() {
  Disk& disk = env_.disk();
  QUIRE_CO_RETURN_IF_ERROR(co_await disk.make_dirs(options_.dir));
  QUIRE_CO_RETURN_IF_ERROR(co_await probe_writable());
  auto names = co_await disk.list(options_.dir);
  if (!names.is_ok()) co_return names.status();

  QUIRE_CO_RETURN_IF_ERROR(co_await recover_lsn_files(*names));

  std::vector<uint64_t> numbers;
  for (const auto& n : *names) {
    auto num = parse_segment_file_name(n);
    if (num.is_ok()) numbers.push_back(*num);
  }
  std::sort(numbers.begin(), numbers.end());
  for (size_t i = 0; i < numbers.size(); ++i) {
    QUIRE_CO_RETURN_IF_ERROR(co_await recover_segment(numbers[i], i + 1 == numbers.size()));
  }
  // The newest segment stays the active one, unless there is none yet or recovery left
  // none that takes records: a newest one whose header was torn was removed, and one whose
  // header is damaged is kept as sealed (records written after it would not be found by the
  // next recovery). Then an active segment is created: under the torn one's number, or
  // after the damaged one. On a full disk the store opens without one and serves what it
  // holds; its first write creates it (active_segment()).
  std::optional<uint64_t> create;
  if (segments_.empty() || segments_.rbegin()->first != numbers.back()) {
    create = numbers.empty() ? 1 : numbers.back();
  } else if (const Segment& newest = *segments_.rbegin()->second;
             newest.file == nullptr || newest.cached) {
    create = newest.number + 1;
  } else {
    active_ = newest.number;
  }
  if (create) {
    const uint64_t number = *create;
    Status created = co_await create_segment_file(number);
    if (created.code() == Code::kNoSpace) {
      pending_segment_ = number;
      static_cast<void>(no_space(std::move(created).at("create_active_segment")));
    } else if (!created.is_ok()) {
      co_return created;
    }
  }
  QUIRE_ASSERT(active_ == 0 ||
               (segments_.at(active_)->file != nullptr && !segments_.at(active_)->cached));
  recompute_complete();
  env_.log().info(kComponent, 30003, "segment store recovered",
                  {{"segments", segments_.size()},
                   {"active_segment", active_},
                   {"records", by_lsn_.size()},
                   {"last_lsn", last_lsn()},
                   {"complete_lsn", complete_lsn_},
                   {"damaged_ranges", damaged_.size()},
                   {"torn_bytes_truncated", torn_bytes_truncated_}});
  co_return Status();
}

// The retention point, if one was ever set, and where a retention point jumped over a gap
// that a copy from the peers has not filled yet.
Task<Status> SegmentStore::recover_lsn_files(const std::vector<std::string>& names) {
  auto retention = co_await read_lsn_file(env_.disk(), options_.dir, kRetentionFile, names);
  if (retention.is_ok()) {
    retention_lsn_ = *retention;
  } else if (retention.code() == Code::kCorruption) {
    // Written by rename over a synced temp file, so a bad one is real corruption. The
    // safe reading is "no retention": complete_lsn then stays low and the server
    // catches up from its peers rather than claiming records it lacks.
    env_.log().error(kComponent, 30002, "retention file is corrupt; ignoring it",
                     {{"path", options_.dir}});
    damaged_.push_back({0, 0, kLsnFileBytes});
  } else if (retention.code() != Code::kNotFound) {
    co_return retention.status();
  }
  // COPY_GAPS, and COPY_FROM from a binary before it (one gap from there up to the
  // retention point; both when a directory went back to such a binary and forward again):
  // their union. A corrupt one is the safe reading, a gap below the whole retention point.
  std::vector<CopyGap> gaps;
  auto listed = co_await read_gaps_file(env_.disk(), options_.dir, kCopyGapsFile, names);
  if (listed.is_ok()) {
    gaps = std::move(listed).value();
  } else if (listed.code() == Code::kCorruption) {
    env_.log().error(kComponent, 30018, "copy-gaps file is corrupt; copying everything again",
                     {{"path", options_.dir}});
    gaps.push_back({Lsn(0), retention_lsn_});
  } else if (listed.code() != Code::kNotFound) {
    co_return listed.status();
  }
  auto copy = co_await read_lsn_file(env_.disk(), options_.dir, kCopyFromFile, names);
  if (copy.is_ok()) {
    gaps.push_back({*copy, retention_lsn_});
  } else if (copy.code() == Code::kCorruption) {
    env_.log().error(kComponent, 30018, "copy-from file is corrupt; copying everything again",
                     {{"path", options_.dir}});
    gaps.push_back({Lsn(0), retention_lsn_});
  } else if (copy.code() != Code::kNotFound) {
    co_return copy.status();
  }
  copy_gaps_ = bounded_gaps(std::move(gaps));
  co_return Status();
}

// Seals and roll-overs create files in the directory while the server serves, where a
// refusal breaks the store (a restart that cannot help). Asking here, before anything is
// read, makes a directory the node may not write a start-up error: the Disk reports
// permission and a read-only file system as InvalidArgument naming the path. No sync: the
// probe's existence never matters to recovery.
Task<Status> SegmentStore::probe_writable() {
  const std::string probe = options_.dir + "/" + kProbeFile;
  // Not through a symlink: the probe must land in this directory, not wherever one points.
  const OpenOptions create{.create = true, .follow_symlink = false};
  auto file = co_await env_.disk().open(probe, create);
  // A full disk is not a directory the node may not write: a server on one still serves
  // what it holds.
  if (file.code() == Code::kNoSpace) co_return Status();
  if (!file.is_ok()) co_return file.status();
  file->reset();
  co_return co_await env_.disk().unlink(probe);
}

// Scans one segment and indexes its records. The newest stays open as the active segment;
// a sealed one goes to the descriptor cache, which closes the least recently used beyond
// its bound, so recovery holds at most open_segments_max + 1 segment files at a time.
// Opening refuses a name that is not a regular file (InvalidArgument naming the path), so
// a FIFO cannot block the scan.
Task<Status> SegmentStore::recover_segment(uint64_t number, bool newest) {
  auto file = co_await env_.disk().open(path(number), {});
  if (!file.is_ok()) co_return file.status();
  auto bytes = co_await read_all(**file);
  if (!bytes.is_ok()) co_return bytes.status();
  SegmentScan scan = scan_segment(*bytes, number);

  auto seg = std::make_unique<Segment>();
  seg->number = number;
  seg->size = bytes->size();
  seg->file_end = bytes->size();
  auto place = [&] {
    Segment& placed = *(segments_[number] = std::move(seg));
    std::shared_ptr<File> open_file = std::move(file).value();
    if (newest) {
      placed.file = std::move(open_file);
    } else {
      cache_insert(placed, std::move(open_file));
    }
  };
  if (!scan.header_status.is_ok()) {
    if (newest && bytes->size() <= kSegmentHeaderBytes) {
      // Created but its header never made it to disk: a crash while opening it.
      env_.log().warn(kComponent, 30004, "rewriting the torn header of the newest segment",
                      {{"segment", number}});
      torn_bytes_truncated_ += bytes->size();
      file->reset();
      // recover() creates it again.
      co_return co_await env_.disk().unlink(path(number));
    }
    env_.log().error(kComponent, 30005, "segment header is damaged; skipping the segment",
                     {{"segment", number}, {"error", scan.header_status}});
    damaged_.push_back({number, 0, bytes->size()});
    newest = false;  // sealed: recover() makes the next segment the active one
    place();
    co_return Status();
  }
  if (newest && cut_at_lost_sector(*bytes, scan)) {
    env_.log().warn(kComponent, 30021,
                    "a sector of the newest segment's last write never reached the disk; "
                    "cutting the segment there as a torn tail",
                    {{"segment", number}, {"valid_end", scan.valid_end}});
  }
  for (const auto& r : scan.damaged) {
    env_.log().error(kComponent, 30006, "damaged range in a segment; its records are not served",
                     {{"segment", number}, {"begin", r.begin}, {"end", r.end}});
    damaged_.push_back({number, r.begin, r.end});
  }
  if (scan.has_tail && scan.zero_tail) {
    // Zeros written ahead of the records (SegmentStoreOptions::zero_ahead_bytes), not a
    // torn write. The active segment keeps them for its next records; a sealed one (a
    // crash came before its seal's cut reached the disk) is cut back now, unsynced too.
    seg->size = scan.valid_end;
    if (!newest) {
      QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->truncate(scan.valid_end));
      seg->file_end = scan.valid_end;
    }
  } else if (scan.has_tail) {
    if (newest) {
      const uint64_t torn = torn_bytes(*bytes, scan);
      env_.log().warn(kComponent, 30007, "truncating the torn tail of the newest segment",
                      {{"segment", number}, {"valid_end", scan.valid_end}, {"torn_bytes", torn}});
      QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->truncate(scan.valid_end));
      QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->sync());
      torn_bytes_truncated_ += torn;
      seg->size = scan.valid_end;
      seg->file_end = scan.valid_end;
    } else {
      env_.log().error(kComponent, 30008,
                       "damaged end of a sealed segment; its records are not served",
                       {{"segment", number}, {"begin", scan.valid_end}, {"end", bytes->size()}});
      damaged_.push_back({number, scan.valid_end, bytes->size()});
    }
  }
  recover_records(number, scan.records);
  place();
  co_return Status();
}

void SegmentStore::recover_records(uint64_t number, const std::vector<ScannedRecord>& records) {
  for (const auto& r : records) {
    RecordRef ref{number,         r.offset,      r.size,       r.header.crc,      r.header.type,
                  r.header.table, r.header.page, r.header.lsn, r.header.prev_lsn, r.header.term};
    ref.base_lsn = r.header.base_lsn;
    ref.backlink_lsn = r.header.backlink_lsn;
    if (r.header.type == RecordType::kAbandon) {
      unindex_range(r.header.lsn, r.header.base_lsn);
      markers_.push_back(ref);
    } else if (r.header.type == RecordType::kTerm) {
      // Not indexed: it only fences. Markers are written with rising terms and segments
      // recovered oldest first, so the last one seen is the one retention keeps.
      max_term_ = std::max(max_term_, r.header.term);
      term_marker_segment_ = number;
    } else {
      index_record(ref);
    }
  }
}

Task<Status> SegmentStore::create_segment(uint64_t number) {
  Status st = co_await create_segment_file(number);
  if (st.code() == Code::kNoSpace) co_return no_space(std::move(st));
  if (!st.is_ok()) co_return break_store(std::move(st));
  co_return Status();
}

Task<Result<SegmentStore::Segment*>> SegmentStore::active_segment() {
  if (active_ == 0) {
    QUIRE_ASSERT(pending_segment_ != 0);
    QUIRE_CO_RETURN_IF_ERROR(co_await create_segment(pending_segment_));
    env_.log().info(kComponent, 30025, "the disk has room again; the active segment is created",
                    {{"segment", active_}});
  }
  co_return segments_.at(active_).get();
}

Task<Status> SegmentStore::create_segment_file(uint64_t number) {
  // Segment numbers only grow: recovery goes in order, and seals and roll-overs add one.
  QUIRE_ASSERT(segments_.empty() || number > segments_.rbegin()->first);
  // Only the active segment has zeros to trim; sealed ones had theirs cut at their seal or
  // at recovery.
  if (active_ != 0) QUIRE_CO_RETURN_IF_ERROR(co_await trim_zeros(*segments_.at(active_)));
  auto file = co_await env_.disk().open(path(number), {.create = true, .exclusive = true});
  if (!file.is_ok()) co_return file.status();
  Bytes header = encode_segment_header(number);
  auto off = co_await (*file)->append(header);
  if (off.code() == Code::kNoSpace) {
    // The disk is full: the file goes again, and the active segment stays active.
    file->reset();
    Status gone = co_await env_.disk().unlink(path(number));
    // Synced: the active segment goes on taking records, and a crash that brought the
    // empty file back would make it look sealed, its torn tail damage.
    if (gone.is_ok()) gone = co_await env_.disk().sync_dir(options_.dir);
    if (!gone.is_ok()) co_return io_error(gone.to_string()).at("remove_refused_segment");
    co_return off.status();
  }
  if (!off.is_ok()) co_return off.status();
  QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->sync());
  QUIRE_CO_RETURN_IF_ERROR(co_await env_.disk().sync_dir(options_.dir));
  // The segment before it is sealed from here on: its file joins the descriptor cache.
  if (!segments_.empty()) {
    Segment& sealed = *segments_.rbegin()->second;
    if (sealed.file != nullptr && !sealed.cached) cache_insert(sealed, sealed.file);
  }
  auto seg = std::make_unique<Segment>();
  seg->number = number;
  seg->size = header.size();
  seg->file_end = header.size();
  seg->file = std::move(file).value();
  segments_[number] = std::move(seg);
  active_ = number;
  co_return Status();
}

// Puts a sealed segment's open file at the front of the cache and closes the least
// recently used files beyond the bound (a read still using one keeps it until it ends).
void SegmentStore::cache_insert(Segment& seg, std::shared_ptr<File> file) {
  QUIRE_ASSERT(!seg.cached && file != nullptr);
  seg.file = std::move(file);
  open_sealed_.push_front(seg.number);
  seg.cached = open_sealed_.begin();
  while (open_sealed_.size() > options_.open_segments_max) {
    Segment& evicted = *segments_.at(open_sealed_.back());
    QUIRE_ASSERT(evicted.cached && evicted.number != active_);
    evicted.file.reset();
    evicted.cached.reset();
    open_sealed_.pop_back();
  }
}

// Takes a segment out of the cache, closing its file (for a segment being deleted).
void SegmentStore::cache_forget(Segment& seg) {
  if (!seg.cached) return;
  open_sealed_.erase(*seg.cached);
  seg.cached.reset();
  seg.file.reset();
}

Task<Result<std::shared_ptr<File>>> SegmentStore::segment_file(uint64_t number) {
  auto gone = [&] {
    return Status(Code::kNotFound, "segment no longer exists").with("segment", number);
  };
  auto it = segments_.find(number);
  if (it == segments_.end()) co_return gone();
  if (it->second->file != nullptr) {
    if (it->second->cached) {
      open_sealed_.splice(open_sealed_.begin(), open_sealed_, *it->second->cached);
    }
    co_return it->second->file;
  }
  auto opened = co_await env_.disk().open(path(number), {});
  // While it opened, retention may have deleted the segment or another read cached it.
  it = segments_.find(number);
  if (it == segments_.end()) co_return gone();
  if (!opened.is_ok()) co_return opened.status();
  if (it->second->file != nullptr) co_return it->second->file;
  std::shared_ptr<File> file = std::move(opened).value();
  cache_insert(*it->second, file);
  co_return file;
}

void SegmentStore::index_record(const RecordRef& ref) {
  auto [at, fresh] = by_lsn_.try_emplace(ref.lsn, ref);
  if (!fresh) {
    uncount(at->second.segment);
    at->second = ref;
  }
  indexed_per_segment_[ref.segment]++;
  if (record_type_is_page(ref.type)) {
    auto& v = pages_[{ref.table, ref.page}];
    v.insert(std::upper_bound(v.begin(), v.end(), ref.lsn), ref.lsn);
  }
  next_by_prev_[ref.prev_lsn] = ref.lsn;
  if (ref.term > max_term_) max_term_ = ref.term;
  if (ref.type == RecordType::kLog)
    max_backlink_lsn_ = std::max(max_backlink_lsn_, ref.backlink_lsn);
  if (ref.type == RecordType::kCheckpointComplete) checkpoint_lsns_.insert(ref.lsn);
}

std::map<Lsn, RecordRef>::iterator SegmentStore::erase_record(
    std::map<Lsn, RecordRef>::iterator it) {
  unindex(it->second);
  uncount(it->second.segment);
  return by_lsn_.erase(it);
}

void SegmentStore::uncount(uint64_t segment) {
  auto count = indexed_per_segment_.find(segment);
  QUIRE_ASSERT(count != indexed_per_segment_.end() && count->second > 0);
  if (--count->second == 0) indexed_per_segment_.erase(count);
}

// Removes one record from every index but by_lsn_ (erase_record does both).
void SegmentStore::unindex(const RecordRef& ref) {
  if (record_type_is_page(ref.type)) {
    auto p = pages_.find({ref.table, ref.page});
    if (p != pages_.end()) {
      std::erase(p->second, ref.lsn);
      if (p->second.empty()) pages_.erase(p);
    }
  }
  auto link = next_by_prev_.find(ref.prev_lsn);
  if (link != next_by_prev_.end() && link->second == ref.lsn) next_by_prev_.erase(link);
  checkpoint_lsns_.erase(ref.lsn);
}

void SegmentStore::unindex_above(Lsn lsn) {
  for (auto it = by_lsn_.upper_bound(lsn); it != by_lsn_.end();) it = erase_record(it);
  if (complete_lsn_ > lsn) complete_lsn_ = lsn;
}

void SegmentStore::unindex_range(Lsn after, Lsn before) {
  if (before.is_zero()) {
    unindex_above(after);
    return;
  }
  for (auto it = by_lsn_.upper_bound(after); it != by_lsn_.end() && it->first < before;)
    it = erase_record(it);
  if (complete_lsn_ > after && complete_lsn_ < before) complete_lsn_ = after;
  advance_complete();
}

void SegmentStore::advance_complete() {
  while (true) {
    auto it = next_by_prev_.find(complete_lsn_);
    if (it == next_by_prev_.end() || it->second <= complete_lsn_) return;
    complete_lsn_ = it->second;
  }
}

void SegmentStore::recompute_complete() {
  // Start at the retention point; the first record after it may name a predecessor that
  // garbage collection already dropped.
  complete_lsn_ = retention_lsn_;
  auto it = next_by_prev_.upper_bound(retention_lsn_);
  if (it != next_by_prev_.begin()) {
    --it;
    if (it->second > complete_lsn_) complete_lsn_ = it->second;
  }
  advance_complete();
}

Lsn SegmentStore::last_lsn() const {
  return by_lsn_.empty() ? Lsn() : by_lsn_.rbegin()->first;
}

const RecordRef* SegmentStore::find(Lsn lsn) const {
  auto it = by_lsn_.find(lsn);
  return it == by_lsn_.end() ? nullptr : &it->second;
}

Task<Status> SegmentStore::append(std::vector<Record> records, AppendSource source,
                                  std::optional<Term> writer_term) {
  if (!broken_.is_ok()) co_return broken_;
  size_t bytes = 0;
  for (const auto& r : records) bytes += r.framed_size();
  if (bytes > kBatchBytesMax) {
    co_return Status(Code::kInvalidArgument, "append batch too large").with("bytes", bytes);
  }
  auto mine = std::make_shared<Pending>();
  mine->records = std::move(records);
  mine->source = source;
  mine->writer_term = writer_term;
  mine->epoch = seal_epoch_;
  queue_.push_back(mine);
  QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
  MutexGuard guard(write_mu_);
  if (mine->done) co_return mine->status;  // an earlier holder committed us with its batch
  // Let every request that is ready to run queue its records first. A real disk write
  // completes without suspending, so without this the leader would commit only itself.
  Status yielded = co_await env_.executor().yield();
  if (!yielded.is_ok() && !mine->done) {
    std::erase(queue_, mine);
    co_return yielded;
  }
  if (mine->done) co_return mine->status;
  // Only a lock holder takes from the queue, and every batch it takes ends done.
  QUIRE_ASSERT(std::find(queue_.begin(), queue_.end(), mine) != queue_.end());
  // Lead a group commit: take everything queued so far.
  std::vector<std::shared_ptr<Pending>> batch(queue_.begin(), queue_.end());
  queue_.clear();
  Status st = co_await flush(batch);
  for (auto& p : batch) {
    if (!p->done) {
      p->done = true;
      p->status = st;
    }
  }
  co_return mine->status;
}

namespace {
// Where a record just framed at `offset` of `buf` will be (its segment and file offset are
// filled in once the buffer is written).
RecordRef ref_of(const Record& r, const Bytes& buf, size_t offset) {
  QUIRE_ASSERT(offset + r.framed_size() == buf.size());
  return RecordRef{0,
                   offset,
                   static_cast<uint32_t>(buf.size() - offset),
                   decode_fixed32(buf.data() + offset + kRecordCrcOffset),
                   r.type,
                   r.table,
                   r.page,
                   r.lsn,
                   r.prev_lsn,
                   r.term,
                   r.base_lsn,
                   r.backlink_lsn};
}
}  // namespace

// What one group commit writes: the framed records and range markers, and what the batch
// adds to the chain, so later records of the same batch see the earlier ones.
struct SegmentStore::FlushPlan {
  Bytes buf;
  std::vector<RecordRef> refs;   // records, and range markers (type kAbandon), in file order
  std::vector<Lsn> marker_ends;  // for each marker in refs, the end of its range
  std::set<Lsn> in_batch;
  std::map<Lsn, Lsn> batch_prev;  // lsn -> prev of the records this flush stores
  Lsn max_backlink_lsn;           // the highest commit point of the LOG records planned
};

// What one request added to the plan, so a refusal can take all of it back.
struct SegmentStore::PlanUndo {
  size_t buf_bytes = 0;
  size_t refs = 0;
  size_t marker_ends = 0;
  Lsn max_backlink_lsn;
  std::vector<Lsn> added;                      // entries added to in_batch and batch_prev
  std::vector<std::pair<Lsn, Lsn>> unchained;  // batch_prev entries a marker removed
};

Task<Status> SegmentStore::flush(std::vector<std::shared_ptr<Pending>>& batch) {
  if (!broken_.is_ok()) co_return broken_;
  FlushPlan plan;
  for (auto& p : batch) {
    if (p->epoch < seal_epoch_) {
      p->done = true;
      p->status = Status(Code::kSealed, "segment sealed while the write was in flight");
      continue;
    }
    plan_pending(*p, plan);
  }
  if (plan.buf.empty()) co_return Status();
  co_return co_await write_plan(plan);
}

std::optional<std::pair<Lsn, Lsn>> SegmentStore::successor(const FlushPlan& plan, Lsn lsn) const {
  std::optional<std::pair<Lsn, Lsn>> best;
  auto s = by_lsn_.upper_bound(lsn);
  if (s != by_lsn_.end()) best = std::make_pair(s->first, s->second.prev_lsn);
  auto b = plan.batch_prev.upper_bound(lsn);
  if (b != plan.batch_prev.end() && (!best || b->first < best->first)) best = *b;
  QUIRE_ASSERT(!best || best->first > lsn);
  return best;
}

void SegmentStore::plan_pending(Pending& p, FlushPlan& plan) {
  if (p.writer_term) {
    Status st = fenced(*p.writer_term);
    if (!st.is_ok()) {
      p.done = true;
      p.status = std::move(st);
      return;
    }
  }
  PlanUndo undo{
      plan.buf.size(), plan.refs.size(), plan.marker_ends.size(), plan.max_backlink_lsn, {}, {}};
  for (const auto& r : p.records) {
    Status st = plan_record(r, p.source, plan, undo);
    if (!st.is_ok()) {
      rollback_plan(plan, undo);
      p.done = true;
      p.status = refuse(std::move(st));
      return;
    }
  }
}

// Takes back everything one request added to the plan; earlier requests' records stay.
void SegmentStore::rollback_plan(FlushPlan& plan, PlanUndo& undo) {
  plan.buf.resize(undo.buf_bytes);
  plan.refs.resize(undo.refs);
  plan.marker_ends.resize(undo.marker_ends);
  plan.max_backlink_lsn = undo.max_backlink_lsn;
  // Re-chained first: a record this request added and a later one of it unchained goes.
  for (const auto& [l, prev] : undo.unchained) {
    plan.batch_prev[l] = prev;
    plan.in_batch.insert(l);
  }
  for (Lsn l : undo.added) {
    plan.in_batch.erase(l);
    plan.batch_prev.erase(l);
  }
}

// A writer's term below the highest the store holds: decided under the write lock, so no
// write of a fenced term is stored after raise_term returned.
Status SegmentStore::fenced(Term writer_term) const {
  if (writer_term >= max_term_) return Status();
  return Status(Code::kFenced, "a newer writer term has been seen")
      .with("term", writer_term.value)
      .with("highest_term", max_term_.value);
}

// Plans one record: skips a re-send, refuses (or for a peer's copy, drops) what must not
// be stored, marks the records it skips over (or replaces) abandoned, and frames it.
Status SegmentStore::plan_record(const Record& r, AppendSource source, FlushPlan& plan,
                                 PlanUndo& undo) {
  // Only a replacement (below) plans a record under an LSN stored or planned already, so
  // one planned in this batch is a re-send of it.
  if (plan.in_batch.count(r.lsn) > 0) return Status();
  if (const RecordRef* have = find(r.lsn); have != nullptr) {
    bool store = false;
    Status st = plan_stored_lsn(r, *have, source, plan, undo, &store);
    if (!st.is_ok() || !store) return st;
  } else if (auto next = successor(plan, r.lsn); next && next->second < r.lsn) {
    // A stored successor that skips over this record: it was abandoned; do not store it.
    if (source == AppendSource::kWriter) {
      // The writer would be told OK for a record nobody can ever read.
      return Status(Code::kOlder, "the chain already skips this lsn: it was abandoned")
          .with("lsn", r.lsn.value)
          .with("successor", next->first.value)
          .with("successor_prev", next->second.value);
    }
    abandoned_dropped_++;
    env_.log().debug(
        kComponent, 30012, "dropped a record the chain already skips",
        {{"lsn", r.lsn}, {"successor", next->first}, {"successor_prev", next->second}});
    return Status();
  } else {
    QUIRE_RETURN_IF_ERROR(plan_chain_skip(r, source, plan, undo));
  }
  size_t offset = plan.buf.size();
  encode_record(r, plan.buf);
  plan.refs.push_back(ref_of(r, plan.buf, offset));
  plan.in_batch.insert(r.lsn);
  plan.batch_prev[r.lsn] = r.prev_lsn;
  undo.added.push_back(r.lsn);
  if (r.type == RecordType::kLog) {
    plan.max_backlink_lsn = std::max(plan.max_backlink_lsn, r.backlink_lsn);
  }
  return Status();
}

// This record skips over stored records: they were abandoned. A range marker first, so a
// restart drops them too.
Status SegmentStore::plan_chain_skip(const Record& r, AppendSource source, FlushPlan& plan,
                                     PlanUndo& undo) {
  auto over = successor(plan, r.prev_lsn);
  if (!over || over->first >= r.lsn) return Status();
  const Lsn commit = std::max(commit_point(), plan.max_backlink_lsn);
  // A peer's record at or below the commit point may be the committed chain repairing
  // a stale branch this server kept; a writer's new records are always above it.
  if (over->first <= commit && (source == AppendSource::kWriter || r.lsn > commit)) {
    return Status(Code::kInvalidArgument,
                  "the record's prev_lsn would abandon records at or below the commit point")
        .with("lsn", r.lsn.value)
        .with("prev_lsn", r.prev_lsn.value)
        .with("skipped_lsn", over->first.value)
        .with("commit_point", commit.value);
  }
  plan_abandon_marker(r.prev_lsn, r.lsn, plan, undo);
  return Status();
}

// A record under a stored LSN: the same bytes are a re-send (skipped); a different record
// follows the term conflict rule (segment_store.h).
Status SegmentStore::plan_stored_lsn(const Record& r, const RecordRef& have, AppendSource source,
                                     FlushPlan& plan, PlanUndo& undo, bool* store) {
  *store = false;
  Bytes probe;
  encode_record(r, probe);
  if (have.crc == decode_fixed32(probe.data() + kRecordCrcOffset) && have.type == r.type) {
    return Status();
  }
  if (have.term > r.term) {
    if (source == AppendSource::kWriter) {
      return Status(Code::kOlder, "a record of a newer term is stored under this lsn")
          .with("lsn", r.lsn.value)
          .with("term", r.term.value)
          .with("stored_term", have.term.value);
    }
    abandoned_dropped_++;
    env_.log().debug(kComponent, 30015, "dropped a record a newer term replaced",
                     {{"lsn", r.lsn}, {"term", r.term}, {"stored_term", have.term}});
    return Status();
  }
  if (have.term == r.term) {
    // Anything else under the same LSN and term is a writer bug the store refuses to paper
    // over.
    return Status(Code::kInvalidArgument, "a different record is already stored under this lsn")
        .with("lsn", r.lsn.value);
  }
  // Everything after r.prev_lsn goes, up to the newer writer's own records (if any are
  // here already, they came before this one).
  auto first = successor(plan, r.prev_lsn);
  QUIRE_ASSERT(first && first->first <= r.lsn);  // at least the stored record at r.lsn
  const Lsn commit = std::max(commit_point(), plan.max_backlink_lsn);
  if (first->first <= commit) {
    return Status(Code::kInvalidArgument,
                  "a record of an older term at or below the commit point would be replaced")
        .with("lsn", r.lsn.value)
        .with("first_replaced_lsn", first->first.value)
        .with("commit_point", commit.value);
  }
  Lsn end;  // zero: no bound
  for (auto it = by_lsn_.upper_bound(r.lsn); it != by_lsn_.end(); ++it) {
    if (it->second.term >= r.term) {
      end = it->first;
      break;
    }
  }
  for (const RecordRef& planned : plan.refs) {
    if (planned.type != RecordType::kAbandon && planned.lsn > r.lsn && planned.term >= r.term &&
        (end.is_zero() || planned.lsn < end)) {
      end = planned.lsn;
    }
  }
  env_.log().info(kComponent, 30016, "a newer term replaces stored records",
                  {{"lsn", r.lsn}, {"term", r.term}, {"stored_term", have.term}});
  plan_abandon_marker(r.prev_lsn, end, plan, undo);
  *store = true;
  return Status();
}

// Marks the records in (after, before) abandoned (before zero: every record after),
// ahead of the record that abandons them in the same write.
void SegmentStore::plan_abandon_marker(Lsn after, Lsn before, FlushPlan& plan, PlanUndo& undo) {
  QUIRE_ASSERT(before.is_zero() || after < before);
  Record marker;
  marker.type = RecordType::kAbandon;
  marker.lsn = after;
  marker.base_lsn = before;
  size_t offset = plan.buf.size();
  encode_record(marker, plan.buf);
  plan.refs.push_back(ref_of(marker, plan.buf, offset));
  plan.marker_ends.push_back(before);
  for (auto it = plan.batch_prev.upper_bound(after);
       it != plan.batch_prev.end() && (before.is_zero() || it->first < before);) {
    undo.unchained.push_back(*it);
    plan.in_batch.erase(it->first);
    it = plan.batch_prev.erase(it);
  }
}

// A refused write: logged (rate-limited, a peer can repeat it) and returned.
Status SegmentStore::refuse(Status why) {
  if (auto suppressed = refusal_log_.admit(env_.executor().now())) {
    env_.log().warn(kComponent, 30014, "refused a write that would lose or drop records",
                    {{"error", why}, {"suppressed", *suppressed}});
  }
  return why;
}

// Writes the plan to the active segment (rolling over when it would pass its bound),
// syncs it, and only then indexes what it holds.
Task<Status> SegmentStore::write_plan(FlushPlan& plan) {
  Result<Segment*> active = co_await active_segment();
  if (!active.is_ok()) co_return active.status();
  Segment* seg = *active;
  if (seg->size > kSegmentHeaderBytes && seg->size + plan.buf.size() > options_.segment_bytes_max) {
    // Roll over: the full segment is already synced (every write is), so just start anew.
    QUIRE_CO_RETURN_IF_ERROR(co_await create_segment(active_ + 1));
    seg = segments_.at(active_).get();
  }
  auto off = co_await write_at_end(*seg, plan.buf);
  if (off.code() == Code::kNoSpace) co_return co_await refuse_for_space(*seg, off.status());
  if (!off.is_ok()) co_return break_store(off.status());
  const MonoTime sync_start = env_.executor().now();
  Status st = co_await seg->file->sync();
  if (!st.is_ok()) co_return break_store(st);
  last_sync_ = env_.executor().now() - sync_start;
  seg->size = *off + plan.buf.size();
  size_t marker = 0;
  for (auto& ref : plan.refs) {
    ref.segment = seg->number;
    ref.offset += *off;
    if (ref.type == RecordType::kAbandon) {
      const Lsn before = plan.marker_ends.at(marker++);
      unindex_range(ref.lsn, before);
      markers_.push_back(ref);
      env_.log().info(kComponent, 30013, "the chain skips stored records: they were abandoned",
                      {{"after_lsn", ref.lsn}, {"before_lsn", before}});
    } else if (!by_lsn_.count(ref.lsn)) {
      index_record(ref);
    }
  }
  QUIRE_ASSERT(marker == plan.marker_ends.size());
  advance_complete();
  co_return Status();
}

Task<Result<uint64_t>> SegmentStore::write_at_end(Segment& seg, ByteView buf) {
  const uint64_t at = seg.size;
  const uint64_t end = at + buf.size();
  QUIRE_CO_RETURN_IF_ERROR(co_await seg.file->write(at, buf));
  if (end <= seg.file_end) co_return at;
  seg.file_end = end;
  // Past the zeros: the next ones, up to the roll-over bound. They only spare later syncs
  // a journal commit, so a failed write of them (a full disk) fails no group: the next
  // group tries again.
  const uint64_t ahead =
      end < options_.segment_bytes_max
          ? std::min<uint64_t>(options_.zero_ahead_bytes, options_.segment_bytes_max - end)
          : 0;
  if (ahead == 0) co_return at;
  if (zeros_.size() < ahead) zeros_.assign(ahead, 0);
  Status zeroed = co_await seg.file->write(end, ByteView(zeros_.data(), ahead));
  if (zeroed.is_ok()) {
    seg.file_end = end + ahead;
  } else if (auto suppressed = zero_write_log_.admit(env_.executor().now())) {
    env_.log().warn(kComponent, 30022,
                    "could not write zeros ahead of the records; this group's sync commits the "
                    "file's growth",
                    {{"segment", seg.number}, {"error", zeroed}, {"suppressed", *suppressed}});
  }
  co_return at;
}

// Not synced: a crash that loses the cut leaves the zeros, and recovery cuts them again.
Task<Status> SegmentStore::trim_zeros(Segment& seg) {
  // A segment whose file is closed is sealed, and its zeros were cut at its seal or at
  // recovery; only the active segment has zeros, and its file is open.
  if (seg.file == nullptr) co_return Status();
  // The file's own size, not file_end: a write of zeros a full disk refused may have laid
  // down part of them.
  auto file_size = seg.file->size();
  if (!file_size.is_ok()) co_return file_size.status();
  if (*file_size <= seg.size) {
    seg.file_end = seg.size;
    co_return Status();
  }
  QUIRE_CO_RETURN_IF_ERROR(co_await seg.file->truncate(seg.size));
  seg.file_end = seg.size;
  co_return Status();
}

Task<Status> SegmentStore::seal() {
  if (!broken_.is_ok()) co_return broken_;
  // Writes queued for the sealed segment fail from this moment, before we get the lock.
  seal_epoch_++;
  seals_++;
  QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
  MutexGuard guard(write_mu_);
  if (!broken_.is_ok()) co_return broken_;
  // An active segment with nothing past its header stays active: no file for an empty
  // segment (the writes in flight already failed through the epoch).
  if (active_ == 0 || segments_.at(active_)->size <= kSegmentHeaderBytes) co_return Status();
  // Every acknowledged write is synced already; the next segment begins here.
  co_return co_await create_segment(active_ + 1);
}

Task<Result<RecordRef>> SegmentStore::write_marker(const Record& marker) {
  Bytes buf;
  encode_record(marker, buf);
  Result<Segment*> active = co_await active_segment();
  if (!active.is_ok()) co_return active.status();
  Segment* seg = *active;
  auto off = co_await write_at_end(*seg, buf);
  if (off.code() == Code::kNoSpace) co_return co_await refuse_for_space(*seg, off.status());
  if (!off.is_ok()) co_return break_store(off.status());
  Status st = co_await seg->file->sync();
  if (!st.is_ok()) co_return break_store(st);
  seg->size = *off + buf.size();
  RecordRef ref = ref_of(marker, buf, 0);
  ref.segment = seg->number;
  ref.offset = *off;
  co_return ref;
}

Task<Status> SegmentStore::abandon_after(Lsn lsn, std::optional<Term> writer_term) {
  if (!broken_.is_ok()) co_return broken_;
  QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
  MutexGuard guard(write_mu_);
  if (!broken_.is_ok()) co_return broken_;
  if (writer_term) QUIRE_CO_RETURN_IF_ERROR(fenced(*writer_term));
  if (lsn < commit_point()) {
    co_return refuse(Status(Code::kInvalidArgument,
                            "abandon after an lsn below the commit point: committed records")
                         .with("lsn", lsn.value)
                         .with("commit_point", commit_point().value));
  }
  if (by_lsn_.upper_bound(lsn) == by_lsn_.end()) co_return Status();  // nothing above it
  Record marker;
  marker.type = RecordType::kAbandon;
  marker.lsn = lsn;
  auto written = co_await write_marker(marker);
  if (!written.is_ok()) co_return written.status();
  markers_.push_back(*written);
  unindex_above(lsn);
  env_.log().info(kComponent, 30009, "abandoned records", {{"after_lsn", lsn}});
  co_return Status();
}

Task<Status> SegmentStore::raise_term(Term term) {
  if (!broken_.is_ok()) co_return broken_;
  QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
  MutexGuard guard(write_mu_);
  if (!broken_.is_ok()) co_return broken_;
  if (term <= max_term_) co_return Status();
  Record marker;
  marker.type = RecordType::kTerm;
  marker.term = term;
  auto written = co_await write_marker(marker);
  if (!written.is_ok()) co_return written.status();
  env_.log().info(kComponent, 30017, "writer term raised",
                  {{"term", term}, {"previous_term", max_term_}});
  max_term_ = term;
  term_marker_segment_ = written->segment;
  co_return Status();
}

Task<Status> SegmentStore::set_retention(Lsn lsn) {
  if (!broken_.is_ok()) co_return broken_;
  // Live clock readings for the log line: the loop's clock reads one value per turn, and
  // the index drop runs within turns.
  const MonoTime asked = env_.clock().monotonic_now();
  QUIRE_CO_RETURN_IF_ERROR(co_await retention_mu_.lock());
  MutexGuard retention_guard(retention_mu_);
  MonoTime started, persisted;
  std::vector<Lsn> dead;
  std::optional<std::vector<CopyGap>> gaps_before;  // set when this step persists new gaps
  bool dropped_at_once = false;
  {
    QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
    MutexGuard guard(write_mu_);
    if (!broken_.is_ok()) co_return broken_;
    if (lsn <= retention_lsn_) co_return Status();  // retention only moves forward
    started = env_.clock().monotonic_now();
    if (lsn > checkpoint_log_lsn()) {
      co_return refuse(Status(Code::kNotYetMaterialized,
                              "retention past the newest complete checkpoint this server holds")
                           .with("lsn", lsn.value)
                           .with("checkpoint_log_lsn", checkpoint_log_lsn().value));
    }
    if (complete_lsn_ < lsn) {
      // The chain will look complete from `lsn` on, but this store lacks records in
      // (complete_lsn, lsn], page versions a checkpoint at `lsn` still uses among them.
      // Until the server copied them from a peer (finish_copy), reads must not trust the
      // chain. Durable before the retention point is: a restart must not forget the gap.
      // Which stretches it lacks is found now, while the links below `lsn` are still
      // indexed (chain_gaps), and persisted first.
      std::vector<CopyGap> gaps = copy_gaps_;
      gaps_before = copy_gaps_;
      std::vector<CopyGap> found = chain_gaps(lsn, complete_lsn_);
      gaps.insert(gaps.end(), found.begin(), found.end());
      gaps = bounded_gaps(std::move(gaps));
      if (!gaps.empty()) {  // none when the chain crossing `lsn` forks below complete_lsn
        QUIRE_CO_RETURN_IF_ERROR(co_await write_gaps_file(gaps));
        copy_gaps_ = std::move(gaps);
        env_.log().info(kComponent, 30019, "retention jumps a gap in the chain; copy from peers",
                        {{"retention_lsn", lsn},
                         {"complete_lsn", complete_lsn_},
                         {"copy_from", copy_gaps_.front().from},
                         {"copy_to", copy_gaps_.back().to},
                         {"gaps", copy_gaps_.size()}});
      }
    }
    Status kept = co_await write_lsn_file(kRetentionFile, lsn);
    if (kept.code() == Code::kNoSpace) kept = co_await overwrite_retention_file(lsn);
    if (!kept.is_ok()) {
      // Refused for space: the retention point stays, and so do the gaps it would have
      // jumped (the COPY_GAPS file may already list them: recovery reads gaps that reach
      // past the retention point as a jump a crash cut short).
      if (gaps_before) copy_gaps_ = std::move(*gaps_before);
      co_return kept;
    }
    persisted = env_.clock().monotonic_now();
    retention_lsn_ = lsn;
    dead = dead_below_retention(lsn);
    if (complete_lsn_ < lsn) {
      // The chain is found again from the retention point once what lies below it is
      // gone (recompute_complete), so this rare step drops everything at once.
      drop_records(dead);
      recompute_complete();
      dropped_at_once = true;
    }
    QUIRE_ASSERT(complete_lsn_ >= retention_lsn_);
  }
  // Everything a reader at or above the retention point uses stays; what is dropped here
  // only appends below it could touch, and the write lock is free meanwhile, so writes go
  // on between the steps (a big step once held a server's writes for about 100 ms).
  if (!dropped_at_once) QUIRE_CO_RETURN_IF_ERROR(co_await drop_records_in_steps(dead));
  const MonoTime indexed = env_.clock().monotonic_now();
  auto deleted = co_await delete_dead_segments();
  if (!deleted.is_ok()) co_return deleted.status();
  std::erase_if(damaged_, [this](const DamagedRange& d) {
    return d.segment != 0 && segments_.count(d.segment) == 0;
  });
  env_.log().info(kComponent, 30010, "retention advanced",
                  {{"retention_lsn", lsn},
                   {"records_dropped", dead.size()},
                   {"segments_deleted", *deleted},
                   {"wait_us", to_micros(started - asked)},
                   {"persist_us", to_micros(persisted - started)},
                   {"drop_us", to_micros(indexed - persisted)},
                   {"total_us", to_micros(env_.clock().monotonic_now() - started)}});
  co_return Status();
}

// Persists a file of the directory (RETENTION before anything is dropped, COPY_GAPS): temp
// file, sync, rename, sync the directory. A full disk refusing the temp file or the rename
// is NoSpace (the old file stays in force); any other failure breaks the store.
Task<Status> SegmentStore::write_lsn_file(const char* name, Lsn lsn) {
  co_return co_await write_dir_file(name, encode_lsn_file(lsn));
}

// A full disk has no room for RETENTION's temp file; yet advancing the retention point is
// what frees space (the segments it leaves dead are deleted). So the file in force is
// overwritten where it is: 12 bytes in one sector, in blocks it already has. A write torn
// anyway reads as corrupt, which recovery takes as no retention point (the server then
// copies from its peers what it lacks). NoSpace again when there is no file yet.
Task<Status> SegmentStore::overwrite_retention_file(Lsn lsn) {
  const std::string path = options_.dir + "/" + kRetentionFile;
  auto f = co_await env_.disk().open(path, {});
  if (f.code() == Code::kNotFound) {
    co_return no_space(Status(Code::kNoSpace, "no room for a first retention file"));
  }
  if (!f.is_ok()) co_return break_store(f.status());
  Status st = co_await (*f)->write(0, encode_lsn_file(lsn));
  if (st.code() == Code::kNoSpace) co_return no_space(std::move(st));
  if (st.is_ok()) st = co_await (*f)->sync();
  if (!st.is_ok()) co_return break_store(std::move(st));
  overwrites_in_place_++;
  env_.log().warn(kComponent, 30024,
                  "the disk is full: the retention file was overwritten in place, to free space",
                  {{"retention_lsn", lsn}});
  co_return Status();
}

Task<Status> SegmentStore::write_dir_file(const char* name, Bytes b) {
  std::string tmp = options_.dir + "/" + name + ".tmp";
  auto f = co_await env_.disk().open(tmp, {.create = true});
  if (f.code() == Code::kNoSpace) co_return no_space(f.status());
  if (!f.is_ok()) co_return break_store(f.status());
  Status st = co_await (*f)->truncate(0);
  if (st.is_ok()) st = co_await (*f)->write(0, b);
  if (st.code() == Code::kNoSpace) {
    // Refused before the rename: the file in use is unchanged. The temp goes, for its space.
    f->reset();
    Status gone = co_await env_.disk().unlink(tmp);
    if (!gone.is_ok() && gone.code() != Code::kNotFound) co_return break_store(std::move(gone));
    co_return no_space(std::move(st));
  }
  if (st.is_ok()) st = co_await (*f)->sync();
  if (st.is_ok()) st = co_await env_.disk().rename(tmp, options_.dir + "/" + name);
  if (st.code() == Code::kNoSpace) co_return no_space(std::move(st));  // rename: nothing moved
  if (st.is_ok()) st = co_await env_.disk().sync_dir(options_.dir);
  if (!st.is_ok()) co_return break_store(st);
  co_return Status();
}

Task<Status> SegmentStore::write_gaps_file(const std::vector<CopyGap>& gaps) {
  co_return co_await write_dir_file(kCopyGapsFile, encode_copy_gaps_file(gaps));
}

Task<Status> SegmentStore::finish_copy(Lsn through) {
  if (!broken_.is_ok()) co_return broken_;
  QUIRE_CO_RETURN_IF_ERROR(co_await write_mu_.lock());
  MutexGuard guard(write_mu_);
  if (copy_gaps_.empty() || through <= copy_gaps_.front().from) co_return Status();
  std::vector<CopyGap> left;
  for (const CopyGap& g : copy_gaps_) {
    if (g.to <= through) continue;
    left.push_back({std::max(g.from, through), g.to});
  }
  if (!left.empty()) {
    // Part copied: the rest stays to be copied, across restarts.
    QUIRE_CO_RETURN_IF_ERROR(co_await write_gaps_file(left));
    copy_gaps_ = std::move(left);
    co_return Status();
  }
  Status st = co_await env_.disk().unlink(options_.dir + "/" + kCopyGapsFile);
  if (st.code() == Code::kNotFound) st = Status();
  if (st.is_ok()) {
    st = co_await env_.disk().unlink(options_.dir + "/" + kCopyFromFile);  // an older one
    if (st.code() == Code::kNotFound) st = Status();
  }
  if (st.is_ok()) st = co_await env_.disk().sync_dir(options_.dir);
  if (!st.is_ok()) co_return break_store(st);
  copy_gaps_.clear();
  co_return Status();
}

// The chain a retention point at `lsn` will follow (recompute_complete: the link with the
// highest predecessor at or below it), walked back along prev_lsn down to `floor`. Where a
// record is missing, every record down to the next one stored may be: that range is a
// gap, and the walk goes on from that record (a record of an abandoned tail still links
// back into the chain, so a walk through one loses nothing). The store holds every other
// record of the chain in (floor, lsn]: a server that restarted stale and then took new
// writes lacks only what it missed, and copies only that. Oldest first.
std::vector<CopyGap> SegmentStore::chain_gaps(Lsn lsn, Lsn floor) const {
  std::vector<CopyGap> gaps;
  Lsn at = lsn;
  auto link = next_by_prev_.upper_bound(lsn);
  if (link != next_by_prev_.begin() && std::prev(link)->second > lsn) at = std::prev(link)->first;
  for (size_t steps = 0; at > floor; ++steps) {
    if (steps == kGapWalkMax) {
      gaps.push_back({floor, at});
      break;
    }
    const RecordRef* ref = find(at);
    if (ref != nullptr && ref->prev_lsn < at) {
      at = ref->prev_lsn;
      continue;
    }
    auto below = by_lsn_.lower_bound(at);
    Lsn next = below == by_lsn_.begin() ? Lsn(0) : std::prev(below)->first;
    next = std::max(next, floor);
    if (!gaps.empty() && gaps.back().from == at) {
      gaps.back().from = next;  // adjoining: one gap
    } else {
      gaps.push_back({next, at});
    }
    at = next;
  }
  std::reverse(gaps.begin(), gaps.end());
  return gaps;
}

// At most kCopyGapsMax gaps: the ones closest together are merged (a wider gap only makes
// the copy take more, never less).
std::vector<CopyGap> SegmentStore::bounded_gaps(std::vector<CopyGap> in) {
  std::sort(in.begin(), in.end(),
            [](const CopyGap& a, const CopyGap& b) { return a.from < b.from; });
  std::vector<CopyGap> gaps;  // overlapping or adjoining ones merged, empty ones left out
  for (const CopyGap& g : in) {
    if (g.from >= g.to) continue;
    if (!gaps.empty() && g.from <= gaps.back().to) {
      gaps.back().to = std::max(gaps.back().to, g.to);
    } else {
      gaps.push_back(g);
    }
  }
  if (gaps.size() <= kCopyGapsMax) return gaps;
  std::vector<size_t> cuts(gaps.size() - 1);  // cut i lies between gaps i and i + 1
  for (size_t i = 0; i < cuts.size(); ++i) cuts[i] = i;
  auto space = [&](size_t i) { return gaps[i + 1].from.value - gaps[i].to.value; };
  std::stable_sort(cuts.begin(), cuts.end(),
                   [&](size_t a, size_t b) { return space(a) > space(b); });
  cuts.resize(kCopyGapsMax - 1);  // keep the widest spaces between gaps
  std::sort(cuts.begin(), cuts.end());
  std::vector<CopyGap> out;
  size_t first = 0;
  for (size_t cut : cuts) {
    out.push_back({gaps[first].from, gaps[cut].to});
    first = cut + 1;
  }
  out.push_back({gaps[first].from, gaps.back().to});
  return out;
}

// What no reader at or above `lsn` needs: log records at or below it, page versions
// older than the newest full image at or below it, and checkpoint completions older than
// the newest one at or below it (a record can be dead for two reasons and is then listed
// twice, and counted twice in the log line, as it always was).
std::vector<Lsn> SegmentStore::dead_below_retention(Lsn lsn) const {
  std::vector<Lsn> dead;
  for (const auto& [l, ref] : by_lsn_) {
    if (l > lsn) break;
    if (ref.type == RecordType::kLog) dead.push_back(l);
  }
  for (const auto& [key, lsns] : pages_) {
    // Keep the newest full image at or below the point and everything after it.
    size_t keep_from = 0;
    for (size_t i = 0; i < lsns.size() && lsns[i] <= lsn; ++i) {
      RecordType t = by_lsn_.at(lsns[i]).type;
      if (t != RecordType::kDelta) keep_from = i;
    }
    for (size_t i = 0; i < keep_from; ++i) dead.push_back(lsns[i]);
  }
  std::vector<RecordRef> ckpts = checkpoints();
  for (size_t i = 0; i + 1 < ckpts.size() && ckpts[i + 1].lsn <= lsn; ++i)
    dead.push_back(ckpts[i].lsn);
  return dead;
}

void SegmentStore::drop_records(std::span<const Lsn> dead) {
  for (Lsn l : dead) {
    QUIRE_ASSERT(l <= retention_lsn_);  // nothing above the retention point is ever dropped
    auto it = by_lsn_.find(l);
    if (it != by_lsn_.end()) erase_record(it);  // gone already: listed twice, or abandoned
  }
}

// About 3 ms of index work a step on this machine's kind of CPU, then other tasks run.
constexpr size_t kRetentionDropStep = 4096;

Task<Status> SegmentStore::drop_records_in_steps(const std::vector<Lsn>& dead) {
  std::span<const Lsn> rest(dead);
  while (!rest.empty()) {
    const size_t n = std::min(rest.size(), kRetentionDropStep);
    drop_records(rest.first(n));
    rest = rest.subspan(n);
    if (rest.empty()) break;
    // What is left is dropped by the next retention step if this one ends here.
    QUIRE_CO_RETURN_IF_ERROR(co_await env_.executor().yield());
    if (!broken_.is_ok()) co_return broken_;
  }
  co_return Status();
}

// Deletes sealed segments that hold nothing live (abandon markers and the newest TERM
// marker count as live); returns how many. A segment that is not the active one never
// gains a record, so one found dead stays dead while the deletion waits on the disk.
Task<Result<size_t>> SegmentStore::delete_dead_segments() {
  std::set<uint64_t> live_markers;
  for (const auto& m : markers_) live_markers.insert(m.segment);
  if (term_marker_segment_ != 0) live_markers.insert(term_marker_segment_);  // fencing survives
  std::vector<uint64_t> doomed;
  // With no active segment (a full disk at recovery), the newest sealed one may go too:
  // that frees space, and segment numbers stay above it (pending_segment_).
  for (const auto& [num, seg] : segments_) {
    if (num != active_ && !indexed_per_segment_.contains(num) && !live_markers.contains(num))
      doomed.push_back(num);
  }
  for (uint64_t num : doomed) {
    QUIRE_ASSERT(num != active_);
    cache_forget(*segments_.at(num));
    segments_.erase(num);
    Status st = co_await env_.disk().unlink(path(num));
    if (!st.is_ok()) co_return break_store(st);
  }
  if (!doomed.empty()) {
    Status st = co_await env_.disk().sync_dir(options_.dir);
    if (!st.is_ok()) co_return break_store(st);
  }
  co_return doomed.size();
}

Task<Result<Record>> SegmentStore::read(const RecordRef& ref) {
  auto records = co_await read_many(std::span<const RecordRef>(&ref, 1));
  if (!records.is_ok()) co_return records.status();
  QUIRE_ASSERT(records->size() == 1);
  co_return std::move(records->front());
}

Task<Result<std::vector<Record>>> SegmentStore::read_many(std::span<const RecordRef> refs) {
  std::vector<Record> out;
  out.reserve(refs.size());
  Bytes buf;
  for (size_t first = 0; first < refs.size();) {
    // The run: records that follow each other in one segment, within the bound.
    size_t end = first + 1;
    uint64_t bytes = refs[first].size;
    while (end < refs.size() && refs[end].segment == refs[first].segment &&
           refs[end].offset == refs[end - 1].offset + refs[end - 1].size &&
           bytes + refs[end].size <= kReadRunBytesMax) {
      bytes += refs[end].size;
      end++;
    }
    auto file = co_await segment_file(refs[first].segment);
    if (!file.is_ok()) co_return Status(file.status()).with("lsn", refs[first].lsn.value);
    buf.resize(bytes);
    auto n = co_await (*file)->read(refs[first].offset, buf);
    if (!n.is_ok()) co_return n.status();
    uint64_t at = 0;
    for (size_t i = first; i < end; i++) {
      const RecordRef& ref = refs[i];
      if (*n < at + ref.size) {
        co_return Status(Code::kCorruption, "record cut short on disk")
            .with("segment", ref.segment)
            .with("lsn", ref.lsn.value);
      }
      DecodedRecord d = decode_record(ByteView(buf.data() + at, ref.size));
      if (d.outcome != DecodeOutcome::kOk || d.record.lsn != ref.lsn) {
        Status err =
            d.outcome == DecodeOutcome::kOk ? corruption("record lsn changed on disk") : d.error;
        if (err.is_ok()) err = corruption("record damaged on disk");
        env_.log().error(
            kComponent, 30011, "stored record failed its checksum; not served",
            {{"segment", ref.segment}, {"offset", ref.offset}, {"lsn", ref.lsn}, {"error", err}});
        co_return std::move(err).with("segment", ref.segment).with("lsn", ref.lsn.value);
      }
      out.push_back(std::move(d.record));
      at += ref.size;
    }
    first = end;
  }
  co_return out;
}

Result<std::vector<RecordRef>> SegmentStore::page_chain(TableId table, PageId page,
                                                        Lsn as_of) const {
  auto it = pages_.find({table, page});
  if (it == pages_.end() || it->second.empty() || it->second.front() > as_of) {
    return Status(Code::kNotFound, "no such page")
        .with("table", table.value)
        .with("page", page.value)
        .with("as_of", as_of.value);
  }
  const auto& lsns = it->second;
  size_t end =
      std::upper_bound(lsns.begin(), lsns.end(), as_of) - lsns.begin();  // lsns[0..end) <= as_of
  QUIRE_ASSERT(end > 0);  // the oldest version is at or below as_of (checked above)
  const RecordRef& newest = by_lsn_.at(lsns[end - 1]);
  if (newest.type == RecordType::kDiscard) {
    return Status(Code::kDiscarded, "page was discarded")
        .with("table", table.value)
        .with("page", page.value)
        .with("lsn", newest.lsn.value);
  }
  size_t image = end;
  for (size_t i = end; i-- > 0;) {
    if (by_lsn_.at(lsns[i]).type != RecordType::kDelta) {
      image = i;
      break;
    }
  }
  if (image == end) {
    return Status(Code::kNotFound, "page has deltas but no full image at or below the lsn")
        .with("table", table.value)
        .with("page", page.value)
        .with("as_of", as_of.value);
  }
  std::vector<RecordRef> out;
  for (size_t i = image; i < end; ++i) out.push_back(by_lsn_.at(lsns[i]));
  return out;
}

std::vector<RecordRef> SegmentStore::scan_after(Lsn after, Lsn until, size_t max_bytes,
                                                bool log_only, Lsn* through) const {
  std::vector<RecordRef> out;
  size_t bytes = 0;
  Lsn covered = until;
  for (auto it = by_lsn_.upper_bound(after); it != by_lsn_.end() && it->first <= until; ++it) {
    if (log_only && it->second.type != RecordType::kLog) continue;
    if (!out.empty() && bytes + it->second.size > max_bytes) {
      covered = out.back().lsn;
      break;
    }
    out.push_back(it->second);
    bytes += it->second.size;
  }
  if (through) *through = std::max(covered, after);
  return out;
}

Lsn SegmentStore::checkpoint_log_lsn() const {
  Lsn out;
  for (Lsn l : checkpoint_lsns_) out = std::max(out, by_lsn_.at(l).base_lsn);
  return out;
}

std::vector<RecordRef> SegmentStore::checkpoints() const {
  std::vector<RecordRef> out;
  for (Lsn l : checkpoint_lsns_) out.push_back(by_lsn_.at(l));
  return out;
}

SegmentStoreStats SegmentStore::stats() const {
  SegmentStoreStats s;
  s.last_lsn = last_lsn();
  s.complete_lsn = complete_lsn_;
  s.retention_lsn = retention_lsn_;
  s.segments = segments_.size();
  s.sealed_segments = segments_.size() - (active_ != 0 ? 1 : 0);
  s.seals = seals_;
  s.records = by_lsn_.size();
  for (const auto& [n, seg] : segments_) s.bytes += seg->size;
  s.torn_bytes_truncated = torn_bytes_truncated_;
  s.no_space_refusals = no_space_refusals_;
  s.retention_overwrites = overwrites_in_place_;
  s.open_sealed_segments = open_sealed_.size();
  s.damaged = damaged_;
  return s;
}

}  // namespace quire
