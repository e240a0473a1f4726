#include "bench/machine_info.h"

#include <openssl/crypto.h>

#include <fstream>
#include <thread>

#include <fmt/format.h>

namespace quire::bench {

namespace {

constexpr const char* kCpuFlagsOfInterest[] = {"aes",        "pclmulqdq", "vaes",
                                               "vpclmulqdq", "avx2",      "avx512f"};

std::vector<std::string> flags_of_interest(const std::string& flags_line) {
  std::vector<std::string> found;
  const std::string padded = " " + flags_line + " ";
  for (const char* f : kCpuFlagsOfInterest) {
    if (padded.find(fmt::format(" {} ", f)) != std::string::npos) found.push_back(f);
  }
  return found;
}

}  // namespace

MachineInfo machine_info() {
  MachineInfo m;
  m.cores = std::thread::hardware_concurrency();
  m.openssl_version = OpenSSL_version(OPENSSL_VERSION);
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool have_model = false, have_flags = false;
  while ((!have_model || !have_flags) && std::getline(cpuinfo, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon + 2 > line.size()) continue;
    const std::string value = line.substr(colon + 2);
    if (!have_model && line.rfind("model name", 0) == 0) {
      m.cpu_model = value;
      have_model = true;
    } else if (!have_flags && line.rfind("flags", 0) == 0) {
      m.cpu_flags = flags_of_interest(value);
      have_flags = true;
    }
  }
  return m;
}

}  // namespace quire::bench
