// The CMK file from outside a node: opens (or creates) it with FileKms through a real Env,
// exactly as a compute node does at start-up, so a missing, wrong or exposed file gets
// the error a node would print. `quire kms` and `quire cluster init` use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace quire::cluster {

struct CmkFileRequest {
  std::string dir;               // the directory holding the file
  std::string file = "cmk.key";  // relative to dir
  std::string key_id = "quire-cmk";
  bool create = false;  // create the directory and the file (mode 0600) when missing
  bool rotate = false;  // add a CMK version and make it active
};

struct CmkFileInfo {
  std::vector<uint32_t> versions;
  uint32_t active = 0;
  uint32_t rotated_to = 0;  // when asked to rotate
};

// The file's versions after the request; the error names the directory.
Result<CmkFileInfo> open_cmk_file(const CmkFileRequest& request);

}  // namespace quire::cluster
