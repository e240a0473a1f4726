// Node code reaches time, randomness, threads and the environment only through the
// runtime seam. This test reads every source file outside the real backend, the command
// line and src/cluster (the real-process tools: the supervisor that forks and waits, the
// cluster operations that poll processes; never run by the simulator) and fails on a
// direct call that would break seed replay.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

// True when `code` (one line, comments removed) calls something that bypasses the seam.
bool calls_banned(const std::string& code) {
  static const char* const kTokens[] = {
      "system_clock::now",
      "steady_clock::now",
      "high_resolution_clock::now",
      "std::random_device",
      "std::thread",
      "std::jthread",
      "sleep_for",
      "usleep(",
      "nanosleep(",
      "getenv(",
      "gettimeofday",
      "clock_gettime",
  };
  for (const char* t : kTokens) {
    if (code.find(t) != std::string::npos) return true;
  }
  // rand( and srand( as free functions, not as the tail of another name or a member.
  for (const char* fn : {"rand(", "srand("}) {
    size_t pos = 0;
    while ((pos = code.find(fn, pos)) != std::string::npos) {
      char before = pos == 0 ? ' ' : code[pos - 1];
      bool part_of_name = std::isalnum(static_cast<unsigned char>(before)) || before == '_' ||
                          before == '.' || before == ':' || before == '>';
      if (!part_of_name) return true;
      pos += 1;
    }
  }
  return false;
}

// Lines of `text` that call something banned, as "path:line: text".
std::vector<std::string> offences(const std::string& path, const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto comment = line.find("//");
    std::string code = comment == std::string::npos ? line : line.substr(0, comment);
    if (calls_banned(code)) out.push_back(path + ":" + std::to_string(n) + ": " + line);
  }
  return out;
}

TEST(DeterminismGuard, TheScannerCatchesEachBannedCall) {
  for (const char* bad :
       {"auto t = std::chrono::steady_clock::now();", "std::random_device rd;", "int x = rand();",
        "std::thread t(f);", "std::this_thread::sleep_for(1s);", "usleep(10);",
        "const char* h = getenv(\"HOME\");", "gettimeofday(&tv, nullptr);"}) {
    EXPECT_FALSE(offences("x.cc", bad).empty()) << bad;
  }
  for (const char* ok : {"co_await exec.sleep(1ms);", "int operand(3);", "env.random().next_u64();",
                         "// std::thread is banned here"}) {
    EXPECT_TRUE(offences("x.cc", ok).empty()) << ok;
  }
}

TEST(DeterminismGuard, NodeCodeUsesOnlyTheRuntimeSeam) {
  fs::path src = fs::path(QUIRE_SOURCE_DIR) / "src";
  ASSERT_TRUE(fs::exists(src)) << src;
  std::vector<std::string> found;
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file()) continue;
    std::string rel = fs::relative(entry.path(), src).string();
    if (rel.rfind("runtime/real/", 0) == 0 || rel.rfind("cli/", 0) == 0 ||
        rel.rfind("cluster/", 0) == 0) {
      continue;
    }
    auto ext = entry.path().extension();
    if (ext != ".h" && ext != ".cc") continue;
    std::ifstream f(entry.path());
    std::stringstream buf;
    buf << f.rdbuf();
    auto o = offences("src/" + rel, buf.str());
    found.insert(found.end(), o.begin(), o.end());
    files++;
  }
  EXPECT_GT(files, 10u);
  std::string all;
  for (const auto& l : found) all += l + "\n";
  EXPECT_TRUE(found.empty()) << "calls that bypass the runtime seam:\n" << all;
}

}  // namespace
