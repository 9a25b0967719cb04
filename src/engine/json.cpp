#include "journeyd/engine/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "journeyd/common/utf8.h"

namespace journeyd::engine {
namespace {

// The bytes that end a run of plain string bytes: the quote, the backslash, and the control
// characters a JSON string must not hold.
constexpr std::array<bool, 256> kStringStop = [] {
  std::array<bool, 256> stop{};
  for (int c = 0; c < 0x20; ++c) stop[static_cast<size_t>(c)] = true;
  stop['"'] = stop['\\'] = true;
  return stop;
}();

class Parser {
 public:
  Parser(std::string_view text, int max_depth)
      : p_(text.data()), end_(p_ + text.size()), max_depth_(max_depth) {}

  bool Document(nlohmann::json* out) {
    // A UTF-8 byte order mark may start the text (nlohmann skips it too).
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
    SkipSpace();
    if (!Value(out, 0)) return false;
    SkipSpace();
    return p_ == end_;
  }

  // An object of scalars, its members appended to `out` in the text's order (ParseFlatObject).
  bool FlatDocument(FlatObject* out) {
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
    SkipSpace();
    if (p_ == end_ || *p_ != '{' || max_depth_ < 1) return false;
    ++p_;
    SkipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
    } else {
      while (true) {
        SkipSpace();
        if (p_ == end_ || *p_ != '"') return false;
        if (out->empty()) out->reserve(8);  // room for a usual profile at once
        auto& [key, value] = out->emplace_back();
        if (!String(&key)) return false;
        SkipSpace();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
        SkipSpace();
        if (!Scalar(&value)) return false;
        SkipSpace();
        if (p_ == end_) return false;
        if (*p_ == '}') {
          ++p_;
          break;
        }
        if (*p_ != ',') return false;
        ++p_;
      }
    }
    SkipSpace();
    return p_ == end_;
  }

 private:
  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool Value(nlohmann::json* out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(out, depth + 1);
      case '[':
        return Array(out, depth + 1);
      case '"': {
        std::string s;
        if (!String(&s)) return false;
        *out = std::move(s);
        return true;
      }
      case 't':
        *out = true;
        return Literal("true");
      case 'f':
        *out = false;
        return Literal("false");
      case 'n':
        *out = nullptr;
        return Literal("null");
      default:
        return Number(out);
    }
  }

  // A value that is not an array or object, as a flow literal (numbers as doubles, as
  // nlohmann's get<double>() gives them).
  bool Scalar(flow::Literal* out) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '"':
        out->kind = flow::Literal::Kind::kString;
        return String(&out->str);
      case 't':
        out->kind = flow::Literal::Kind::kBool;
        out->b = true;
        return Literal("true");
      case 'f':
        out->kind = flow::Literal::Kind::kBool;
        out->b = false;
        return Literal("false");
      case 'n':
        out->kind = flow::Literal::Kind::kNull;
        return Literal("null");
      case '{':
      case '[':
        return false;
      default: {
        nlohmann::json number;  // a scalar: nothing is allocated
        if (!Number(&number)) return false;
        out->kind = flow::Literal::Kind::kNumber;
        out->number = number.get<double>();
        return true;
      }
    }
  }

  bool Object(nlohmann::json* out, int depth) {
    if (depth > max_depth_) return false;
    ++p_;  // {
    *out = nlohmann::json::object();
    auto& object = out->get_ref<nlohmann::json::object_t&>();
    SkipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (p_ == end_ || *p_ != '"') return false;
      std::string key;
      if (!String(&key)) return false;
      SkipSpace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      SkipSpace();
      nlohmann::json value;
      if (!Value(&value, depth)) return false;
      object[std::move(key)] = std::move(value);  // the last of duplicate keys wins
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
    }
  }

  bool Array(nlohmann::json* out, int depth) {
    if (depth > max_depth_) return false;
    ++p_;  // [
    *out = nlohmann::json::array();
    auto& array = out->get_ref<nlohmann::json::array_t&>();
    SkipSpace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      SkipSpace();
      array.emplace_back();
      if (!Value(&array.back(), depth)) return false;
      SkipSpace();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
    }
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Four hex digits after "\u".
  bool Hex4(uint32_t* v) {
    if (end_ - p_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = Hex(p_[i]);
      if (h < 0) return false;
      *v = (*v << 4) | static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool String(std::string* out) {
    ++p_;  // "
    while (true) {
      // A run of plain bytes, copied at once and checked as UTF-8 (escapes and the closing
      // quote are ASCII, so no multi-byte sequence is split between runs).
      // Scanned through locals: stores through p_ would make the compiler reload it per byte.
      const char* const run = p_;
      const char* p = run;
      const char* const end = end_;
      unsigned char bits = 0;  // every byte's bits: 0x80 set when any is not ASCII
      while (p < end && !kStringStop[static_cast<unsigned char>(*p)]) bits |= *p++;
      p_ = p;
      if (p < end && static_cast<unsigned char>(*p) < 0x20) return false;
      const std::string_view bytes(run, static_cast<size_t>(p - run));
      if ((bits & 0x80) != 0 && !ValidUtf8(bytes)) return false;
      out->append(bytes);
      if (p_ == end_) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      ++p_;  // backslash
      if (p_ == end_) return false;
      const char e = *p_++;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate first
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return false;
      }
    }
  }

  static bool Digit(char c) { return c >= '0' && c <= '9'; }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool Number(nlohmann::json* out) {
    const char* start = p_;
    bool negative = false, integral = true;
    if (p_ < end_ && *p_ == '-') {
      negative = true;
      ++p_;
    }
    if (p_ == end_ || !Digit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && Digit(*p_)) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      integral = false;
      ++p_;
      if (p_ == end_ || !Digit(*p_)) return false;
      while (p_ < end_ && Digit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !Digit(*p_)) return false;
      while (p_ < end_ && Digit(*p_)) ++p_;
    }
    if (integral) {
      if (negative) {
        int64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && ptr == p_) {
          *out = v;
          return true;
        }
      } else {
        uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && ptr == p_) {
          *out = v;
          return true;
        }
      }
      // Too big for 64 bits: a double, as nlohmann makes it.
    }
    double d = 0;
    auto [ptr, ec] = std::from_chars(start, p_, d);
    if (ec == std::errc::result_out_of_range) {
      // Underflow rounds to zero or a subnormal (what strtod gives); overflow is an error.
      const std::string token(start, p_);
      d = std::strtod(token.c_str(), nullptr);
    } else if (ec != std::errc() || ptr != p_) {
      return false;
    }
    if (!std::isfinite(d)) return false;
    *out = d;
    return true;
  }

  const char* p_;
  const char* end_;
  int max_depth_;
};

}  // namespace

