#include "crypto/page_cipher.h"

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "runtime/sim/sim_random.h"

namespace quire {
namespace {

// The caller's record kinds, as pagelog's RecordType gives them: crypto sees only the byte.
enum class Kind : uint8_t { kLog = 1, kPage = 2, kDelta = 3 };

PayloadPlace place(uint64_t table, uint64_t page, uint64_t lsn, Kind type) {
  return PayloadPlace{TableId(table), PageId(page), Lsn(lsn), type};
}

const Bytes kPrefix = {0xde, 0xad, 0xbe, 0xef};

class PageCipher : public ::testing::Test {
 protected:
  // The lookup a node would give: only the DEK it holds.
  DekLookup strict_lookup() {
    return [this](const DekRef& ref) { return ref == dek_.ref() ? &dek_ : nullptr; };
  }
  // Hands out the one key whatever the header says, so tests can see that a re-labelled
  // payload still fails on its tag.
  DekLookup any_ref_lookup() {
    return [this](const DekRef&) { return &dek_; };
  }

  Bytes seal(const PayloadPlace& where, ByteView plaintext) {
    Bytes out;
    const Status s = dek_.seal(where, plaintext, random_, out);
    QUIRE_ASSERT(s.is_ok());
    return out;
  }

  Bytes plaintext(size_t n) {
    Bytes b(n);
    random_.fill(b);
    return b;
  }

