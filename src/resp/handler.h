// The seam between the RESP server (the wire: bytes, framing, bounds, connections;
// resp/server.h) and the commands (what each one does against the node; resp/commands.h).
// The server parses a command, hands it to a CommandHandler with the connection's state,
// and sends the one reply the handler wrote, in order (Redis's order: a reply follows its
// command's effects, and a command observes every earlier one of its connection).
//
// Commands of one connection run one at a time, with one exception: a command the handler
// can start (start(): a blind write, queued at the primary) holds its place in the node's
// order at once and finishes later, so a pipeline of writes shares commit groups. The
// server then starts the connection's next commands meanwhile, but writes the replies in
// command order, and runs any command the handler does not start only after every
// earlier one finished (a barrier: reads and read-modify-writes see earlier writes).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace quire::resp {

// Builds RESP2 replies (https://redis.io/docs/reference/protocol-spec/) into a buffer of at
// most about bytes_max: past it the writer takes nothing more and overflowed() turns true.
// The reply is then cut, so its connection closes, as Redis closes a client whose replies
// pass its output buffer's hard limit (a few arguments can ask for gigabytes: COMMAND DOCS
// naming one command a million times).
class ReplyWriter {
 public:
  static constexpr size_t kBytesMaxDefault = size_t{64} << 20;
  explicit ReplyWriter(size_t bytes_max = kBytesMaxDefault) : bytes_max_(bytes_max) {}

  // "+s\r\n". A CR or LF inside `s` is written as a space (a simple string cannot hold them).
  void simple(std::string_view s);
  // "-s\r\n": `s` starts with the error code ("ERR ...", "READONLY ...", "LOADING ...");
  // CR and LF are written as spaces.
  void error(std::string_view s);
  void integer(int64_t v);
  void bulk(std::string_view s);
  void null_bulk();      // "$-1\r\n": a missing value
  void array(size_t n);  // "*n\r\n", then the caller writes n replies
  void null_array();     // "*-1\r\n"
  // Shorthands: "+OK", "-ERR <message>".
  void ok() { simple("OK"); }
  void err(std::string_view message);

  // Another writer's replies after these (its overflow too).
  void append(const ReplyWriter& other);
  // Drops what was written after `mark` (a reply not sent: CLIENT REPLY OFF or SKIP); an
  // overflow that began after it goes with it.
  void truncate(size_t mark) {
    if (mark < out_.size()) out_.resize(mark);
    // Still over: what is left passes the bound, or an overflow began before the mark.
    overflowed_ = out_.size() > bytes_max_ || (overflowed_ && mark > overflow_at_);
  }

  std::string& buffer() { return out_; }
  const std::string& buffer() const { return out_; }
  size_t size() const { return out_.size(); }
  size_t bytes_max() const { return bytes_max_; }
  bool overflowed() const { return overflowed_; }
  void clear() {
    out_.clear();
    overflowed_ = false;
    overflow_at_ = 0;
  }

 private:
  // Whether nothing more may be written (and notes an overflow).
  bool full() {
    if (!overflowed_ && out_.size() > bytes_max_) overflow(out_.size());
    return overflowed_;
  }
  void overflow(size_t at) {
    if (overflowed_) return;
    overflowed_ = true;
    overflow_at_ = at;
  }
  void line(char type, std::string_view s);
  std::string out_;
  size_t bytes_max_;
  bool overflowed_ = false;
  size_t overflow_at_ = 0;  // the buffer's size when the overflow began
};

struct ExecOverlay;  // resp/commands.h: a transaction's writes while EXEC runs it

// CLIENT SETNAME's and HELLO SETNAME's bound on a name (Redis has none; every CLIENT LIST
// line holds one).
inline constexpr size_t kClientNameBytesMax = 4096;

