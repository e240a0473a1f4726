#include "runtime/sim/sim_disk.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/hash.h"

namespace quire {

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

namespace {

Status check_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') {
    return invalid_argument(fmt::format("bad path '{}'", path));
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return invalid_argument(fmt::format("bad path '{}'", path));
    }
    start = end + 1;
  }
  return Status();
}

void apply_op(Bytes& image, const SimDiskStore::Inode::Op& op) {
  if (op.truncate) {
    image.resize(op.offset, 0);
    return;
  }
  if (image.size() < op.offset + op.data.size()) image.resize(op.offset + op.data.size(), 0);
  std::memcpy(image.data() + op.offset, op.data.data(), op.data.size());
}

class SimFile : public File {
 public:
  SimFile(SimDiskStore& store, Executor& exec, uint64_t inode, std::string path)
      : store_(store), exec_(exec), inode_(inode), path_(std::move(path)) {}

  Task<Result<size_t>> read(uint64_t offset, std::span<uint8_t> out) override {
    QUIRE_CO_RETURN_IF_ERROR(co_await delay(false));
    store_.mutable_stats().reads++;
    if (inject(store_.faults().read_eio))
      co_return io_error(fmt::format("read {}: EIO (injected)", path_));
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) co_return io_error(fmt::format("read {}: file is gone", path_));
    const Bytes& cur = ino->current;
    if (offset >= cur.size()) co_return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), cur.size() - offset);
    std::memcpy(out.data(), cur.data() + offset, n);
    co_return n;
  }

  Task<Status> write(uint64_t offset, ByteView data) override {
    QUIRE_CO_RETURN_IF_ERROR(co_await delay(false));
    co_return do_write(offset, data);
  }

  Task<Result<uint64_t>> append(ByteView data) override {
    QUIRE_CO_RETURN_IF_ERROR(co_await delay(false));
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) co_return io_error(fmt::format("append {}: file is gone", path_));
    uint64_t offset = ino->current.size();
    QUIRE_CO_RETURN_IF_ERROR(do_write(offset, data));
    co_return offset;
  }

  Task<Status> sync() override {
    QUIRE_CO_RETURN_IF_ERROR(co_await delay(true));
    store_.mutable_stats().syncs++;
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) co_return io_error(fmt::format("fsync {}: file is gone", path_));
    if (inject(store_.faults().sync_eio)) {
      // Writeback failed part-way: some unknown subset reached the disk, and the pages
      // are marked clean, so a retry would not write them again.
      store_.resolve_randomly(*ino);
      co_return io_error(fmt::format("fsync {}: EIO (injected)", path_));
    }
    // Only what changed since the last sync is copied: the cost follows the bytes written,
    // not the file's size.
    for (const auto& op : ino->pending) apply_op(ino->durable, op);
    ino->pending.clear();
    co_return Status();
  }

  Task<Status> truncate(uint64_t size) override {
    QUIRE_CO_RETURN_IF_ERROR(co_await delay(false));
    if (inject(store_.faults().write_eio))
      co_return io_error(fmt::format("truncate {}: EIO (injected)", path_));
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) co_return io_error(fmt::format("truncate {}: file is gone", path_));
    SimDiskStore::Inode::Op op{true, size, {}};
    apply_op(ino->current, op);
    ino->pending.push_back(std::move(op));
    co_return Status();
  }

  Result<uint64_t> size() const override {
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) return io_error(fmt::format("size {}: file is gone", path_));
    return static_cast<uint64_t>(ino->current.size());
  }

  const std::string& path() const override { return path_; }

 private:
  bool inject(double p) {
    if (p <= 0 || !store_.rng().chance(p)) return false;
    store_.mutable_stats().injected_eio++;
    return true;
  }

  Task<Status> delay(bool is_sync) {
    const DiskFaults& f = store_.faults();
    Nanos lo = is_sync ? f.sync_latency_min : f.latency_min;
    Nanos hi = is_sync ? f.sync_latency_max : f.latency_max;
    co_return co_await exec_.sleep(store_.rng().duration(lo, std::max(lo, hi)));
  }

  Status do_write(uint64_t offset, ByteView data) {
    store_.mutable_stats().writes++;
    if (inject(store_.faults().write_eio))
      return io_error(fmt::format("write {}: EIO (injected)", path_));
    SimDiskStore::Inode* ino = store_.inode(inode_);
    if (ino == nullptr) return io_error(fmt::format("write {}: file is gone", path_));
    uint64_t cap = store_.faults().capacity_bytes;
    uint64_t grow =
        offset + data.size() > ino->current.size() ? offset + data.size() - ino->current.size() : 0;
    if (cap > 0 && grow > 0 && store_.used_bytes() + grow > cap) {
      // As Linux does: what fits is written (pwrite's short count), then ENOSPC.
      const uint64_t used = store_.used_bytes();
      const uint64_t fits_end = ino->current.size() + (cap > used ? cap - used : 0);
      const uint64_t fits =
          fits_end > offset ? std::min<uint64_t>(data.size(), fits_end - offset) : 0;
      if (fits > 0) {
        SimDiskStore::Inode::Op part{false, offset, Bytes(data.begin(), data.begin() + fits)};
        apply_op(ino->current, part);
        ino->pending.push_back(std::move(part));
        store_.observe(path_, offset, data.subspan(0, fits));
      }
      return Status(Code::kNoSpace, fmt::format("write {}: no space left on device", path_))
          .with("written", fits);
    }
    SimDiskStore::Inode::Op op{false, offset, Bytes(data.begin(), data.end())};
    apply_op(ino->current, op);
    ino->pending.push_back(std::move(op));
    store_.observe(path_, offset, data);
    return Status();
  }

  SimDiskStore& store_;
  Executor& exec_;
  uint64_t inode_;
  std::string path_;
};

