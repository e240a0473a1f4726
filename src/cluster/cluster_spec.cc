#include "cluster/cluster_spec.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cluster/cmk_file.h"
#include "runtime/real/certs.h"

namespace quire::cluster {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSpecFile = "cluster.json";
constexpr int kSpecFormat = 1;

std::string loopback(uint32_t port) {
  return fmt::format("127.0.0.1:{}", port);
}

nlohmann::ordered_json to_json(const ClusterSpec& s) {
  nlohmann::ordered_json j;
  j["format"] = kSpecFormat;
  j["name"] = s.name;
  j["base_port"] = s.base_port;
  j["pageservers"] = s.pageservers;
  j["standbys"] = s.standbys;
  j["pickup_policy"] = std::string(pickup_policy_name(s.pickup_policy));
  j["write_quorum"] = s.write_quorum;
  if (s.group_pipeline_min != 0) j["group_pipeline_min"] = s.group_pipeline_min;
  if (s.group_gather_us >= 0) j["group_gather_us"] = s.group_gather_us;
  j["tls"] = s.tls;
  j["etcd_tls"] = s.tls && s.etcd_tls;
  j["proxies"] = s.proxies;
  j["etcd_binary"] = s.etcd_binary;
  j["requirepass"] = !s.requirepass.empty();  // the password itself: DIR/requirepass
  // Derived, for people and tools that read the file: every address.
  j["etcd"] = {{"client", s.etcd_client()}, {"peer", s.etcd_peer()}};
  auto& ps = j["pageserver_addresses"] = nlohmann::ordered_json::object();
  for (size_t i = 0; i < s.pageservers; ++i) ps[s.pageserver_name(i)] = s.pageserver_address(i);
  auto& nodes = j["node_addresses"] = nlohmann::ordered_json::object();
  for (size_t i = 0; i < s.compute_nodes(); ++i) nodes[s.node_name(i)] = s.node_address(i);
  return j;
}

std::vector<std::string> tls_args(const ClusterSpec& s, const std::string& name) {
  if (!s.tls) return {};
  const std::string d = s.dir + "/certs/" + name;
  return {"--tls-ca",   fmt::format("{}/{}", d, kCaCertFile),
          "--tls-cert", fmt::format("{}/{}", d, kNodeCertFile),
          "--tls-key",  fmt::format("{}/{}", d, kNodeKeyFile)};
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Creates `path` readable by its owner only, holding `password` and a newline.
Status write_password_file(const std::string& path, const std::string& password) {
  ::unlink(path.c_str());  // left by an init that failed later: created anew, mode 0600
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return invalid_argument(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  const std::string line = password + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) {
    return invalid_argument(
        fmt::format("cannot write {}: {}", path, n < 0 ? std::strerror(saved) : "short write"));
  }
  return Status::ok();
}

Status write_certificates(const ClusterSpec& s) {
  const std::string certs = s.dir + "/certs";
  if (Status st = create_ca(certs); !st.is_ok()) return st;
  CertOptions options;
  options.ca_dir = certs;
  std::vector<std::string> names;
  for (size_t i = 0; i < s.pageservers; ++i) names.push_back(s.pageserver_name(i));
  for (size_t i = 0; i < s.compute_nodes(); ++i) names.push_back(s.node_name(i));
  if (s.etcd_tls) names.push_back("etcd");
  for (const auto& name : names) {
    const std::string d = certs + "/" + name;
    const std::vector<std::string> hosts = {"127.0.0.1", "localhost"};
    if (Status st = create_node(d, name, hosts, options); !st.is_ok()) return st;
    std::error_code ec;
    fs::copy_file(fmt::format("{}/{}", certs, kCaCertFile), fmt::format("{}/{}", d, kCaCertFile),
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return invalid_argument(fmt::format("cannot copy the CA into {}: {}", d, ec.message()));
  }
  return Status::ok();
}

}  // namespace

std::string_view process_kind_name(ProcessKind kind) {
  switch (kind) {
    case ProcessKind::kEtcd:
      return "etcd";
    case ProcessKind::kPageServer:
      return "pageserver";
    case ProcessKind::kNode:
      return "node";
  }
  return "?";
}

std::string ClusterSpec::etcd_client() const {
  return loopback(base_port);
}
std::string ClusterSpec::etcd_peer() const {
  return loopback(base_port + 1u);
}
std::string ClusterSpec::pageserver_name(size_t i) const {
  return fmt::format("ps{}", i + 1);
}
std::string ClusterSpec::pageserver_address(size_t i) const {
  return loopback(base_port + 10u + static_cast<uint32_t>(i));
}
std::string ClusterSpec::pageserver_proxy_address(size_t i) const {
  return loopback(base_port + 30u + static_cast<uint32_t>(i));
}
std::string ClusterSpec::etcd_proxy_address() const {
  return loopback(base_port + 2u);
}
std::string ClusterSpec::pageserver_dial_address(size_t i) const {
  return proxies ? pageserver_proxy_address(i) : pageserver_address(i);
}
std::string ClusterSpec::etcd_dial_address() const {
  return proxies ? etcd_proxy_address() : etcd_client();
}
std::string ClusterSpec::node_name(size_t i) const {
  return fmt::format("node{}", i + 1);
}
std::string ClusterSpec::node_address(size_t i) const {
  return loopback(base_port + 20u + static_cast<uint32_t>(i));
}
std::string ClusterSpec::cmk_path() const {
  return dir + "/cmk/cmk.key";
}
std::string ClusterSpec::requirepass_path() const {
  return dir + "/requirepass";
}
std::string ClusterSpec::log_path(const std::string& process) const {
  return dir + "/logs/" + process + ".log";
}
std::string ClusterSpec::run_dir() const {
  return dir + "/run";
}

Status validate(const ClusterSpec& s) {
  if (s.dir.empty() || s.dir.front() != '/') {
    return invalid_argument(fmt::format("the cluster directory must be absolute: '{}'", s.dir));
  }
  if (s.name.empty() || s.name.find('/') != std::string::npos) {
    return invalid_argument(fmt::format("bad cluster name '{}'", s.name));
  }
  if (s.pageservers < 1 || s.pageservers > kPageServersMax) {
    return invalid_argument(
        fmt::format("--pageservers {} is not within 1..{}", s.pageservers, kPageServersMax));
  }
  if (s.standbys > kComputeNodesMax - 1) {
    return invalid_argument(
        fmt::format("--standbys {} is not within 0..{}", s.standbys, kComputeNodesMax - 1));
  }
  if (s.write_quorum < 1 || s.write_quorum > s.pageservers) {
    return invalid_argument(
        fmt::format("write quorum {} is not within 1..{}", s.write_quorum, s.pageservers));
  }
  if (s.group_pipeline_min > kGroupPipelineMinMax) {
    return invalid_argument(fmt::format("--group-pipeline-min {} is not within 0..{}",
                                        s.group_pipeline_min, kGroupPipelineMinMax));
  }
  if (s.group_gather_us < -1 || s.group_gather_us > kGroupGatherUsMax) {
    return invalid_argument(fmt::format("--group-gather-us {} is not within 0..{}",
                                        s.group_gather_us, kGroupGatherUsMax));
  }
  if (s.base_port < 1024 || uint32_t{s.base_port} + kClusterPortsSpan > 65535) {
    return invalid_argument(fmt::format("--base-port {} is not within 1024..{}", s.base_port,
                                        65535 - kClusterPortsSpan));
  }
  if (!s.requirepass.empty()) {
    if (Status st = validate_password(s.requirepass); !st.is_ok()) {
      return invalid_argument("--requirepass: " + st.message());
    }
  }
  return Status::ok();
}

Status validate_password(std::string_view password) {
  if (password.empty()) return invalid_argument("the password is empty");
  if (password.size() > kPasswordBytesMax) {
    return invalid_argument(
        fmt::format("the password is {} bytes; at most {}", password.size(), kPasswordBytesMax));
  }
  if (password.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return invalid_argument("the password holds a CR, LF or NUL byte");
  }
  return Status::ok();
}

Result<std::string> read_password_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return not_found(fmt::format("{} does not exist", path));
    return invalid_argument(fmt::format("cannot read {}", path));
  }
  // One line; read a little more than the longest to tell a long file from a password.
  std::string text(kPasswordBytesMax + 3, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (Status st = validate_password(text); !st.is_ok()) {
    return invalid_argument(fmt::format("{}: {}", path, st.message()));
  }
  return text;
}

namespace {

// An integer field of cluster.json as T: a JSON integer T can hold (nlohmann's get<T> casts
// a float or an out-of-range number without a check), or `fallback` when absent and one is
// given. Ranges are validate()'s.
template <typename T>
Result<T> integer_field(const nlohmann::json& j, const char* key,
                        std::optional<T> fallback = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (fallback) return *fallback;
    return invalid_argument(fmt::format("no \"{}\"", key));
  }
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(v);
  } else if (it->is_number_integer()) {
    const int64_t v = it->get<int64_t>();
    if (std::in_range<T>(v)) return static_cast<T>(v);
  } else {
    return invalid_argument(fmt::format("\"{}\" is not an integer: {}", key, it->dump()));
  }
  return invalid_argument(fmt::format("\"{}\" is out of range: {}", key, it->dump()));
}

}  // namespace

