#include "engine/engine.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "crypto/keystore_page.h"

namespace quire {

namespace {
constexpr const char* kComponent = "engine";
// A scan restarts when a checkpoint switched the stable state under it; after this many
// restarts it gives up with Busy.
constexpr int kScanRestartsMax = 8;
// A scan reads the ingest layer in batches of min(limit, kScanIngestBatch) +
// kScanIngestSlack versions.
constexpr size_t kScanIngestBatch = 1024;
// The smallest tree shape the engine accepts (smaller options are raised to these).
constexpr size_t kLeafBytesMaxFloor = 512;
constexpr size_t kFanoutMaxFloor = 4;
constexpr size_t kScanIngestSlack = 64;

// A pick-up that could not take a lock it needs.
PickupResult busy_pickup(Lsn checkpoint_lsn, uint64_t node_keystore_version, const char* why) {
  PickupResult r;
  r.outcome = PickupOutcome::kBusy;
  r.checkpoint_lsn = checkpoint_lsn;
  r.node_keystore_version = node_keystore_version;
  r.detail = busy(why).at("pickup");
  return r;
}

PickupOutcome outcome_for(const Status& st) {
  if (st.code() == kKeystoreConflict) return PickupOutcome::kKeystoreConflict;
  switch (st.code()) {
    case Code::kVersionTooNew:
      return PickupOutcome::kVersionTooNew;
    case Code::kBusy:
      return PickupOutcome::kBusy;
    case Code::kCancelled:
      return PickupOutcome::kUnavailable;  // a wait cut short: like no answer
    default:
      break;
  }
  return code_is_retriable(st.code()) ? PickupOutcome::kUnavailable : PickupOutcome::kCorrupt;
}
}  // namespace

std::string_view checkpoint_step_name(CheckpointStep s) {
  switch (s) {
    case CheckpointStep::kPages:
      return "pages";
    case CheckpointStep::kKeystorePage:
      return "keystore_page";
    case CheckpointStep::kMetadataPage:
      return "metadata_page";
    case CheckpointStep::kCompletion:
      return "completion";
  }
  return "unknown";
}

std::string_view pickup_policy_name(PickupPolicy p) {
  switch (p) {
    case PickupPolicy::kAccept:
      return "accept";
    case PickupPolicy::kSkip:
      return "skip";
    case PickupPolicy::kResync:
      return "resync";
    case PickupPolicy::kAbort:
      return "abort";
  }
  return "unknown";
}

Result<PickupPolicy> parse_pickup_policy(std::string_view name) {
  for (PickupPolicy p :
       {PickupPolicy::kAccept, PickupPolicy::kSkip, PickupPolicy::kResync, PickupPolicy::kAbort}) {
    if (pickup_policy_name(p) == name) return p;
  }
  return invalid_argument(
      fmt::format("unknown policy '{}' (valid: accept, skip, resync, abort)", name));
}

std::string_view pickup_outcome_name(PickupOutcome o) {
  switch (o) {
    case PickupOutcome::kInstalled:
      return "Installed";
    case PickupOutcome::kAlreadyInstalled:
      return "AlreadyInstalled";
    case PickupOutcome::kOlder:
      return "Older";
    case PickupOutcome::kStaleKeystore:
      return "StaleKeystore";
    case PickupOutcome::kKeystoreAhead:
      return "KeystoreAhead";
    case PickupOutcome::kKeystoreConflict:
      return "KeystoreConflict";
    case PickupOutcome::kCorrupt:
      return "Corrupt";
    case PickupOutcome::kUnavailable:
      return "Unavailable";
    case PickupOutcome::kVersionTooNew:
      return "VersionTooNew";
    case PickupOutcome::kBusy:
      return "Busy";
    case PickupOutcome::kStaleKeystoreInstalled:
      return "StaleKeystore";
  }
  return "Unknown";
}

bool pickup_outcome_retriable(PickupOutcome o) {
  return o == PickupOutcome::kKeystoreAhead || o == PickupOutcome::kUnavailable ||
         o == PickupOutcome::kBusy;
}

Engine::Engine(Env& env, ReplicationClient& client, Kms& kms, EngineOptions options)
    : env_(env),
      client_(client),
      kms_(kms),
      options_(std::move(options)),
      random_(env.random_stream("engine")),
      keystore_(options_.cluster_id),
      ring_(options_.dek_uses_hard_limit),
      cache_(options_.cache_bytes),
      checkpoint_mu_(env.executor().scheduler()),
      keys_mu_(env.executor().scheduler()) {
  name_keystore_codes();  // the keystore's codes appear in this engine's statuses and logs
  options_.shape.leaf_bytes_max =
      std::max<size_t>(options_.shape.leaf_bytes_max, kLeafBytesMaxFloor);
  options_.shape.fanout_max = std::max<size_t>(options_.shape.fanout_max, kFanoutMaxFloor);
}

Engine::~Engine() = default;

PageSource Engine::page_source() {
  return PageSource{env_.executor(), client_, ring_, cache_, options_.io_timeout, options_.encrypt};
}

Engine::Table& Engine::table(TableId id) {
  auto it = tables_.find(id);
  if (it == tables_.end()) {
    it = tables_.emplace(id, Table{}).first;
    it->second.root.table = id;
  }
  return it->second;
}

std::vector<TableId> Engine::tables() const {
  std::vector<TableId> out;
  for (const auto& [id, t] : tables_) out.push_back(id);
  return out;
}

size_t Engine::ingest_bytes() const {
  size_t n = 0;
  for (const auto& [id, t] : tables_) n += t.ingest.bytes();
  return n;
}

size_t Engine::ingest_keys() const {
  size_t n = 0;
  for (const auto& [id, t] : tables_) n += t.ingest.key_count();
  return n;
}

void Engine::clear_ingest() {
  for (auto& [id, t] : tables_) t.ingest.clear();
}

// ---- Keys ---------------------------------------------------------------------------

Task<Status> Engine::apply_keystore_change(KeystoreChange change) {
  QUIRE_CO_RETURN_IF_ERROR(co_await keys_mu_.lock());
  MutexGuard guard(keys_mu_);
  // Unwrap the change's keys first, so a KMS outage leaves the keystore as it was and the
  // caller can simply apply the same change again later.
  Keystore next = keystore_;
  QUIRE_CO_RETURN_IF_ERROR(next.apply(change));
  Status st = co_await ring_.sync(kms_, next);
  if (!st.is_ok()) {
    ring_.forget_unknown(keystore_);
    co_return st;
  }
  st = keystore_.apply(change);
  QUIRE_ASSERT(st.is_ok());  // it applied to a copy of this keystore, under the lock
  co_return Status();
}

// Applies changes made against a draft to the node's keystore. They were all checked on
// the draft, which started equal to the keystore, so they apply here too.
Task<Result<std::vector<KeystoreChange>>> Engine::apply_all(std::vector<KeystoreChange> changes) {
  for (const KeystoreChange& c : changes) {
    Status st = keystore_.apply(c);
    QUIRE_ASSERT(st.is_ok());
  }
  Status st = co_await ring_.sync(kms_, keystore_);
  if (!st.is_ok()) {
    // The keystore moved on; the ring catches up on the next sync. Report it, but the
    // changes stand (a keystore never goes back).
    env_.log().warn(kComponent, 40001, "key ring could not unwrap new keys yet", {{"error", st}});
  }
  co_return changes;
}

Task<Result<std::vector<KeystoreChange>>> Engine::draft(
    Task<Result<std::vector<KeystoreChange>>> body) {
  // One key operation at a time: a draft copies the keystore and must find it unchanged
  // when it applies its changes.
  QUIRE_CO_RETURN_IF_ERROR(co_await keys_mu_.lock());
  MutexGuard guard(keys_mu_);
  auto result = co_await std::move(body);
  if (!result.is_ok()) ring_.forget_unknown(keystore_);
  co_return result;
}

Task<Result<std::vector<KeystoreChange>>> Engine::bootstrap_keys(std::vector<TableId> tables) {
  co_return co_await draft(bootstrap_draft(std::move(tables)));
}

Task<Result<std::vector<KeystoreChange>>> Engine::rotate_kek() {
  co_return co_await draft(rotate_kek_draft());
}

Task<Result<std::vector<KeystoreChange>>> Engine::rotate_cmk() {
  co_return co_await draft(rotate_cmk_draft());
}

Task<Result<std::vector<KeystoreChange>>> Engine::bootstrap_draft(std::vector<TableId> tables) {
  if (keystore_.version() != 0) co_return invalid_argument("keystore already bootstrapped");
  Keystore draft = keystore_;
  std::vector<KeystoreChange> changes;
  auto kek = co_await make_new_kek(kms_, *random_, draft);
  if (!kek.is_ok()) co_return kek.status();
  QUIRE_CO_RETURN_IF_ERROR(draft.apply(*kek));
  changes.push_back(std::move(*kek));
  KeystoreChange activate;
  activate.type = KeystoreChangeType::kActivateKek;
  activate.kek_version = draft.newest_kek_version();
  QUIRE_CO_RETURN_IF_ERROR(draft.apply(activate));
  changes.push_back(activate);
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  std::vector<uint64_t> ids{kLogTable.value};
  for (TableId t : tables) ids.push_back(t.value);
  for (uint64_t id : ids) {
    auto dek = make_new_dek(ring_, *random_, draft, id);
    if (!dek.is_ok()) co_return dek.status();
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(*dek));
    changes.push_back(std::move(*dek));
  }
  co_return co_await apply_all(std::move(changes));
}

