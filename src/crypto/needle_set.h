// NeedleSet: a search for many short byte strings at once, for the checkers that prove no
// plaintext reaches a page server (no canary value, no 16-byte window of any key).
//
// Needles are exactly kNeedleBytes. find() reads each hay position's first 8 bytes once:
// a bit filter sized to the set (at least 32 bits a needle) rejects almost every position,
// and the rest are looked up in an open-addressed table and compared in full. A needle
// costs 30 to 45 bytes; each distinct label costs its std::string and a table slot, so
// many needles (say 300k canaries) are cheapest sharing a few short labels.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/status.h"
#include "crypto/keystore.h"
#include "crypto/kms.h"
#include "runtime/task.h"

namespace quire {

inline constexpr size_t kNeedleBytes = 16;

// Byte strings of exactly kNeedleBytes, searched for all at once. A needle is stored
// once: adding bytes already present adds nothing (and keeps the first label).
class NeedleSet {
 public:
  // Adds every kNeedleBytes window of `bytes` (a canary of exactly kNeedleBytes is one
  // window), labelled `what`, in order. Precondition: bytes.size() >= kNeedleBytes.
  void add(ByteView bytes, const std::string& what);
  // Adds one needle: the first kNeedleBytes of `bytes` (for canaries unique in their
  // first 16 bytes). Precondition: bytes.size() >= kNeedleBytes.
  void add_prefix(ByteView bytes, const std::string& what);

  size_t size() const { return needles_.size(); }
  // Needle `index` (0..size()-1): its bytes and its label.
  ByteView bytes(size_t index) const;
  const std::string& what(size_t index) const;
  // True when some needle is labelled `what`.
  bool has_label(const std::string& what) const;

  // The indexes of the needles that occur in `hay`, added to `found`.
  void find(ByteView hay, std::set<size_t>& found) const;

 private:
  using Needle = std::array<uint8_t, kNeedleBytes>;

  // Adds one window that is not present yet.
  void add_window(const uint8_t* window, uint32_t label);
  // The label's index in labels_, added if new.
  uint32_t intern_label(const std::string& what);
  // The label's index in labels_, or kEmpty.
  uint32_t find_label(const std::string& what) const;
  // The needle equal to `window`, or kEmpty.
  uint32_t find_needle(const uint8_t* window, uint64_t hash) const;
  // Enters needle (label) `index` in the filter and table (the label table).
  void index_needle(uint32_t index);
  void index_label(uint32_t index);
  // Rebuild the filter and the needle table for `count` needles (the label table for
  // `count` labels), entering every needle (label) there is.
  void grow_needle_index(size_t count);
  void grow_label_index(size_t count);

  static constexpr uint32_t kEmpty = UINT32_MAX;

  std::vector<Needle> needles_;
  std::vector<uint32_t> needle_label_;  // index into labels_, per needle
  std::vector<std::string> labels_;     // distinct labels
  // Open-addressed (linear probing, load <= 1/2) tables of indexes into needles_ and
  // labels_; sizes are powers of two, kEmpty marks a free slot.
  std::vector<uint32_t> needle_slots_;
  std::vector<uint32_t> label_slots_;
  // One bit per hash of a needle's first 8 bytes; filter_shift_ = 64 - log2(bits).
  std::vector<uint64_t> filter_;
  int filter_shift_ = 64;
};

// The labels add_keystore_keys gives: "KEK v3", "DEK 16 v2".
std::string kek_needle_label(uint32_t kek_version);
std::string dek_needle_label(const DekRef& ref);

// Adds every key `keystore` names, unwrapped, to `needles`: each KEK that is not destroyed
// (through `kms`) and each DEK version (under its KEK), every kNeedleBytes window of each.
// A key whose label `needles` already has is skipped, and a KEK is unwrapped only when it
// is new or a new DEK needs it, so calling this again as a keystore grows asks the KMS
// only for what is new. The keystore is copied before the first suspension. On error
// (the KMS's, e.g. Unavailable; Corruption when a DEK does not unwrap or its KEK is
// missing) the keys added before it stay.
Task<Status> add_keystore_keys(Kms& kms, const Keystore& keystore, NeedleSet& needles);

}  // namespace quire