  SimRandom random_{7};
  DataKey dek_{DekRef{0x1122334455667788ull, 3}, SecretKey::generate(random_)};
  const PayloadPlace place_ = place(12, 34, 56, Kind::kPage);
};

TEST_F(PageCipher, RoundTripsEveryRecordTypeByte) {
  for (unsigned type = 0; type <= 0xff; type++) {
    const PayloadPlace where{TableId(9), PageId(10), Lsn(11), static_cast<uint8_t>(type)};
    const Bytes text = plaintext(100);
    const Bytes sealed = seal(where, text);
    Result<Bytes> opened = open_sealed(strict_lookup(), where, sealed);
    ASSERT_TRUE(opened.is_ok()) << type << opened.status().to_string();
    EXPECT_EQ(*opened, text) << type;
  }
}

TEST_F(PageCipher, EmptyPlaintextRoundTrips) {
  const Bytes sealed = seal(place_, {});
  EXPECT_EQ(sealed.size(), kSealedOverheadBytes);
  Result<Bytes> opened = open_sealed(strict_lookup(), place_, sealed);
  ASSERT_TRUE(opened.is_ok());
  EXPECT_TRUE(opened->empty());
}

TEST_F(PageCipher, HeaderFollowsTheDocumentedLayout) {
  const Bytes text = plaintext(50);
  Bytes sealed = kPrefix;
  ASSERT_TRUE(dek_.seal(place_, text, random_, sealed).is_ok());
  EXPECT_EQ(Bytes(sealed.begin(), sealed.begin() + 4), kPrefix);  // appended, not replaced
  const ByteView p = ByteView(sealed).subspan(4);
  ASSERT_EQ(p.size(), kSealedOverheadBytes + text.size());
  EXPECT_EQ(std::string(p.begin(), p.begin() + 4), "QENC");
  EXPECT_EQ(p[4], 1);
  EXPECT_EQ(p[5], 0);
  EXPECT_EQ(p[6], 0);
  EXPECT_EQ(p[7], 0);
  EXPECT_EQ(decode_fixed64(p.data() + 8), 0x1122334455667788ull);
  EXPECT_EQ(decode_fixed32(p.data() + 16), 3u);

  Result<DekRef> ref = sealed_dek(p);
  ASSERT_TRUE(ref.is_ok());
  EXPECT_EQ(*ref, dek_.ref());

  // The ciphertext is exactly AES-256-GCM of the plaintext under the documented 40-byte
  // AAD with the header's nonce: an independent reading of the format.
  Bytes aad(40, 0);
  encode_fixed64(aad.data() + 0, 12);
  encode_fixed64(aad.data() + 8, 34);
  encode_fixed64(aad.data() + 16, 56);
  aad[24] = static_cast<uint8_t>(Kind::kPage);
  encode_fixed64(aad.data() + 25, 0x1122334455667788ull);
  encode_fixed32(aad.data() + 33, 3);
  aad[37] = 1;
  Bytes opened;
  ASSERT_TRUE(dek_.cipher().open(p.subspan(20, 12), aad, p.subspan(32), opened).is_ok());
  EXPECT_EQ(opened, text);
}

TEST_F(PageCipher, FlippingAnyBitFails) {
  const Bytes sealed = seal(place_, plaintext(40));
  for (size_t bit = 0; bit < sealed.size() * 8; bit++) {
    Bytes bad = sealed;
    const size_t byte = bit / 8;
    bad[byte] ^= static_cast<uint8_t>(1u << (bit % 8));
    const bool version_grew = byte == 4 && bad[4] > kSealedFormatVersion;
    const Code expected = version_grew ? Code::kVersionTooNew : Code::kCorruption;
    // Even when the lookup hands out the key for a re-labelled DEK, the tag catches it.
    EXPECT_EQ(open_sealed(any_ref_lookup(), place_, bad).code(), expected) << "bit " << bit;
    // With the node's real lookup a re-labelled DEK may instead be unknown.
    const Code strict = open_sealed(strict_lookup(), place_, bad).code();
    const bool dek_field = byte >= 8 && byte < 20;
    if (dek_field) {
      EXPECT_EQ(strict, Code::kNotFound) << "bit " << bit;
    } else {
      EXPECT_EQ(strict, expected) << "bit " << bit;
    }
  }
}

TEST_F(PageCipher, TruncatedOrExtendedFails) {
  const Bytes sealed = seal(place_, plaintext(40));
  for (size_t n = 0; n < sealed.size(); n++) {
    EXPECT_EQ(open_sealed(strict_lookup(), place_, ByteView(sealed).first(n)).code(),
              Code::kCorruption)
        << n;
  }
  Bytes longer = sealed;
  longer.push_back(0);
  EXPECT_EQ(open_sealed(strict_lookup(), place_, longer).code(), Code::kCorruption);
}

TEST_F(PageCipher, MalformedHeadersAreNamed) {
  const Bytes sealed = seal(place_, plaintext(8));

  Bytes bad_magic = sealed;
  bad_magic[0] = 'X';
  EXPECT_EQ(sealed_dek(bad_magic).code(), Code::kCorruption);
  EXPECT_EQ(open_sealed(strict_lookup(), place_, bad_magic).code(), Code::kCorruption);

  Bytes version_zero = sealed;
  version_zero[4] = 0;
  EXPECT_EQ(sealed_dek(version_zero).code(), Code::kCorruption);

  Bytes newer = sealed;
  newer[4] = 2;
  EXPECT_EQ(sealed_dek(newer).code(), Code::kVersionTooNew);
  EXPECT_EQ(open_sealed(strict_lookup(), place_, newer).code(), Code::kVersionTooNew);
  // A newer format is recognised even when its header would be shorter than ours.
  EXPECT_EQ(sealed_dek(ByteView(newer).first(5)).code(), Code::kVersionTooNew);

  for (size_t i = 5; i < 8; i++) {
    Bytes reserved = sealed;
    reserved[i] = 1;
    EXPECT_EQ(sealed_dek(reserved).code(), Code::kCorruption) << i;
    EXPECT_EQ(open_sealed(strict_lookup(), place_, reserved).code(), Code::kCorruption) << i;
  }

  EXPECT_EQ(sealed_dek({}).code(), Code::kCorruption);
  EXPECT_EQ(sealed_dek(ByteView(sealed).first(kSealedOverheadBytes - 1)).code(), Code::kCorruption);
}

TEST_F(PageCipher, PayloadAtAnotherPlaceFails) {
  const Bytes sealed = seal(place_, plaintext(64));
  const PayloadPlace elsewhere[] = {
      place(13, 34, 56, Kind::kPage),   // another table
      place(12, 35, 56, Kind::kPage),   // another page
      place(12, 34, 57, Kind::kPage),   // another lsn (a replay)
      place(12, 34, 56, Kind::kDelta),  // another record type
      place(34, 12, 56, Kind::kPage),   // table and page swapped
  };
  for (const PayloadPlace& where : elsewhere) {
    Result<Bytes> opened = open_sealed(strict_lookup(), where, sealed);
    EXPECT_EQ(opened.code(), Code::kCorruption);
    EXPECT_EQ(opened.status().field("table"), where.table.value);
    EXPECT_EQ(opened.status().field("lsn"), where.lsn.value);
  }
  // Two payloads swapped between pages each fail at the other's place.
  const PayloadPlace other = place(12, 99, 57, Kind::kPage);
  const Bytes other_sealed = seal(other, plaintext(64));
  EXPECT_EQ(open_sealed(strict_lookup(), other, sealed).code(), Code::kCorruption);
  EXPECT_EQ(open_sealed(strict_lookup(), place_, other_sealed).code(), Code::kCorruption);
}

TEST_F(PageCipher, OtherKeyUnderTheSameRefFails) {
  const Bytes sealed = seal(place_, plaintext(64));
  DataKey impostor(dek_.ref(), SecretKey::generate(random_));
  const DekLookup lookup = [&](const DekRef&) { return &impostor; };
  EXPECT_EQ(open_sealed(lookup, place_, sealed).code(), Code::kCorruption);
}

TEST_F(PageCipher, ErrorsNameThePlaceAndTheDek) {
  Bytes sealed = seal(place_, plaintext(64));
  sealed.back() ^= 1;
  const Status corrupt = open_sealed(strict_lookup(), place_, sealed).status();
  EXPECT_EQ(corrupt.code(), Code::kCorruption);
  EXPECT_EQ(corrupt.step(), "open_sealed");
  EXPECT_EQ(corrupt.field("table"), 12u);
  EXPECT_EQ(corrupt.field("page"), 34u);
  EXPECT_EQ(corrupt.field("lsn"), 56u);
  EXPECT_EQ(corrupt.field("type"), static_cast<uint64_t>(Kind::kPage));
  EXPECT_EQ(corrupt.field("dek_id"), 0x1122334455667788ull);
  EXPECT_EQ(corrupt.field("dek_version"), 3u);
  EXPECT_FALSE(corrupt.retriable());

  Bytes newer = seal(place_, plaintext(8));
  newer[4] = 9;
  const Status too_new = open_sealed(strict_lookup(), place_, newer).status();
  EXPECT_EQ(too_new.code(), Code::kVersionTooNew);
  EXPECT_EQ(too_new.step(), "open_sealed");
  EXPECT_EQ(too_new.field("lsn"), 56u);
  EXPECT_EQ(too_new.field("format_version"), 9u);
}

TEST_F(PageCipher, UnknownDekIsNotFound) {
  const Bytes sealed = seal(place_, plaintext(64));
  const DekLookup none = [](const DekRef&) -> DataKey* { return nullptr; };
  const Status s = open_sealed(none, place_, sealed).status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.step(), "open_sealed");
  EXPECT_EQ(s.field("table"), 12u);
  EXPECT_EQ(s.field("page"), 34u);
  EXPECT_EQ(s.field("lsn"), 56u);
  EXPECT_EQ(s.field("type"), static_cast<uint64_t>(Kind::kPage));
  EXPECT_EQ(s.field("dek_id"), 0x1122334455667788ull);
  EXPECT_EQ(s.field("dek_version"), 3u);
}

TEST_F(PageCipher, MessagesNeverContainKeyBytes) {
  DataKey key(DekRef{1, 1}, SecretKey::from_bytes(Bytes(32, 'K')).value(), 1);
  Bytes out;
  ASSERT_TRUE(key.seal(place_, plaintext(8), random_, out).is_ok());
  const DekLookup lookup = [&](const DekRef&) { return &key; };
  Bytes bad = out;
  bad.back() ^= 1;
  const std::string texts[] = {
      open_sealed(lookup, place_, bad).status().to_string(),
      key.seal(place_, plaintext(8), random_, out).to_string(),
  };
  for (const std::string& text : texts) {
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find("KKKK"), std::string::npos) << text;
    EXPECT_EQ(text.find("4b4b4b4b"), std::string::npos) << text;
  }
}