Task<Result<std::vector<KeystoreChange>>> Engine::add_table_key(TableId table) {
  co_return co_await draft(add_table_key_draft(table));
}

Task<Result<std::vector<KeystoreChange>>> Engine::add_table_key_draft(TableId table) {
  if (keystore_.newest_dek(table.value)) co_return std::vector<KeystoreChange>{};
  Keystore draft = keystore_;
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  auto dek = make_new_dek(ring_, *random_, draft, table.value);
  if (!dek.is_ok()) co_return dek.status();
  std::vector<KeystoreChange> changes;
  changes.push_back(std::move(*dek));
  co_return co_await apply_all(std::move(changes));
}

Task<Result<std::vector<KeystoreChange>>> Engine::rotate_kek_draft() {
  Keystore draft = keystore_;
  std::vector<KeystoreChange> changes;
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  auto kek = co_await make_new_kek(kms_, *random_, draft);
  if (!kek.is_ok()) co_return kek.status();
  QUIRE_CO_RETURN_IF_ERROR(draft.apply(*kek));
  const uint32_t version = kek->kek_version;
  changes.push_back(std::move(*kek));
  KeystoreChange activate;
  activate.type = KeystoreChangeType::kActivateKek;
  activate.kek_version = version;
  QUIRE_CO_RETURN_IF_ERROR(draft.apply(activate));
  changes.push_back(activate);
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  // Rewrap every DEK version still under an older KEK; its material does not change, so
  // pages sealed under it stay readable.
  std::vector<DekRef> to_rewrap;
  for (const auto& [ref, dek] : draft.deks()) {
    if (dek.kek_version != version) to_rewrap.push_back(ref);
  }
  for (const DekRef& ref : to_rewrap) {
    auto ch = make_rewrap_dek(ring_, *random_, draft, ref);
    if (!ch.is_ok()) co_return ch.status();
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(*ch));
    changes.push_back(std::move(*ch));
  }
  for (const auto& [v, kek_entry] : draft.keks()) {
    if (v == version || kek_entry.state != KekState::kLive) continue;
    KeystoreChange retire;
    retire.type = KeystoreChangeType::kRetireKek;
    retire.kek_version = v;
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(retire));
    changes.push_back(retire);
  }
  co_return co_await apply_all(std::move(changes));
}

Task<Result<std::vector<KeystoreChange>>> Engine::rotate_cmk_draft() {
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, keystore_));
  auto cmk = co_await kms_.rotate();
  if (!cmk.is_ok()) co_return cmk.status();
  Keystore draft = keystore_;
  std::vector<KeystoreChange> changes;
  std::vector<uint32_t> keks;
  for (const auto& [v, entry] : draft.keks()) {
    if (entry.state != KekState::kDestroyed) keks.push_back(v);
  }
  for (uint32_t v : keks) {
    auto ch = co_await make_rewrap_kek(kms_, ring_, draft, v);
    if (!ch.is_ok()) co_return ch.status();
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(*ch));
    changes.push_back(std::move(*ch));
  }
  // Every rewrapped KEK unwraps, under the new CMK version, to the key held (as a KEK
  // rotation checks its draft): a KMS that returned a bad wrap fails the rotation here,
  // before the wrap is logged for good and found unusable at the next start.
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  env_.log().info(kComponent, 40002, "CMK rotated; KEKs rewrapped",
                  {{"cmk_version", *cmk}, {"keks", keks.size()}});
  co_return co_await apply_all(std::move(changes));
}