class SimDisk : public Disk {
 public:
  SimDisk(SimDiskStore& store, Executor& exec) : store_(store), exec_(exec) {}

  Task<Result<std::unique_ptr<File>>> open(std::string path, OpenOptions options) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    if (ns.dirs.count(path) > 0)
      co_return invalid_argument(fmt::format("open {}: is a directory", path));
    auto it = ns.files.find(path);
    uint64_t ino;
    if (it != ns.files.end()) {
      if (options.create && options.exclusive)
        co_return invalid_argument(fmt::format("open {}: exists", path));
      ino = it->second;
    } else {
      if (!options.create) co_return not_found(fmt::format("open {}: no such file", path));
      if (!dir_exists(parent_dir(path)))
        co_return not_found(fmt::format("open {}: no such directory", path));
      if (!store_.dir_writable(parent_dir(path))) co_return permission_denied("open", path);
      ino = store_.new_inode(options.mode);
      store_.record_ns({SimDiskStore::NsOp::kCreate, path, {}, ino});
    }
    co_return std::unique_ptr<File>(std::make_unique<SimFile>(store_, exec_, ino, path));
  }

  Task<Status> rename(std::string from, std::string to) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(from));
    QUIRE_CO_RETURN_IF_ERROR(check_path(to));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    auto it = ns.files.find(from);
    if (it == ns.files.end()) co_return not_found(fmt::format("rename {}: no such file", from));
    if (!dir_exists(parent_dir(to)))
      co_return not_found(fmt::format("rename to {}: no such directory", to));
    if (!store_.dir_writable(parent_dir(from)) || !store_.dir_writable(parent_dir(to)))
      co_return permission_denied("rename", fmt::format("{} -> {}", from, to));
    store_.record_ns({SimDiskStore::NsOp::kRename, from, to, it->second});
    co_return Status();
  }

  Task<Status> unlink(std::string path) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    auto it = ns.files.find(path);
    if (it == ns.files.end()) co_return not_found(fmt::format("unlink {}: no such file", path));
    if (!store_.dir_writable(parent_dir(path))) co_return permission_denied("unlink", path);
    store_.record_ns({SimDiskStore::NsOp::kUnlink, path, {}, it->second});
    co_return Status();
  }

  Task<Status> make_dirs(std::string path) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    size_t pos = 0;
    while (true) {
      size_t slash = path.find('/', pos);
      std::string prefix = slash == std::string::npos ? path : path.substr(0, slash);
      if (ns.files.count(prefix) > 0)
        co_return invalid_argument(fmt::format("mkdir {}: a file is in the way", prefix));
      if (ns.dirs.count(prefix) == 0) {
        if (!store_.dir_writable(parent_dir(prefix))) co_return permission_denied("mkdir", prefix);
        store_.record_ns({SimDiskStore::NsOp::kMkdir, prefix, {}, 0});
        // Synced into its parent, as PosixDisk does (and with it, as an fsync of the
        // parent would, the parent's other pending entries); that sync can fail too.
        store_.mutable_stats().syncs++;
        if (store_.faults().sync_eio > 0 && store_.rng().chance(store_.faults().sync_eio)) {
          store_.mutable_stats().injected_eio++;
          co_return io_error(
              fmt::format("fsync directory '{}': EIO (injected)", parent_dir(prefix)));
        }
        store_.sync_dir(parent_dir(prefix));
      }
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    co_return Status();
  }

  Task<Result<std::vector<std::string>>> list(std::string dir) override {
    if (!dir.empty()) QUIRE_CO_RETURN_IF_ERROR(check_path(dir));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    if (!dir_exists(dir)) co_return not_found(fmt::format("list {}: no such directory", dir));
    auto& ns = store_.current_ns();
    std::vector<std::string> names;
    auto add = [&](const std::string& p) {
      if (parent_dir(p) == dir) names.push_back(dir.empty() ? p : p.substr(dir.size() + 1));
    };
    for (const auto& [p, ino] : ns.files) add(p);
    for (const auto& d : ns.dirs) add(d);
    std::sort(names.begin(), names.end());
    co_return names;
  }

  Task<Status> sync_dir(std::string dir) override {
    if (!dir.empty()) QUIRE_CO_RETURN_IF_ERROR(check_path(dir));
    QUIRE_CO_RETURN_IF_ERROR(co_await exec_.sleep(store_.rng().duration(
        store_.faults().sync_latency_min,
        std::max(store_.faults().sync_latency_min, store_.faults().sync_latency_max))));
    if (!dir_exists(dir)) co_return not_found(fmt::format("sync_dir {}: no such directory", dir));
    store_.mutable_stats().syncs++;
    if (store_.faults().sync_eio > 0 && store_.rng().chance(store_.faults().sync_eio)) {
      store_.mutable_stats().injected_eio++;
      co_return io_error(fmt::format("fsync directory '{}': EIO (injected)", dir));
    }
    store_.sync_dir(dir);
    co_return Status();
  }

  Task<Result<bool>> exists(std::string path) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    co_return ns.files.count(path) > 0 || ns.dirs.count(path) > 0;
  }

  // The simulated disk has no symlinks: a path is a directory or a regular file.
  Task<Result<FileStatus>> file_status(std::string path) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    // Directories carry no inode here: 0755 as mkdir makes them, unless an operator changed it.
    if (ns.dirs.count(path) > 0) co_return FileStatus{FileKind::kDirectory, store_.dir_mode(path)};
    auto it = ns.files.find(path);
    if (it == ns.files.end()) co_return not_found(fmt::format("stat {}: no such file", path));
    SimDiskStore::Inode* ino = store_.inode(it->second);
    if (ino == nullptr) co_return io_error(fmt::format("stat {}: file is gone", path));
    co_return FileStatus{FileKind::kRegular, ino->mode};
  }

  // Locks belong to this process (this Disk): a crash, which ends the process, lets go of
  // them with it. Holders sharing the Disk exclude each other.
  Task<Result<std::unique_ptr<FileLock>>> try_lock(std::string path) override {
    QUIRE_CO_RETURN_IF_ERROR(check_path(path));
    QUIRE_CO_RETURN_IF_ERROR(co_await delay());
    auto& ns = store_.current_ns();
    if (ns.dirs.count(path) > 0)
      co_return invalid_argument(fmt::format("lock {}: is a directory", path));
    if (ns.files.count(path) == 0) {
      if (!dir_exists(parent_dir(path)))
        co_return not_found(fmt::format("lock {}: no such directory", path));
      if (!store_.dir_writable(parent_dir(path))) co_return permission_denied("lock", path);
      const uint64_t ino = store_.new_inode(0600);
      store_.record_ns({SimDiskStore::NsOp::kCreate, path, {}, ino});
    }
    if (!locked_->insert(path).second)
      co_return busy(fmt::format("{} is locked by another holder", path));
    co_return std::unique_ptr<FileLock>(std::make_unique<SimFileLock>(locked_, path));
  }

 private:
  class SimFileLock : public FileLock {
   public:
    SimFileLock(std::shared_ptr<std::set<std::string>> locked, std::string path)
        : locked_(std::move(locked)), path_(std::move(path)) {}
    ~SimFileLock() override { locked_->erase(path_); }

   private:
    std::shared_ptr<std::set<std::string>> locked_;
    std::string path_;
  };

  bool dir_exists(const std::string& d) {
    return d.empty() || store_.current_ns().dirs.count(d) > 0;
  }
  // An entry of a directory the node may not write (see the header), as PosixDisk reports it.
  static Status permission_denied(std::string_view op, const std::string& path) {
    return invalid_argument(fmt::format("{} {}: Permission denied", op, path));
  }
  Task<Status> delay() {
    const DiskFaults& f = store_.faults();
    co_return co_await exec_.sleep(
        store_.rng().duration(f.latency_min, std::max(f.latency_min, f.latency_max)));
  }

  SimDiskStore& store_;
  Executor& exec_;
  std::shared_ptr<std::set<std::string>> locked_ = std::make_shared<std::set<std::string>>();
};

}  // namespace

