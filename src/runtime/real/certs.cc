#include "runtime/real/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace quire {

namespace {

constexpr uint32_t kPrivateKeyMode = 0600;
constexpr uint32_t kCertificateMode = 0644;
// Serial numbers are random, 159 bits: positive and within RFC 5280's 20 octets.
constexpr int kSerialBits = 159;
constexpr std::string_view kOrganization = "Quire";
constexpr std::string_view kCaCommonName = "Quire CA";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using FilePtr = std::unique_ptr<FILE, FileClose>;

// The oldest error OpenSSL queued, then an empty queue.
Status openssl_error(Code code, std::string_view what) {
  char reason[256] = "unknown OpenSSL error";
  unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, reason, sizeof(reason));
  ERR_clear_error();
  return Status(code, fmt::format("{}: {}", what, reason));
}

std::string join(const std::string& dir, std::string_view file) {
  return fmt::format("{}/{}", dir, file);
}

bool is_ip_literal(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// A host goes into a comma-separated SAN list: it must be a plain name or IP literal.
Status check_hosts(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return invalid_argument("a node certificate needs at least one host");
  if (hosts.size() > kNodeHostsMax) {
    return invalid_argument(fmt::format("{} hosts, more than the {} a node certificate names",
                                        hosts.size(), kNodeHostsMax));
  }
  for (const std::string& h : hosts) {
    bool plain = !h.empty() && h.find_first_of(", \t\n:") == std::string::npos;
    if (!plain && !is_ip_literal(h)) {
      return invalid_argument(fmt::format("host '{}' is not a host name or IP literal", h));
    }
  }
  return Status::ok();
}

// Refuses (InvalidArgument) output files that exist unless overwriting; makes the directory.
Status prepare_outputs(const std::string& dir, std::initializer_list<std::string_view> files,
                       bool overwrite) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(fmt::format("create directory {}: {}", dir, ec.message()));
  if (overwrite) return Status::ok();
  for (std::string_view f : files) {
    std::string path = join(dir, f);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      return invalid_argument(fmt::format("{} exists; refusing to overwrite it", path));
    }
  }
  return Status::ok();
}

// Opens `path` for writing with `mode`: a new file, or (overwrite) a regular file truncated
// and set to `mode`. A symlink is never followed.
Result<FilePtr> open_output(const std::string& path, uint32_t mode, bool overwrite) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
  if (fd < 0) {
    return io_error(fmt::format("create {}: {}", path, std::strerror(errno)));
  }
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    int err = errno;
    ::close(fd);
    return io_error(fmt::format("chmod {}: {}", path, std::strerror(err)));
  }
  FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return io_error(fmt::format("fdopen {}", path));
  }
  return FilePtr(f);
}

// Flushes and fsyncs, so a key is on disk before its certificate names it anywhere.
Status finish_output(FilePtr file, const std::string& path) {
  if (std::fflush(file.get()) != 0 || ::fsync(::fileno(file.get())) != 0) {
    return io_error(fmt::format("write {}: {}", path, std::strerror(errno)));
  }
  FILE* f = file.release();
  if (std::fclose(f) != 0) return io_error(fmt::format("close {}", path));
  return Status::ok();
}

Status write_key(const std::string& path, EVP_PKEY* key, bool overwrite) {
  Result<FilePtr> file = open_output(path, kPrivateKeyMode, overwrite);
  if (!file.is_ok()) return file.status();
  if (PEM_write_PrivateKey(file->get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return openssl_error(Code::kIo, fmt::format("write {}", path));
  }
  return finish_output(std::move(file).value(), path);
}

Status write_cert(const std::string& path, X509* cert, bool overwrite) {
  Result<FilePtr> file = open_output(path, kCertificateMode, overwrite);
  if (!file.is_ok()) return file.status();
  if (PEM_write_X509(file->get(), cert) != 1) {
    return openssl_error(Code::kIo, fmt::format("write {}", path));
  }
  return finish_output(std::move(file).value(), path);
}

Result<PkeyPtr> generate_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return openssl_error(Code::kIo, "generate an EC P-256 key");
  return key;
}

Status set_name(X509_NAME* name, std::string_view common_name) {
  auto add = [&](const char* field, std::string_view value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!add("O", kOrganization) || !add("CN", common_name)) {
    return openssl_error(Code::kInvalidArgument, fmt::format("name '{}'", common_name));
  }
  return Status::ok();
}