Task<Result<std::vector<KeystoreChange>>> Engine::renew_worn_deks() {
  co_return co_await draft(renew_worn_deks_draft());
}

Task<Result<std::vector<KeystoreChange>>> Engine::renew_worn_deks_draft() {
  Keystore draft = keystore_;
  QUIRE_CO_RETURN_IF_ERROR(co_await ring_.sync(kms_, draft));
  std::vector<uint64_t> worn;
  for (const auto& [ref, entry] : draft.deks()) {
    if (draft.newest_dek(ref.id) != ref) continue;
    DataKey* key = ring_.find(ref);
    if (key && key->wants_new_version()) worn.push_back(ref.id);
  }
  std::vector<KeystoreChange> changes;
  for (uint64_t id : worn) {
    auto dek = make_new_dek(ring_, *random_, draft, id);
    if (!dek.is_ok()) co_return dek.status();
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(*dek));
    env_.log().info(kComponent, 40003, "data key near its use limit; new version",
                    {{"dek_id", id}, {"dek_version", dek->dek_version}});
    changes.push_back(std::move(*dek));
  }
  if (changes.empty()) co_return changes;
  co_return co_await apply_all(std::move(changes));
}

Task<Result<std::vector<KeystoreChange>>> Engine::destroy_retired_keks(
    std::shared_ptr<const Keystore> oldest_retained) {
  co_return co_await draft(destroy_draft(std::move(oldest_retained)));
}

Task<Result<std::vector<KeystoreChange>>> Engine::destroy_draft(
    std::shared_ptr<const Keystore> oldest_retained) {
  std::vector<KeystoreChange> changes;
  if (!oldest_retained || !oldest_retained->is_prefix_of(keystore_)) co_return changes;
  Keystore draft = keystore_;
  for (const auto& [v, entry] : oldest_retained->keks()) {
    if (entry.state != KekState::kRetired) continue;
    auto now = draft.keks().find(v);
    if (now == draft.keks().end() || now->second.state != KekState::kRetired) continue;
    KeystoreChange destroy;
    destroy.type = KeystoreChangeType::kDestroyKek;
    destroy.kek_version = v;
    QUIRE_CO_RETURN_IF_ERROR(draft.apply(destroy));
    env_.log().info(
        kComponent, 40004, "KEK destroyed: no retained checkpoint needs it",
        {{"kek_version", v}, {"oldest_retained_keystore_version", oldest_retained->version()}});
    changes.push_back(destroy);
  }
  if (changes.empty()) co_return changes;
  co_return co_await apply_all(std::move(changes));
}

Status Engine::push_keystore(Timestamp ts) {
  auto snapshot = std::make_shared<const Keystore>(keystore_);
  return push_queue_.push(ts, std::move(snapshot));
}

// ---- Tables -------------------------------------------------------------------------

Status Engine::apply_write(TableId id, std::string key, Timestamp ts,
                           std::optional<std::string> value) {
  if (id.value < kFirstUserTable) {
    return Status(Code::kInvalidArgument, "table id is reserved").with("table", id.value);
  }
  if (key.size() > kKeyBytesMax || (value && value->size() > kValueBytesMax)) {
    return Status(Code::kInvalidArgument, "key or value too large")
        .with("table", id.value)
        .with("key_bytes", key.size())
        .with("value_bytes", value ? value->size() : 0);
  }
  if (ts <= checkpoint_ts_) {
    return Status(Code::kInvalidArgument, "write at or below the installed checkpoint's timestamp")
        .with("table", id.value)
        .with("ts", ts.value)
        .with("checkpoint_ts", checkpoint_ts_.value);
  }
  return table(id).ingest.put(std::move(key), ts, std::move(value));
}

Status Engine::below_oldest_readable(std::string_view step, Timestamp read_ts) const {
  return Status(Code::kOlder, fmt::format("{} below the oldest readable timestamp",
                                          step == "get" ? "read" : "scan"))
      .at(std::string(step))
      .with("read_ts", read_ts.value)
      .with("oldest_ts", checkpoint_ts_.value);
}

std::optional<std::optional<std::string>> Engine::get_cached(TableId id, std::string_view key,
                                                             Timestamp read_ts) {
  if (read_ts < checkpoint_ts_) return std::nullopt;
  auto it = tables_.find(id);
  if (it == tables_.end()) return std::optional<std::string>();
  if (const Version* v = it->second.ingest.get(key, read_ts)) return v->value;
  return tree_get_cached(cache_, it->second.root, key);
}

Task<Result<std::optional<std::string>>> Engine::get(TableId id, std::string key,
                                                     Timestamp read_ts) {
  // Nothing below waits when the pages are cached: no frame for the tree's read.
  if (auto cached = get_cached(id, key, read_ts)) co_return std::move(*cached);
  if (read_ts < checkpoint_ts_) co_return below_oldest_readable("get", read_ts);
  for (int attempt = 0; attempt < kScanRestartsMax; attempt++) {
    // A pick-up that switched the stable state during the tree read may have moved it past
    // this read's timestamp (and pruned the ingest versions it needs): check, and redo.
    if (read_ts < checkpoint_ts_) co_return below_oldest_readable("get", read_ts);
    auto it = tables_.find(id);
    if (it == tables_.end()) co_return std::optional<std::string>();
    if (const Version* v = it->second.ingest.get(key, read_ts)) co_return v->value;
    const uint64_t generation = generation_;
    PageSource source = page_source();
    auto value = co_await tree_get(source, it->second.root, key);
    if (generation != generation_) continue;
    co_return value;
  }
  co_return busy("read kept restarting under checkpoint switches")
      .at("get")
      .with("table", id.value);
}

Task<Result<std::vector<std::pair<std::string, std::string>>>> Engine::scan(
    TableId id, std::string lo, std::string hi, Timestamp read_ts, size_t limit) {
  if (read_ts < checkpoint_ts_) co_return below_oldest_readable("scan", read_ts);
  auto it = tables_.find(id);
  if (it == tables_.end() || limit == 0) co_return ScanEntries{};
  for (int attempt = 0; attempt < kScanRestartsMax; attempt++) {
    // A checkpoint that switched the state under an earlier attempt may have pruned the
    // versions this read needs.
    if (read_ts < checkpoint_ts_) co_return below_oldest_readable("scan", read_ts);
    auto out = co_await scan_attempt(it->second, lo, hi, read_ts, limit);
    if (!out.is_ok()) co_return out.status();
    if (*out) co_return std::move(**out);
  }
  co_return busy("scan kept restarting under checkpoint switches")
      .at("scan")
      .with("table", id.value);
}