SimDiskStore::SimDiskStore(uint64_t seed, std::string name)
    : rng_(seed, "sim-disk/" + name), name_(std::move(name)) {}

std::unique_ptr<Disk> SimDiskStore::make_disk(Executor& exec) {
  return std::make_unique<SimDisk>(*this, exec);
}

SimDiskStore::Inode* SimDiskStore::inode(uint64_t id) {
  auto it = inodes_.find(id);
  return it == inodes_.end() ? nullptr : &it->second;
}

uint64_t SimDiskStore::new_inode(uint32_t mode) {
  uint64_t id = next_inode_++;
  inodes_[id].mode = mode & 0777;
  return id;
}

uint32_t SimDiskStore::dir_mode(const std::string& dir) const {
  auto it = dir_modes_.find(dir);
  return it == dir_modes_.end() ? 0755 : it->second;
}

uint64_t SimDiskStore::used_bytes() const {
  // A file's space is free once no name, current or durable, holds it (open descriptors
  // aside: the simulated disk does not count them, Linux would).
  std::set<uint64_t> named;
  for (const auto& [p, id] : durable_.files) named.insert(id);
  for (const auto& [p, id] : current_.files) named.insert(id);
  uint64_t n = 0;
  for (const auto& [id, ino] : inodes_) {
    if (named.count(id) > 0) n += std::max(ino.current.size(), ino.durable.size());
  }
  return n;
}

