// The runtime seam. Node code reaches time, randomness, the network, files and tasks only
// through its Env; the simulated world and the real world each implement it, so the code
// that ships is the code that was simulated.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/coding.h"
#include "base/log.h"
#include "base/status.h"
#include "runtime/executor.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace quire {

// Clock readings. The monotonic clock is the scheduler's timeline (timers, deadlines).
// Wall time is for humans and for timestamps' seconds; it may jump and differ per node.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime monotonic_now() const = 0;
  // Unix epoch nanoseconds, with this node's offset (and in simulation, drift).
  virtual int64_t wall_now_ns() const = 0;
};

// A random stream. In simulation it is derived from the run's seed and the concern's
// name, so adding draws to one concern does not shift another; in real mode it is
// OpenSSL's CSPRNG.
class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t next_u64() = 0;
  virtual void fill(std::span<uint8_t> out) = 0;

  // Uniform in [0, n); n must be positive. Unbiased.
  uint64_t uniform(uint64_t n);
  // Uniform in [lo, hi], inclusive.
  int64_t range(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double unit();
  bool chance(double p) { return unit() < p; }
  Nanos duration(Nanos lo, Nanos hi) { return Nanos(range(lo.count(), hi.count())); }
};

// "host:port". In simulation the host is a node's name.
using Address = std::string;

// A bidirectional, message-framed connection. Messages arrive whole or not at all. The
// real world runs it over TCP (in order, exactly once while the connection lives); the
// simulated world may also drop, delay, duplicate and reorder messages, so protocols
// above it carry their own ids, timeouts and retries.
class Connection {
 public:
  // No message may exceed this; larger sends fail with InvalidArgument and larger
  // incoming frames break the connection.
  static constexpr size_t kMaxMessageBytes = 64u << 20;
  // Bytes queued for sending beyond which send() returns Busy.
  static constexpr size_t kMaxQueuedSendBytes = 256u << 20;

  virtual ~Connection() = default;
  // Queues one message. OK means queued, not delivered. Unavailable once the connection
  // is broken or closed: what was in flight has an unknown outcome.
  virtual Status send(ByteView message) = 0;
  // The next message; Unavailable once the connection is broken or closed (after every
  // message already received has been returned), DeadlineExceeded, or Cancelled.
  virtual Task<Result<Bytes>> receive(Deadline deadline) = 0;
  // Closes both directions; the peer's receive() reports Unavailable. Idempotent.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
  virtual const Address& peer() const = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;
  // The next inbound connection; Unavailable once closed, DeadlineExceeded, Cancelled.
  virtual Task<Result<std::unique_ptr<Connection>>> accept(Deadline deadline) = 0;
  virtual void close() = 0;
  // The bound address (a real listener asked for port 0 reports the chosen port).
  virtual const Address& address() const = 0;
};

// A bidirectional byte stream, like a TCP socket: for clients that speak a byte protocol
// (RESP), not for node-to-node traffic (Connection). Bytes arrive in order and exactly once
// while the stream lives, but in chunks of any size: a read may return part of what the
// peer wrote in one write, or several writes at once. Either side may close; the other then
// reads what was already sent and then Unavailable. A broken stream (crash, partition, reset)
// loses whatever was in flight. Streams carry no framing and no encryption of their own (the
// real world's are plaintext TCP).
class StreamConnection {
 public:
  // Bytes queued by write() and not yet handed to the network beyond which write() is Busy.
  // A user with a smaller bound of its own (an output buffer limit) checks queued_bytes().
  static constexpr size_t kMaxQueuedWriteBytes = size_t{256} << 20;