Task<Result<std::optional<Engine::ScanEntries>>> Engine::scan_attempt(
    Table& t, const std::string& lo, const std::string& hi, Timestamp read_ts, size_t limit) {
  const size_t batch = std::min<size_t>(limit, kScanIngestBatch) + kScanIngestSlack;
  const uint64_t generation = generation_;
  PageSource source = page_source();
  TreeCursor cursor(source, t.root);
  Status st = co_await cursor.seek(lo);
  if (!st.is_ok()) co_return st;
  if (generation != generation_) co_return std::optional<ScanEntries>();
  std::vector<KeyVersion> ingest = t.ingest.scan(lo, hi, read_ts, batch);
  size_t ii = 0;
  ScanEntries out;
  auto in_range = [&](const std::string& k) { return hi.empty() || k < hi; };
  while (out.size() < limit) {
    if (ii == ingest.size() && ingest.size() == batch) {
      // Refill ingest from just after the last key it returned.
      std::string from = ingest.back().key;
      from.push_back('\0');
      ingest = t.ingest.scan(from, hi, read_ts, batch);
      ii = 0;
    }
    const bool has_stable = cursor.valid() && in_range(cursor.entry().key);
    const bool has_ingest = ii < ingest.size();
    if (!has_stable && !has_ingest) break;
    const bool take_ingest = has_ingest && (!has_stable || ingest[ii].key <= cursor.entry().key);
    if (take_ingest) {
      const KeyVersion& kv = ingest[ii++];
      if (has_stable && kv.key == cursor.entry().key) {
        st = co_await cursor.next();  // ingest wins over the stable entry
        if (!st.is_ok()) co_return st;
        if (generation != generation_) co_return std::optional<ScanEntries>();
      }
      if (kv.version.value) out.emplace_back(kv.key, *kv.version.value);
      continue;
    }
    out.emplace_back(cursor.entry().key, cursor.entry().value);
    st = co_await cursor.next();
    if (!st.is_ok()) co_return st;
    if (generation != generation_) co_return std::optional<ScanEntries>();
  }
  co_return std::optional<ScanEntries>(std::move(out));
}

// ---- Checkpoint (leader) ------------------------------------------------------------

Task<Status> Engine::write_step(RecordWriter& writer, std::vector<CheckpointStep> steps,
                                std::vector<Record> records) {
  QUIRE_ASSERT(!steps.empty());
  if (options_.before_checkpoint_step) {
    for (CheckpointStep step : steps) options_.before_checkpoint_step(step);
  }
  Status st = co_await writer.write(std::move(records),
                                    env_.executor().deadline_after(options_.io_timeout));
  if (st.is_ok()) co_return st;
  // Leave the chain clean for the next checkpoint; if that fails too, the next write
  // retries it (needs_recovery stays set).
  Status rec = co_await writer.recover(env_.executor().deadline_after(options_.io_timeout));
  std::string names;
  for (CheckpointStep step : steps) {
    if (!names.empty()) names += "+";
    names += checkpoint_step_name(step);
  }
  env_.log().warn(kComponent, 40010, "checkpoint step failed; previous checkpoint stays the latest",
                  {{"step", names}, {"error", st}, {"recover", rec}});
  co_return std::move(st).at(fmt::format("checkpoint:{}", checkpoint_step_name(steps.front())));
}

// A checkpoint being written: what each step hands the next.
struct Engine::CheckpointDraft {
  RecordWriter& writer;
  Timestamp checkpoint_ts;
  Lsn log_lsn;
  IngestPrune prune;
  // The keystore it references, and whether its keystore page must be written first.
  std::shared_ptr<const Keystore> ks;
  std::optional<PushEntry> selected;
  bool write_keystore = false;
  KeystoreRef ks_ref;  // the keystore page it references (written by this checkpoint or before)
  CheckpointInfo info;
  std::map<TableId, TableRoot> new_roots;
  std::vector<std::pair<PageKey, std::shared_ptr<const BtreeNode>>> new_pages;
  CheckpointMetadata meta;
  Lsn meta_lsn;
  uint32_t meta_crc = 0;
  Lsn done_lsn;
  std::vector<Record> tail;  // steps 2-4, written together
  // For the completion's log line (live clock readings: a build that never suspends
  // shows): when it began, when its pages were built and when they were durable, and when
  // the keystore, metadata and completion records were.
  MonoTime started_at, built_at, pages_durable_at, tail_durable_at;
};

Task<Result<CheckpointInfo>> Engine::checkpoint(RecordWriter& writer, Timestamp checkpoint_ts,
                                                Lsn log_lsn, IngestPrune prune) {
  Status locked = co_await checkpoint_mu_.lock(env_.executor().deadline_after(options_.io_timeout));
  if (!locked.is_ok()) co_return busy("checkpoint lock held too long").at("checkpoint");
  MutexGuard guard(checkpoint_mu_);
  if (checkpoint_ts < checkpoint_ts_) {
    co_return Status(Code::kInvalidArgument, "checkpoint timestamps never decrease")
        .at("checkpoint")
        .with("ts", checkpoint_ts.value)
        .with("checkpoint_ts", checkpoint_ts_.value);
  }
  if (writer.needs_recovery()) {
    QUIRE_CO_RETURN_IF_ERROR(
        co_await writer.recover(env_.executor().deadline_after(options_.io_timeout)));
  }
  CheckpointDraft d{writer, checkpoint_ts, log_lsn, prune};
  d.started_at = d.built_at = d.pages_durable_at = d.tail_durable_at = env_.clock().monotonic_now();
  QUIRE_CO_RETURN_IF_ERROR(choose_checkpoint_keystore(d));
  d.info.checkpoint_ts = checkpoint_ts;
  QUIRE_CO_RETURN_IF_ERROR(co_await write_checkpoint_pages(d));  // 1.
  // 2.-4. in one write (one round trip fewer or two while the log writer is held). A server
  // offers a completion only where its chain is whole up to it (complete_lsn): never
  // without the metadata and pages chained before it.
  std::vector<CheckpointStep> steps;
  if (d.write_keystore) {
    QUIRE_CO_RETURN_IF_ERROR(co_await add_checkpoint_keystore_page(d));
    steps.push_back(CheckpointStep::kKeystorePage);
  }
  add_checkpoint_metadata(d);
  add_checkpoint_completion(d);
  steps.push_back(CheckpointStep::kMetadataPage);
  steps.push_back(CheckpointStep::kCompletion);
  QUIRE_CO_RETURN_IF_ERROR(co_await write_step(d.writer, std::move(steps), std::move(d.tail)));
  d.tail_durable_at = env_.clock().monotonic_now();
  if (d.write_keystore) d.info.wrote_keystore_page = true;
  switch_to_written_checkpoint(d);
  co_return d.info;
}

