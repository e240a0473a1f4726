// What a benchmark report says about the machine it ran on.
#pragma once

#include <string>
#include <vector>

namespace quire::bench {

struct MachineInfo {
  unsigned cores = 0;
  std::string cpu_model;               // /proc/cpuinfo's first "model name"; "" when absent
  std::vector<std::string> cpu_flags;  // those of its first "flags" that matter to AES-GCM
  std::string openssl_version;
};

MachineInfo machine_info();

}  // namespace quire::bench
