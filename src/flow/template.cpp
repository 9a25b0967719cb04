// Mail templates: parsed once at load, rendered per send by appending into one output string.
//
// Grammar of a placeholder (whitespace inside the braces is optional):
//   {{ path ( "|" filter )* }}      HTML-escaped when rendering HTML
//   {{{ path ( "|" filter )* }}}    never escaped
//   {{ "text" }}                    literal text, e.g. {{ "{{" }} for a pair of braces
//   path   := customer.<name>(.<name>)* | trigger.<...> | event.<...> | now | [a-z_][a-z0-9_]*
//   filter := upper | lower | date | money | default: ( "text" | 'text' | number )
// A quote starts a string only at the start of a placeholder or after ':', so an apostrophe
// in a mistyped name is reported as a bad name, not as an endless string. A placeholder
// ends on its own line.
#include "journeyd/flow/template.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>

namespace journeyd::flow {
namespace {

constexpr size_t kMaxSource = 256 * 1024;
constexpr size_t kMaxPlaceholders = 1000;
constexpr size_t kShown = 40;  // longest name quoted in an error message

constexpr std::string_view kFilterNames[] = {"default", "upper", "lower", "date", "money"};
constexpr std::string_view kRootNames[] = {"customer", "trigger", "event", "now"};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) { return IsLower(c) || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_'; }
bool IsQuote(char c) { return c == '"' || c == '\''; }

// A step variable or built-in: [a-z_][a-z0-9_]*.
bool IsBareName(std::string_view s) {
  if (s.empty() || !(IsLower(s[0]) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(IsLower(c) || IsDigit(c) || c == '_')) return false;
  }
  return true;
}

// A path segment after a root: profile attributes and event data keys, [A-Za-z0-9_]+.
bool IsSegment(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsWordChar(c)) return false;
  }
  return true;
}

// -12, 3.5: a bare number for `default:`.
bool IsPlainNumber(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  size_t digits = 0;
  while (digits < s.size() && IsDigit(s[digits])) ++digits;
  if (digits == 0) return false;
  s.remove_prefix(digits);
  if (s.empty()) return true;
  if (s[0] != '.' || s.size() == 1) return false;
  for (char c : s.substr(1)) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Length of the well-formed UTF-8 sequence at s[i], or 0 (overlong forms, surrogates and
// code points above U+10FFFF are not well-formed).
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c == 0xE0) {
    n = 3;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    n = 3;
  } else if (c == 0xED) {
    n = 3;
    hi = 0x9F;
  } else if (c == 0xF0) {
    n = 4;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    n = 4;
  } else if (c == 0xF4) {
    n = 4;
    hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// Offset of the first byte that does not start a well-formed sequence, or npos.
size_t FirstBadUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = Utf8Length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

// At most kShown bytes of `s` for a message, cut on a character boundary.
std::string Shorten(std::string_view s) {
  if (s.size() <= kShown) return std::string(s);
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}…", s.substr(0, cut));
}

// End (one past the closing quote) of the string that starts with the quote at s[at], or
// npos when it has no closing quote on its line. A backslash escapes the next character.
size_t SkipString(std::string_view s, size_t at) {
  const char q = s[at];
  for (size_t k = at + 1; k < s.size(); ++k) {
    const char c = s[k];
    if (c == '\n' || c == '\r') return std::string_view::npos;
    if (c == '\\' && k + 1 < s.size() && s[k + 1] != '\n' && s[k + 1] != '\r') {
      ++k;
      continue;
    }
    if (c == q) return k + 1;
  }
  return std::string_view::npos;
}

// The text of a quoted string (quotes included in `quoted`): \" \' and \\ stand for the
// character; any other backslash is kept as written.
std::string Unquote(std::string_view quoted) {
  std::string out;
  std::string_view s = quoted.substr(1, quoted.size() - 2);
  out.reserve(s.size());
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '\\' && k + 1 < s.size() && (IsQuote(s[k + 1]) || s[k + 1] == '\\')) ++k;
    out += s[k];
  }
  return out;
}

// A money amount from a number or a string holding a plain decimal number.
bool MoneyAmount(const Value& v, double* out) {
  double n = 0;
  if (v.type() == ValueType::kNumber) {
    n = v.as_number();
  } else if (v.type() == ValueType::kString && IsPlainNumber(v.as_string())) {
    std::string_view s = v.as_string();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size()) return false;
  } else {
    return false;
  }
  if (!std::isfinite(n)) return false;
  if (std::fabs(n) < 1e15) n = std::round(n * 100) / 100;  // half away from zero: 0.125 → 0.13
  if (n == 0) n = 0;                                       // no "-0.00"
  *out = n;
  return true;
}