Result<ClusterSpec> load_spec(const std::string& dir) {
  const std::string path = dir + "/" + kSpecFile;
  std::ifstream in(path);
  if (!in) return not_found(fmt::format("{} holds no cluster (no {})", dir, kSpecFile));
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return invalid_argument(fmt::format("{} is not valid JSON", path));
  }
  ClusterSpec s;
  bool auth = false;
  try {
    if (j.at("format").get<int>() != kSpecFormat) {
      return invalid_argument(fmt::format("{}: unknown format {}", path, j.at("format").dump()));
    }
    s.dir = fs::absolute(dir).lexically_normal().string();
    if (s.dir.size() > 1 && s.dir.back() == '/') s.dir.pop_back();
    s.name = j.at("name").get<std::string>();
    auto base_port = integer_field<uint16_t>(j, "base_port");
    auto pageservers = integer_field<size_t>(j, "pageservers");
    auto standbys = integer_field<size_t>(j, "standbys");
    auto write_quorum = integer_field<size_t>(j, "write_quorum");
    auto pipeline_min = integer_field<size_t>(j, "group_pipeline_min", size_t{0});
    auto gather_us = integer_field<int64_t>(j, "group_gather_us", int64_t{-1});
    for (const Status& st : {base_port.status(), pageservers.status(), standbys.status(),
                             write_quorum.status(), pipeline_min.status(), gather_us.status()}) {
      if (!st.is_ok()) return invalid_argument(fmt::format("{}: {}", path, st.message()));
    }
    s.base_port = *base_port;
    s.pageservers = *pageservers;
    s.standbys = *standbys;
    auto policy = parse_pickup_policy(j.value("pickup_policy", std::string("accept")));
    if (!policy.is_ok())
      return invalid_argument(fmt::format("{}: {}", path, policy.status().message()));
    s.pickup_policy = *policy;
    s.write_quorum = *write_quorum;
    s.group_pipeline_min = *pipeline_min;
    s.group_gather_us = *gather_us;
    s.tls = j.at("tls").get<bool>();
    s.etcd_tls = s.tls && j.value("etcd_tls", false);
    s.proxies = j.value("proxies", false);
    s.etcd_binary = j.at("etcd_binary").get<std::string>();
    auth = j.value("requirepass", false);
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(fmt::format("{}: {}", path, e.what()));
  }
  if (auth) {
    auto password = read_password_file(s.requirepass_path());
    if (!password.is_ok()) {
      return Status(password.code(),
                    fmt::format("{} asks for a password: {}", path, password.status().message()));
    }
    s.requirepass = std::move(*password);
  }
  if (Status st = validate(s); !st.is_ok()) {
    return invalid_argument(fmt::format("{}: {}", path, st.message()));
  }
  return s;
}