  virtual ~StreamConnection() = default;
  // Reads at least one byte and at most out.size() (which must not be empty); returns the
  // count. Unavailable once the peer closed or the stream broke (after every byte already
  // received was read) or it was closed here; DeadlineExceeded; Cancelled. `out` is only
  // written while the call runs: abandoning it (deadline, cancel) leaves no read behind that
  // could write into it later.
  virtual Task<Result<size_t>> read_some(std::span<uint8_t> out, Deadline deadline) = 0;
  // Queues `data` for sending; OK means queued, not delivered. Busy (nothing queued) when the
  // queue would pass kMaxQueuedWriteBytes; Unavailable once broken or closed.
  virtual Status write(ByteView data) = 0;
  // Bytes queued by write() and not yet taken by the network (the peer's flow control
  // holds them here while it does not read).
  virtual size_t queued_bytes() const = 0;
  // Waits until queued_bytes() <= at_most (0: everything was handed to the network): OK;
  // Unavailable once broken or closed; DeadlineExceeded; Cancelled.
  virtual Task<Status> drained(size_t at_most, Deadline deadline) = 0;
  // Stops reading and closes once the queued bytes went out (bounded by a linger time, after
  // which they are dropped); the peer reads them, then Unavailable. Idempotent.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
  // Whether no more bytes can come: closed here, broken, or the peer closed its end and
  // every byte it sent was read. Reads nothing (a server busy with a request asks it to
  // notice a client that went away without waiting for the request to end).
  virtual bool peer_closed() const { return !is_open(); }
  virtual const Address& peer() const = 0;
  // This end's address (CLIENT INFO's laddr).
  virtual const Address& local() const = 0;
};

class StreamListener {
 public:
  virtual ~StreamListener() = default;
  // The next inbound stream; Unavailable once closed, DeadlineExceeded, Cancelled.
  virtual Task<Result<std::unique_ptr<StreamConnection>>> accept(Deadline deadline) = 0;
  virtual void close() = 0;
  // The bound address (a real listener asked for port 0 reports the chosen port).
  virtual const Address& address() const = 0;
};

class Net {
 public:
  virtual ~Net() = default;
  // InvalidArgument for a malformed address, Unavailable when it cannot be bound.
  virtual Result<std::unique_ptr<Listener>> listen(const Address& address) = 0;
  // Unavailable when refused or unreachable, DeadlineExceeded, Cancelled.
  virtual Task<Result<std::unique_ptr<Connection>>> connect(const Address& address,
                                                            Deadline deadline) = 0;
  // Byte streams (StreamConnection). A stream listener and a message listener cannot share
  // an address. The defaults report Unavailable: a Net without streams (a test double).
  // InvalidArgument for a malformed address, Unavailable when it cannot be bound.
  virtual Result<std::unique_ptr<StreamListener>> listen_stream(const Address& address);
  // Unavailable when refused or unreachable, DeadlineExceeded, Cancelled.
  virtual Task<Result<std::unique_ptr<StreamConnection>>> connect_stream(const Address& address,
                                                                         Deadline deadline);
};

struct OpenOptions {
  bool create = false;     // create the file when missing
  bool exclusive = false;  // with create: fail with InvalidArgument when it exists
  // Permission bits of a file this call creates (the real world applies the umask);
  // ignored for a file that exists. Secrets ask for 0600.
  uint32_t mode = 0644;
  // False: a symlink at the path is refused (O_NOFOLLOW), not opened through.
  bool follow_symlink = true;
};

// What a path names, as lstat(2) sees it: a symlink is one, never followed.
enum class FileKind : uint8_t { kRegular, kDirectory, kSymlink, kOther };

struct FileStatus {
  FileKind kind = FileKind::kRegular;
  uint32_t permissions = 0;  // mode & 0777
};

// An open file. Paths are relative to the node's data directory. Nothing written is
// durable until sync() returns OK; a crash may keep any subset of unsynced writes, torn
// at 512-byte sectors. After a failed sync() the file's durable content is unknown:
// the only safe reaction is to stop and recover from what was synced before.
//
// A write, append, truncate or create refused because the disk is full is NoSpace: any
// part of it that reached the file lies past what the caller had written, and the caller
// cuts it off (or writes over it) before it counts on the file's end. A sync never
// answers NoSpace: a failed sync is always Io.
class File {
 public:
  virtual ~File() = default;
  // Reads up to out.size() bytes at `offset`; fewer at the end of the file.
  virtual Task<Result<size_t>> read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Task<Status> write(uint64_t offset, ByteView data) = 0;
  // Writes at the end; returns the offset written at.
  virtual Task<Result<uint64_t>> append(ByteView data) = 0;
  // fdatasync: every write before it is durable once it returns OK.
  virtual Task<Status> sync() = 0;
  virtual Task<Status> truncate(uint64_t size) = 0;
  virtual Result<uint64_t> size() const = 0;
  virtual const std::string& path() const = 0;
};

