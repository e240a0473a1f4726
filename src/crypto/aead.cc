#include "crypto/aead.h"

#include <algorithm>
#include <array>
#include <limits>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

namespace quire {

namespace {

// EVP takes int lengths; anything longer is fed in pieces so no size is ever truncated.
constexpr size_t kEvpChunkBytes = size_t{1} << 30;

// Feeds `data` to the context as AAD (out == nullptr) or as text to transform into `out`.
// Returns the bytes consumed into `out` (OpenSSL counts AAD bytes too), or -1 when OpenSSL
// fails.
template <typename UpdateFn>
int64_t update_in_chunks(UpdateFn update, EVP_CIPHER_CTX* ctx, uint8_t* out, ByteView data) {
  int64_t written = 0;
  size_t done = 0;
  while (done < data.size()) {
    const size_t chunk = std::min(data.size() - done, kEvpChunkBytes);
    int outl = 0;
    if (update(ctx, out ? out + written : nullptr, &outl, data.data() + done,
               static_cast<int>(chunk)) != 1) {
      return -1;
    }
    written += outl;
    done += chunk;
  }
  return written;
}

}  // namespace

struct Aes256Gcm::Impl {
  EVP_CIPHER* cipher = nullptr;
  EVP_CIPHER_CTX* encrypt = nullptr;
  EVP_CIPHER_CTX* decrypt = nullptr;

  ~Impl() {
    EVP_CIPHER_CTX_free(encrypt);  // frees (and cleanses) the expanded key schedule
    EVP_CIPHER_CTX_free(decrypt);
    EVP_CIPHER_free(cipher);
  }
};

Aes256Gcm::Aes256Gcm(const SecretKey& key) : impl_(std::make_unique<Impl>()) {
  QUIRE_ASSERT_MSG(!key.empty(), "Aes256Gcm needs a key");
  // These fail only when OpenSSL cannot allocate or has no default provider: a broken
  // process, not a condition any caller could handle.
  impl_->cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  QUIRE_ASSERT_MSG(impl_->cipher != nullptr, "OpenSSL has no AES-256-GCM");
  impl_->encrypt = EVP_CIPHER_CTX_new();
  impl_->decrypt = EVP_CIPHER_CTX_new();
  QUIRE_ASSERT_MSG(impl_->encrypt != nullptr && impl_->decrypt != nullptr,
                   "EVP_CIPHER_CTX_new failed");
  // The key schedule is computed once here; each message then only sets its IV. GCM's
  // default IV length is the 12 bytes we use.
  const uint8_t* k = key.reveal().data();
  QUIRE_ASSERT_MSG(EVP_EncryptInit_ex2(impl_->encrypt, impl_->cipher, k, nullptr, nullptr) == 1,
                   "EVP_EncryptInit_ex2 failed");
  QUIRE_ASSERT_MSG(EVP_DecryptInit_ex2(impl_->decrypt, impl_->cipher, k, nullptr, nullptr) == 1,
                   "EVP_DecryptInit_ex2 failed");
}

Aes256Gcm::~Aes256Gcm() = default;

Status Aes256Gcm::seal(ByteView nonce, ByteView aad, ByteView plaintext, Bytes& out) {
  if (nonce.size() != kGcmNonceBytes) {
    return invalid_argument("a GCM nonce must be 12 bytes").at("seal").with("size", nonce.size());
  }
  EVP_CIPHER_CTX* ctx = impl_->encrypt;
  const size_t start = out.size();
  // One resize, then OpenSSL writes straight into `out`.
  out.resize(start + plaintext.size() + kGcmTagBytes);
  uint8_t* dst = out.data() + start;

  bool ok = EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce.data(), nullptr) == 1;
  if (ok) ok = update_in_chunks(EVP_EncryptUpdate, ctx, nullptr, aad) >= 0;
  int64_t written = 0;
  if (ok) {
    written = update_in_chunks(EVP_EncryptUpdate, ctx, dst, plaintext);
    ok = written == static_cast<int64_t>(plaintext.size());
  }
  if (ok) {
    int final_len = 0;  // GCM is a stream mode: final writes nothing, it computes the tag
    ok = EVP_EncryptFinal_ex(ctx, dst + written, &final_len) == 1 && final_len == 0;
  }
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes),
                             dst + plaintext.size()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    out.resize(start);
    return io_error("AES-256-GCM encryption failed in OpenSSL").at("seal");
  }
  return Status::ok();
}