Status add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return openssl_error(Code::kInvalidArgument, fmt::format("certificate extension '{}'", value));
  }
  int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) return openssl_error(Code::kIo, "add a certificate extension");
  return Status::ok();
}

// A version 3 certificate for `key` named `common_name`, with a random serial and the
// options' validity window; issuer and extensions are the caller's.
Result<X509Ptr> new_certificate(EVP_PKEY* key, std::string_view common_name,
                                const CertOptions& options, int64_t lifetime_default_s) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return openssl_error(Code::kIo, "allocate a certificate");
  const int64_t lifetime_s = options.lifetime_s > 0 ? options.lifetime_s : lifetime_default_s;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), BN_free);
  bool ok =
      serial != nullptr && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), options.not_before_offset_s) &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), options.not_before_offset_s + lifetime_s) &&
      X509_set_pubkey(cert.get(), key) == 1;
  if (!ok) return openssl_error(Code::kIo, "fill in a certificate");
  QUIRE_RETURN_IF_ERROR(set_name(X509_get_subject_name(cert.get()), common_name));
  return cert;
}

Status sign(X509* cert, EVP_PKEY* issuer_key) {
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) {
    return openssl_error(Code::kIo, "sign a certificate");
  }
  return Status::ok();
}

// The CA's certificate and key from `dir`, checked to belong together.
Status load_ca(const std::string& dir, X509Ptr* cert, PkeyPtr* key) {
  const std::string cert_path = join(dir, kCaCertFile);
  const std::string key_path = join(dir, kCaKeyFile);
  FilePtr cert_file(std::fopen(cert_path.c_str(), "r"));
  if (cert_file == nullptr) {
    return Status(errno == ENOENT ? Code::kNotFound : Code::kIo,
                  fmt::format("open {}: {}", cert_path, std::strerror(errno)));
  }
  FilePtr key_file(std::fopen(key_path.c_str(), "r"));
  if (key_file == nullptr) {
    return Status(errno == ENOENT ? Code::kNotFound : Code::kIo,
                  fmt::format("open {}: {}", key_path, std::strerror(errno)));
  }
  cert->reset(PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr));
  if (*cert == nullptr) return openssl_error(Code::kCorruption, fmt::format("read {}", cert_path));
  key->reset(PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
  if (*key == nullptr) return openssl_error(Code::kCorruption, fmt::format("read {}", key_path));
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return corruption(fmt::format("{} is not the key of {}", key_path, cert_path));
  }
  return Status::ok();
}

std::string subject_alt_names(const std::vector<std::string>& hosts) {
  std::string out;
  for (const std::string& h : hosts) {
    if (!out.empty()) out += ",";
    out += fmt::format("{}:{}", is_ip_literal(h) ? "IP" : "DNS", h);
  }
  return out;
}

}  // namespace

Status create_ca(const std::string& dir, const CertOptions& options) {
  QUIRE_RETURN_IF_ERROR(prepare_outputs(dir, {kCaCertFile, kCaKeyFile}, options.overwrite));
  Result<PkeyPtr> key = generate_key();
  if (!key.is_ok()) return key.status();
  Result<X509Ptr> cert = new_certificate(key->get(), kCaCommonName, options, kCaLifetimeDefaultS);
  if (!cert.is_ok()) return cert.status();
  X509* c = cert->get();
  // Self-signed: the issuer is the subject.
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) {
    return openssl_error(Code::kIo, "set the CA's issuer");
  }
  QUIRE_RETURN_IF_ERROR(add_extension(c, c, NID_basic_constraints, "critical,CA:TRUE"));
  QUIRE_RETURN_IF_ERROR(add_extension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  QUIRE_RETURN_IF_ERROR(add_extension(c, c, NID_subject_key_identifier, "hash"));
  QUIRE_RETURN_IF_ERROR(sign(c, key->get()));
  QUIRE_RETURN_IF_ERROR(write_key(join(dir, kCaKeyFile), key->get(), options.overwrite));
  return write_cert(join(dir, kCaCertFile), c, options.overwrite);
}

