#include "crypto/page_cipher.h"

#include <array>

namespace quire {

namespace {

constexpr size_t kAadBytes = 40;
// Header offsets (see the format table in page_cipher.h).
constexpr size_t kVersionOffset = 4;
constexpr size_t kReservedOffset = 5;
constexpr size_t kReservedBytes = 3;
constexpr size_t kDekIdOffset = 8;
constexpr size_t kDekVersionOffset = 16;
constexpr size_t kNonceOffset = 20;
static_assert(kNonceOffset + kGcmNonceBytes == kSealedHeaderBytes);

struct SealedHeader {
  DekRef dek;
  uint8_t format_version = 0;
  ByteView nonce;
  ByteView ciphertext_and_tag;
};

// The header's fields, checked in the order that keeps newer formats readable as "too
// new": the magic and the version first, then what format 1 says about the rest.
// `dek_known` is set once the DEK fields are known to be there, for error context.
Status parse_header(ByteView sealed, SealedHeader* header, bool* dek_known) {
  *dek_known = false;
  if (sealed.size() < kVersionOffset + 1) {
    return corruption("sealed payload shorter than its header").with("size", sealed.size());
  }
  if (decode_fixed32(sealed.data()) != kSealedMagic) {
    return corruption("sealed payload has a bad magic");
  }
  const uint8_t version = sealed[kVersionOffset];
  if (version > kSealedFormatVersion) {
    return Status(Code::kVersionTooNew, "sealed payload has a newer format version")
        .with("format_version", version);
  }
  if (version != kSealedFormatVersion) {
    return corruption("sealed payload has an unknown format version")
        .with("format_version", version);
  }
  if (sealed.size() < kSealedOverheadBytes) {
    return corruption("sealed payload shorter than its header and tag").with("size", sealed.size());
  }
  header->dek.id = decode_fixed64(sealed.data() + kDekIdOffset);
  header->dek.version = decode_fixed32(sealed.data() + kDekVersionOffset);
  *dek_known = true;
  for (size_t i = 0; i < kReservedBytes; i++) {
    if (sealed[kReservedOffset + i] != 0) {
      return corruption("sealed payload has nonzero reserved bytes");
    }
  }
  header->format_version = version;
  header->nonce = sealed.subspan(kNonceOffset, kGcmNonceBytes);
  header->ciphertext_and_tag = sealed.subspan(kSealedHeaderBytes);
  return Status::ok();
}

std::array<uint8_t, kAadBytes> make_aad(const PayloadPlace& place, const DekRef& dek,
                                        uint8_t format_version) {
  std::array<uint8_t, kAadBytes> aad{};
  uint8_t* p = aad.data();
  encode_fixed64(p + 0, place.table.value);
  encode_fixed64(p + 8, place.page.value);
  encode_fixed64(p + 16, place.lsn.value);
  p[24] = place.type;
  encode_fixed64(p + 25, dek.id);
  encode_fixed32(p + 33, dek.version);
  p[37] = format_version;
  // p[38..40): reserved, zero.
  return aad;
}

}  // namespace

DataKey::DataKey(DekRef ref, const SecretKey& key, uint64_t uses_hard_limit)
    : ref_(ref), cipher_(key), uses_hard_limit_(uses_hard_limit) {
  QUIRE_ASSERT(uses_hard_limit_ > 0 && uses_hard_limit_ <= kDekUsesHardLimit);
}

Status DataKey::seal(const PayloadPlace& place, ByteView plaintext, Random& random, Bytes& out) {
  if (uses_ >= uses_hard_limit_) {
    return Status(Code::kKeyExhausted, "data key reached its use limit")
        .at("seal")
        .with("dek_id", ref_.id)
        .with("dek_version", ref_.version)
        .with("uses", uses_);
  }
  // Counted before encrypting: a drawn nonce is spent whether or not the seal succeeds.
  uses_++;

  std::array<uint8_t, kGcmNonceBytes> nonce;
  random.fill(nonce);
  const size_t start = out.size();
  // Reserve the whole payload so the cipher's resize does not reallocate a second time.
  out.reserve(start + kSealedOverheadBytes + plaintext.size());
  out.resize(start + kSealedHeaderBytes);
  uint8_t* h = out.data() + start;
  encode_fixed32(h, kSealedMagic);
  h[kVersionOffset] = kSealedFormatVersion;
  for (size_t i = 0; i < kReservedBytes; i++) h[kReservedOffset + i] = 0;
  encode_fixed64(h + kDekIdOffset, ref_.id);
  encode_fixed32(h + kDekVersionOffset, ref_.version);
  std::copy(nonce.begin(), nonce.end(), h + kNonceOffset);

  const auto aad = make_aad(place, ref_, kSealedFormatVersion);
  Status s = cipher_.seal(nonce, aad, plaintext, out);
  if (!s.is_ok()) {
    out.resize(start);
    return std::move(s)
        .at("seal")
        .with("table", place.table.value)
        .with("page", place.page.value)
        .with("lsn", place.lsn.value)
        .with("type", static_cast<uint64_t>(place.type))
        .with("dek_id", ref_.id)
        .with("dek_version", ref_.version);
  }
  QUIRE_ASSERT(out.size() == start + kSealedOverheadBytes + plaintext.size());
  return Status::ok();
}

Result<DekRef> sealed_dek(ByteView sealed) {
  SealedHeader header;
  bool dek_known = false;
  Status s = parse_header(sealed, &header, &dek_known);
  if (!s.is_ok()) return std::move(s).at("sealed_dek");
  return header.dek;
}

Result<Bytes> open_sealed(const DekLookup& lookup, const PayloadPlace& place, ByteView sealed) {
  QUIRE_ASSERT(lookup);
  SealedHeader header;
  bool dek_known = false;
  // Every failure names where the payload was meant to be, and its DEK once the header
  // has told us which it is.
  auto with_context = [&](Status s) {
    s.at("open_sealed")
        .with("table", place.table.value)
        .with("page", place.page.value)
        .with("lsn", place.lsn.value)
        .with("type", static_cast<uint64_t>(place.type));
    if (dek_known) s.with("dek_id", header.dek.id).with("dek_version", header.dek.version);
    return s;
  };

  Status s = parse_header(sealed, &header, &dek_known);
  if (!s.is_ok()) return with_context(std::move(s));
  DataKey* key = lookup(header.dek);
  if (key == nullptr) return with_context(not_found("no such data key on this node"));

  // The AAD takes the DEK from the header, not from the key found, so every header byte
  // is either checked exactly or authenticated.
  const auto aad = make_aad(place, header.dek, header.format_version);
  Bytes plaintext;
  s = key->cipher().open(header.nonce, aad, header.ciphertext_and_tag, plaintext);
  if (!s.is_ok()) {
    // open() fails only on the tag here (the nonce and length were checked above).
    return with_context(Status(
        s.code(),
        "sealed payload failed authentication: tampered, or written for another place or key"));
  }
  return plaintext;
}

}  // namespace quire