TEST_F(PageCipher, PlaintextNeverAppearsInTheSealedBytes) {
  const Bytes canary = {'q', 'u', 'i', 'r', 'e', '-', 'c', 'a',
                        'n', 'a', 'r', 'y', '-', '1', '6', '!'};
  Bytes text = plaintext(1000);
  for (size_t at : {0, 500, 984}) std::copy(canary.begin(), canary.end(), text.begin() + at);
  for (Kind type : {Kind::kLog, Kind::kPage, Kind::kDelta}) {
    const Bytes sealed = seal(place(1, 2, 3, type), text);
    EXPECT_EQ(std::search(sealed.begin(), sealed.end(), canary.begin(), canary.end()),
              sealed.end());
    // Nor any 8-byte run of it.
    for (size_t i = 0; i + 8 <= canary.size(); i++) {
      EXPECT_EQ(
          std::search(sealed.begin(), sealed.end(), canary.begin() + i, canary.begin() + i + 8),
          sealed.end());
    }
  }
}

TEST_F(PageCipher, UsageLimitStopsSealing) {
  DataKey limited(DekRef{77, 5}, SecretKey::generate(random_), 3);
  Bytes out = kPrefix;
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(limited.seal(place_, plaintext(16), random_, out).is_ok()) << i;
  }
  EXPECT_EQ(limited.uses(), 3u);
  const Bytes before = out;
  const Status s = limited.seal(place_, plaintext(16), random_, out);
  EXPECT_EQ(s.code(), Code::kKeyExhausted);
  EXPECT_FALSE(s.retriable());
  EXPECT_EQ(s.field("dek_id"), 77u);
  EXPECT_EQ(s.field("dek_version"), 5u);
  EXPECT_EQ(out, before);
  EXPECT_EQ(limited.uses(), 3u);
  // It stays exhausted, and what it sealed before still opens.
  EXPECT_EQ(limited.seal(place_, {}, random_, out).code(), Code::kKeyExhausted);
  const DekLookup lookup = [&](const DekRef&) { return &limited; };
  const size_t first = kPrefix.size();
  Result<Bytes> opened =
      open_sealed(lookup, place_, ByteView(out).subspan(first, kSealedOverheadBytes + 16));
  EXPECT_TRUE(opened.is_ok());
}