Status Engine::choose_checkpoint_keystore(CheckpointDraft& d) {
  d.ks = checkpoint_keystore_;
  d.ks_ref = checkpoint_keystore_ref_;
  d.selected = push_queue_.select(d.checkpoint_ts);
  d.write_keystore = d.selected && d.selected->keystore->version() > d.ks_ref.version;
  if (d.write_keystore) {
    d.ks = d.selected->keystore;
  } else if (!d.ks && keystore_.version() == d.ks_ref.version && d.ks_ref.version > 0) {
    // A leader that started from a checkpoint holding exactly its keystore version.
    d.ks = std::make_shared<const Keystore>(keystore_);
  }
  if (options_.encrypt && !d.ks) {
    return Status(Code::kInvalidArgument, "no keystore pushed at or below the checkpoint timestamp")
        .at("checkpoint")
        .with("ts", d.checkpoint_ts.value);
  }
  return Status();
}

DataKey* Engine::planted_plaintext_key(DataKey* dek) {
  if (!options_.planted_bugs.plaintext_pages_once || planted_plaintext_) return dek;
  planted_plaintext_ = true;
  return nullptr;
}

// 1. Dirty pages, table by table.
Task<Status> Engine::write_checkpoint_pages(CheckpointDraft& d) {
  PageSource source = page_source();
  std::vector<Record> page_records;
  for (auto& [id, t] : tables_) {
    std::vector<KeyVersion> changes = t.ingest.collect_through(d.checkpoint_ts);
    if (changes.empty()) continue;
    DataKey* dek = nullptr;
    if (options_.encrypt) {
      std::optional<DekRef> ref = d.ks->newest_dek(id.value);
      if (ref) dek = ring_.find(*ref);
      if (!dek) {
        co_return Status(Code::kNotFound, "no data key for the table in the checkpoint's keystore")
            .at("checkpoint")
            .with("table", id.value)
            .with("keystore_version", d.ks->version());
      }
    }
    dek = planted_plaintext_key(dek);
    PageId largest = largest_page_id_;
    TreeBuild build{id, dek, *random_, d.writer, largest, options_.shape, {}, {}, 0, 0};
    // Reads go on between the steps: they see the tree this build replaces, and the
    // ingest versions it applies, which stay until after the switch.
    build.leaves_per_step = kCheckpointStepLeaves;
    build.between_steps = [this]() -> Task<Status> {
      Status st = co_await env_.executor().yield();
      if (st.is_ok() && options_.between_build_steps) co_await options_.between_build_steps();
      co_return st;
    };
    auto root = co_await tree_apply(source, build, t.root, std::move(changes));
    largest_page_id_ = std::max(largest_page_id_, largest);  // never reuse a page id
    if (!root.is_ok()) co_return Status(root.status()).at("checkpoint:pages");
    d.new_roots[id] = *root;
    for (Record& r : build.records) {
      d.info.bytes_written += r.payload.size();
      if (r.type == RecordType::kPage) d.info.pages_written++;
      page_records.push_back(std::move(r));
    }
    for (auto& p : build.new_pages) d.new_pages.push_back(std::move(p));
  }
  d.built_at = d.pages_durable_at = env_.clock().monotonic_now();
  // Written in parts of at most kCheckpointWriteBytesMax: the pages of a checkpoint after
  // ingest_bytes_max of large values pass one message's bound (Connection::kMaxMessageBytes),
  // and a checkpoint that can never be written would keep every write waiting for room. The
  // parts chain like any records; only the completion record (the tail) makes the checkpoint
  // the latest, so a part that fails leaves the previous one in place, as before.
  size_t next = 0;
  while (next < page_records.size()) {
    std::vector<Record> part;
    size_t bytes = 0;
    while (next < page_records.size() &&
           (part.empty() || bytes + page_records[next].framed_size() <= kCheckpointWriteBytesMax)) {
      bytes += page_records[next].framed_size();
      part.push_back(std::move(page_records[next++]));
    }
    // (A braced list as a co_await's argument does not compile with g++ 12.)
    std::vector<CheckpointStep> steps(1, CheckpointStep::kPages);
    Status st = co_await write_step(d.writer, std::move(steps), std::move(part));
    if (!st.is_ok()) co_return st;
  }
  d.pages_durable_at = env_.clock().monotonic_now();
  co_return Status();
}

// 2. The keystore page, when a newer pushed version is due.
Task<Status> Engine::add_checkpoint_keystore_page(CheckpointDraft& d) {
  QUIRE_ASSERT(d.write_keystore && d.selected);  // checked by choose_checkpoint_keystore
  auto page = co_await encode_keystore_page(kms_, *random_, *d.ks, d.selected->ts);
  if (!page.is_ok()) co_return Status(page.status()).at("checkpoint:keystore_page");
  Record r;
  r.type = RecordType::kKeystore;
  r.table = kKeystoreTable;
  r.page = kKeystorePage;
  r.lsn = d.writer.allocate();
  r.backlink_lsn = d.ks_ref.page_lsn;
  r.payload = std::move(*page);
  d.ks_ref = KeystoreRef{r.lsn, d.ks->version(), d.selected->ts, d.ks->digest()};
  d.tail.push_back(std::move(r));
  co_return Status();
}

// 3. The metadata page.
void Engine::add_checkpoint_metadata(CheckpointDraft& d) {
  CheckpointMetadata& meta = d.meta;
  meta.checkpoint_ts = d.checkpoint_ts;
  meta.oldest_ts = d.checkpoint_ts;
  meta.largest_page_id = largest_page_id_;
  meta.log_lsn = d.log_lsn;
  meta.keystore = d.ks_ref;
  for (const auto& [id, t] : tables_) {
    auto it = d.new_roots.find(id);
    TableRoot root = it != d.new_roots.end() ? it->second : t.root;
    root.table = id;
    meta.database_size += root.bytes;
    meta.tables.push_back(root);
  }
  Bytes meta_bytes = encode_metadata_page(meta);
  d.meta_crc = crc32c::value(meta_bytes.data(), meta_bytes.size());
  Record meta_record;
  meta_record.type = RecordType::kMetadata;
  meta_record.table = kMetadataTable;
  meta_record.page = kMetadataPage;
  meta_record.lsn = d.writer.allocate();
  meta_record.backlink_lsn = metadata_lsn_;
  meta_record.payload = std::move(meta_bytes);
  d.meta_lsn = meta_record.lsn;
  d.tail.push_back(std::move(meta_record));
}

