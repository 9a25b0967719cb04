// The flow compiler's reading of YAML: where a node is, and a node as a scalar, a duration,
// a time of day, an expression or a literal, each reporting what is wrong with its position.
#include "loader_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <cmath>

#include "journeyd/common/utf8.h"

namespace journeyd::flow::loader_internal {
namespace {

std::optional<int> ParseTimeOfDay(std::string_view s) {
  // "09:00", "9:00"
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || s.size() != colon + 3) {
    return std::nullopt;
  }
  int h = 0, m = 0;
  auto r1 = std::from_chars(s.data(), s.data() + colon, h);
  auto r2 = std::from_chars(s.data() + colon + 1, s.data() + s.size(), m);
  if (r1.ec != std::errc() || r1.ptr != s.data() + colon || r2.ec != std::errc() ||
      r2.ptr != s.data() + s.size() || h < 0 || h > 23 || m < 0 || m > 59) {
    return std::nullopt;
  }
  return h * 60 + m;
}

}  // namespace

YAML::Node Get(const YAML::Node& n, const std::string& key) {
  if (n.IsMap()) {
    const YAML::Node& map = n;
    YAML::Node v = map[key];
    if (v.IsDefined()) return v;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::pair<int, int> LineColumnOf(std::string_view text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

SourceLocation MarkAt(const std::string& file, const YAML::Mark& m) {
  if (m.is_null()) return {file, 1, 1};
  return {file, m.line + 1, m.column + 1};
}

SourceLocation NodeAt(const std::string& file, const YAML::Node& n) {
  if (!n.IsDefined()) return {file, 1, 1};
  return MarkAt(file, n.Mark());
}

bool CheckUtf8(const std::string& path, const std::string& text, Diagnostics& diags) {
  size_t bad = 0;
  if (ValidUtf8(text, &bad)) return true;
  auto [l, c] = LineColumnOf(text, bad);
  diags.Error({path, l, c}, "the file is not valid UTF-8");
  return false;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

SourceLocation FlowCompiler::At(const YAML::Mark& m) const { return MarkAt(file_, m); }

SourceLocation FlowCompiler::At(const YAML::Node& n) const { return NodeAt(file_, n); }

// Position of byte `offset` inside the scalar `n`, for expression errors.
SourceLocation FlowCompiler::AtOffset(const YAML::Node& n, size_t offset) const {
  SourceLocation loc = At(n);
  bool quoted = n.Tag() == "!";
  loc.column += static_cast<int>(offset) + (quoted ? 1 : 0);
  return loc;
}

// Every key of `map` must be in `allowed`; also catches duplicate keys.
void FlowCompiler::CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                             std::string_view what) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) {
      diags_.Error(At(it->first), fmt::format("a key of the {} must be a plain word", what));
      continue;
    }
    std::string key = it->first.Scalar();
    if (!seen.insert(key).second) {
      diags_.Error(At(it->first), fmt::format("duplicate key '{}' in the {}", Quote(key), what));
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::vector<std::string_view> cands(allowed.begin(), allowed.end());
      diags_.Error(At(it->first), fmt::format("unknown key '{}' in the {}{}", Quote(key), what,
                                              DidYouMean(key, cands)));
    }
  }
}

void FlowCompiler::CheckDuplicateKeys(const YAML::Node& map, std::string_view what) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second) {
      diags_.Error(At(it->first),
                   fmt::format("duplicate key '{}' in {}", Quote(it->first.Scalar()), what));
    }
  }
}

bool FlowCompiler::Scalar(const YAML::Node& n, std::string_view what, std::string* out) {
  if (!n.IsScalar()) {
    diags_.Error(At(n), fmt::format("{} must be a single value, not a {}", what,
                                    n.IsSequence() ? "list"
                                    : n.IsMap()    ? "mapping"
                                                   : "blank"));
    return false;
  }
  *out = n.Scalar();
  return true;
}

std::optional<Duration> FlowCompiler::DurationOf(const YAML::Node& n, std::string_view what,
                                                 std::string* text) {
  std::string s;
  if (!Scalar(n, what, &s)) return std::nullopt;
  std::string err;
  auto d = ParseDuration(s, &err);
  if (!d) diags_.Error(At(n), err);
  if (d && text) *text = s;
  return d;
}

// An 'at:' time of day as minutes after midnight; `example` shows the form in the message.
std::optional<int> FlowCompiler::AtMinutesOf(const YAML::Node& n, std::string_view example) {
  std::string at;
  if (!Scalar(n, "'at:'", &at)) return std::nullopt;
  auto m = ParseTimeOfDay(at);
  if (!m) {
    diags_.Error(At(n), fmt::format("'at: {}' must be a time of day as HH:MM, e.g. \"{}\"",
                                    Quote(at), example));
  }
  return m;
}

std::optional<Expr> FlowCompiler::ExprOf(const YAML::Node& n, const ExprOptions& opts,
                                         std::string_view what) {
  std::string s;
  if (!n.IsScalar()) {
    diags_.Error(At(n), fmt::format("{} must be an expression such as customer.orders == 1", what));
    return std::nullopt;
  }
  s = n.Scalar();
  ExprError err;
  auto e = Expr::Parse(s, opts, &err);
  if (!e) {
    diags_.Error(AtOffset(n, err.offset), err.message);
    return std::nullopt;
  }
  return e;
}

std::optional<Expr> FlowCompiler::ConditionOf(const YAML::Node& n, const ExprOptions& opts,
                                              std::string_view what) {
  auto e = ExprOf(n, opts, what);
  if (e) {
    StaticType t = e->type();
    if (t != StaticType::kAny && t != StaticType::kBool) {
      diags_.Error(At(n), fmt::format("{} must be true or false, but '{}' is a {}", what,
                                      Quote(e->text()), TypeName(t)));
      return std::nullopt;
    }
  }
  return e;
}

std::optional<Literal> FlowCompiler::LiteralOf(const YAML::Node& n, std::string_view what) {
  if (!n.IsScalar() && !n.IsNull()) {
    diags_.Error(At(n), fmt::format("{} must be a single value (text, number, true/false)", what));
    return std::nullopt;
  }
  Literal l;
  if (n.IsNull()) return l;
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") {  // quoted: always text
    l.kind = Literal::Kind::kString;
    l.str = s;
    return l;
  }
  if (s == "true" || s == "false") {
    l.kind = Literal::Kind::kBool;
    l.b = s == "true";
    return l;
  }
  double d = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) {
    l.kind = Literal::Kind::kNumber;
    l.number = d;
    return l;
  }
  l.kind = Literal::Kind::kString;
  l.str = s;
  return l;
}

}  // namespace journeyd::flow::loader_internal