// HTML-escapes out[start..] in place, growing the string once.
void EscapeTail(std::string& out, size_t start) {
  auto replacement = [](char c) -> std::string_view {
    switch (c) {
      case '&':
        return "&amp;";
      case '<':
        return "&lt;";
      case '>':
        return "&gt;";
      case '"':
        return "&quot;";
      case '\'':
        return "&#39;";
      default:
        return {};
    }
  };
  size_t extra = 0;
  for (size_t k = start; k < out.size(); ++k) {
    std::string_view r = replacement(out[k]);
    if (!r.empty()) extra += r.size() - 1;
  }
  if (extra == 0) return;
  size_t read = out.size();
  out.resize(out.size() + extra);
  size_t write = out.size();
  while (read > start) {
    const char c = out[--read];
    std::string_view r = replacement(c);
    if (r.empty()) {
      out[--write] = c;
    } else {
      write -= r.size();
      std::memcpy(&out[write], r.data(), r.size());
    }
  }
}

class Parser {
 public:
  Parser(std::string_view source, TemplateError* error) : src_(source), error_(error) {}

  // Fills `t`; false (with the error set) on the first problem.
  bool Run(std::vector<Placeholder>& placeholders,
           std::vector<std::pair<std::string, int>>& pieces) {
    if (src_.size() > kMaxSource) {
      return Fail(kMaxSource,
                  fmt::format("template text is longer than {} KiB", kMaxSource / 1024));
    }
    if (size_t bad = FirstBadUtf8(src_); bad != std::string_view::npos) {
      return Fail(bad, "template text is not valid UTF-8");
    }
    std::string literal;
    size_t i = 0;
    while (true) {
      const size_t open = src_.find("{{", i);
      if (open == std::string_view::npos) {
        literal.append(src_.substr(i));
        break;
      }
      literal.append(src_.substr(i, open - i));
      const bool raw = open + 2 < src_.size() && src_[open + 2] == '{';
      const std::string_view closer = raw ? "}}}" : "}}";
      const size_t body = open + (raw ? 3 : 2);
      bars_.clear();
      size_t close = std::string_view::npos;
      if (!Scan(open, body, closer, &close)) return false;

      // The body without surrounding blanks: [from, to).
      size_t from = body;
      size_t to = close;
      while (from < to && IsSpace(src_[from])) ++from;
      while (to > from && IsSpace(src_[to - 1])) --to;
      if (from == to) {
        return Fail(open, raw ? "empty placeholder '{{{}}}'" : "empty placeholder '{{}}'");
      }

      // {{ "{{" }}: literal text.
      if (IsQuote(src_[from]) && SkipString(src_, from) == to) {
        literal += Unquote(src_.substr(from, to - from));
        i = close + closer.size();
        continue;
      }
      if (placeholders.size() >= kMaxPlaceholders) {
        return Fail(open, fmt::format("a template has at most {} placeholders", kMaxPlaceholders));
      }
      Placeholder p;
      p.offset = open;
      p.raw = raw;
      if (!ParseBody(from, to, &p)) return false;
      pieces.emplace_back(std::move(literal), static_cast<int>(placeholders.size()));
      literal.clear();
      placeholders.push_back(std::move(p));
      i = close + closer.size();
    }
    if (!literal.empty() || pieces.empty()) pieces.emplace_back(std::move(literal), -1);
    return true;
  }

 private:
  bool Fail(size_t offset, std::string message) {
    if (error_) {
      error_->offset = offset;
      error_->message = std::move(message);
    }
    return false;
  }

