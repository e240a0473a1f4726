// CommandLink: one RESP connection from a node to another node's client port, for the
// node's own commands (a standby's QUIRE.REPORT to its primary, progress_reporter.h). It
// sends one command at a time and reads its one reply, which must be a simple string or
// an error line (the only replies those commands have).
//
// The target is asked for at every send (`target`, e.g. the leader a LeaderWatch names):
// when it changes, or after any failure, the connection is closed and the next send dials
// afresh, authenticating first when a password is given. Each send is bounded by
// `timeout` (connect, AUTH, write and reply together) and a reply by kReplyBytesMax.
//
// Errors: Unavailable when there is no target, it cannot be reached or the connection
// broke, and for an error reply (its text; the connection stays up); DeadlineExceeded;
// InvalidArgument for a reply that is neither of the two kinds or too long (the connection
// is closed).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/env.h"

namespace quire::resp {

class CommandLink {
 public:
  static constexpr size_t kReplyBytesMax = 4096;
  using Target = std::function<std::optional<Address>()>;

  CommandLink(Env& env, Target target, std::string password, Nanos timeout);
  ~CommandLink();
  CommandLink(const CommandLink&) = delete;
  CommandLink& operator=(const CommandLink&) = delete;

  // One command, one reply: OK for a simple-string reply. Calls must not overlap.
  Task<Status> send(std::vector<std::string> args);

 private:
  // Dials `to` (and authenticates) unless already connected to it.
  Task<Status> connect(const Address& to, Deadline deadline);
  struct Reply {
    bool error = false;  // "-..." rather than "+..."
    std::string text;    // the line without its type byte
  };
  // Writes one command and reads its one-line reply.
  Task<Result<Reply>> exchange(const std::vector<std::string>& args, Deadline deadline);
  void drop();

  Env& env_;
  Target target_;
  std::string password_;
  Nanos timeout_;
  std::unique_ptr<StreamConnection> conn_;
  Address connected_to_;
  std::string buffer_;  // bytes read past the last reply
};

}  // namespace quire::resp