// 4. The completion record: once durable, this is the latest checkpoint.
void Engine::add_checkpoint_completion(CheckpointDraft& d) {
  CheckpointCompletion completion;
  completion.metadata_lsn = d.meta_lsn;
  completion.metadata_checksum = d.meta_crc;
  completion.database_size = d.meta.database_size;
  completion.checkpoint_ts = d.checkpoint_ts;
  std::string text = encode_completion(completion);
  Record done;
  done.type = RecordType::kCheckpointComplete;
  done.lsn = d.writer.allocate();
  // In the clear for the page service, which refuses retention past the newest
  // checkpoint's log position (it cannot read the payload).
  done.base_lsn = d.log_lsn;
  done.payload.assign(text.begin(), text.end());
  d.done_lsn = done.lsn;
  d.tail.push_back(std::move(done));
}

void Engine::switch_to_written_checkpoint(CheckpointDraft& d) {
  for (auto& [id, root] : d.new_roots) tables_[id].root = root;
  if (d.prune == IngestPrune::kAtSwitch) {
    for (auto& [id, t] : tables_) t.ingest.prune_through(d.checkpoint_ts);
  }
  for (auto& [key, node] : d.new_pages) {
    cache_.put(key, node, node->encoded_size() + (options_.encrypt ? kSealedOverheadBytes : 0));
  }
  installed_lsn_ = d.done_lsn;
  metadata_lsn_ = d.meta_lsn;
  checkpoint_log_lsn_ = d.log_lsn;
  checkpoint_ts_ = d.checkpoint_ts;
  checkpoint_keystore_ref_ = d.ks_ref;
  checkpoint_keystore_ = d.ks;
  if (d.write_keystore) push_queue_.mark_durable(d.ks_ref.version);
  push_queue_.set_stable(d.checkpoint_ts);
  generation_++;

  d.info.completion_lsn = d.done_lsn;
  d.info.metadata_lsn = d.meta_lsn;
  d.info.keystore_version = d.ks_ref.version;
  env_.log().info(kComponent, 40011, "checkpoint complete",
                  {{"checkpointLsn", d.done_lsn},
                   {"checkpoint_ts", d.checkpoint_ts},
                   {"metadata_lsn", d.meta_lsn},
                   {"keystore_version", d.ks_ref.version},
                   {"wrote_keystore_page", d.write_keystore},
                   {"pages", d.info.pages_written},
                   {"bytes", d.info.bytes_written},
                   {"database_size", d.meta.database_size},
                   {"duration_us", to_micros(env_.clock().monotonic_now() - d.started_at)},
                   {"build_us", to_micros(d.built_at - d.started_at)},
                   {"pages_write_us", to_micros(d.pages_durable_at - d.built_at)},
                   {"tail_write_us", to_micros(d.tail_durable_at - d.pages_durable_at)},
                   {"switch_us", to_micros(env_.clock().monotonic_now() - d.tail_durable_at)}});
}

// ---- Pick-up (follower) -------------------------------------------------------------

// A pick-up in progress: what each step hands the next, and the result so far.
struct Engine::PickupDraft {
  Record completion;
  InstallMode mode;
  StaleKeystoreChoice stale_choice;
  PickupResult r;
  CheckpointCompletion c;
  CheckpointMetadata meta;
  std::optional<Keystore> adopt;  // a newer keystore, loaded from the checkpoint (load mode)
  bool stale = false;             // its keystore is an older prefix of the node's

  // Ends the pick-up with `outcome`; returns false, for `return stop(...)` in a step.
  bool stop(PickupOutcome outcome, Status why) {
    r.outcome = outcome;
    r.detail = std::move(why);
    return false;
  }
  Status keystore_status(Code code, std::string message, uint64_t node_version) const {
    return Status(code, std::move(message))
        .at("pickup:keystore")
        .with("checkpoint_keystore_version", meta.keystore.version)
        .with("node_keystore_version", node_version);
  }
};

Task<PickupResult> Engine::install_checkpoint(Record completion, InstallMode mode,
                                              StaleKeystoreChoice stale) {
  const Lsn before = installed_lsn_;
  const MonoTime started_at = env_.clock().monotonic_now();
  PickupResult result;
  if (checkpoint_mu_.locked()) {
    result = busy_pickup(completion.lsn, keystore_.version(), "a checkpoint or pick-up is running");
  } else {
    Status locked = co_await checkpoint_mu_.lock();
    QUIRE_ASSERT(locked.is_ok());  // free, and a single-threaded node takes it at once
    MutexGuard guard(checkpoint_mu_);
    // Key changes wait while a pick-up checks and adopts keystores.
    Status keys = co_await keys_mu_.lock(env_.executor().deadline_after(options_.io_timeout));
    if (!keys.is_ok()) {
      result = busy_pickup(completion.lsn, keystore_.version(),
                           "a key operation held the keystore too long");
    } else {
      MutexGuard keys_guard(keys_mu_);
      result = co_await install_locked(std::move(completion), mode, stale);
    }
    // After the switch, with the keys lock free (a follower's log apply waits for it on a
    // key change).
    if (result.switched()) {
      const MonoTime switched_at = env_.clock().monotonic_now();
      co_await prune_ingest_in_steps(result.checkpoint_ts);
      result.prune_us = to_micros(env_.clock().monotonic_now() - switched_at);
    }
  }
  result.total_us = to_micros(env_.clock().monotonic_now() - started_at);
  report_pickup(result, before);
  co_return result;
}

Task<void> Engine::prune_checkpointed_ingest() {
  Status locked = co_await checkpoint_mu_.lock(env_.executor().deadline_after(options_.io_timeout));
  if (!locked.is_ok()) co_return;
  MutexGuard guard(checkpoint_mu_);
  co_await prune_ingest_in_steps(checkpoint_ts_);
}

