#include "sim/split_brain.h"

#include <algorithm>

#include <fmt/format.h>

#include "repl/replica_node.h"

namespace quire {

void SplitBrainHistory::acked(std::string_view node, uint64_t term, MonoTime at,
                              std::string_view key) {
  acks_.push_back(Ack{std::string(node), term, at, std::string(key)});
  auto [it, fresh] = first_ack_.emplace(term, at);
  if (!fresh) it->second = std::min(it->second, at);
}

void SplitBrainHistory::fenced(uint64_t term, MonoTime at) {
  if (term == 0) return;
  auto [it, fresh] = fenced_at_.emplace(term, at);
  if (!fresh) it->second = std::min(it->second, at);
  terms_max_ = std::max(terms_max_, term);
}

void SplitBrainHistory::observe(const ReplicaNode& node) {
  fenced(node.stats().fenced_term, node.stats().fenced_at);
}

void SplitBrainHistory::serving(uint64_t term) {
  if (term == 0 || term == last_serving_term_) return;
  if (last_serving_term_ != 0) failovers_++;
  last_serving_term_ = term;
  terms_max_ = std::max(terms_max_, term);
}

std::optional<std::string> SplitBrainHistory::check() const {
  if (auto v = acked_after(fenced_at_, "fenced the page servers")) return v;
  return acked_after(first_ack_, "acknowledged");
}

std::optional<std::string> SplitBrainHistory::acked_after(const std::map<uint64_t, MonoTime>& times,
                                                          std::string_view event) const {
  for (const Ack& a : acks_) {
    for (auto it = times.upper_bound(a.term); it != times.end(); ++it) {
      if (it->second >= a.at) continue;
      return fmt::format("{} acknowledged {} under term {} at {:.3f}s, after term {} {} at {:.3f}s",
                         a.node, a.key, a.term, static_cast<double>(a.at.ns) / 1e9, it->first,
                         event, static_cast<double>(it->second.ns) / 1e9);
    }
  }
  return std::nullopt;
}

}  // namespace quire