  // Finds the closer of the placeholder opened at `open`, skipping strings and noting the
  // '|' separators in bars_.
  bool Scan(size_t open, size_t body, std::string_view closer, size_t* close) {
    bool string_may_start = true;  // at the start of the body or right after ':'
    for (size_t k = body; k < src_.size();) {
      const char c = src_[k];
      if (c == '\n' || c == '\r') break;
      if (src_.compare(k, closer.size(), closer) == 0) {
        *close = k;
        return true;
      }
      if (IsQuote(c) && string_may_start) {
        size_t end = SkipString(src_, k);
        if (end == std::string_view::npos) {
          return Fail(k, fmt::format("the text starting with {} has no closing {}", c, c));
        }
        k = end;
        string_may_start = false;
        continue;
      }
      if (c == '{') {
        return Fail(k, src_.compare(k, 2, "{{") == 0
                           ? "'{{' inside a placeholder: close the first one with '}}'"
                           : "unexpected '{' inside a placeholder");
      }
      if (c == '}') {
        // Only a raw placeholder gets here with "}}": it needs "}}}".
        if (src_.compare(k, 2, "}}") == 0) return Fail(open, "'{{{' without a closing '}}}'");
        return Fail(k, "unexpected '}' inside a placeholder");
      }
      if (c == '|') bars_.push_back(k);
      if (!IsSpace(c)) string_may_start = c == ':';
      ++k;
    }
    return Fail(
        open, closer.size() == 3 ? "'{{{' without a closing '}}}'" : "'{{' without a closing '}}'");
  }

  // [from, to) trimmed to [*a, *b).
  void Trim(size_t* a, size_t* b) const {
    while (*a < *b && IsSpace(src_[*a])) ++*a;
    while (*b > *a && IsSpace(src_[*b - 1])) --*b;
  }

  bool ParseBody(size_t from, size_t to, Placeholder* p) {
    size_t name_from = from;
    size_t name_to = bars_.empty() ? to : bars_[0];
    Trim(&name_from, &name_to);
    if (name_from == name_to) return Fail(bars_[0], "missing variable name before '|'");
    if (!ParsePath(name_from, src_.substr(name_from, name_to - name_from), &p->path)) {
      return false;
    }
    for (size_t b = 0; b < bars_.size(); ++b) {
      size_t f_from = bars_[b] + 1;
      size_t f_to = b + 1 < bars_.size() ? bars_[b + 1] : to;
      Trim(&f_from, &f_to);
      if (f_from == f_to) return Fail(bars_[b], "empty filter after '|'");
      if (!ParseFilter(f_from, f_to, p)) return false;
    }
    return true;
  }

  bool ParsePath(size_t at, std::string_view name, Path* path) {
    path->text = std::string(name);
    const size_t dot = name.find('.');
    const std::string_view head = name.substr(0, dot);
    const bool dotted = dot != std::string_view::npos;
    auto not_a_name = [&] {
      return Fail(at, fmt::format("'{}' is not a variable name", Shorten(name)));
    };
    if (head == "customer" || head == "trigger" || head == "event") {
      if (!dotted) {
        return Fail(at, fmt::format("'{}' needs a field, e.g. {}.{}", head, head,
                                    head == "customer" ? "first_name" : "data.total"));
      }
      path->root = head == "customer"  ? Root::kCustomer
                   : head == "trigger" ? Root::kTrigger
                                       : Root::kEvent;
      std::string_view rest = name.substr(dot + 1);
      while (true) {
        const size_t next = rest.find('.');
        const std::string_view seg = rest.substr(0, next);
        if (!IsSegment(seg)) {
          path->segments.clear();
          return not_a_name();
        }
        path->segments.emplace_back(seg);
        if (next == std::string_view::npos) break;
        rest.remove_prefix(next + 1);
      }
      return true;
    }
    if (head == "now") {
      if (dotted) return Fail(at, "'now' has no fields");
      path->root = Root::kNow;
      return true;
    }
    if (IsBareName(name)) {
      path->root = Root::kVar;
      path->segments.emplace_back(name);
      return true;
    }
    if (dotted && IsSegment(head)) {
      std::string hint = DidYouMean(head, kRootNames);
      if (hint.empty()) hint = ": use customer.*, trigger.* or a step variable";
      return Fail(at, fmt::format("unknown name '{}'{}", Shorten(head), hint));
    }
    return not_a_name();
  }

