// The local cluster's layout file and its password (`quire cluster init --requirepass`).
#include "cluster/cluster_spec.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace quire::cluster {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "quire-spec-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool has_pair(const std::vector<std::string>& argv, const std::string& flag,
              const std::string& value) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && argv[i + 1] == value) return true;
  }
  return false;
}

TEST(ClusterPassword, ValidatesLengthAndBytes) {
  EXPECT_TRUE(validate_password("s3cret with spaces").is_ok());
  EXPECT_TRUE(validate_password(std::string(kPasswordBytesMax, 'p')).is_ok());
  EXPECT_FALSE(validate_password("").is_ok());
  EXPECT_FALSE(validate_password(std::string(kPasswordBytesMax + 1, 'p')).is_ok());
  EXPECT_FALSE(validate_password("a\nb").is_ok());
  EXPECT_FALSE(validate_password("a\rb").is_ok());
  EXPECT_FALSE(validate_password(std::string("a\0b", 3)).is_ok());
}

TEST(ClusterPassword, ReadsTheFilesFirstLine) {
  TempDir d;
  const std::string f = d.path() + "/pw";
  write(f, "secret\n");
  EXPECT_EQ(*read_password_file(f), "secret");
  write(f, "secret\r\n");
  EXPECT_EQ(*read_password_file(f), "secret");
  write(f, "secret");
  EXPECT_EQ(*read_password_file(f), "secret");
  write(f, std::string(kPasswordBytesMax, 'p') + "\n");
  EXPECT_EQ(read_password_file(f)->size(), kPasswordBytesMax);

  write(f, "\n");
  EXPECT_EQ(read_password_file(f).code(), Code::kInvalidArgument);
  write(f, "two\nlines\n");
  EXPECT_EQ(read_password_file(f).code(), Code::kInvalidArgument);
  write(f, std::string(kPasswordBytesMax + 1, 'p'));
  EXPECT_EQ(read_password_file(f).code(), Code::kInvalidArgument);
  write(f, std::string(1 << 20, 'p'));  // a large file is not read whole
  EXPECT_EQ(read_password_file(f).code(), Code::kInvalidArgument);
  auto missing = read_password_file(d.path() + "/none");
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("/none does not exist"), std::string::npos);
}

TEST(ClusterPassword, InitKeepsItInItsOwnFileAndTheNodesReadIt) {
  TempDir d;
  ClusterSpec spec;
  spec.dir = d.path() + "/c";
  spec.tls = false;
  spec.requirepass = "pa ss";
  ASSERT_TRUE(init_cluster(spec).is_ok());

  struct stat st {};
  ASSERT_EQ(::stat(spec.requirepass_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream json(spec.dir + "/cluster.json");
  const std::string text((std::istreambuf_iterator<char>(json)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("pa ss"), std::string::npos);

  auto loaded = load_spec(spec.dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->requirepass, "pa ss");
  for (const ProcessSpec& p : cluster_processes(*loaded, "/bin/quire")) {
    const bool has = has_pair(p.argv, "--requirepass-file", spec.requirepass_path());
    EXPECT_EQ(has, p.kind == ProcessKind::kNode) << p.name;
    EXPECT_EQ(std::find(p.argv.begin(), p.argv.end(), "pa ss"), p.argv.end()) << p.name;
  }

  // cluster.json says there is a password: without its file the cluster does not load.
  fs::remove(spec.requirepass_path());
  auto broken = load_spec(spec.dir);
  EXPECT_EQ(broken.code(), Code::kNotFound);
  EXPECT_NE(broken.status().message().find("requirepass does not exist"), std::string::npos);
}

TEST(ClusterPassword, NoneByDefault) {
  TempDir d;
  ClusterSpec spec;
  spec.dir = d.path() + "/c";
  spec.tls = false;
  ASSERT_TRUE(init_cluster(spec).is_ok());
  EXPECT_FALSE(fs::exists(spec.requirepass_path()));
  auto loaded = load_spec(spec.dir);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_TRUE(loaded->requirepass.empty());
  for (const ProcessSpec& p : cluster_processes(*loaded, "/bin/quire")) {
    EXPECT_EQ(std::find(p.argv.begin(), p.argv.end(), "--requirepass-file"), p.argv.end());
  }
}

// cluster.json's numbers are checked before they are used: nlohmann's get<T> casts a
// float, a negative or an out-of-range number without a word (base_port 72636 became
// 7100; standbys 2^64-1 wrapped compute_nodes() to 0, which passed the bound).
TEST(ClusterSpecFile, NumbersAreIntegersInRange) {
  TempDir d;
  ClusterSpec spec;
  spec.dir = d.path() + "/c";
  spec.tls = false;
  ASSERT_TRUE(init_cluster(spec).is_ok());
  const std::string path = spec.dir + "/cluster.json";
  std::ifstream in(path);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(load_spec(spec.dir).is_ok());
  auto with = [&](const std::string& field, const std::string& value) {
    const std::string key = "\"" + field + "\": ";
    const size_t at = good.find(key);
    EXPECT_NE(at, std::string::npos) << field;
    if (at == std::string::npos) return good;
    const size_t end = good.find_first_of(",\n}", at + key.size());
    return good.substr(0, at + key.size()) + value + good.substr(end);
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"base_port", "72636"},
      {"base_port", "-1"},
      {"base_port", "24100.5"},
      {"base_port", "\"24100\""},
      {"pageservers", "2.9"},
      {"pageservers", "-3"},
      {"standbys", "18446744073709551615"},
      {"standbys", "1e30"},
      {"write_quorum", "-1"},
      {"write_quorum", "true"},
  };
  for (const auto& [field, value] : bad) {
    write(path, with(field, value));
    auto loaded = load_spec(spec.dir);
    EXPECT_EQ(loaded.code(), Code::kInvalidArgument) << field << " = " << value;
  }
  write(path, with("standbys", "7"));
  EXPECT_TRUE(load_spec(spec.dir).is_ok());
  write(path, good);
  EXPECT_TRUE(load_spec(spec.dir).is_ok());
}

}  // namespace
}  // namespace quire::cluster
