// The keystore page: how a keystore version is written to the page service (a KEYSTORE
// record in the reserved keystore table).
//
// Layout (little-endian):
//
//   offset  size  field
//        0     4  magic "QKSP" (0x50534b51)
//        4     1  format version (1)
//        5     1  compatible version (1): readers older than this refuse the page
//        6     2  header size (40)
//        8     8  keystore version
//       16     8  push timestamp (the ts the version was pushed at; 0 for none)
//       24     8  cluster id
//       32     4  body size
//       36     4  CRC32C (masked) of header (this field zeroed) and body
//       40     n  body: cmk version u32 | wrapped page key (length-prefixed) |
//                 nonce(12) | AES-256-GCM(Keystore::encode) with tag
//
// The body is encrypted under a fresh page key that the KMS wraps with the context
// "keystore-page" + cluster id + keystore version, and the GCM AAD is the 40-byte header
// (crc zeroed). So the page authenticates itself: a page from another cluster or version,
// or any changed byte, is Corruption (the CRC catches accidents before the KMS is asked;
// the tag catches the rest). Reading needs the KMS: Unavailable when it is down.
#pragma once

#include "base/ids.h"
#include "crypto/keystore.h"
#include "runtime/env.h"

namespace quire {

inline constexpr uint32_t kKeystorePageMagic = 0x50534b51;  // "QKSP"
inline constexpr uint8_t kKeystorePageFormatVersion = 1;
inline constexpr uint8_t kKeystorePageCompatibleVersion = 1;
inline constexpr size_t kKeystorePageHeaderBytes = 40;

struct KeystorePage {
  Keystore keystore;
  Timestamp push_ts;
};

Task<Result<Bytes>> encode_keystore_page(Kms& kms, Random& random, Keystore keystore,
                                         Timestamp push_ts);

// Errors name the keystore version and cluster: Corruption (bad magic, size, CRC, tag, or
// a body whose version or cluster differs from the header), VersionTooNew (compatible
// version above ours), Unavailable (KMS down), NotFound (the CMK version is gone).
Task<Result<KeystorePage>> decode_keystore_page(Kms& kms, uint64_t expected_cluster_id, Bytes page);

// The header fields without the KMS (for tools and cheap checks): Corruption/VersionTooNew
// as above, but the tag is not checked.
struct KeystorePageHeader {
  uint64_t keystore_version = 0;
  Timestamp push_ts;
  uint64_t cluster_id = 0;
};
Result<KeystorePageHeader> peek_keystore_page(ByteView page);

}  // namespace quire
