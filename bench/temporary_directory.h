// TemporaryDirectory: a fresh directory under the system's temporary directory ($TMPDIR or
// /tmp), removed with everything in it when the object is destroyed.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace quire::bench {

class TemporaryDirectory {
 public:
  // Creates PREFIX-XXXXXX there; Io naming the path when it cannot.
  static Result<std::unique_ptr<TemporaryDirectory>> create(const std::string& prefix);
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit TemporaryDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace quire::bench
