#include "resp/glob.h"

#include <cctype>
#include <utility>

namespace quire::resp {
namespace {

char fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// A character class: `*p` points at its '['. Leaves `*p` at its last character (the ']', or
// the pattern's last character when unterminated) and says whether `c` is in it.
bool match_class(const char** pp, size_t* plenp, char c, bool nocase) {
  const char* p = *pp + 1;
  size_t plen = *plenp - 1;
  const bool negate = plen > 0 && p[0] == '^';
  if (negate) {
    p++;
    plen--;
  }
  bool matched = false;
  while (true) {
    if (plen == 0) {  // unterminated: stop at the pattern's last character
      p--;
      plen++;
      break;
    }
    if (p[0] == '\\' && plen >= 2) {
      p++;
      plen--;
      if (fold(p[0], nocase) == fold(c, nocase)) matched = true;
    } else if (p[0] == ']') {
      break;
    } else if (plen >= 3 && p[1] == '-') {
      int start = p[0];
      int end = p[2];
      int ch = c;
      if (start > end) std::swap(start, end);
      if (nocase) {
        start = std::tolower(static_cast<unsigned char>(start));
        end = std::tolower(static_cast<unsigned char>(end));
        ch = std::tolower(static_cast<unsigned char>(ch));
      }
      p += 2;
      plen -= 2;
      if (ch >= start && ch <= end) matched = true;
    } else if (fold(p[0], nocase) == fold(c, nocase)) {
      matched = true;
    }
    p++;
    plen--;
  }
  *pp = p;
  *plenp = plen;
  return negate ? !matched : matched;
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
      case '[':
        if (!match_class(&p, &plen, s[0], nocase)) return false;
        s++;
        slen--;
        break;
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