Status Aes256Gcm::open(ByteView nonce, ByteView aad, ByteView ciphertext_and_tag, Bytes& out) {
  if (nonce.size() != kGcmNonceBytes) {
    return invalid_argument("a GCM nonce must be 12 bytes").at("open").with("size", nonce.size());
  }
  if (ciphertext_and_tag.size() < kGcmTagBytes) {
    return corruption("ciphertext shorter than its tag")
        .at("open")
        .with("size", ciphertext_and_tag.size());
  }
  EVP_CIPHER_CTX* ctx = impl_->decrypt;
  const size_t text_bytes = ciphertext_and_tag.size() - kGcmTagBytes;
  const ByteView ciphertext = ciphertext_and_tag.first(text_bytes);
  // OpenSSL copies the tag in but its ctrl interface takes a non-const pointer.
  std::array<uint8_t, kGcmTagBytes> tag;
  std::copy_n(ciphertext_and_tag.data() + text_bytes, kGcmTagBytes, tag.begin());

  const size_t start = out.size();
  out.resize(start + text_bytes);
  uint8_t* dst = out.data() + start;

  bool ok = EVP_DecryptInit_ex2(ctx, nullptr, nullptr, nonce.data(), nullptr) == 1;
  if (ok) ok = update_in_chunks(EVP_DecryptUpdate, ctx, nullptr, aad) >= 0;
  int64_t written = 0;
  if (ok) {
    written = update_in_chunks(EVP_DecryptUpdate, ctx, dst, ciphertext);
    ok = written == static_cast<int64_t>(text_bytes);
  }
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes),
                             tag.data()) == 1;
  }
  if (ok) {
    int final_len = 0;
    ok = EVP_DecryptFinal_ex(ctx, dst + written, &final_len) == 1 && final_len == 0;
  }
  if (!ok) {
    // The bytes decrypted so far are unauthenticated: wipe them before giving the space
    // back, so not even `out`'s spare capacity holds them.
    ERR_clear_error();
    OPENSSL_cleanse(dst, text_bytes);
    out.resize(start);
    return corruption("AES-256-GCM authentication failed").at("open");
  }
  return Status::ok();
}

Result<Bytes> wrap_key(Aes256Gcm& wrapping, ByteView aad, const SecretKey& key, Random& random) {
  QUIRE_ASSERT_MSG(!key.empty(), "wrapping an empty key");
  std::array<uint8_t, kGcmNonceBytes> nonce;
  random.fill(nonce);
  Bytes wrapped;
  wrapped.reserve(kWrappedKeyBytes);
  wrapped.insert(wrapped.end(), nonce.begin(), nonce.end());
  QUIRE_RETURN_IF_ERROR(wrapping.seal(nonce, aad, key.reveal(), wrapped));
  QUIRE_ASSERT(wrapped.size() == kWrappedKeyBytes);
  return wrapped;
}

Result<SecretKey> unwrap_key(Aes256Gcm& wrapping, ByteView aad, ByteView wrapped) {
  if (wrapped.size() != kWrappedKeyBytes) {
    return corruption("a wrapped key must be 60 bytes")
        .at("unwrap_key")
        .with("size", wrapped.size());
  }
  Bytes plain;
  plain.reserve(kSecretKeyBytes);
  Status s =
      wrapping.open(wrapped.first(kGcmNonceBytes), aad, wrapped.subspan(kGcmNonceBytes), plain);
  if (!s.is_ok()) return std::move(s).at("unwrap_key");
  Result<SecretKey> key = SecretKey::from_bytes(plain);
  // `plain` held the key in the clear; it must not outlive this call in freed memory.
  OPENSSL_cleanse(plain.data(), plain.size());
  return key;
}

}  // namespace quire
