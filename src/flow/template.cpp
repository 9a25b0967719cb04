// Mail templates: parsed once at load, rendered per send into one output string.
#include "journeyd/flow/template.h"

#include <fmt/format.h>
#include <charconv>
#include <cmath>

namespace journeyd::flow {
namespace {

constexpr size_t kMaxSource = 256 * 1024;
constexpr size_t kMaxPlaceholders = 1000;

bool ValidUtf8(std::string_view s, size_t* bad) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                   ? 1
               : (c >= 0xC2 && c < 0xE0)  ? 2
               : (c >= 0xE0 && c < 0xF0)  ? 3
               : (c >= 0xF0 && c <= 0xF4) ? 4
                                          : 0;
    if (n == 0 || i + n > s.size()) {
      *bad = i;
      return false;
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        *bad = i;
        return false;
      }
    }
    i += n;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  bool dot_ok = false;
  for (char c : s) {
    if (c == '.') {
      if (!dot_ok) return false;
      dot_ok = false;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
    dot_ok = true;
  }
  return dot_ok;
}

// Parses a quoted string ("x" or 'x' with \" \' \\ escapes) at the start of `s`.
bool ParseQuoted(std::string_view s, std::string* out, size_t* consumed) {
  if (s.empty() || (s[0] != '"' && s[0] != '\'')) return false;
  char q = s[0];
  std::string v;
  size_t i = 1;
  while (i < s.size() && s[i] != q) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      v += s[i + 1];
      i += 2;
      continue;
    }
    v += s[i++];
  }
  if (i >= s.size()) return false;
  *out = std::move(v);
  *consumed = i + 1;
  return true;
}

void AppendEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace

std::optional<TextTemplate> TextTemplate::Parse(std::string_view source, TemplateError* error) {
  auto fail = [&](size_t offset, std::string msg) -> std::optional<TextTemplate> {
    if (error) {
      error->offset = offset;
      error->message = std::move(msg);
    }
    return std::nullopt;
  };
  if (source.size() > kMaxSource) {
    return fail(0, fmt::format("template text is longer than {} KiB", kMaxSource / 1024));
  }
  size_t bad = 0;
  if (!ValidUtf8(source, &bad)) return fail(bad, "template text is not valid UTF-8");

  TextTemplate t;
  t.source_ = std::string(source);
  std::string literal;
  size_t i = 0;
  while (i < source.size()) {
    size_t open = source.find("{{", i);
    if (open == std::string_view::npos) {
      literal.append(source.substr(i));
      break;
    }
    literal.append(source.substr(i, open - i));
    bool raw = source.compare(open, 3, "{{{") == 0;
    const std::string_view closer = raw ? "}}}" : "}}";
    size_t body_start = open + (raw ? 3 : 2);
    size_t close = source.find(closer, body_start);
    size_t next_open = source.find("{{", body_start);
    if (close == std::string_view::npos) return fail(open, "'{{' without a closing '}}'");
    std::string_view body = source.substr(body_start, close - body_start);
    if (next_open != std::string_view::npos && next_open < close) {
      return fail(open, "'{{' inside a placeholder: close it with '}}' first");
    }
    std::string_view inner = Trim(body);
    if (inner.empty()) return fail(open, "empty placeholder '{{}}'");
    // {{ "{{" }}: a literal pair of braces.
    std::string quoted;
    size_t consumed = 0;
    if (!raw && ParseQuoted(inner, &quoted, &consumed) && consumed == inner.size()) {
      literal += quoted;
      i = close + closer.size();
      continue;
    }
    if (t.placeholders_.size() >= kMaxPlaceholders) {
      return fail(open, fmt::format("a template has at most {} placeholders", kMaxPlaceholders));
    }
    Placeholder p;
    p.offset = open;
    p.raw = raw;
    // name | filter | default: "x"
    size_t bar = inner.find('|');
    std::string_view name = Trim(inner.substr(0, bar));
    if (!IsName(name)) {
      return fail(open, fmt::format("'{}' is not a variable name", name));
    }
    p.path.text = std::string(name);
    std::string_view head = name.substr(0, name.find('.'));
    std::string_view rest = name.size() > head.size() ? name.substr(head.size() + 1) : "";
    if (head == "customer" || head == "trigger" || head == "event") {
      if (rest.empty()) {
        return fail(open, fmt::format("'{}' needs a field, such as {}.{}", name, head,
                                      head == "customer" ? "first_name" : "data.total"));
      }
      p.path.root = head == "customer"  ? Root::kCustomer
                    : head == "trigger" ? Root::kTrigger
                                        : Root::kEvent;
      while (!rest.empty()) {
        size_t dot = rest.find('.');
        p.path.segments.emplace_back(rest.substr(0, dot));
        if (dot == std::string_view::npos) break;
        rest = rest.substr(dot + 1);
      }
    } else if (name == "now") {
      p.path.root = Root::kNow;
    } else {
      if (name.find('.') != std::string_view::npos) {
        return fail(open, fmt::format("unknown variable '{}': use customer.*, trigger.* or a "
                                      "step variable",
                                      name));
      }
      p.path.root = Root::kVar;
      p.path.segments.emplace_back(name);
    }
    // Filters.
    while (bar != std::string_view::npos) {
      size_t next_bar = inner.find('|', bar + 1);
      std::string_view f =
          Trim(inner.substr(bar + 1, next_bar == std::string_view::npos ? std::string_view::npos
                                                                        : next_bar - bar - 1));
      if (f.rfind("default", 0) == 0 && Trim(f.substr(7)).rfind(':', 0) == 0) {
        // The default may itself contain '|': take the quoted string from the source.
        std::string_view after = Trim(Trim(f.substr(7)).substr(1));
        size_t from = static_cast<size_t>(after.data() - inner.data());
        std::string_view tail = inner.substr(from);
        std::string v;
        size_t used = 0;
        if (ParseQuoted(tail, &v, &used)) {
          p.default_value = std::move(v);
          next_bar = inner.find('|', from + used);
          std::string_view between = Trim(inner.substr(
              from + used, next_bar == std::string_view::npos ? std::string_view::npos
                                                              : next_bar - from - used));
          if (!between.empty()) {
            return fail(open, fmt::format("unexpected '{}' after the default value", between));
          }
        } else {
          std::string_view bare = Trim(after.substr(0, after.find('|')));
          bool number = !bare.empty();
          for (char c : bare) number = number && ((c >= '0' && c <= '9') || c == '.' || c == '-');
          if (!number) {
            return fail(open, "default: needs a quoted text, e.g. default: \"there\"");
          }
          p.default_value = std::string(bare);
        }
      } else if (f == "upper") {
        p.filters.push_back(Filter::kUpper);
      } else if (f == "lower") {
        p.filters.push_back(Filter::kLower);
      } else if (f == "date") {
        p.filters.push_back(Filter::kDate);
      } else if (f == "money") {
        p.filters.push_back(Filter::kMoney);
      } else {
        constexpr std::string_view kFilters[] = {"default", "upper", "lower", "date", "money"};
        std::string_view word = f.substr(0, f.find_first_of(": "));
        if (word.empty()) return fail(open, "empty filter after '|'");
        return fail(open, fmt::format("unknown filter '{}'{}", word, DidYouMean(word, kFilters)));
      }
      bar = next_bar;
    }
    t.pieces_.push_back({std::move(literal), static_cast<int>(t.placeholders_.size())});
    literal.clear();
    t.placeholders_.push_back(std::move(p));
    i = close + closer.size();
  }
  if (!literal.empty() || t.pieces_.empty()) t.pieces_.push_back({std::move(literal), -1});
  return t;
}

void TextTemplate::Render(const Scope& scope, bool html_escape, std::string& out) const {
  std::string value;
  for (const Piece& piece : pieces_) {
    out += piece.literal;
    if (piece.placeholder < 0) continue;
    const Placeholder& p = placeholders_[piece.placeholder];
    Value v = scope.Lookup(p.path);
    value.clear();
    for (Filter f : p.filters) {
      if (f == Filter::kDate) {
        TimePoint t;
        if (v.ToTime(&t)) {
          value = FormatDate(t);
          v = Value::String(value);
        }
      } else if (f == Filter::kMoney) {
        double n = 0;
        bool ok = false;
        if (v.type() == ValueType::kNumber) {
          n = v.as_number();
          ok = true;
        } else if (v.type() == ValueType::kString) {
          auto s = v.as_string();
          auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
          ok = ec == std::errc() && ptr == s.data() + s.size();
        }
        if (ok && std::isfinite(n)) {
          value = fmt::format("{:.2f}", n);
          v = Value::String(value);
        }
      }
    }
    if (v.type() != ValueType::kString || v.as_string().data() != value.data()) {
      value.clear();
      v.AppendText(value);
    }
    if (value.empty() && p.default_value) value = *p.default_value;
    for (Filter f : p.filters) {
      if (f == Filter::kUpper) {
        for (char& c : value) {
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        }
      } else if (f == Filter::kLower) {
        for (char& c : value) {
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
      }
    }
    if (html_escape && !p.raw) {
      AppendEscaped(out, value);
    } else {
      out += value;
    }
  }
}

}  // namespace journeyd::flow