Task<void> Engine::prune_ingest_in_steps(Timestamp ts) {
  std::vector<TableId> ids;
  for (const auto& [id, t] : tables_) ids.push_back(id);
  size_t step_keys = 0;  // looked at since the last yield, over all tables
  bool stopping = false;
  for (TableId id : ids) {
    std::optional<std::string> next = std::string();
    while (next) {
      auto it = tables_.find(id);
      if (it == tables_.end()) break;
      if (stopping) {
        it->second.ingest.prune_some(ts, *next, SIZE_MAX);
        break;
      }
      const size_t before = it->second.ingest.key_count();
      next = it->second.ingest.prune_some(ts, *next, kIngestPruneStepKeys - step_keys);
      step_keys += next ? kIngestPruneStepKeys - step_keys
                        : std::min(before, kIngestPruneStepKeys - step_keys);
      if (step_keys < kIngestPruneStepKeys) continue;
      step_keys = 0;
      stopping = !(co_await env_.executor().yield_idle(kIngestPruneIdleWaitMax)).is_ok();
      if (!stopping && options_.between_prune_steps) co_await options_.between_prune_steps();
    }
  }
}

Task<PickupResult> Engine::install_locked(Record completion, InstallMode mode,
                                          StaleKeystoreChoice stale) {
  PickupDraft d{std::move(completion), mode, stale};
  d.r.checkpoint_lsn = d.completion.lsn;
  d.r.node_keystore_version = keystore_.version();
  if (!verify_completion(d)) co_return d.r;
  if (!co_await verify_metadata(d)) co_return d.r;
  if (!co_await resolve_keystore(d)) co_return d.r;
  if (!co_await open_roots(d)) co_return d.r;
  switch_to_picked_up(d);
  co_return d.r;
}

// 1. The completion record.
bool Engine::verify_completion(PickupDraft& d) {
  if (d.completion.type != RecordType::kCheckpointComplete) {
    return d.stop(PickupOutcome::kCorrupt,
                  corruption("not a checkpoint completion record").at("pickup"));
  }
  std::string_view text(reinterpret_cast<const char*>(d.completion.payload.data()),
                        d.completion.payload.size());
  auto parsed = decode_completion(text);
  if (!parsed.is_ok()) return d.stop(outcome_for(parsed.status()), parsed.status());
  d.c = *parsed;
  d.r.checkpoint_ts = d.c.checkpoint_ts;
  if (d.completion.lsn < installed_lsn_) {
    return d.stop(PickupOutcome::kOlder,
                  Status(Code::kOlder, "checkpoint older than the installed one")
                      .at("pickup")
                      .with("checkpoint_lsn", d.completion.lsn.value)
                      .with("installed_lsn", installed_lsn_.value));
  }
  if (d.completion.lsn == installed_lsn_) return d.stop(PickupOutcome::kAlreadyInstalled, Status());
  if (d.c.compatible_version > kCheckpointVersion) {
    return d.stop(PickupOutcome::kVersionTooNew,
                  Status(Code::kVersionTooNew, "checkpoint needs a newer reader")
                      .at("pickup")
                      .with("compatible_version", d.c.compatible_version));
  }
  if (d.c.version < d.c.compatible_version) {
    return d.stop(PickupOutcome::kCorrupt,
                  corruption("version below compatible_version").at("pickup"));
  }
  return true;
}

// 2. The metadata page, exactly the version the completion names, checksum verified, and
// 3. its versions agree with the completion's.
Task<bool> Engine::verify_metadata(PickupDraft& d) {
  const CheckpointCompletion& c = d.c;
  auto pages = co_await client_.get_page(kMetadataTable, kMetadataPage, c.metadata_lsn,
                                         env_.executor().deadline_after(options_.io_timeout));
  if (!pages.is_ok()) {
    Status st =
        Status(pages.status()).at("pickup:metadata").with("metadata_lsn", c.metadata_lsn.value);
    co_return d.stop(outcome_for(st), st);
  }
  if (pages->size() != 1 || pages->front().lsn != c.metadata_lsn ||
      pages->front().type != RecordType::kMetadata) {
    co_return d.stop(PickupOutcome::kCorrupt,
                     corruption("metadata page is not the version the completion names")
                         .at("pickup:metadata")
                         .with("metadata_lsn", c.metadata_lsn.value));
  }
  const Bytes& meta_bytes = pages->front().payload;
  if (crc32c::value(meta_bytes.data(), meta_bytes.size()) != c.metadata_checksum) {
    co_return d.stop(PickupOutcome::kCorrupt, corruption("metadata page checksum mismatch")
                                                  .at("pickup:metadata")
                                                  .with("metadata_lsn", c.metadata_lsn.value)
                                                  .with("metadata_checksum", c.metadata_checksum));
  }
  auto meta = decode_metadata_page(meta_bytes);
  if (!meta.is_ok()) co_return d.stop(outcome_for(meta.status()), meta.status());
  if (meta->checkpoint_ts != c.checkpoint_ts || meta->version != c.version ||
      meta->compatible_version != c.compatible_version) {
    co_return d.stop(
        PickupOutcome::kCorrupt,
        corruption("metadata page and completion record disagree").at("pickup:versions"));
  }
  d.meta = std::move(*meta);
  co_return true;
}

// 4. The keystore: the checkpoint's version is a lower bound on what reading it needs.
Task<bool> Engine::resolve_keystore(PickupDraft& d) {
  const KeystoreRef& ref = d.meta.keystore;
  d.r.checkpoint_keystore_version = ref.version;
  d.r.checkpoint_log_lsn = d.meta.log_lsn;
  if (ref.version <= keystore_.version()) {
    if (keystore_.digest_at(ref.version) != ref.digest) {
      co_return d.stop(
          PickupOutcome::kKeystoreConflict,
          d.keystore_status(kKeystoreConflict, "checkpoint keystore is not a prefix of the node's",
                            keystore_.version()));
    }
    d.stale = ref.version < keystore_.version();
  } else if (d.mode == InstallMode::kFollow) {
    co_return d.stop(
        PickupOutcome::kKeystoreAhead,
        d.keystore_status(kKeystoreAhead, "checkpoint needs keystore versions not applied yet",
                          keystore_.version()));
  } else if (!co_await load_checkpoint_keystore(d)) {
    co_return false;
  }
  // The caller chose what a stale keystore does (decide_pickup's table, repl/standby.h).
  if (d.stale && d.stale_choice == StaleKeystoreChoice::kReport) {
    co_return d.stop(
        PickupOutcome::kStaleKeystore,
        d.keystore_status(kStaleKeystore, "checkpoint keystore is older than the node's",
                          keystore_.version()));
  }
  co_return true;
}

