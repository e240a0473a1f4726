#include "crypto/raw_gcm.h"

namespace quire {

RawGcm::~RawGcm() {
  EVP_CIPHER_CTX_free(encrypt_);
  EVP_CIPHER_CTX_free(decrypt_);
  EVP_CIPHER_free(cipher_);
}

bool RawGcm::init(ByteView key) {
  cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  encrypt_ = EVP_CIPHER_CTX_new();
  decrypt_ = EVP_CIPHER_CTX_new();
  return cipher_ && encrypt_ && decrypt_ &&
         EVP_EncryptInit_ex2(encrypt_, cipher_, key.data(), nullptr, nullptr) == 1 &&
         EVP_DecryptInit_ex2(decrypt_, cipher_, key.data(), nullptr, nullptr) == 1;
}

bool RawGcm::seal(const uint8_t* iv, ByteView plaintext, uint8_t* out) {
  int len = 0, final_len = 0;
  return EVP_EncryptInit_ex2(encrypt_, nullptr, nullptr, iv, nullptr) == 1 &&
         EVP_EncryptUpdate(encrypt_, out, &len, plaintext.data(),
                           static_cast<int>(plaintext.size())) == 1 &&
         EVP_EncryptFinal_ex(encrypt_, out + len, &final_len) == 1 &&
         EVP_CIPHER_CTX_ctrl(encrypt_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes),
                             out + plaintext.size()) == 1;
}

bool RawGcm::open(const uint8_t* iv, ByteView sealed, uint8_t* out) {
  const size_t n = sealed.size() - kGcmTagBytes;
  int len = 0, final_len = 0;
  return EVP_DecryptInit_ex2(decrypt_, nullptr, nullptr, iv, nullptr) == 1 &&
         EVP_DecryptUpdate(decrypt_, out, &len, sealed.data(), static_cast<int>(n)) == 1 &&
         EVP_CIPHER_CTX_ctrl(decrypt_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes),
                             const_cast<uint8_t*>(sealed.data() + n)) == 1 &&
         EVP_DecryptFinal_ex(decrypt_, out + len, &final_len) == 1;
}

}  // namespace quire
