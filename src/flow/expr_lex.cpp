// The expression language's lexer: the tokens of Parser, one at a time (Next).
#include "expr_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <cmath>

namespace journeyd::flow::expr_internal {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// Length of the well-formed UTF-8 sequence at s[i], or 0 (overlong forms, surrogates and code
// points above U+10FFFF are not well-formed).
size_t Utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0xC2) {
    return 0;
  } else if (c < 0xE0) {
    n = 2;
  } else if (c < 0xF0) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

void Parser::Next() {
  tok_.kind = Tok::kError;
  tok_.str.clear();
  if (failed_) return;
  Lex();
  if (!failed_ && tok_.offset + tok_.text.size() > kMaxLength) TooLong();
}

void Parser::TooLong() {
  Fail(kMaxLength, fmt::format("expression is longer than {} bytes", kMaxLength));
}

void Parser::Set(Tok kind, size_t start, size_t len) {
  tok_.kind = kind;
  tok_.offset = start;
  tok_.text = s_.substr(start, len);
  pos_ = start + len;
}

void Parser::Lex() {
  while (pos_ < s_.size() &&
         (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
    ++pos_;
  }
  const size_t at = pos_;
  tok_.offset = at;
  tok_.text = {};
  if (at >= kMaxLength && at < s_.size()) return TooLong();
  if (at >= s_.size()) return Set(Tok::kEnd, at, 0);
  const char c = s_[at];
  const char next = at + 1 < s_.size() ? s_[at + 1] : '\0';
  switch (c) {
    case '(':
      return Set(Tok::kLParen, at, 1);
    case ')':
      return Set(Tok::kRParen, at, 1);
    case '[':
      return Set(Tok::kLBracket, at, 1);
    case ']':
      return Set(Tok::kRBracket, at, 1);
    case ',':
      return Set(Tok::kComma, at, 1);
    case '+':
      return Set(Tok::kPlus, at, 1);
    case '-':
      return Set(Tok::kMinus, at, 1);
    case '*':
      return Set(Tok::kStar, at, 1);
    case '/':
      return Set(Tok::kSlash, at, 1);
    case '!':
      return next == '=' ? Set(Tok::kNe, at, 2) : Set(Tok::kNot, at, 1);
    case '>':
      return next == '=' ? Set(Tok::kGe, at, 2) : Set(Tok::kGt, at, 1);
    case '<':
      if (next == '>') {
        Fail(at, "'<>' is not an operator: use '!=' for \"not equal\"");
        return;
      }
      return next == '=' ? Set(Tok::kLe, at, 2) : Set(Tok::kLt, at, 1);
    case '=':
      if (next == '=') return Set(Tok::kEq, at, 2);
      Fail(at, "'=' is not an operator: use '==' to compare");
      return;
    case '&':
      if (next == '&') return Set(Tok::kAnd, at, 2);
      Fail(at, "'&' is not an operator: use '&&'");
      return;
    case '|':
      if (next == '|') return Set(Tok::kOr, at, 2);
      Fail(at, "'|' is not an operator: use '||'");
      return;
    case '"':
    case '\'':
      return LexString(c);
    default:
      break;
  }
  LexOther(c, next, at);
}

// A number, a name, or what is not a token at all.
void Parser::LexOther(char c, char next, size_t at) {
  if (IsDigit(c) || (c == '.' && IsDigit(next))) return LexNumber();
  if (IsNameStart(c)) return LexName();
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u == 0x7F) {
    Fail(at, fmt::format("unexpected control character (byte 0x{:02x})", u));
    return;
  }
  if (u < 0x80) {
    Fail(at, fmt::format("unexpected character '{}'", c));
    return;
  }
  size_t len = Utf8Length(s_, at);
  if (len == 0) {
    Fail(at, fmt::format("invalid UTF-8 (byte 0x{:02x})", u));
    return;
  }
  std::string_view ch = s_.substr(at, len);
  if (ch == "\u201C" || ch == "\u201D" || ch == "\u2018" || ch == "\u2019") {
    Fail(at, fmt::format("curly quote '{}': use straight quotes \" or '", ch));
    return;
  }
  Fail(at, fmt::format("unexpected character '{}'", ch));
}

void Parser::LexName() {
  const size_t at = pos_;
  size_t i = at;
  const size_t limit = std::min(s_.size(), kMaxLength + 1);
  while (true) {
    while (i < limit && IsNameChar(s_[i])) ++i;
    if (i < limit && s_[i] == '.') {
      if (i + 1 < limit && IsNameChar(s_[i + 1])) {
        ++i;
        continue;
      }
      if (i + 1 > kMaxLength) return TooLong();
      Fail(i, fmt::format("expected a field name after '{}'", s_.substr(at, i + 1 - at)));
      return;
    }
    break;
  }
  std::string_view word = s_.substr(at, i - at);
  if (i > kMaxLength) return TooLong();
  if (word == "in") return Set(Tok::kIn, at, i - at);
  if (word == "not") {
    size_t j = i;
    while (j < s_.size() && (s_[j] == ' ' || s_[j] == '\t')) ++j;
    if (j > i && s_.substr(j, 2) == "in" && (j + 2 == s_.size() || !IsNameChar(s_[j + 2]))) {
      Fail(at, "'not in' is not an operator: write !(x in [...])");
      return;
    }
  }
  if (word == "and" || word == "or" || word == "not") {
    std::string_view use = word == "and" ? "&&" : word == "or" ? "||" : "!";
    Fail(at, fmt::format("'{}' is not an operator: use '{}'", word, use));
    return;
  }
  Set(Tok::kName, at, i - at);
}

