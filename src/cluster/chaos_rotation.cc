#include "cluster/chaos_rotation.h"

#include <random>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One admin command on the primary; the reply, or nullopt when no primary answered.
std::optional<RespReply> on_primary(PrimaryLocator& locator, RespClient& client,
                                    const std::vector<std::string>& args,
                                    std::chrono::milliseconds timeout) {
  if (!client.is_open()) {
    auto index = locator.find();
    if (!index) return std::nullopt;
    auto c = RespClient::connect(locator.addresses()[*index], kConnectTimeout);
    if (!c.is_ok()) return std::nullopt;
    client = std::move(*c);
  }
  auto reply = client.command(args, timeout);
  if (!reply.is_ok() || (reply->is_error() && is_not_primary_error(reply->text))) {
    client.close();
    locator.invalidate();
    return std::nullopt;
  }
  return *reply;
}

}  // namespace

void RotationDriver::start() {
  rotator_ = std::thread([this] { run_rotations(); });
  checkpointer_ = std::thread([this] { run_checkpoints(); });
}

void RotationDriver::stop() {
  stop_.stop();
  if (rotator_.joinable()) rotator_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void RotationDriver::run_rotations() {
  std::mt19937_64 rng(seed_ ^ 0x726f74617465ull);  // "rotate"
  RespClient client;
  uint64_t since_cmk = 0;
  while (stop_.sleep_for(milliseconds(plan_.rotation_every_ms))) {
    const int64_t gap_ms = std::uniform_int_distribution<int64_t>(
        std::min<int64_t>(100, plan_.rotation_gap_max_ms), plan_.rotation_gap_max_ms)(rng);
    {
      std::lock_guard<std::mutex> lock(mu_);
      gap_end_ = Clock::now() + milliseconds(gap_ms);
      gap_open_ = true;
      ++rotation_id_;
    }
    auto reply = on_primary(locator_, client, {"QUIRE.ROTATEKEK", std::to_string(gap_ms)},
                            milliseconds(gap_ms) + kAdminTimeout);
    {
      std::lock_guard<std::mutex> lock(mu_);
      gap_open_ = false;
    }
    if (!reply || reply->is_error()) {
      counts_.kek_failures++;
      continue;
    }
    counts_.kek_rotations++;
    if (++since_cmk < static_cast<uint64_t>(plan_.cmk_every)) continue;
    since_cmk = 0;
    auto cmk = on_primary(locator_, client, {"QUIRE.ROTATECMK"}, kAdminTimeout);
    if (cmk && !cmk->is_error()) counts_.cmk_rotations++;
  }
}

void RotationDriver::run_checkpoints() {
  std::mt19937_64 rng(seed_ ^ 0x636b7074ull);  // "ckpt"
  RespClient client;
  auto periodic = Clock::now() + milliseconds(plan_.checkpoint_every_ms);
  uint64_t aimed_rotation = 0;  // the rotation whose gap a checkpoint is aimed at
  bool aiming = false;
  Clock::time_point aimed_at{};
  while (!stop_.stopped()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gap_open_ && rotation_id_ != aimed_rotation) {
        // Shortly before T2: late enough that the standbys do not pick it up before T2.
        aimed_rotation = rotation_id_;
        aimed_at = gap_end_ - milliseconds(std::uniform_int_distribution<int64_t>(0, 80)(rng));
        aiming = true;
      }
    }
    const bool in_gap = aiming && aimed_at < periodic;
    const Clock::time_point next = in_gap ? aimed_at : periodic;
    // Wake at least every 50 ms to notice a new rotation.
    if (!stop_.sleep_until(std::min(next, Clock::now() + milliseconds(50)))) break;
    if (Clock::now() < next) continue;
    if (in_gap) aiming = false;
    auto reply = on_primary(locator_, client, {"QUIRE.CHECKPOINT"}, kAdminTimeout);
    if (!in_gap) periodic = Clock::now() + milliseconds(plan_.checkpoint_every_ms);
    if (!reply || reply->is_error()) {
      counts_.checkpoint_failures++;
      continue;
    }
    counts_.checkpoints++;
    if (in_gap) counts_.checkpoints_in_gap++;
  }
}

}  // namespace quire::cluster