void SimDiskStore::apply_ns(Namespace& ns, const NsOp& op) {
  switch (op.kind) {
    case NsOp::kCreate:
      ns.files[op.path] = op.inode;
      break;
    case NsOp::kUnlink:
      ns.files.erase(op.path);
      break;
    case NsOp::kRename:
      ns.files.erase(op.path);
      ns.files[op.to] = op.inode;
      break;
    case NsOp::kMkdir:
      ns.dirs.insert(op.path);
      break;
  }
}

void SimDiskStore::record_ns(NsOp op) {
  apply_ns(current_, op);
  pending_ns_.push_back(std::move(op));
}

void SimDiskStore::sync_dir(const std::string& dir) {
  std::vector<NsOp> rest;
  for (auto& op : pending_ns_) {
    bool here =
        parent_dir(op.path) == dir || (op.kind == NsOp::kRename && parent_dir(op.to) == dir);
    if (here) {
      apply_ns(durable_, op);
    } else {
      rest.push_back(std::move(op));
    }
  }
  pending_ns_ = std::move(rest);
}

void SimDiskStore::resolve_randomly(Inode& ino) {
  const size_t n = ino.pending.size();
  if (n == 0) return;
  // The size after each prefix of the pending operations.
  std::vector<uint64_t> sizes(n + 1);
  sizes[0] = ino.durable.size();
  uint64_t max_size = sizes[0];
  for (size_t i = 0; i < n; ++i) {
    const auto& op = ino.pending[i];
    sizes[i + 1] =
        op.truncate ? op.offset : std::max<uint64_t>(sizes[i], op.offset + op.data.size());
    max_size = std::max(max_size, sizes[i + 1]);
  }
  uint64_t final_size = sizes[rng_.uniform(n + 1)];

  // Every sector touched since the sync independently takes the state it had after some
  // prefix of the operations.
  std::set<uint64_t> dirty;
  for (const auto& op : ino.pending) {
    uint64_t lo = op.truncate ? op.offset : op.offset;
    uint64_t hi = op.truncate ? max_size : op.offset + op.data.size();
    if (hi <= lo) continue;
    for (uint64_t s = lo / kSimSectorBytes; s <= (hi - 1) / kSimSectorBytes; ++s) dirty.insert(s);
  }
  Bytes result = ino.durable;
  result.resize(max_size, 0);
  for (uint64_t s : dirty) {
    size_t k = rng_.uniform(n + 1);
    uint64_t s_lo = s * kSimSectorBytes;
    uint64_t s_hi = std::min<uint64_t>(s_lo + kSimSectorBytes, max_size);
    if (s_lo >= s_hi) continue;
    // Start from the durable sector, then replay the first k operations on it.
    Bytes sector(s_hi - s_lo, 0);
    for (uint64_t i = s_lo; i < s_hi && i < ino.durable.size(); ++i)
      sector[i - s_lo] = ino.durable[i];
    uint64_t size = ino.durable.size();
    for (size_t i = 0; i < k; ++i) {
      const auto& op = ino.pending[i];
      if (op.truncate) {
        for (uint64_t b = std::max(op.offset, s_lo); b < s_hi; ++b) sector[b - s_lo] = 0;
        size = op.offset;
        continue;
      }
      uint64_t lo = std::max(op.offset, s_lo);
      uint64_t hi = std::min<uint64_t>(op.offset + op.data.size(), s_hi);
      for (uint64_t b = lo; b < hi; ++b) sector[b - s_lo] = op.data[b - op.offset];
      size = std::max<uint64_t>(size, op.offset + op.data.size());
    }
    std::memcpy(result.data() + s_lo, sector.data(), sector.size());
  }
  result.resize(final_size);
  ino.durable = std::move(result);
  ino.pending.clear();
}