bool ParseFlatObject(std::string_view text, FlatObject* out) {
  out->clear();
  Parser parser(text, 512);
  if (!parser.FlatDocument(out)) {
    out->clear();
    return false;
  }
  // By name, the last of duplicate names kept, as in nlohmann's object. Both sorts are stable
  // (equal names keep the text's order). A profile has a handful of members, often in order
  // already: an insertion sort, without the buffer std::stable_sort allocates; a long object
  // (a field may hold thousands) is sorted in O(n log n).
  FlatObject& o = *out;
  auto by_name = [](const auto& x, const auto& y) { return x.first < y.first; };
  if (o.size() > 16) {
    std::stable_sort(o.begin(), o.end(), by_name);
  } else {
    for (size_t i = 1; i < o.size(); ++i) {
      if (!by_name(o[i], o[i - 1])) continue;
      auto member = std::move(o[i]);
      size_t j = i;
      for (; j > 0 && by_name(member, o[j - 1]); --j) o[j] = std::move(o[j - 1]);
      o[j] = std::move(member);
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    if (i + 1 < o.size() && o[i + 1].first == o[i].first) continue;
    if (kept != i) o[kept] = std::move(o[i]);
    ++kept;
  }
  o.resize(kept);
  return true;
}

bool ParseJson(std::string_view text, nlohmann::json* out, int max_depth) {
  nlohmann::json value;
  Parser parser(text, max_depth);
  if (!parser.Document(&value)) return false;
  *out = std::move(value);
  return true;
}

namespace {

// The bytes a JSON string cannot hold as they are: the quote, the backslash and controls.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}();

// Whether any of the eight bytes in `w` needs an escape: a control (below 0x20), the quote or
// the backslash. Each test is exact for the word as a whole (a zero byte after the xor, a
// byte below 0x20), so a clean word is never taken for one that needs work.
bool WordNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  return (below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'))) != 0;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  // Runs of characters that need no escape are copied at once; they are found eight bytes at
  // a time, then byte by byte in the word that ends them.
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    const char* run = p;
    for (uint64_t w; end - p >= 8; p += 8) {
      std::memcpy(&w, p, 8);
      if (WordNeedsEscape(w)) break;
    }
    while (p < end && !kNeedsEscape[static_cast<unsigned char>(*p)]) ++p;
    out.append(run, static_cast<size_t>(p - run));
    if (p == end) break;
    const auto c = static_cast<unsigned char>(*p++);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
  }
  out += '"';
}

flow::Value JsonToValue(const nlohmann::json& j, std::deque<std::vector<flow::Value>>& lists) {
  using flow::Value;
  switch (j.type()) {
    case nlohmann::json::value_t::string:
      return Value::String(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return Value::Number(j.get<double>());
    case nlohmann::json::value_t::array: {
      auto& items = lists.emplace_back();
      items.reserve(j.size());
      for (const auto& e : j) {
        if (e.is_primitive()) items.push_back(JsonToValue(e, lists));
      }
      return Value::List(items);
    }
    default:
      return Value::Null();
  }
}

}  // namespace journeyd::engine
