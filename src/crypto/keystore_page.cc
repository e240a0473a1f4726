#include "crypto/keystore_page.h"

#include <cstring>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "crypto/aead.h"

namespace quire {

namespace {

constexpr size_t kCrcOffset = 36;
// The wrapped page key is a KMS blob of tens of bytes; the bound stops a corrupt length
// (which the CRC would already have caught) from mattering.
constexpr size_t kWrappedPageKeyBytesMax = 4096;

Bytes page_key_context(uint64_t cluster_id, uint64_t keystore_version) {
  Bytes out;
  ByteWriter w(out);
  w.put_string("keystore-page");
  w.put_fixed64(cluster_id);
  w.put_fixed64(keystore_version);
  return out;
}

// The header bytes with the CRC field zeroed: both the CRC's and GCM's view of it.
Bytes header_without_crc(ByteView page, size_t header_bytes) {
  Bytes h(page.begin(), page.begin() + header_bytes);
  std::memset(h.data() + kCrcOffset, 0, 4);
  return h;
}

uint32_t page_crc(ByteView page, size_t header_bytes) {
  Bytes h = header_without_crc(page, header_bytes);
  uint32_t crc = crc32c::value(h);
  crc = crc32c::extend(crc, page.data() + header_bytes, page.size() - header_bytes);
  return crc32c::mask(crc);
}

struct ParsedHeader {
  KeystorePageHeader fields;
  size_t header_bytes = 0;
};

Status page_error(Code code, std::string message, uint64_t keystore_version, uint64_t cluster_id) {
  return Status(code, std::move(message))
      .at("keystore_page")
      .with("keystore_version", keystore_version)
      .with("cluster_id", cluster_id);
}

// Everything that can be checked without the KMS: structure, versions, sizes, CRC.
// `cluster_hint` names the cluster in errors raised before the header's own is known.
Result<ParsedHeader> parse_header(ByteView page, uint64_t cluster_hint) {
  if (page.size() < 8) {
    return page_error(Code::kCorruption,
                      fmt::format("keystore page of {} bytes is truncated", page.size()), 0,
                      cluster_hint);
  }
  if (decode_fixed32(page.data()) != kKeystorePageMagic) {
    return page_error(Code::kCorruption, "bad keystore page magic", 0, cluster_hint);
  }
  uint8_t format_version = page[4];
  uint8_t compatible_version = page[5];
  size_t header_bytes = decode_fixed16(page.data() + 6);
  if (header_bytes < kKeystorePageHeaderBytes || header_bytes > page.size()) {
    return page_error(Code::kCorruption,
                      fmt::format("keystore page header size {} in a page of {} bytes",
                                  header_bytes, page.size()),
                      0, cluster_hint);
  }
  ParsedHeader h;
  h.header_bytes = header_bytes;
  h.fields.keystore_version = decode_fixed64(page.data() + 8);
  h.fields.push_ts = Timestamp(decode_fixed64(page.data() + 16));
  h.fields.cluster_id = decode_fixed64(page.data() + 24);
  uint64_t v = h.fields.keystore_version;
  uint64_t c = h.fields.cluster_id;
  if (compatible_version > kKeystorePageCompatibleVersion) {
    return page_error(Code::kVersionTooNew,
                      fmt::format("keystore page needs a reader of version {} (this build is {})",
                                  compatible_version, kKeystorePageCompatibleVersion),
                      v, c);
  }
  // A writer is always at least as new as the readers it admits, and version 0 was never written.
  if (compatible_version == 0 || format_version < compatible_version) {
    return page_error(Code::kCorruption,
                      fmt::format("keystore page format version {} with compatible version {}",
                                  format_version, compatible_version),
                      v, c);
  }
  uint32_t body_bytes = decode_fixed32(page.data() + 32);
  if (page.size() - header_bytes != body_bytes) {
    return page_error(Code::kCorruption,
                      fmt::format("keystore page body of {} bytes, header says {}",
                                  page.size() - header_bytes, body_bytes),
                      v, c);
  }
  uint32_t stored_crc = decode_fixed32(page.data() + kCrcOffset);
  if (stored_crc != page_crc(page, header_bytes)) {
    return page_error(Code::kCorruption, "keystore page checksum mismatch", v, c);
  }
  return h;
}

}  // namespace

Task<Result<Bytes>> encode_keystore_page(Kms& kms, Random& random, Keystore keystore,
                                         Timestamp push_ts) {
  uint64_t v = keystore.version();
  uint64_t c = keystore.cluster_id();
  Bytes plaintext;
  ByteWriter pw(plaintext);
  keystore.encode(pw);

  SecretKey page_key = SecretKey::generate(random);
  Bytes context = page_key_context(c, v);
  SecretKey key_for_kms = page_key.clone();
  Result<WrappedKey> wrapped = co_await kms.wrap(std::move(context), std::move(key_for_kms));
  if (!wrapped.is_ok()) {
    Status s = std::move(wrapped).take_status();
    co_return std::move(s).at("keystore_page").with("keystore_version", v).with("cluster_id", c);
  }

  Bytes nonce(kGcmNonceBytes);
  random.fill(nonce);

  size_t body_bytes = 4 + varint_length(wrapped->blob.size()) + wrapped->blob.size() +
                      kGcmNonceBytes + plaintext.size() + kGcmTagBytes;
  QUIRE_ASSERT(body_bytes <= UINT32_MAX);
  Bytes page(kKeystorePageHeaderBytes, 0);
  encode_fixed32(page.data(), kKeystorePageMagic);
  page[4] = kKeystorePageFormatVersion;
  page[5] = kKeystorePageCompatibleVersion;
  encode_fixed16(page.data() + 6, kKeystorePageHeaderBytes);
  encode_fixed64(page.data() + 8, v);
  encode_fixed64(page.data() + 16, push_ts.value);
  encode_fixed64(page.data() + 24, c);
  encode_fixed32(page.data() + 32, static_cast<uint32_t>(body_bytes));
  // The CRC field is still zero: the header as it stands is the AAD.
  Bytes aad = page;

  ByteWriter w(page);
  w.put_fixed32(wrapped->cmk_version);
  w.put_length_prefixed(wrapped->blob);
  w.put_bytes(nonce);
  Aes256Gcm cipher(page_key);
  Status sealed = cipher.seal(nonce, aad, plaintext, page);
  if (!sealed.is_ok()) {
    co_return std::move(sealed)
        .at("keystore_page")
        .with("keystore_version", v)
        .with("cluster_id", c);
  }
  QUIRE_ASSERT(page.size() == kKeystorePageHeaderBytes + body_bytes);
  encode_fixed32(page.data() + kCrcOffset, page_crc(page, kKeystorePageHeaderBytes));
  co_return page;
}

Task<Result<KeystorePage>> decode_keystore_page(Kms& kms, uint64_t expected_cluster_id,
                                                Bytes page) {
  Result<ParsedHeader> parsed = parse_header(page, expected_cluster_id);
  if (!parsed.is_ok()) co_return std::move(parsed).take_status();
  const ParsedHeader h = *parsed;
  uint64_t v = h.fields.keystore_version;
  uint64_t c = h.fields.cluster_id;
  if (c != expected_cluster_id) {
    co_return page_error(
        Code::kCorruption,
        fmt::format("keystore page of cluster {}, expected {}", c, expected_cluster_id), v, c);
  }

  ByteReader r(ByteView(page).subspan(h.header_bytes));
  WrappedKey wrapped;
  ByteView blob;
  ByteView nonce;
  Status s = r.get_fixed32(&wrapped.cmk_version);
  if (s.is_ok()) s = r.get_length_prefixed(&blob, kWrappedPageKeyBytesMax);
  if (s.is_ok()) s = r.get_bytes(kGcmNonceBytes, &nonce);
  if (!s.is_ok())
    co_return std::move(s).at("keystore_page").with("keystore_version", v).with("cluster_id", c);
  if (r.remaining() < kGcmTagBytes) {
    co_return page_error(Code::kCorruption, "keystore page body too short for its tag", v, c);
  }
  wrapped.blob.assign(blob.begin(), blob.end());
  ByteView sealed;  // ciphertext and tag: the rest of the body
  s = r.get_bytes(r.remaining(), &sealed);
  QUIRE_ASSERT(s.is_ok());

  Bytes context = page_key_context(c, v);
  Result<SecretKey> page_key = co_await kms.unwrap(std::move(context), std::move(wrapped));
  if (!page_key.is_ok()) {
    Status e = std::move(page_key).take_status();
    co_return std::move(e).at("keystore_page").with("keystore_version", v).with("cluster_id", c);
  }
  if (page_key->empty()) {
    co_return page_error(Code::kCorruption, "KMS returned an empty keystore page key", v, c);
  }

  Bytes aad = header_without_crc(page, h.header_bytes);
  Bytes plaintext;
  Aes256Gcm cipher(*page_key);
  s = cipher.open(nonce, aad, sealed, plaintext);
  if (!s.is_ok()) {
    co_return page_error(Code::kCorruption, "keystore page failed authentication", v, c);
  }

  Result<Keystore> keystore = Keystore::decode(plaintext);
  if (!keystore.is_ok()) {
    Status e = std::move(keystore).take_status();
    co_return page_error(Code::kCorruption, fmt::format("keystore page body: {}", e.message()), v,
                         c);
  }
  if (keystore->version() != v || keystore->cluster_id() != c) {
    co_return page_error(Code::kCorruption,
                         fmt::format("keystore page body holds version {} of cluster {}",
                                     keystore->version(), keystore->cluster_id()),
                         v, c);
  }
  co_return KeystorePage{std::move(keystore).value(), h.fields.push_ts};
}

Result<KeystorePageHeader> peek_keystore_page(ByteView page) {
  // No expected cluster: errors before the header is read name cluster 0.
  Result<ParsedHeader> parsed = parse_header(page, 0);
  if (!parsed.is_ok()) return std::move(parsed).take_status();
  return parsed->fields;
}

}  // namespace quire
