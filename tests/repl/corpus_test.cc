// The fuzzers' seed corpus must hold valid inputs of today's formats, or the fuzzers start
// from nothing but rejections. Each engine seed is a selector byte, then the input.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "engine/checkpoint_format.h"
#include "repl/log_entry.h"

namespace quire {
namespace {

Bytes seed(const std::string& name) {
  // Appended in steps: g++ 12 warns falsely (-Warray-bounds) on the one-expression form.
  std::string path = QUIRE_SOURCE_DIR;
  path.append("/fuzz/corpus/engine/").append(name);
  std::ifstream in(path, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!b.empty()) b.erase(b.begin());  // the selector
  return b;
}

TEST(SeedCorpus, LogEntriesDecodeAndRoundTrip) {
  for (const char* name :
       {"log_entry", "log_entry_keystore", "log_entry_heartbeat", "log_entry_batches"}) {
    SCOPED_TRACE(name);
    Bytes b = seed(name);
    ASSERT_FALSE(b.empty());
    auto e = decode_log_entry(b);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    auto again = encode_log_entry(*e);
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(*again, b);
  }
  EXPECT_EQ(decode_log_entry(seed("log_entry_heartbeat"))->kind, LogEntryKind::kHeartbeat);
  EXPECT_NE(decode_log_entry(seed("log_entry_keystore"))->keystore_base_version, 0u);
  EXPECT_EQ(decode_log_entry(seed("log_entry_batches"))->batches.size(), 2u);
}

TEST(SeedCorpus, MetadataPageDecodesAndRoundTrips) {
  Bytes b = seed("metadata");
  auto m = decode_metadata_page(b);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_FALSE(m->log_lsn.is_zero());
  EXPECT_EQ(encode_metadata_page(*m), b);
}

}  // namespace
}  // namespace quire
