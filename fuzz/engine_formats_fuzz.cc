// libFuzzer target for the formats a compute node reads back from the page service: the
// B+tree page, the checkpoint metadata page and completion record, the keystore encoding,
// the sealed (encrypted) payload and the log entry. Whatever the bytes: no crash, no read
// outside them, errors are typed, and anything accepted is canonical (re-encoding gives
// it back).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "crypto/keystore.h"
#include "crypto/page_cipher.h"
#include "engine/btree_page.h"
#include "engine/checkpoint_format.h"
#include "repl/log_entry.h"

namespace quire {
namespace {

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "engine_formats_fuzz: check failed: %s at line %d\n", #cond, __LINE__); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)

bool typed(const Status& st) {
  return st.code() == Code::kCorruption || st.code() == Code::kVersionTooNew;
}

void check_btree_page(ByteView in) {
  auto node = decode_btree_node(in);
  if (!node.is_ok()) {
    FUZZ_CHECK(typed(node.status()));
    return;
  }
  Bytes again = encode_btree_node(*node);
  FUZZ_CHECK(again.size() == node->encoded_size());
  FUZZ_CHECK(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()));
}

void check_metadata(ByteView in) {
  auto meta = decode_metadata_page(in);
  if (!meta.is_ok()) {
    FUZZ_CHECK(typed(meta.status()));
    return;
  }
  Bytes again = encode_metadata_page(*meta);
  FUZZ_CHECK(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()));
}

void check_completion(ByteView in) {
  std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  auto c = decode_completion(text);
  if (!c.is_ok()) {
    FUZZ_CHECK(c.code() == Code::kCorruption);
    return;
  }
  auto again = decode_completion(encode_completion(*c));
  FUZZ_CHECK(again.is_ok() && *again == *c);
}

void check_keystore(ByteView in) {
  auto ks = Keystore::decode(in);
  if (!ks.is_ok()) {
    FUZZ_CHECK(ks.code() == Code::kCorruption);
    return;
  }
  Bytes again;
  ByteWriter w(again);
  ks->encode(w);
  auto twice = Keystore::decode(again);
  FUZZ_CHECK(twice.is_ok() && *twice == *ks);
}

// A fixed DEK: whatever the bytes, opening gives a typed error or an authentic plaintext.
void check_sealed(ByteView in) {
  auto key = SecretKey::from_bytes(Bytes(kSecretKeyBytes, 0x5a));
  FUZZ_CHECK(key.is_ok());
  DataKey dek(DekRef{16, 1}, *key);
  DekLookup lookup = [&dek](const DekRef& r) { return r == dek.ref() ? &dek : nullptr; };
  PayloadPlace place{TableId(16), PageId(1), Lsn(2), RecordType::kPage};
  auto plain = open_sealed(lookup, place, in);
  if (plain.is_ok()) {
    // Only an authentic payload opens (the seed corpus holds one); it is exactly the
    // header, the plaintext and the tag.
    FUZZ_CHECK(plain->size() + kSealedOverheadBytes == in.size());
  } else {
    FUZZ_CHECK(plain.code() == Code::kCorruption || plain.code() == Code::kVersionTooNew ||
               plain.code() == Code::kNotFound);
  }
  auto ref = sealed_dek(in);
  FUZZ_CHECK(ref.is_ok() || typed(ref.status()));
}

void check_log_entry(ByteView in) {
  auto entry = decode_log_entry(in);
  if (!entry.is_ok()) {
    FUZZ_CHECK(typed(entry.status()));
    return;
  }
  auto again = encode_log_entry(*entry);
  FUZZ_CHECK(again.is_ok());
  FUZZ_CHECK(again->size() == in.size() && std::equal(again->begin(), again->end(), in.begin()));
}

}  // namespace
}  // namespace quire

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quire;
  if (size == 0) return 0;
  // The first byte picks the decoder, so one corpus covers all of them. Selectors only
  // ever grow: the committed seeds start with 0..5.
  const ByteView in(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      check_btree_page(in);
      break;
    case 1:
      check_metadata(in);
      break;
    case 2:
      check_completion(in);
      break;
    case 3:
      check_keystore(in);
      break;
    case 4:
      check_sealed(in);
      break;
    case 5:
      check_log_entry(in);
      break;
  }
  return 0;
}