// One client connection's state, owned by the server; commands read and change it.
struct ClientState {
  uint64_t id = 0;                 // CLIENT ID: unique per server, from 1
  std::string address;             // the peer, "host:port"
  std::string local_address;       // this end (CLIENT INFO laddr)
  std::string name;                // CLIENT SETNAME
  uint32_t db = 0;                 // SELECT: database n is a Quire table (0..15)
  bool authenticated = false;      // set by AUTH; the server refuses commands until then when a
                                   // password is configured (commands.h decides which are allowed)
  bool close_after_reply = false;  // QUIT: the server sends the reply, then closes
  // CLIENT REPLY: OFF drops every reply; SKIP drops the next command's (the server moves
  // reply_skip_next to reply_skip once a command ran, and clears reply_skip after the next).
  bool reply_off = false;
  bool reply_skip_next = false;
  bool reply_skip = false;
  bool replies_dropped() const { return reply_off || reply_skip; }
  Timestamp last_write;  // the commit timestamp of this connection's last write (WAIT)
  MonoTime connected_at;
  MonoTime last_command_at;
  uint64_t commands = 0;
  // The last command named (CLIENT LIST's cmd=): names from the command table, so they
  // outlive the command; both empty when it was not one Quire knows.
  std::string_view last_command;
  std::string_view last_subcommand;
  // A standby's progress link (it sent QUIRE.REPORT): CLIENT LIST's flags=S, TYPE replica.
  bool standby_link = false;
  // MONITOR: from its reply on, the connection receives a line for every command any
  // client runs (ClientDirectory::feed_monitors), and may run only commands that touch no
  // keys (CLIENT LIST's flags=O). The lines of its own commands wait in monitor_echo: the
  // server sends them after the command's reply, as Redis does.
  bool monitor = false;
  std::string monitor_echo;
  // After MULTI: the commands queued for EXEC, their arguments' bytes, and whether one was
  // refused (EXEC then discards them all).
  struct Multi {
    std::vector<std::vector<std::string>> queued;
    size_t bytes = 0;
    bool dirty = false;
  };
  std::optional<Multi> multi;
  ExecOverlay* exec = nullptr;  // while EXEC runs this connection's transaction
  // WATCH: each key, with the count of writes to it the commands had seen then, and the
  // primary's term (a transaction after another term aborts).
  struct Watch {
    uint32_t db = 0;
    std::string key;
    uint64_t writes = 0;
    uint64_t term = 0;
  };
  std::vector<Watch> watching;
};

// The server's connections, for CLIENT LIST and CLIENT KILL.
class ClientDirectory {
 public:
  virtual ~ClientDirectory() = default;
  // Every connected client not yet killed, by increasing id.
  virtual std::vector<const ClientState*> connected() const = 0;
  // Closes client `id`'s connection (replies already queued still go out, as at a close);
  // it leaves connected() at once. False when no such client is connected.
  virtual bool kill(uint64_t id) = 0;
  // Whether client `id` can send nothing more: killed, or its peer closed the connection
  // (checked without reading). A command that may wait long (WAIT) stops then.
  virtual bool gone(uint64_t id) const {
    (void)id;
    return false;
  }
  // MONITOR: whether some connection monitors, and one line (a whole "+...\r\n" reply)
  // for each of them but `from_client` (whose own lines go through monitor_echo). A
  // monitor past the output limits is closed, as any client.
  virtual bool monitored() const { return false; }
  virtual void feed_monitors(std::string_view line, uint64_t from_client) {
    (void)line;
    (void)from_client;
  }
};

// What the server tells the commands about itself (INFO clients, stats).
struct ServerStats {
  uint64_t connected_clients = 0;
  uint64_t total_connections = 0;     // accepted since start
  uint64_t rejected_connections = 0;  // refused at max clients
  uint64_t total_commands = 0;
  uint64_t protocol_errors = 0;
  uint64_t output_limit_disconnects = 0;  // clients dropped for not reading their replies
  uint64_t net_input_bytes = 0;           // read from clients
  uint64_t net_output_bytes = 0;          // replies handed to the clients' streams
  uint64_t max_clients = 0;               // the server's bound (INFO clients maxclients)
};

// A started command's reply, still to come (CommandHandler::start).
class PendingReply {
 public:
  virtual ~PendingReply() = default;
  // Waits for the command's outcome and appends its one reply to `out`. Called at most
  // once; a PendingReply destroyed unfinished lets its command finish unobserved.
  virtual Task<void> finish(ClientState& client, ReplyWriter& out) = 0;
};

class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  // Executes one command: args[0] is its name as sent (any case), args[1..] its arguments,
  // binary-safe. Appends exactly one reply (possibly an array) to `out`; every failure is
  // an error reply, never an exception.
  virtual Task<void> execute(std::vector<std::string> args, ClientState& client,
                             ReplyWriter& out) = 0;
  // Executes the command at once when it can without waiting, as execute() would have
  // (true, its reply appended). False when it cannot: nothing was done (args and `out`
  // are untouched), and the server runs it with execute() (or start()). The server asks
  // only with no started command before it, as execute() runs after those.
  virtual bool execute_now(std::vector<std::string>& args, ClientState& client, ReplyWriter& out) {
    (void)args;
    (void)client;
    (void)out;
    return false;
  }
  // Starts a command that needs nothing of the connection's earlier commands but its place
  // after them (a blind write): returns once the command holds that place, with its reply
  // to come. Nullptr when the command is not one the handler starts (or not now): nothing
  // was done (args are untouched), and the server runs it with execute() once every earlier
  // reply is written.
  virtual Task<std::unique_ptr<PendingReply>> start(std::vector<std::string>& args,
                                                    ClientState& client) {
    (void)args;
    (void)client;
    co_return nullptr;
  }
  // The connection ended (its last command finished, or a stop cancelled it): the handler
  // forgets what it kept for it.
  virtual void disconnected(ClientState& client) { (void)client; }
};

}  // namespace quire::resp