  bool ParseFilter(size_t from, size_t to, Placeholder* p) {
    const std::string_view text = src_.substr(from, to - from);
    size_t w = 0;
    while (w < text.size() && IsWordChar(text[w])) ++w;
    const std::string_view word = text.substr(0, w);
    if (word.empty()) return Fail(from, fmt::format("'{}' is not a filter", Shorten(text)));
    size_t rest = from + w;
    while (rest < to && IsSpace(src_[rest])) ++rest;
    if (word == "default") {
      if (rest == to || src_[rest] != ':') {
        return Fail(from, "default needs a value, e.g. default: \"there\"");
      }
      if (p->default_value) return Fail(from, "default is given twice");
      size_t arg = rest + 1;
      while (arg < to && IsSpace(src_[arg])) ++arg;
      if (arg == to) return Fail(from, "default needs a value, e.g. default: \"there\"");
      if (IsQuote(src_[arg])) {
        // Scan() accepted this string, so it is closed before `to`.
        const size_t end = SkipString(src_, arg);
        if (end == std::string_view::npos || end > to) {
          return Fail(arg, "the default's text has no closing quote");
        }
        if (end != to) {
          size_t extra = end;
          while (extra < to && IsSpace(src_[extra])) ++extra;
          return Fail(extra, fmt::format("unexpected '{}' after the default value",
                                         Shorten(src_.substr(extra, to - extra))));
        }
        p->default_value = Unquote(src_.substr(arg, end - arg));
        return true;
      }
      const std::string_view bare = src_.substr(arg, to - arg);
      if (!IsPlainNumber(bare)) {
        return Fail(
            arg, fmt::format("default needs quotes around text: default: \"{}\"", Shorten(bare)));
      }
      p->default_value = std::string(bare);
      return true;
    }
    Filter f = Filter::kUpper;
    if (word == "upper") {
      f = Filter::kUpper;
    } else if (word == "lower") {
      f = Filter::kLower;
    } else if (word == "date") {
      f = Filter::kDate;
    } else if (word == "money") {
      f = Filter::kMoney;
    } else {
      return Fail(from, fmt::format("unknown filter '{}'{}", Shorten(word),
                                    DidYouMean(word, kFilterNames)));
    }
    if (rest != to) return Fail(rest, fmt::format("the filter '{}' takes no value", word));
    p->filters.push_back(f);
    return true;
  }

  std::string_view src_;
  TemplateError* error_;
  std::vector<size_t> bars_;  // offsets of the '|' in the current placeholder
};

}  // namespace

std::optional<TextTemplate> TextTemplate::Parse(std::string_view source, TemplateError* error) {
  std::vector<std::pair<std::string, int>> pieces;
  TextTemplate t;
  Parser parser(source, error);
  if (!parser.Run(t.placeholders_, pieces)) return std::nullopt;
  t.pieces_.reserve(pieces.size());
  for (auto& [literal, index] : pieces) t.pieces_.push_back({std::move(literal), index});
  t.source_ = std::string(source);
  return t;
}

void TextTemplate::Render(const Scope& scope, bool html_escape, std::string& out) const {
  for (const Piece& piece : pieces_) {
    out += piece.literal;
    if (piece.placeholder < 0) continue;
    const Placeholder& p = placeholders_[static_cast<size_t>(piece.placeholder)];
    Value v = p.path.root == Root::kNow ? Value::Time(scope.Now()) : scope.Lookup(p.path);

    // Value filters, in order. Both buffers stay on the stack for any date or amount.
    std::string date;
    fmt::memory_buffer amount;
    for (Filter f : p.filters) {
      if (f == Filter::kDate) {
        TimePoint t;
        if (v.ToTime(&t)) {
          date = FormatDate(t);
          v = Value::String(date);
        }
      } else if (f == Filter::kMoney) {
        double n = 0;
        if (MoneyAmount(v, &n)) {
          amount.clear();
          fmt::format_to(std::back_inserter(amount), "{:.2f}", n);
          v = Value::String(std::string_view(amount.data(), amount.size()));
        }
      }
    }
    const size_t start = out.size();
    v.AppendText(out);
    if (out.size() == start && p.default_value) out += *p.default_value;

    // Case filters apply to the text shown, a default included.
    for (Filter f : p.filters) {
      if (f == Filter::kUpper) {
        for (size_t k = start; k < out.size(); ++k) {
          if (IsLower(out[k])) out[k] = static_cast<char>(out[k] - 'a' + 'A');
        }
      } else if (f == Filter::kLower) {
        for (size_t k = start; k < out.size(); ++k) {
          if (out[k] >= 'A' && out[k] <= 'Z') out[k] = static_cast<char>(out[k] - 'A' + 'a');
        }
      }
    }
    if (html_escape && !p.raw) EscapeTail(out, start);
  }
}

}  // namespace journeyd::flow