void SimDiskStore::crash(UnsyncedOnCrash mode) {
  stats_.crashes++;
  switch (mode) {
    case UnsyncedOnCrash::kKeep:
      for (auto& [id, ino] : inodes_) ino.durable = ino.current;
      for (const auto& op : pending_ns_) apply_ns(durable_, op);
      break;
    case UnsyncedOnCrash::kLose:
      break;
    case UnsyncedOnCrash::kRandomSubset: {
      for (auto& [id, ino] : inodes_) resolve_randomly(ino);
      size_t keep = rng_.uniform(pending_ns_.size() + 1);
      for (size_t i = 0; i < keep; ++i) apply_ns(durable_, pending_ns_[i]);
      break;
    }
  }
  pending_ns_.clear();
  for (auto& [id, ino] : inodes_) {
    ino.current = ino.durable;
    ino.pending.clear();
  }
  current_ = durable_;
  collect_garbage();
}

void SimDiskStore::collect_garbage() {
  std::set<uint64_t> live;
  for (const auto& [p, id] : durable_.files) live.insert(id);
  for (const auto& [p, id] : current_.files) live.insert(id);
  std::erase_if(inodes_, [&](const auto& kv) { return live.count(kv.first) == 0; });
  // A directory the crash took back takes its bits with it.
  std::erase_if(dir_modes_, [&](const auto& kv) { return current_.dirs.count(kv.first) == 0; });
}