// An exclusive lock on a file (flock(2) in the real world), held until the handle goes; a
// process that ends (a crash too) lets go of its locks.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// Files under the node's data directory. Arguments are taken by value because the
// operations are lazy coroutines that may run after the caller's temporaries are gone. Creating,
// renaming and unlinking change the directory, which is durable only after sync_dir() of that
// directory.
class Disk {
 public:
  virtual ~Disk() = default;
  // Failures that mean the directory cannot be used as it is (a configuration problem,
  // not a failing disk) are InvalidArgument naming the path: open, rename, unlink,
  // make_dirs and list refused for permission or a read-only file system (a directory the
  // node may not write, say mode 0555), and the cases below.
  //
  // Opens a regular file only: InvalidArgument for a directory, FIFO, socket or device (a
  // read from a FIFO could block forever). NotFound when missing and not asked to create.
  virtual Task<Result<std::unique_ptr<File>>> open(std::string path, OpenOptions options) = 0;
  virtual Task<Status> rename(std::string from, std::string to) = 0;
  virtual Task<Status> unlink(std::string path) = 0;
  // Creates the directory and its parents; OK when it exists; InvalidArgument when a file
  // is in the way. Each directory it creates is synced into its parent, so a crash cannot
  // take back the entry of a directory that later syncs put data under.
  virtual Task<Status> make_dirs(std::string path) = 0;
  // Names (not paths) of the entries in `dir`, sorted. "" is the data directory.
  virtual Task<Result<std::vector<std::string>>> list(std::string dir) = 0;
  virtual Task<Status> sync_dir(std::string dir) = 0;
  virtual Task<Result<bool>> exists(std::string path) = 0;
  // The kind and permission bits of `path` itself, not following a final symlink (lstat);
  // NotFound when missing. Lets code that keeps secrets refuse a file others can read, a
  // directory, or a link to a file elsewhere.
  virtual Task<Result<FileStatus>> file_status(std::string path) = 0;
  // Takes the exclusive lock of `path` (created 0600 when missing, never through a
  // symlink) without waiting: Busy while another holder has it, in this process or another
  // sharing the file (compute nodes rotating one CMK file). The caller waits and retries.
  virtual Task<Result<std::unique_ptr<FileLock>>> try_lock(std::string path) = 0;
};

// A node's whole view of the world.
class Env : public LogContext {
 public:
  ~Env() override = default;
  virtual std::string_view node_name() const = 0;
  virtual Executor& executor() = 0;
  virtual Clock& clock() = 0;
  // The node's default random stream.
  virtual Random& random() = 0;
  // An independent stream for one concern (e.g. "retry-jitter").
  virtual std::unique_ptr<Random> random_stream(std::string_view concern) = 0;
  virtual Net& net() = 0;
  virtual Disk& disk() = 0;
  virtual Logger& log() = 0;
  // Fail-stop: the node hit a local fault it cannot continue past (a failed fsync).
  // The world crashes it and starts it again from its disk. In a real process this ends
  // the process with kExitRestart for its supervisor; it never returns to a caller that
  // could keep using the lost state, so callers stop their work right after it.
  virtual void request_restart(const Status& why) = 0;
  // The process dies here, like an assertion: only policy `abort` (which reproduces the
  // report's crash for the chaos suite) calls it. A real process logs and aborts; the
  // simulated world records the abort, crashes the node and keeps it down, so a run can
  // report it as a violation.
  virtual void abort_process(const Status& why) = 0;

  int64_t log_wall_time_ns() const override;
  std::string_view log_task_name() const override;
};

// What a node runs, in either world. Its constructor must not block or do I/O: start()
// spawns its tasks. Its destructor also runs at a crash (after its tasks are gone), so
// it must do no I/O either.
class NodeApp {
 public:
  virtual ~NodeApp() = default;
  virtual void start() = 0;
};

// The exit code of a real process that asked to be restarted.
inline constexpr int kExitRestart = 75;

}  // namespace quire
