// libFuzzer target for the RESP2 request parser (resp/protocol.h): whatever the bytes, it
// never reads outside them or allocates from announced lengths; fed whole or in pieces it
// parses the same commands and ends the same way; the commands it parses, encoded again as
// multibulks, parse back equal. Run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "resp/protocol.h"

namespace quire::resp {
namespace {

// Fuzzing builds may define NDEBUG; this check stays on and reports what broke.
#define FUZZ_CHECK(cond)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "resp_protocol_fuzz: check failed: %s at line %d\n", #cond, __LINE__); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  RequestParser::Result end = RequestParser::Result::kNeedMore;
  std::string error;
};

// Feeds `in` in pieces of `chunk` bytes, draining commands after each.
Outcome parse(std::string_view in, size_t chunk, const RequestLimits& limits) {
  RequestParser p(limits);
  Outcome out;
  std::vector<std::string> args;
  for (size_t at = 0; at < in.size(); at += chunk) {
    p.feed(in.substr(at, chunk));
    RequestParser::Result r;
    while ((r = p.next(&args)) == RequestParser::Result::kCommand) {
      FUZZ_CHECK(!args.empty());
      out.commands.push_back(args);
    }
    out.end = r;
    out.error = p.error();
    if (r != RequestParser::Result::kNeedMore) break;
  }
  return out;
}

}  // namespace
}  // namespace quire::resp

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quire::resp;
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  // Lines may be as long as the input, so the outcome cannot depend on how it was split.
  RequestLimits roomy;
  roomy.line_bytes_max = size_t{1} << 30;
  const Outcome whole = parse(in, in.size() + 1, roomy);
  const Outcome pieces = parse(in, chunk, roomy);
  FUZZ_CHECK(whole.commands == pieces.commands);
  FUZZ_CHECK(whole.end == pieces.end);
  FUZZ_CHECK(whole.error == pieces.error);

  std::string encoded;
  for (const auto& c : whole.commands) encoded += encode_multibulk(c);
  const Outcome again = parse(encoded, encoded.size() + 1, roomy);
  FUZZ_CHECK(again.commands == whole.commands);
  FUZZ_CHECK(again.end == RequestParser::Result::kNeedMore);

  // Tight limits: every limit path runs; only memory safety is checked.
  RequestLimits tight;
  tight.bulk_bytes_max = 1000;
  tight.multibulk_count_max = 100;
  tight.line_bytes_max = 64;
  tight.command_bytes_max = 4096;
  (void)parse(in, chunk, tight);
  return 0;
}
