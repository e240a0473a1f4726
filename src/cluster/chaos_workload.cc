#include "cluster/chaos_workload.h"

#include <random>

#include "cluster/cluster_ops.h"

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetryPause = std::chrono::milliseconds(50);
constexpr auto kReaderPause = std::chrono::milliseconds(5);

// A connection to the primary, found again whenever it is lost.
struct PrimaryConnection {
  RespClient client;
  uint16_t node = 0;

  bool ensure(PrimaryLocator& locator) {
    if (client.is_open()) return true;
    auto index = locator.find();
    if (!index) return false;
    auto c = RespClient::connect(locator.addresses()[*index], kConnectTimeout);
    if (!c.is_ok()) {
      locator.invalidate();
      return false;
    }
    client = std::move(*c);
    node = static_cast<uint16_t>(*index);
    return true;
  }
  // After a reply: drop the connection when it broke or the node is not the primary.
  void after(const Result<RespReply>& reply, PrimaryLocator& locator) {
    if (!reply.is_ok()) {
      client.close();
      locator.invalidate();
    } else if (reply->is_error() && is_not_primary_error(reply->text)) {
      client.close();
      locator.invalidate();
    }
  }
};

// A GET's reply as a read op's value; false when it is not an answer (an error reply).
bool read_value(const RespReply& reply, Op& op) {
  if (reply.type == RespReply::Type::kNull) {
    op.seq = 0;
    return true;
  }
  if (reply.type != RespReply::Type::kBulk) return false;
  auto v = parse_chaos_value(reply.text);
  if (!v || v->owner != op.owner) {
    op.foreign_value = true;
  } else {
    op.seq = v->seq;
  }
  return true;
}

}  // namespace

std::optional<size_t> PrimaryLocator::find() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_ && Clock::now() - cached_at_ < kLocateCache) return cached_;
  std::optional<size_t> best;
  uint64_t best_term = 0;
  for (size_t i = 0; i < addresses_.size(); ++i) {
    NodeReport r = query_node(addresses_[i], kLocateTimeout);
    if (r.answered && r.role == "primary" && r.serving() && (!best || r.term > best_term)) {
      best = i;
      best_term = r.term;
    }
  }
  cached_ = best;
  cached_at_ = Clock::now();
  return best;
}

void PrimaryLocator::invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  cached_.reset();
}

Result<PrimaryLocator::Answer> PrimaryLocator::command_until(
    const std::vector<std::string>& args, const std::function<bool(const RespReply&)>& accept,
    std::chrono::milliseconds wait, std::chrono::milliseconds poll,
    std::chrono::milliseconds command_timeout) {
  std::string last = "no primary found";
  const auto until = Clock::now() + wait;
  while (Clock::now() < until) {
    if (auto index = find()) {
      auto c = RespClient::connect(addresses_[*index], kConnectTimeout);
      if (!c.is_ok()) {
        last = c.status().to_string();
      } else if (auto reply = c->command(args, command_timeout); !reply.is_ok()) {
        last = reply.status().to_string();
      } else if (accept(*reply)) {
        return Answer{*index, std::move(reply).value()};
      } else {
        last = fmt::format("{} answered '{}' ({})", args.front(), reply->text, reply->integer);
      }
    }
    invalidate();
    std::this_thread::sleep_for(poll);
  }
  return unavailable(last);
}

int64_t Workload::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0_).count();
}

void Workload::start() {
  const size_t nodes = locator_.addresses().size();
  ops_.resize(writers_ + nodes);
  for (auto& v : ops_) v.reserve(1 << 14);
  for (size_t c = 0; c < writers_; ++c) {
    threads_.emplace_back([this, c] { run_writer(static_cast<uint32_t>(c), ops_[c]); });
  }
  for (size_t n = 0; n < nodes; ++n) {
    threads_.emplace_back([this, n] { run_reader(static_cast<uint16_t>(n), ops_[writers_ + n]); });
  }
}

void Workload::stop() {
  stop_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<Op> Workload::history() const {
  std::vector<Op> all;
  for (const auto& v : ops_) all.insert(all.end(), v.begin(), v.end());
  return all;
}

void Workload::run_writer(uint32_t client, std::vector<Op>& ops) {
  std::mt19937_64 rng(seed_ * 1000 + client);
  const size_t share = kHistoryOpsMax / (ops_.size());
  PrimaryConnection conn;
  uint32_t next_unique = kHotKeysPerClient;
  uint64_t seq = 0;
  auto next_op = Clock::now();
  while (stop_.sleep_until(next_op) && ops.size() < share) {
    next_op = Clock::now() + kWriterOpInterval;
    if (!conn.ensure(locator_)) {
      stop_.sleep_for(kRetryPause);
      continue;
    }
    const int roll = static_cast<int>(rng() % 100);
    Op op;
    op.node = conn.node;
    if (roll < 15) {
      op.kind = OpKind::kRead;
      op.path = ReadPath::kPrimary;
      op.owner = static_cast<uint32_t>(rng() % writers_);
      op.key_index = static_cast<uint32_t>(rng() % kHotKeysPerClient);
      op.start_us = now_us();
      auto reply = conn.client.command({"GET", chaos_key(op.owner, op.key_index)}, kReadTimeout);
      op.end_us = now_us();
      conn.after(reply, locator_);
      if (reply.is_ok() && read_value(*reply, op)) {
        ops.push_back(op);
        counts_.reads++;
      } else {
        counts_.reads_refused++;
      }
      continue;
    }
    op.kind = OpKind::kWrite;
    op.owner = client;
    op.key_index = roll < 55 ? static_cast<uint32_t>(rng() % kHotKeysPerClient) : next_unique++;
    op.seq = ++seq;
    op.start_us = now_us();
    auto reply = conn.client.command(
        {"SET", chaos_key(op.owner, op.key_index), chaos_value(op.owner, op.seq)}, kWriteTimeout);
    op.end_us = now_us();
    op.outcome = classify_write(reply);
    conn.after(reply, locator_);
    ops.push_back(op);
    (op.outcome == OpOutcome::kOk      ? counts_.writes_ok
     : op.outcome == OpOutcome::kError ? counts_.writes_failed
                                       : counts_.writes_unknown)++;
    if (op.outcome != OpOutcome::kOk) stop_.sleep_for(kRetryPause);
  }
}

void Workload::run_reader(uint16_t node, std::vector<Op>& ops) {
  std::mt19937_64 rng(seed_ * 1000 + 500 + node);
  const size_t share = kHistoryOpsMax / (ops_.size());
  RespClient client;
  while (!stop_.stopped() && ops.size() < share) {
    if (!client.is_open()) {
      auto c = RespClient::connect(locator_.addresses()[node], kConnectTimeout);
      if (!c.is_ok()) {
        stop_.sleep_for(kRetryPause * 2);
        continue;
      }
      client = std::move(*c);
    }
    Op op;
    op.kind = OpKind::kRead;
    op.path = ReadPath::kNode;
    op.node = node;
    op.owner = static_cast<uint32_t>(rng() % writers_);
    op.key_index = static_cast<uint32_t>(rng() % kHotKeysPerClient);
    op.start_us = now_us();
    auto reply = client.command({"GET", chaos_key(op.owner, op.key_index)}, kReadTimeout);
    op.end_us = now_us();
    if (!reply.is_ok()) {
      client.close();
      counts_.reads_refused++;
    } else if (read_value(*reply, op)) {
      ops.push_back(op);
      counts_.reads++;
    } else {
      counts_.reads_refused++;
      stop_.sleep_for(kRetryPause);
    }
    stop_.sleep_for(kReaderPause);
  }
}

}  // namespace quire::cluster
