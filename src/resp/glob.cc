#include "resp/glob.h"

#include <cctype>
#include <utility>

namespace quire::resp {
namespace {

char fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// A transcription of Redis's stringmatchlen_impl over (pointer, length) pairs, with every
// read kept inside the pattern and the string (Redis relies on a terminating NUL).
bool match(const char* p, size_t plen, const char* s, size_t slen, bool nocase, bool* skip_longer,
           int nesting) {
  if (nesting > kGlobNestingMax) {
    *skip_longer = true;  // unwind at once: no shorter or longer try can go deeper
    return false;
  }
  while (plen > 0 && slen > 0) {
    switch (p[0]) {
      case '*':
        while (plen > 1 && p[1] == '*') {
          p++;
          plen--;
        }
        if (plen == 1) return true;
        while (slen > 0) {
          if (match(p + 1, plen - 1, s, slen, nocase, skip_longer, nesting + 1)) return true;
          if (*skip_longer) return false;
          s++;
          slen--;
        }
        *skip_longer = true;
        return false;
      case '?':
        s++;
        slen--;
        break;
      case '[': {
        p++;
        plen--;
        const bool negate = plen > 0 && p[0] == '^';
        if (negate) {
          p++;
          plen--;
        }
        bool matched = false;
        while (true) {
          if (plen == 0) {  // an unterminated class: stop at its last character
            p--;
            plen++;
            break;
          }
          if (p[0] == '\\' && plen >= 2) {
            p++;
            plen--;
            if (fold(p[0], nocase) == fold(s[0], nocase)) matched = true;
          } else if (p[0] == ']') {
            break;
          } else if (plen >= 3 && p[1] == '-') {
            int start = p[0];
            int end = p[2];
            int c = s[0];
            if (start > end) std::swap(start, end);
            if (nocase) {
              start = std::tolower(static_cast<unsigned char>(start));
              end = std::tolower(static_cast<unsigned char>(end));
              c = std::tolower(static_cast<unsigned char>(c));
            }
            p += 2;
            plen -= 2;
            if (c >= start && c <= end) matched = true;
          } else if (fold(p[0], nocase) == fold(s[0], nocase)) {
            matched = true;
          }
          p++;
          plen--;
        }
        if (negate) matched = !matched;
        if (!matched) return false;
        s++;
        slen--;
        break;
      }
      case '\\':
        if (plen >= 2) {
          p++;
          plen--;
        }
        [[fallthrough]];
      default:
        if (fold(p[0], nocase) != fold(s[0], nocase)) return false;
        s++;
        slen--;
        break;
    }
    p++;
    plen--;
    if (slen == 0) {
      while (plen > 0 && p[0] == '*') {
        p++;
        plen--;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view s, bool nocase) {
  bool skip_longer = false;
  return match(pattern.data(), pattern.size(), s.data(), s.size(), nocase, &skip_longer, 0);
}

}  // namespace quire::resp
