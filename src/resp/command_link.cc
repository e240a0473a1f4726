#include "resp/command_link.h"

#include <array>

#include <fmt/format.h>

#include "resp/protocol.h"

namespace quire::resp {

CommandLink::CommandLink(Env& env, Target target, std::string password, Nanos timeout)
    : env_(env), target_(std::move(target)), password_(std::move(password)), timeout_(timeout) {}

CommandLink::~CommandLink() {
  drop();
}

void CommandLink::drop() {
  if (conn_) conn_->close();
  conn_.reset();
  connected_to_.clear();
  buffer_.clear();
}

Task<Status> CommandLink::send(std::vector<std::string> args) {
  std::optional<Address> to = target_();
  if (!to) {
    drop();
    co_return unavailable("no primary known");
  }
  const Deadline deadline = env_.executor().deadline_after(timeout_);
  Status st = co_await connect(*to, deadline);
  if (!st.is_ok()) {
    drop();
    co_return st;
  }
  auto reply = co_await exchange(args, deadline);
  if (!reply.is_ok()) {
    drop();  // the connection may be out of step
    co_return reply.status();
  }
  if (reply->error) co_return unavailable(fmt::format("{} refused: {}", args[0], reply->text));
  co_return Status();
}

Task<Status> CommandLink::connect(const Address& to, Deadline deadline) {
  if (conn_ && conn_->is_open() && connected_to_ == to) co_return Status();
  drop();
  auto dialed = co_await env_.net().connect_stream(to, deadline);
  if (!dialed.is_ok()) co_return dialed.status();
  conn_ = std::move(dialed).value();
  connected_to_ = to;
  if (!password_.empty()) {
    std::vector<std::string> auth{"AUTH", password_};
    auto reply = co_await exchange(auth, deadline);
    if (!reply.is_ok()) co_return reply.status();
    if (reply->error) co_return unavailable(fmt::format("AUTH refused: {}", reply->text));
  }
  co_return Status();
}

Task<Result<CommandLink::Reply>> CommandLink::exchange(const std::vector<std::string>& args,
                                                       Deadline deadline) {
  const std::string request = encode_multibulk(args);
  Status written =
      conn_->write(ByteView(reinterpret_cast<const uint8_t*>(request.data()), request.size()));
  if (!written.is_ok()) co_return written;
  std::array<uint8_t, 512> chunk{};
  size_t eol = buffer_.find("\r\n");
  while (eol == std::string::npos) {
    if (buffer_.size() > kReplyBytesMax) {
      co_return invalid_argument(fmt::format("a reply longer than {} bytes", kReplyBytesMax));
    }
    auto n = co_await conn_->read_some(chunk, deadline);
    if (!n.is_ok()) co_return n.status();
    buffer_.append(reinterpret_cast<const char*>(chunk.data()), *n);
    eol = buffer_.find("\r\n");
  }
  std::string line = buffer_.substr(0, eol);
  buffer_.erase(0, eol + 2);
  if (!line.empty() && (line[0] == '+' || line[0] == '-')) {
    co_return Reply{line[0] == '-', line.substr(1)};
  }
  co_return invalid_argument(fmt::format("unexpected reply starting '{}'",
                                         line.substr(0, std::min<size_t>(line.size(), 32))));
}

}  // namespace quire::resp