Status save_spec(const ClusterSpec& spec) {
  const std::string path = spec.dir + "/" + kSpecFile;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << to_json(spec).dump(2) << "\n";
    out.flush();
    if (!out) return invalid_argument(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return invalid_argument(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::ok();
}

Status init_cluster(const ClusterSpec& spec) {
  if (Status st = validate(spec); !st.is_ok()) return st;
  std::error_code ec;
  if (fs::exists(spec.dir + "/" + kSpecFile, ec)) {
    return invalid_argument(
        fmt::format("{} already holds a cluster ({}); use another directory", spec.dir, kSpecFile));
  }
  for (const char* sub : {"", "/logs", "/run"}) {
    fs::create_directories(spec.dir + sub, ec);
    if (ec)
      return invalid_argument(fmt::format("cannot create {}{}: {}", spec.dir, sub, ec.message()));
  }
  if (spec.tls) {
    if (Status st = write_certificates(spec); !st.is_ok()) return st;
  }
  if (!spec.requirepass.empty()) {
    if (Status st = write_password_file(spec.requirepass_path(), spec.requirepass); !st.is_ok())
      return st;
  }
  CmkFileRequest cmk;
  cmk.dir = spec.dir + "/cmk";
  cmk.create = true;
  if (auto r = open_cmk_file(cmk); !r.is_ok()) return r.status();
  return save_spec(spec);
}

std::vector<ProcessSpec> cluster_processes(const ClusterSpec& s, const std::string& quire) {
  std::vector<ProcessSpec> out;
  const std::string etcd_name = s.name + "-etcd";
  const bool etcd_tls = s.tls && s.etcd_tls;
  const std::string etcd_scheme = etcd_tls ? "https://" : "http://";
  out.push_back(ProcessSpec{.name = "etcd",
                            .kind = ProcessKind::kEtcd,
                            .address = s.etcd_client(),
                            .argv = {s.etcd_binary,
                                     "--name",
                                     etcd_name,
                                     "--data-dir",
                                     s.dir + "/etcd",
                                     "--listen-client-urls",
                                     etcd_scheme + s.etcd_client(),
                                     "--advertise-client-urls",
                                     etcd_scheme + s.etcd_client(),
                                     "--listen-peer-urls",
                                     "http://" + s.etcd_peer(),
                                     "--initial-advertise-peer-urls",
                                     "http://" + s.etcd_peer(),
                                     "--initial-cluster",
                                     etcd_name + "=http://" + s.etcd_peer(),
                                     "--initial-cluster-state",
                                     "new",
                                     "--logger",
                                     "zap",
                                     "--log-outputs",
                                     "stderr"}});
  if (etcd_tls) {
    // Clients must present a certificate from the cluster's CA (the nodes' own).
    const std::string d = s.dir + "/certs/etcd";
    for (std::string a : {std::string("--cert-file"), fmt::format("{}/{}", d, kNodeCertFile),
                          std::string("--key-file"), fmt::format("{}/{}", d, kNodeKeyFile),
                          std::string("--trusted-ca-file"), fmt::format("{}/{}", d, kCaCertFile),
                          std::string("--client-cert-auth")}) {
      out.back().argv.push_back(std::move(a));
    }
  }
  std::vector<std::string> servers;  // as the other processes dial them
  for (size_t i = 0; i < s.pageservers; ++i) servers.push_back(s.pageserver_dial_address(i));
  for (size_t i = 0; i < s.pageservers; ++i) {
    ProcessSpec p{.name = s.pageserver_name(i),
                  .kind = ProcessKind::kPageServer,
                  .address = s.pageserver_address(i),
                  .argv = {quire, "pageserver", "--listen", s.pageserver_address(i), "--data",
                           s.dir + "/" + s.pageserver_name(i)}};
    std::vector<std::string> peers;
    for (size_t k = 0; k < s.pageservers; ++k) {
      if (k != i) peers.push_back(servers[k]);
    }
    if (!peers.empty()) {
      p.argv.push_back("--peers");
      p.argv.push_back(join(peers, ","));
    }
    for (auto& a : tls_args(s, p.name)) p.argv.push_back(std::move(a));
    out.push_back(std::move(p));
  }
  for (size_t i = 0; i < s.compute_nodes(); ++i) {
    ProcessSpec p{
        .name = s.node_name(i),
        .kind = ProcessKind::kNode,
        .address = s.node_address(i),
        .argv = {quire, "node", "--name", s.node_name(i), "--client", s.node_address(i),
                 "--pageservers", join(servers, ","), "--write-quorum",
                 std::to_string(s.write_quorum), "--preferred-pageserver",
                 std::to_string(i % s.pageservers), "--etcd", etcd_scheme + s.etcd_dial_address(),
                 "--cluster", s.name, "--cmk", s.cmk_path()}};
    for (auto& a : tls_args(s, p.name)) p.argv.push_back(std::move(a));
    if (!s.requirepass.empty()) {
      p.argv.push_back("--requirepass-file");
      p.argv.push_back(s.requirepass_path());
    }
    p.argv.push_back("--pickup-policy");
    p.argv.push_back(std::string(pickup_policy_name(s.pickup_policy)));
    if (s.group_pipeline_min != 0) {
      p.argv.push_back("--group-pipeline-min");
      p.argv.push_back(std::to_string(s.group_pipeline_min));
    }
    if (s.group_gather_us >= 0) {
      p.argv.push_back("--group-gather-us");
      p.argv.push_back(std::to_string(s.group_gather_us));
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace quire::cluster