void Parser::LexNumber() {
  const size_t at = pos_;
  size_t i = at;
  bool whole = true;
  while (i < s_.size() && IsDigit(s_[i])) ++i;
  if (i + 1 < s_.size() && s_[i] == '.' && IsDigit(s_[i + 1])) {
    whole = false;
    ++i;
    while (i < s_.size() && IsDigit(s_[i])) ++i;
  }
  if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
    size_t j = i + 1;
    if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
    if (j < s_.size() && IsDigit(s_[j])) {
      whole = false;
      while (j < s_.size() && IsDigit(s_[j])) ++j;
      i = j;
    }
  }
  if (i > kMaxLength) return TooLong();
  if (i < s_.size() && IsNameChar(s_[i])) return LexDuration(at, i, whole);
  std::string_view num = s_.substr(at, i - at);
  double v = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && !std::isfinite(v))) {
    size_t e = num.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < num.size() && num[e + 1] == '-';
    Fail(at, fmt::format("number '{}' is too {}", Shorten(num), tiny ? "small" : "large"));
    return;
  }
  if (ec != std::errc() || end != num.data() + num.size()) {
    Fail(at, fmt::format("'{}' is not a number", Shorten(num)));
    return;
  }
  Set(Tok::kNumber, at, i - at);
  tok_.number = v;
}

// A number followed by a unit, from `at`; the number ends at `i`, and `whole` is false when
// it has a fraction or an exponent.
void Parser::LexDuration(size_t at, size_t i, bool whole) {
  // A unit follows: a duration such as 3d or 1h30m.
  size_t j = i;
  while (j < s_.size() && j <= kMaxLength && IsNameChar(s_[j])) ++j;
  if (j > kMaxLength) return TooLong();
  std::string_view word = s_.substr(at, j - at);
  if (!whole) {
    Fail(at, fmt::format("duration '{}': use a whole number with s, m, h, d or w (e.g. 90m "
                         "instead of 1.5h)",
                         Shorten(word)));
    return;
  }
  std::string message;
  auto d = ParseDuration(word, &message);
  if (!d) {
    Fail(at, message);
    return;
  }
  Set(Tok::kDuration, at, j - at);
  tok_.duration = *d;
}

void Parser::LexString(char quote) {
  const size_t at = pos_;
  size_t i = at + 1;
  std::string out;
  while (true) {
    if (i > kMaxLength) return TooLong();
    if (i >= s_.size()) {
      Fail(at, fmt::format("unterminated string: add the closing {}", quote));
      return;
    }
    const char c = s_[i];
    if (c == quote) break;
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      if (!LexEscape(quote, at, i, out)) return;
      i += 2;
    } else if (c == '\n' || c == '\r') {
      Fail(i, fmt::format("unterminated string: add the closing {} before the line break", quote));
      return;
    } else if ((u < 0x20 && c != '\t') || u == 0x7F) {
      Fail(i, fmt::format("control character in string (byte 0x{:02x})", u));
      return;
    } else if (u >= 0x80) {
      size_t len = Utf8Length(s_, i);
      if (len == 0) {
        Fail(i, fmt::format("invalid UTF-8 in string (byte 0x{:02x})", u));
        return;
      }
      out.append(s_.substr(i, len));
      i += len;
    } else {
      out += c;
      ++i;
    }
  }
  Set(Tok::kString, at, i + 1 - at);
  tok_.str = std::move(out);
}

// The escape at s_[i] (a backslash) of the string that starts at `at`, decoded into `out`;
// false when it is none (reported).
bool Parser::LexEscape(char quote, size_t at, size_t i, std::string& out) {
  const char e = i + 1 < s_.size() ? s_[i + 1] : '\0';
  switch (e) {
    case 'n':
      out += '\n';
      return true;
    case 't':
      out += '\t';
      return true;
    case '\\':
    case '"':
    case '\'':
      out += e;
      return true;
    default:
      if (i + 1 >= s_.size()) {
        Fail(at, fmt::format("unterminated string: add the closing {}", quote));
      } else {
        Fail(i, "unknown escape in string: use \\\", \\', \\\\, \\n or \\t");
      }
      return false;
  }
}

}  // namespace journeyd::flow::expr_internal
