// Redis's glob matcher (stringmatchlen), against answers Redis 7.0 gives.
#include <gtest/gtest.h>

#include <string>

#include "resp/glob.h"

namespace quire::resp {
namespace {

TEST(GlobTest, KnownAnswers) {
  // As in Redis, "*" does not match the empty string (KEYS and SCAN skip matching for "*").
  EXPECT_FALSE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "heeeello"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(glob_match("h[b-a]llo", "hallo"));  // a reversed range still matches
  EXPECT_FALSE(glob_match("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(glob_match("h\\*llo", "h*llo"));
  EXPECT_FALSE(glob_match("h\\*llo", "hello"));
  EXPECT_TRUE(glob_match("key:*", "key:__rand_int__"));
  EXPECT_FALSE(glob_match("key:*", "ke"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
  // An unterminated class is a class up to the pattern's end.
  EXPECT_FALSE(glob_match("[", "["));
  EXPECT_TRUE(glob_match("[abc", "b"));
  EXPECT_FALSE(glob_match("[abc", "d"));
  EXPECT_TRUE(glob_match(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_TRUE(glob_match("SAVE", "save", true));
  EXPECT_FALSE(glob_match("SAVE", "save", false));
}

TEST(GlobTest, PathologicalPatternsAreBounded) {
  // Exponential backtracking is cut by the skip-longer rule; nesting by kGlobNestingMax.
  std::string pattern;
  for (int i = 0; i < 30; i++) pattern += "a*";
  pattern += "b";
  EXPECT_FALSE(glob_match(pattern, std::string(60, 'a')));
  std::string deep;
  for (int i = 0; i < 5000; i++) deep += "*a";
  EXPECT_FALSE(glob_match(deep, std::string(6000, 'a')));
}

}  // namespace
}  // namespace quire::resp
