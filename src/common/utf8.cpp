#include "journeyd/common/utf8.h"

#include <cstdint>
#include <cstring>

namespace journeyd {

namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;

uint64_t Load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

uint32_t Load4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// Whether every byte of `s` is ASCII. Most texts are (ids, e-mail addresses, names, links):
// eight bytes at a time, and the last bytes as one more word that overlaps the one before.
bool AllAscii(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  if (n >= 8) {
    uint64_t any = Load8(p + n - 8);
    for (size_t i = 0; i + 8 <= n; i += 8) any |= Load8(p + i);
    return (any & kHighBits) == 0;
  }
  if (n >= 4) return ((Load4(p) | Load4(p + n - 4)) & 0x80808080U) == 0;
  unsigned char any = 0;
  for (size_t i = 0; i < n; ++i) any |= static_cast<unsigned char>(p[i]);
  return (any & 0x80) == 0;
}

}  // namespace

bool ValidUtf8(std::string_view s, size_t* bad_offset) {
  if (AllAscii(s)) return true;
  size_t i = 0;
  while (i < s.size()) {
    // Most text is ASCII: eight bytes at a time while no byte has its top bit set.
    if (s.size() - i >= 8) {
      if ((Load8(s.data() + i) & kHighBits) == 0) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      n = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
    }
    if (!ok) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace journeyd