Task<bool> Engine::load_checkpoint_keystore(PickupDraft& d) {
  const KeystoreRef& ref = d.meta.keystore;
  auto ks_pages = co_await client_.get_page(kKeystoreTable, kKeystorePage, ref.page_lsn,
                                            env_.executor().deadline_after(options_.io_timeout));
  if (!ks_pages.is_ok()) {
    Status st =
        Status(ks_pages.status()).at("pickup:keystore").with("keystore_lsn", ref.page_lsn.value);
    co_return d.stop(outcome_for(st), st);
  }
  if (ks_pages->size() != 1 || ks_pages->front().lsn != ref.page_lsn ||
      ks_pages->front().type != RecordType::kKeystore) {
    co_return d.stop(PickupOutcome::kCorrupt,
                     corruption("keystore page is not the version the checkpoint names")
                         .at("pickup:keystore")
                         .with("keystore_lsn", ref.page_lsn.value));
  }
  auto page = co_await decode_keystore_page(kms_, options_.cluster_id,
                                            std::move(ks_pages->front().payload));
  if (!page.is_ok()) co_return d.stop(outcome_for(page.status()), page.status());
  if (page->keystore.version() != ref.version || page->keystore.digest() != ref.digest ||
      page->push_ts != ref.push_ts) {
    co_return d.stop(PickupOutcome::kCorrupt,
                     corruption("keystore page does not match the checkpoint's reference")
                         .at("pickup:keystore")
                         .with("keystore_version", ref.version));
  }
  if (!keystore_.is_prefix_of(page->keystore)) {
    co_return d.stop(
        PickupOutcome::kKeystoreConflict,
        d.keystore_status(kKeystoreConflict, "node keystore is not a prefix of the checkpoint's",
                          keystore_.version()));
  }
  Status st = co_await ring_.sync(kms_, page->keystore);
  if (!st.is_ok()) co_return d.stop(outcome_for(st), st.at("pickup:keystore"));
  d.adopt = std::move(page->keystore);
  co_return true;
}

// 5. Every root must open with the keys we hold (this also warms the cache).
Task<bool> Engine::open_roots(PickupDraft& d) {
  PageSource source = page_source();
  for (const TableRoot& t : d.meta.tables) {
    if (t.root_page.is_zero()) continue;
    auto node = co_await load_page(source, t.table, t.root_page, t.root_lsn);
    if (!node.is_ok()) {
      co_return d.stop(outcome_for(node.status()), Status(node.status()).at("pickup:roots"));
    }
  }
  co_return true;
}

// 6. Switch: roots, keystore, bookkeeping (the ingest is pruned right after, in steps:
// prune_ingest_in_steps). Nothing can fail.
void Engine::switch_to_picked_up(PickupDraft& d) {
  const KeystoreRef& ref = d.meta.keystore;
  if (d.adopt) {
    Status st = keystore_.adopt(*d.adopt);
    QUIRE_ASSERT(st.is_ok());  // checked as a prefix above, under the keys lock
    push_queue_.prune_through(d.adopt->version());
  } else {
    push_queue_.prune_through(ref.version);
  }
  // The keystore never goes back: the node holds at least what the checkpoint references.
  QUIRE_ASSERT(keystore_.version() >= ref.version);
  // The keystore state this checkpoint references, when the node holds exactly it (a
  // node promoted to leader writes its next pages under these DEKs).
  checkpoint_keystore_ =
      keystore_.version() == ref.version ? std::make_shared<const Keystore>(keystore_) : nullptr;
  for (const TableRoot& t : d.meta.tables) table(t.table).root = t;
  // The ingest versions the checkpoint holds go after the switch, in steps
  // (prune_ingest_in_steps): reads answer the same meanwhile.
  installed_lsn_ = d.completion.lsn;
  metadata_lsn_ = d.c.metadata_lsn;
  checkpoint_log_lsn_ = d.meta.log_lsn;
  checkpoint_ts_ = d.c.checkpoint_ts;
  largest_page_id_ = std::max(largest_page_id_, d.meta.largest_page_id);
  checkpoint_keystore_ref_ = ref;
  generation_++;
  if (d.stale) {
    d.r.outcome = PickupOutcome::kStaleKeystoreInstalled;
    d.r.detail = d.keystore_status(kStaleKeystore, "installed; kept the node's newer keystore",
                                   keystore_.version());
  } else {
    d.r.outcome = PickupOutcome::kInstalled;
  }
  d.r.node_keystore_version = keystore_.version();
}

namespace {
// The action named in the pick-up log line: what the engine did, not what the node does
// next (decide_pickup in repl/standby.h decides that).
std::string_view pickup_log_action(PickupOutcome o) {
  switch (o) {
    case PickupOutcome::kInstalled:
      return "installed";
    case PickupOutcome::kAlreadyInstalled:
    case PickupOutcome::kOlder:
      return "ignored";
    case PickupOutcome::kStaleKeystoreInstalled:
      return "installed, kept node keystore";
    case PickupOutcome::kStaleKeystore:
      return "skipped";
    case PickupOutcome::kKeystoreAhead:
    case PickupOutcome::kUnavailable:
    case PickupOutcome::kBusy:
      return "retry later";
    case PickupOutcome::kKeystoreConflict:
    case PickupOutcome::kCorrupt:
    case PickupOutcome::kVersionTooNew:
      break;
  }
  return "rejected";
}
}  // namespace

void Engine::report_pickup(const PickupResult& r, Lsn installed_before) {
  const bool bad = !r.installed() && r.outcome != PickupOutcome::kOlder &&
                   r.outcome != PickupOutcome::kStaleKeystore &&
                   !pickup_outcome_retriable(r.outcome);
  env_.log().log(bad ? Severity::kWarning : Severity::kInfo, kComponent, 40020,
                 "checkpoint pick-up",
                 {{"checkpointToInstallLsn", r.checkpoint_lsn},
                  {"installedCheckpointLsn", installed_before},
                  {"checkpoint_ts", r.checkpoint_ts},
                  {"checkpointKeystoreVersion", r.checkpoint_keystore_version},
                  {"nodeKeystoreVersion", r.node_keystore_version},
                  {"result", pickup_outcome_name(r.outcome)},
                  {"action", pickup_log_action(r.outcome)},
                  {"policy", pickup_policy_name(options_.policy)},
                  {"prune_us", r.prune_us},
                  {"total_us", r.total_us},
                  {"error", r.detail}});
}

}  // namespace quire