TEST_F(PageCipher, WantsNewVersionAtHalfTheLimit) {
  DataKey limited(DekRef{1, 1}, SecretKey::generate(random_), 4);
  Bytes out;
  EXPECT_FALSE(limited.wants_new_version());
  ASSERT_TRUE(limited.seal(place_, {}, random_, out).is_ok());
  EXPECT_FALSE(limited.wants_new_version());
  ASSERT_TRUE(limited.seal(place_, {}, random_, out).is_ok());
  EXPECT_TRUE(limited.wants_new_version());
  EXPECT_EQ(DataKey(DekRef{1, 1}, SecretKey::generate(random_)).uses_hard_limit(),
            kDekUsesHardLimit);
}

TEST_F(PageCipher, NoncesAreDistinct) {
  constexpr int kSeals = 10000;
  std::set<std::array<uint8_t, kGcmNonceBytes>> nonces;
  Bytes out;
  for (int i = 0; i < kSeals; i++) {
    out.clear();
    ASSERT_TRUE(dek_.seal(place_, {}, random_, out).is_ok());
    std::array<uint8_t, kGcmNonceBytes> nonce;
    std::copy_n(out.begin() + 20, kGcmNonceBytes, nonce.begin());
    nonces.insert(nonce);
  }
  EXPECT_EQ(nonces.size(), static_cast<size_t>(kSeals));
  EXPECT_EQ(dek_.uses(), static_cast<uint64_t>(kSeals));
}

RC_GTEST_PROP(PageCipherProperty, OpenInvertsSeal, ()) {
  SimRandom random(*rc::gen::arbitrary<uint64_t>());
  DataKey dek(DekRef{*rc::gen::arbitrary<uint64_t>(), *rc::gen::arbitrary<uint32_t>()},
              SecretKey::generate(random));
  const auto text = *rc::gen::container<std::vector<uint8_t>>(rc::gen::arbitrary<uint8_t>());
  const PayloadPlace where{TableId(*rc::gen::arbitrary<uint64_t>()),
                           PageId(*rc::gen::arbitrary<uint64_t>()),
                           Lsn(*rc::gen::arbitrary<uint64_t>()), *rc::gen::arbitrary<uint8_t>()};
  Bytes sealed;
  RC_ASSERT(dek.seal(where, text, random, sealed).is_ok());
  RC_ASSERT(sealed.size() == text.size() + kSealedOverheadBytes);
  const DekLookup lookup = [&](const DekRef& ref) { return ref == dek.ref() ? &dek : nullptr; };
  Result<Bytes> opened = open_sealed(lookup, where, sealed);
  RC_ASSERT(opened.is_ok());
  RC_ASSERT(*opened == Bytes(text.begin(), text.end()));
}

}  // namespace
}  // namespace quire