Status create_node(const std::string& dir, std::string_view name,
                   const std::vector<std::string>& hosts, const CertOptions& options) {
  if (name.empty()) return invalid_argument("a node certificate needs a name");
  QUIRE_RETURN_IF_ERROR(check_hosts(hosts));
  X509Ptr ca_cert;
  PkeyPtr ca_key;
  QUIRE_RETURN_IF_ERROR(load_ca(options.ca_dir.empty() ? dir : options.ca_dir, &ca_cert, &ca_key));
  QUIRE_RETURN_IF_ERROR(prepare_outputs(dir, {kNodeCertFile, kNodeKeyFile}, options.overwrite));
  Result<PkeyPtr> key = generate_key();
  if (!key.is_ok()) return key.status();
  Result<X509Ptr> cert = new_certificate(key->get(), name, options, kNodeLifetimeDefaultS);
  if (!cert.is_ok()) return cert.status();
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca_cert.get())) != 1) {
    return openssl_error(Code::kIo, "set the node certificate's issuer");
  }
  X509* ca = ca_cert.get();
  QUIRE_RETURN_IF_ERROR(add_extension(c, ca, NID_basic_constraints, "critical,CA:FALSE"));
  QUIRE_RETURN_IF_ERROR(
      add_extension(c, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
  QUIRE_RETURN_IF_ERROR(add_extension(c, ca, NID_ext_key_usage, "serverAuth,clientAuth"));
  QUIRE_RETURN_IF_ERROR(add_extension(c, ca, NID_subject_alt_name, subject_alt_names(hosts)));
  QUIRE_RETURN_IF_ERROR(add_extension(c, ca, NID_subject_key_identifier, "hash"));
  QUIRE_RETURN_IF_ERROR(add_extension(c, ca, NID_authority_key_identifier, "keyid:always"));
  QUIRE_RETURN_IF_ERROR(sign(c, ca_key.get()));
  QUIRE_RETURN_IF_ERROR(write_key(join(dir, kNodeKeyFile), key->get(), options.overwrite));
  return write_cert(join(dir, kNodeCertFile), c, options.overwrite);
}

Status verify_node_certificate(const std::string& ca_file, const std::string& cert_file) {
  QUIRE_RETURN_IF_ERROR(check_tls_file("CA file", ca_file));
  QUIRE_RETURN_IF_ERROR(check_tls_file("certificate file", cert_file));
  auto refused = [&](std::string_view why) {
    return invalid_argument(
        fmt::format("TLS certificate file {} does not verify against the CA "
                    "in {}: {}",
                    cert_file, ca_file, why));
  };
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(cert_file.c_str(), "r"), &std::fclose);
  if (!in) return refused(std::strerror(errno));
  std::unique_ptr<X509, void (*)(X509*)> leaf(PEM_read_X509(in.get(), nullptr, nullptr, nullptr),
                                              &X509_free);
  if (!leaf) return refused("no certificate in it");
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> chain(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); });
  while (X509* next = PEM_read_X509(in.get(), nullptr, nullptr, nullptr)) {
    if (!chain || sk_X509_push(chain.get(), next) == 0) {
      X509_free(next);
      return refused("out of memory");
    }
  }
  ERR_clear_error();  // the read past the last certificate
  std::unique_ptr<X509_STORE, void (*)(X509_STORE*)> store(X509_STORE_new(), &X509_STORE_free);
  if (!store || X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    ERR_clear_error();
    return refused("the CA file does not load");
  }
  std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> check(X509_STORE_CTX_new(),
                                                                   &X509_STORE_CTX_free);
  if (!check || X509_STORE_CTX_init(check.get(), store.get(), leaf.get(), chain.get()) != 1) {
    return refused("the check cannot be set up");
  }
  if (X509_verify_cert(check.get()) != 1) {
    return refused(X509_verify_cert_error_string(X509_STORE_CTX_get_error(check.get())));
  }
  return Status::ok();
}

Status check_tls_file(std::string_view what, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return invalid_argument(fmt::format("TLS {} {}: {}", what, path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return invalid_argument(fmt::format("TLS {} {}: not a regular file", what, path));
  }
  if (static_cast<uint64_t>(st.st_size) > kTlsFileBytesMax) {
    return invalid_argument(
        fmt::format("TLS {} {}: {} bytes, over {}", what, path, st.st_size, kTlsFileBytesMax));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return invalid_argument(fmt::format("TLS {} {}: {}", what, path, std::strerror(errno)));
  }
  return Status::ok();
}

}  // namespace quire