void SimDiskStore::wipe() {
  inodes_.clear();
  current_ = {};
  durable_ = {};
  pending_ns_.clear();
  dir_modes_.clear();
}

SimDiskStore::Snapshot SimDiskStore::snapshot() const {
  Snapshot s;
  for (const auto& [p, id] : durable_.files) {
    s.files[p] = inodes_.at(id).durable;
    s.modes[p] = inodes_.at(id).mode;
  }
  s.dirs = durable_.dirs;
  for (const auto& [d, mode] : dir_modes_) {
    if (durable_.dirs.count(d) > 0) s.dir_modes[d] = mode;
  }
  return s;
}

void SimDiskStore::restore(const Snapshot& s) {
  wipe();
  durable_.dirs = s.dirs;
  dir_modes_ = s.dir_modes;
  for (const auto& [p, bytes] : s.files) {
    auto mode = s.modes.find(p);
    uint64_t id = new_inode(mode == s.modes.end() ? 0644 : mode->second);
    inodes_[id].durable = bytes;
    inodes_[id].current = bytes;
    durable_.files[p] = id;
  }
  current_ = durable_;
}

bool SimDiskStore::flip_bit(const std::string& path, uint64_t offset, int bit) {
  auto it = current_.files.find(path);
  if (it == current_.files.end()) return false;
  Inode& ino = inodes_.at(it->second);
  bool flipped = false;
  auto mask = static_cast<uint8_t>(1u << (bit & 7));
  if (offset < ino.durable.size()) {
    ino.durable[offset] ^= mask;
    flipped = true;
  }
  if (offset < ino.current.size()) {
    ino.current[offset] ^= mask;
    flipped = true;
  }
  if (flipped) stats_.bits_flipped++;
  return flipped;
}

bool SimDiskStore::set_permissions(const std::string& path, uint32_t mode) {
  auto it = current_.files.find(path);
  if (it != current_.files.end()) {
    inodes_.at(it->second).mode = mode & 0777;
    return true;
  }
  if (current_.dirs.count(path) == 0) return false;
  dir_modes_[path] = mode & 0777;
  return true;
}

std::optional<Bytes> SimDiskStore::durable_content(const std::string& path) const {
  auto it = durable_.files.find(path);
  if (it == durable_.files.end()) return std::nullopt;
  return inodes_.at(it->second).durable;
}

std::optional<Bytes> SimDiskStore::current_content(const std::string& path) const {
  auto it = current_.files.find(path);
  if (it == current_.files.end()) return std::nullopt;
  return inodes_.at(it->second).current;
}

std::vector<std::string> SimDiskStore::current_files() const {
  std::vector<std::string> out;
  for (const auto& [p, id] : current_.files) out.push_back(p);
  return out;
}

std::vector<std::string> SimDiskStore::durable_files() const {
  std::vector<std::string> out;
  for (const auto& [p, id] : durable_.files) out.push_back(p);
  return out;
}

}  // namespace quire
