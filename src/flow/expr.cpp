// The expression language of flows: lexer, recursive-descent parser, static type checker and
// evaluator. See expr.h for the grammar.
//
// Parsing builds an immutable tree of heap-allocated nodes. String literals live in their node,
// and constant list literals are folded once into a std::vector<Value> whose strings point into
// the item nodes, so evaluation only hands out views and never allocates.
#include "journeyd/flow/expr.h"

#include <fmt/format.h>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <new>
#include <utility>

#include "journeyd/common/diagnostics.h"

namespace journeyd::flow {

struct Expr::Node {
  enum class Op : uint8_t {
    kLiteral,  // number, duration, string, true, false, null
    kPath,     // customer.*, event.*, trigger.*, now
    kList,     // [a, b, ...]
    kNot,
    kNeg,
    kAnd,
    kOr,
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kIn,
    kAdd,
    kSub,
    kMul,
    kDiv,
  };

  Op op = Op::kLiteral;
  StaticType type = StaticType::kAny;
  size_t start = 0;            // byte offset where this sub-expression starts (for messages)
  int height = 1;              // longest chain of nodes below and including this one
  bool constant = true;        // reads no path and not `now`
  bool as_times = false;       // a comparison with a time on one side: dates in text compare as
                               // times ("1990-05-17" == "1990-05-17T00:00:00Z")
  Value literal;               // kLiteral other than strings
  std::string text;            // kLiteral string: the decoded text
  Path path;                   // kPath
  std::unique_ptr<Node> a, b;  // operands
  std::vector<std::unique_ptr<Node>> items;  // kList
  std::vector<Value> values;                 // kList when constant: the folded items
};

namespace {

using Node = Expr::Node;
using Op = Expr::Node::Op;

constexpr int kMaxDepth = 64;             // brackets, parentheses, '!' and '-'
constexpr int kMaxHeight = 256;           // bounds recursion in Eval and destruction
constexpr size_t kMaxLength = 64 * 1024;  // bytes
constexpr int64_t kMaxDurationMs = int64_t{1} << 53;
constexpr int64_t kMinTimeMs = -62135596800000;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

constexpr std::string_view kTooDeep = "expression is nested too deeply (more than 64 levels)";

// "a number", "text", "null".
std::string WithArticle(StaticType t) {
  if (t == StaticType::kNull || t == StaticType::kString) return std::string(TypeName(t));
  return fmt::format("a {}", TypeName(t));
}

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

// A token's text for a message, cut at a character boundary when long.
std::string Shorten(std::string_view s) {
  constexpr size_t kMax = 30;
  if (s.size() <= kMax) return std::string(s);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}...", s.substr(0, cut));
}

bool IsDateLiteral(const Node& n) {
  return n.op == Op::kLiteral && n.type == StaticType::kString && ParseTimestamp(n.text);
}

// Never consulted: folding only evaluates nodes that read no path and not `now`.
class NullScope final : public Scope {
 public:
  Value Lookup(const Path&) const override { return Value::Null(); }
  TimePoint Now() const override { return FromUnixMillis(0); }
};

Value EvalNode(const Node& n, const Scope& scope);

// ---------------------------------------------------------------------------------------------
// Lexer and parser

enum class Tok : uint8_t {
  kEnd,
  kError,
  kNumber,
  kDuration,
  kString,
  kName,  // a word or a dotted path: now, customer.orders
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kPlus,
  kMinus,
  kStar,
  kSlash,
};

// The binary operator a token stands for, Op::kLiteral when none: the one place where
// tokens become operators.
Op BinaryOpOf(Tok t) {
  switch (t) {
    case Tok::kAnd:
      return Op::kAnd;
    case Tok::kOr:
      return Op::kOr;
    case Tok::kEq:
      return Op::kEq;
    case Tok::kNe:
      return Op::kNe;
    case Tok::kLt:
      return Op::kLt;
    case Tok::kLe:
      return Op::kLe;
    case Tok::kGt:
      return Op::kGt;
    case Tok::kGe:
      return Op::kGe;
    case Tok::kIn:
      return Op::kIn;
    case Tok::kPlus:
      return Op::kAdd;
    case Tok::kMinus:
      return Op::kSub;
    case Tok::kStar:
      return Op::kMul;
    case Tok::kSlash:
      return Op::kDiv;
    default:
      return Op::kLiteral;
  }
}

bool IsComparison(Op op) {
  return op == Op::kEq || op == Op::kNe || op == Op::kLt || op == Op::kLe || op == Op::kGt ||
         op == Op::kGe || op == Op::kIn;
}

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;
  std::string_view text;  // as written
  double number = 0;
  Duration duration{0};
  std::string str;  // decoded string literal
};

class Parser {
 public:
  Parser(std::string_view text, const ExprOptions& options) : s_(text), options_(options) {}

  std::unique_ptr<Node> Run() {
    Next();
    if (failed_) return nullptr;
    if (tok_.kind == Tok::kEnd) return Fail(0, "empty expression");
    auto n = ParseOr();
    if (!n) return nullptr;
    switch (tok_.kind) {
      case Tok::kEnd:
        break;
      case Tok::kRParen:
        return Fail(tok_.offset, "unexpected ')'");
      case Tok::kRBracket:
        return Fail(tok_.offset, "unexpected ']'");
      case Tok::kComma:
        return Fail(tok_.offset, "unexpected ','");
      default:
        return Fail(tok_.offset,
                    fmt::format("unexpected '{}': expected an operator such as '==' or '&&'",
                                Shorten(tok_.text)));
    }
    if (!CheckLists(*n, false)) return nullptr;
    return n;
  }

  const ExprError& error() const { return error_; }

 private:
  std::nullptr_t Fail(size_t offset, std::string_view message) {
    if (!failed_) {
      failed_ = true;
      error_.offset = offset;
      error_.message = std::string(message);
    }
    tok_.kind = Tok::kError;
    return nullptr;
  }

  // ---- lexer ----

  void Next() {
    tok_.kind = Tok::kError;
    tok_.str.clear();
    if (failed_) return;
    Lex();
    if (!failed_ && tok_.offset + tok_.text.size() > kMaxLength) TooLong();
  }

  void TooLong() {
    Fail(kMaxLength, fmt::format("expression is longer than {} bytes", kMaxLength));
  }

  void Set(Tok kind, size_t start, size_t len) {
    tok_.kind = kind;
    tok_.offset = start;
    tok_.text = s_.substr(start, len);
    pos_ = start + len;
  }

  void Lex() {
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

  void LexName() {
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

  void LexNumber() {
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
    if (i < s_.size() && IsNameChar(s_[i])) {
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
      return;
    }
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

  void LexString(char quote) {
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
        char e = i + 1 < s_.size() ? s_[i + 1] : '\0';
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case '\\':
            out += '\\';
            break;
          case '"':
            out += '"';
            break;
          case '\'':
            out += '\'';
            break;
          default:
            if (i + 1 >= s_.size()) {
              Fail(at, fmt::format("unterminated string: add the closing {}", quote));
            } else {
              Fail(i, "unknown escape in string: use \\\", \\', \\\\, \\n or \\t");
            }
            return;
        }
        i += 2;
      } else if (c == '\n' || c == '\r') {
        Fail(i,
             fmt::format("unterminated string: add the closing {} before the line break", quote));
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

  // ---- parser ----

  class DepthGuard {
   public:
    explicit DepthGuard(int& depth) : depth_(depth) { ++depth_; }
    ~DepthGuard() { --depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    bool too_deep() const { return depth_ > kMaxDepth; }

   private:
    int& depth_;
  };

  static std::unique_ptr<Node> Make(Op op, size_t start, StaticType type) {
    auto n = std::make_unique<Node>();
    n->op = op;
    n->start = start;
    n->type = type;
    return n;
  }

  // After an operator: fails unless the current token can start an operand.
  bool ExpectOperand(size_t op_offset, std::string_view op) {
    if (failed_) return false;
    const Tok t = tok_.kind;
    // '-' after an operator is a sign; every other operator cannot start an operand.
    if (t == Tok::kEnd || t == Tok::kRParen || t == Tok::kRBracket || t == Tok::kComma ||
        (BinaryOpOf(t) != Op::kLiteral && t != Tok::kMinus)) {
      Fail(op_offset, fmt::format("expected an operand after '{}'", op));
      return false;
    }
    return true;
  }

  std::unique_ptr<Node> Binary(Op op, size_t op_offset, StaticType type, std::unique_ptr<Node> a,
                               std::unique_ptr<Node> b) {
    auto n = Make(op, a->start, type);
    n->height = 1 + std::max(a->height, b->height);
    if (n->height > kMaxHeight) {
      return Fail(op_offset, fmt::format("expression is too long: more than {} operations in a "
                                         "row (use 'in [...]' to test many values)",
                                         kMaxHeight));
    }
    n->constant = a->constant && b->constant;
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }

  std::unique_ptr<Node> Unary(Op op, size_t start, StaticType type, std::unique_ptr<Node> a) {
    auto n = Make(op, start, type);
    n->height = 1 + a->height;
    n->constant = a->constant;
    n->a = std::move(a);
    return n;
  }

  // or := and ( "||" and )*   and := not ( "&&" not )*
  std::unique_ptr<Node> ParseOr() { return ParseLogical(Tok::kOr); }

  std::unique_ptr<Node> ParseLogical(Tok which) {
    const bool is_or = which == Tok::kOr;
    auto operand = [&]() { return is_or ? ParseLogical(Tok::kAnd) : ParseNot(); };
    auto left = operand();
    if (!left) return nullptr;
    while (tok_.kind == which) {
      const size_t at = tok_.offset;
      const std::string_view name = is_or ? "||" : "&&";
      Next();
      if (!ExpectOperand(at, name)) return nullptr;
      auto right = operand();
      if (!right) return nullptr;
      for (const Node* x : {left.get(), right.get()}) {
        if (x->type != StaticType::kAny && x->type != StaticType::kBool) {
          return Fail(x->start, fmt::format("'{}' needs true/false values, got {}", name,
                                            WithArticle(x->type)));
        }
      }
      left = Binary(BinaryOpOf(which), at, StaticType::kBool, std::move(left), std::move(right));
      if (!left) return nullptr;
    }
    return left;
  }

  // not := "!" not | compare
  std::unique_ptr<Node> ParseNot() {
    if (tok_.kind != Tok::kNot) return ParseCompare();
    const size_t at = tok_.offset;
    DepthGuard guard(depth_);
    if (guard.too_deep()) return Fail(at, kTooDeep);
    Next();
    if (!ExpectOperand(at, "!")) return nullptr;
    auto operand = ParseNot();
    if (!operand) return nullptr;
    if (operand->type != StaticType::kAny && operand->type != StaticType::kBool) {
      return Fail(operand->start,
                  fmt::format("'!' needs a true/false value, got {}", WithArticle(operand->type)));
    }
    return Unary(Op::kNot, at, StaticType::kBool, std::move(operand));
  }

  // compare := sum ( ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") sum )?
  std::unique_ptr<Node> ParseCompare() {
    auto left = ParseSum();
    if (!left) return nullptr;
    const Op op = BinaryOpOf(tok_.kind);
    if (!IsComparison(op)) return left;
    const size_t at = tok_.offset;
    const std::string_view name = tok_.text;
    Next();
    if (!ExpectOperand(at, name)) return nullptr;
    auto right = ParseSum();
    if (!right) return nullptr;
    if (!CheckComparison(op, at, name, *left, *right)) return nullptr;
    const bool as_times =
        op != Op::kIn && (left->type == StaticType::kTime || right->type == StaticType::kTime);
    auto n = Binary(op, at, StaticType::kBool, std::move(left), std::move(right));
    if (!n) return nullptr;
    n->as_times = as_times;
    if (IsComparison(BinaryOpOf(tok_.kind))) {
      return Fail(tok_.offset,
                  "comparisons cannot be chained: join them with '&&', e.g. a > 1 && a < 5");
    }
    return n;
  }

  // Whether values of the two sides can be equal; `at` is where to report a mismatch.
  bool CheckEqualTypes(const Node& a, const Node& b, size_t at) {
    const StaticType ta = a.type, tb = b.type;
    if (ta == StaticType::kAny || tb == StaticType::kAny || ta == StaticType::kNull ||
        tb == StaticType::kNull || ta == tb) {
      return true;
    }
    if ((ta == StaticType::kTime && tb == StaticType::kString) ||
        (ta == StaticType::kString && tb == StaticType::kTime)) {
      // Dates are often written as text: customer.birthday == "1990-05-17".
      const Node& str = ta == StaticType::kString ? a : b;
      if (str.op == Op::kLiteral && !ParseTimestamp(str.text)) {
        Fail(str.start, fmt::format("'{}' is not a date: write it like \"2026-05-17\" or "
                                    "\"2026-05-17T09:00:00Z\"",
                                    Shorten(str.text)));
        return false;
      }
      return true;
    }
    Fail(at, fmt::format("cannot compare {} with {}", TypeName(ta), TypeName(tb)));
    return false;
  }

  bool CheckComparison(Op op, size_t at, std::string_view name, const Node& a, const Node& b) {
    const StaticType ta = a.type, tb = b.type;
    if (op == Op::kIn) {
      switch (tb) {
        case StaticType::kAny:
          return true;
        case StaticType::kList:
          if (b.op == Op::kList) {
            for (const auto& item : b.items) {
              if (!CheckEqualTypes(a, *item, item->start)) return false;
            }
          }
          return true;
        case StaticType::kString:
          if (ta == StaticType::kAny || ta == StaticType::kString) return true;
          Fail(a.start, fmt::format("cannot look for {} in text", WithArticle(ta)));
          return false;
        default:
          Fail(b.start, fmt::format("'in' needs a list such as [\"a\", \"b\"] or text on its "
                                    "right, got {}",
                                    WithArticle(tb)));
          return false;
      }
    }
    if (op == Op::kEq || op == Op::kNe) return CheckEqualTypes(a, b, at);
    for (const Node* x : {&a, &b}) {
      if (x->type == StaticType::kNull) {
        Fail(at, fmt::format("cannot use '{}' with null: only == and != compare with null", name));
        return false;
      }
      if (x->type == StaticType::kBool || x->type == StaticType::kList) {
        Fail(x->start, fmt::format("'{}' needs numbers, texts, durations or dates, got {}", name,
                                   WithArticle(x->type)));
        return false;
      }
    }
    return CheckEqualTypes(a, b, at);
  }

  // sum := product ( ("+" | "-") product )*   product := unary ( ("*" | "/") unary )*
  std::unique_ptr<Node> ParseSum() { return ParseArith(true); }

  std::unique_ptr<Node> ParseArith(bool sum) {
    auto operand = [&]() { return sum ? ParseArith(false) : ParseUnary(); };
    auto left = operand();
    if (!left) return nullptr;
    while (true) {
      const Op op = BinaryOpOf(tok_.kind);
      if (sum ? (op != Op::kAdd && op != Op::kSub) : (op != Op::kMul && op != Op::kDiv)) break;
      const size_t at = tok_.offset;
      const std::string_view name = tok_.text;
      Next();
      if (!ExpectOperand(at, name)) return nullptr;
      auto right = operand();
      if (!right) return nullptr;
      auto type = ArithType(op, at, name, *left, *right);
      if (!type) return nullptr;
      left = Binary(op, at, *type, std::move(left), std::move(right));
      if (!left) return nullptr;
    }
    return left;
  }

  // The arithmetic kinds a node's value may have.
  static constexpr unsigned kNum = 1, kDur = 2, kTim = 4;

  static unsigned Kinds(const Node& n) {
    switch (n.type) {
      case StaticType::kNumber:
        return kNum;
      case StaticType::kDuration:
        return kDur;
      case StaticType::kTime:
        return kTim;
      case StaticType::kAny:
        return kNum | kDur | kTim;
      case StaticType::kString:
        return IsDateLiteral(n) ? kTim : 0;
      default:
        return 0;
    }
  }

  static unsigned ArithRule(Op op, unsigned x, unsigned y) {
    switch (op) {
      case Op::kAdd:
        if (x == kNum && y == kNum) return kNum;
        if (x == kDur && y == kDur) return kDur;
        if ((x == kTim && y == kDur) || (x == kDur && y == kTim)) return kTim;
        return 0;
      case Op::kSub:
        if (x == kNum && y == kNum) return kNum;
        if (x == kDur && y == kDur) return kDur;
        if (x == kTim && y == kDur) return kTim;
        if (x == kTim && y == kTim) return kDur;
        return 0;
      case Op::kMul:
        if (x == kNum && y == kNum) return kNum;
        if ((x == kDur && y == kNum) || (x == kNum && y == kDur)) return kDur;
        return 0;
      case Op::kDiv:
        if (x == kNum && y == kNum) return kNum;
        if (x == kDur && y == kNum) return kDur;
        if (x == kDur && y == kDur) return kNum;
        return 0;
      default:
        return 0;
    }
  }

  std::optional<StaticType> ArithType(Op op, size_t at, std::string_view name, const Node& a,
                                      const Node& b) {
    const unsigned ka = Kinds(a), kb = Kinds(b);
    unsigned results = 0;
    for (unsigned x : {kNum, kDur, kTim}) {
      for (unsigned y : {kNum, kDur, kTim}) {
        if ((ka & x) && (kb & y)) results |= ArithRule(op, x, y);
      }
    }
    switch (results) {
      case kNum:
        return StaticType::kNumber;
      case kDur:
        return StaticType::kDuration;
      case kTim:
        return StaticType::kTime;
      case 0:
        break;
      default:
        return StaticType::kAny;
    }
    const StaticType ta = a.type, tb = b.type;
    if (ta == StaticType::kAny || tb == StaticType::kAny) {
      Fail(at, fmt::format("'{}' cannot be used with {}", name,
                           WithArticle(ta == StaticType::kAny ? tb : ta)));
      return std::nullopt;
    }
    const bool time_and_number = (ta == StaticType::kTime && tb == StaticType::kNumber) ||
                                 (ta == StaticType::kNumber && tb == StaticType::kTime);
    const std::string_view hint = time_and_number ? ": use a duration such as 3d" : "";
    switch (op) {
      case Op::kAdd:
        Fail(at, fmt::format("cannot add {} to {}{}", TypeName(tb), TypeName(ta), hint));
        break;
      case Op::kSub:
        Fail(at, fmt::format("cannot subtract {} from {}{}", TypeName(tb), TypeName(ta), hint));
        break;
      case Op::kMul:
        Fail(at, fmt::format("cannot multiply {} by {}", TypeName(ta), TypeName(tb)));
        break;
      default:
        Fail(at, fmt::format("cannot divide {} by {}", TypeName(ta), TypeName(tb)));
        break;
    }
    return std::nullopt;
  }

  // unary := "-" unary | primary
  std::unique_ptr<Node> ParseUnary() {
    if (tok_.kind != Tok::kMinus) return ParsePrimary();
    const size_t at = tok_.offset;
    DepthGuard guard(depth_);
    if (guard.too_deep()) return Fail(at, kTooDeep);
    Next();
    if (!ExpectOperand(at, "-")) return nullptr;
    auto operand = ParseUnary();
    if (!operand) return nullptr;
    const StaticType t = operand->type;
    if (t != StaticType::kAny && t != StaticType::kNumber && t != StaticType::kDuration) {
      return Fail(operand->start,
                  fmt::format("'-' needs a number or a duration, got {}", WithArticle(t)));
    }
    return Unary(Op::kNeg, at, t, std::move(operand));
  }

  std::unique_ptr<Node> ParsePrimary() {
    const size_t at = tok_.offset;
    switch (tok_.kind) {
      case Tok::kNumber: {
        auto n = Make(Op::kLiteral, at, StaticType::kNumber);
        n->literal = Value::Number(tok_.number);
        Next();
        return failed_ ? nullptr : std::move(n);
      }
      case Tok::kDuration: {
        auto n = Make(Op::kLiteral, at, StaticType::kDuration);
        n->literal = Value::Dur(tok_.duration);
        Next();
        return failed_ ? nullptr : std::move(n);
      }
      case Tok::kString: {
        auto n = Make(Op::kLiteral, at, StaticType::kString);
        n->text = std::move(tok_.str);
        Next();
        return failed_ ? nullptr : std::move(n);
      }
      case Tok::kName:
        return ParseName();
      case Tok::kLParen: {
        DepthGuard guard(depth_);
        if (guard.too_deep()) return Fail(at, kTooDeep);
        Next();
        if (failed_) return nullptr;
        if (tok_.kind == Tok::kEnd) return Fail(at, "'(' is never closed: add ')'");
        if (tok_.kind == Tok::kRParen) return Fail(at, "empty parentheses '()'");
        auto inner = ParseOr();
        if (!inner) return nullptr;
        if (tok_.kind == Tok::kEnd) return Fail(at, "'(' is never closed: add ')'");
        if (tok_.kind != Tok::kRParen) {
          return Fail(tok_.offset,
                      fmt::format("expected ')' or an operator before '{}'", Shorten(tok_.text)));
        }
        inner->start = at;
        Next();
        return failed_ ? nullptr : std::move(inner);
      }
      case Tok::kLBracket:
        return ParseList();
      case Tok::kRParen:
        return Fail(at, "unexpected ')'");
      case Tok::kRBracket:
        return Fail(at, "unexpected ']'");
      case Tok::kComma:
        return Fail(at, "unexpected ','");
      case Tok::kNot:
        return Fail(at,
                    "put '!' and what it negates in parentheses here, e.g. "
                    "(!customer.email_opt_in)");
      case Tok::kEnd:
        return Fail(at, "expected a value at the end of the expression");
      case Tok::kError:
        return nullptr;
      default:
        return Fail(at, fmt::format("expected an operand before '{}'", Shorten(tok_.text)));
    }
  }

  std::unique_ptr<Node> ParseList() {
    const size_t at = tok_.offset;
    DepthGuard guard(depth_);
    if (guard.too_deep()) return Fail(at, kTooDeep);
    auto n = Make(Op::kList, at, StaticType::kList);
    Next();
    if (failed_) return nullptr;
    while (tok_.kind != Tok::kRBracket) {
      if (tok_.kind == Tok::kEnd) return Fail(at, "'[' is never closed: add ']'");
      auto item = ParseOr();
      if (!item) return nullptr;
      n->height = std::max(n->height, 1 + item->height);
      n->constant = n->constant && item->constant;
      n->items.push_back(std::move(item));
      if (tok_.kind == Tok::kComma) {
        Next();
        if (failed_) return nullptr;
        continue;
      }
      if (tok_.kind == Tok::kRBracket) break;
      if (tok_.kind == Tok::kEnd) return Fail(at, "'[' is never closed: add ']'");
      return Fail(tok_.offset,
                  fmt::format("expected ',' or ']' in the list before '{}'", Shorten(tok_.text)));
    }
    Next();
    if (failed_) return nullptr;
    if (n->constant) {
      // Fold once. The item nodes are on the heap and never move, so the strings in `values`
      // stay valid for the life of the tree.
      NullScope none;
      n->values.reserve(n->items.size());
      for (const auto& item : n->items) n->values.push_back(EvalNode(*item, none));
    }
    return n;
  }

  std::unique_ptr<Node> ParseName() {
    const size_t at = tok_.offset;
    const std::string_view word = tok_.text;
    const std::string_view head = word.substr(0, word.find('.'));
    const bool dotted = head.size() != word.size();
    if (head == "true" || head == "false" || head == "null" || head == "now") {
      if (dotted) return Fail(at, fmt::format("'{}' has no fields", head));
      std::unique_ptr<Node> n;
      if (head == "now") {
        n = Make(Op::kPath, at, StaticType::kTime);
        n->path.root = Root::kNow;
        n->path.text = "now";
        n->constant = false;
      } else if (head == "null") {
        n = Make(Op::kLiteral, at, StaticType::kNull);
      } else {
        n = Make(Op::kLiteral, at, StaticType::kBool);
        n->literal = Value::Bool(head == "true");
      }
      Next();
      return failed_ ? nullptr : std::move(n);
    }
    Path p;
    if (head == "customer") {
      p.root = Root::kCustomer;
    } else if (head == "event") {
      p.root = Root::kEvent;
    } else if (head == "trigger") {
      p.root = Root::kTrigger;
    } else {
      constexpr std::string_view kNames[] = {"customer", "event", "trigger", "now",
                                             "true",     "false", "null"};
      std::string hint = DidYouMean(head, kNames);
      if (hint.empty() && !dotted) {
        Path attr{Root::kCustomer, {std::string(word)}, ""};
        if (KnownType(attr) != StaticType::kAny) {
          hint = fmt::format(" — did you mean 'customer.{}'?", word);
        }
      }
      return Fail(at, fmt::format("unknown name '{}'{}", Shorten(head), hint));
    }
    if (!dotted) {
      std::string_view example = p.root == Root::kCustomer ? "customer.email"
                                 : p.root == Root::kEvent  ? "event.data.total"
                                                           : "trigger.data.total";
      return Fail(at, fmt::format("'{}' needs a field, e.g. {}", head, example));
    }
    if (p.root == Root::kEvent && !options_.allow_event) {
      return Fail(at, options_.allow_trigger
                          ? "event.* is not available here: this condition has no event (use "
                            "customer.* or trigger.*)"
                          : "event.* is not available here: this condition has no event (use "
                            "customer.*)");
    }
    if (p.root == Root::kTrigger && !options_.allow_trigger) {
      return Fail(at, options_.allow_event
                          ? "trigger.* is not available here: no run has started yet (use "
                            "event.* for the event being checked)"
                          : "trigger.* is not available here: there is no trigger event (use "
                            "customer.*)");
    }
    std::string_view rest = word.substr(head.size() + 1);
    while (true) {
      size_t dot = rest.find('.');
      p.segments.emplace_back(rest.substr(0, dot));
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    p.text = std::string(word);
    if (std::string problem = CheckPath(p); !problem.empty()) return Fail(at, problem);
    auto n = Make(Op::kPath, at, KnownType(p));
    n->constant = false;
    n->path = std::move(p);
    Next();
    return failed_ ? nullptr : std::move(n);
  }

  // A list that reads run-time values has no storage to be evaluated into, so it may only be
  // searched by 'in', item by item.
  bool CheckLists(const Node& n, bool right_of_in) {
    if (n.op == Op::kList && !n.constant && !right_of_in) {
      Fail(n.start,
           "a list that uses customer.*, event.*, trigger.* or now can only follow "
           "'in'");
      return false;
    }
    if (n.a && !CheckLists(*n.a, false)) return false;
    if (n.b && !CheckLists(*n.b, n.op == Op::kIn)) return false;
    for (const auto& item : n.items) {
      if (!CheckLists(*item, false)) return false;
    }
    return true;
  }

  std::string_view s_;
  ExprOptions options_;
  size_t pos_ = 0;
  Token tok_;
  int depth_ = 0;
  bool failed_ = false;
  ExprError error_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation: never allocates, never fails; a type mismatch gives null.

bool TimeMs(const Value& v, int64_t* ms) {
  TimePoint t;
  if (!v.ToTime(&t)) return false;
  *ms = ToUnixMillis(t);
  return true;
}

Value NumberResult(double x) { return std::isfinite(x) ? Value::Number(x) : Value::Null(); }

Value DurationResult(int64_t ms) {
  if (ms > kMaxDurationMs || ms < -kMaxDurationMs) return Value::Null();
  return Value::Dur(Duration{ms});
}

Value DurationResult(double ms) {
  if (!std::isfinite(ms) || std::fabs(ms) > static_cast<double>(kMaxDurationMs)) {
    return Value::Null();
  }
  return Value::Dur(Duration{static_cast<int64_t>(std::round(ms))});
}

Value TimeResult(int64_t ms) {
  if (ms < kMinTimeMs || ms > kMaxTimeMs) return Value::Null();
  return Value::Time(FromUnixMillis(ms));
}

bool Equal(const Value& a, const Value& b, int depth) {
  if (a.type() == b.type()) {
    switch (a.type()) {
      case ValueType::kNull:
        return true;
      case ValueType::kBool:
        return a.as_bool() == b.as_bool();
      case ValueType::kNumber:
        return a.as_number() == b.as_number();
      case ValueType::kString:
        return a.as_string() == b.as_string();
      case ValueType::kDuration:
        return a.as_duration() == b.as_duration();
      case ValueType::kTime:
        return a.as_time() == b.as_time();
      case ValueType::kList: {
        auto x = a.as_list(), y = b.as_list();
        if (x.size() != y.size() || depth >= kMaxDepth) return false;
        for (size_t i = 0; i < x.size(); ++i) {
          if (!Equal(x[i], y[i], depth + 1)) return false;
        }
        return true;
      }
    }
    return false;
  }
  const bool time_and_string = (a.type() == ValueType::kTime && b.type() == ValueType::kString) ||
                               (a.type() == ValueType::kString && b.type() == ValueType::kTime);
  int64_t x, y;
  return time_and_string && TimeMs(a, &x) && TimeMs(b, &y) && x == y;
}

// <0, 0 or >0 in *out; false when the two cannot be ordered.
bool Order(const Value& a, const Value& b, int* out) {
  auto cmp = [](const auto& x, const auto& y) { return x < y ? -1 : (y < x ? 1 : 0); };
  const ValueType ta = a.type(), tb = b.type();
  if (ta == ValueType::kNumber && tb == ValueType::kNumber) {
    if (std::isnan(a.as_number()) || std::isnan(b.as_number())) return false;
    *out = cmp(a.as_number(), b.as_number());
    return true;
  }
  if (ta == ValueType::kString && tb == ValueType::kString) {
    *out = cmp(a.as_string(), b.as_string());
    return true;
  }
  if (ta == ValueType::kDuration && tb == ValueType::kDuration) {
    *out = cmp(a.as_duration().count(), b.as_duration().count());
    return true;
  }
  int64_t x, y;
  if ((ta == ValueType::kTime || tb == ValueType::kTime) && TimeMs(a, &x) && TimeMs(b, &y)) {
    *out = cmp(x, y);
    return true;
  }
  return false;
}

bool EqualAsTimes(const Value& a, const Value& b) {
  int64_t x, y;
  if (TimeMs(a, &x) && TimeMs(b, &y)) return x == y;
  return Equal(a, b, 0);
}

Value Compare(Op op, bool as_times, const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return Value::Bool(false);
  int c = 0;
  int64_t x, y;
  if (as_times && TimeMs(a, &x) && TimeMs(b, &y)) {
    c = x < y ? -1 : (y < x ? 1 : 0);
  } else if (!Order(a, b, &c)) {
    return Value::Null();
  }
  switch (op) {
    case Op::kLt:
      return Value::Bool(c < 0);
    case Op::kLe:
      return Value::Bool(c <= 0);
    case Op::kGt:
      return Value::Bool(c > 0);
    default:
      return Value::Bool(c >= 0);
  }
}

Value Arith(Op op, const Value& a, const Value& b) {
  const ValueType ta = a.type(), tb = b.type();
  if (ta == ValueType::kNumber && tb == ValueType::kNumber) {
    const double x = a.as_number(), y = b.as_number();
    switch (op) {
      case Op::kAdd:
        return NumberResult(x + y);
      case Op::kSub:
        return NumberResult(x - y);
      case Op::kMul:
        return NumberResult(x * y);
      default:
        return y == 0 ? Value::Null() : NumberResult(x / y);
    }
  }
  const bool da = ta == ValueType::kDuration, db = tb == ValueType::kDuration;
  const int64_t ams = da ? a.as_duration().count() : 0;
  const int64_t bms = db ? b.as_duration().count() : 0;
  int64_t r = 0, t = 0, u = 0;
  switch (op) {
    case Op::kAdd:
      if (da && db) return __builtin_add_overflow(ams, bms, &r) ? Value::Null() : DurationResult(r);
      if (db && TimeMs(a, &t)) {
        return __builtin_add_overflow(t, bms, &r) ? Value::Null() : TimeResult(r);
      }
      if (da && TimeMs(b, &t)) {
        return __builtin_add_overflow(t, ams, &r) ? Value::Null() : TimeResult(r);
      }
      return Value::Null();
    case Op::kSub:
      if (da && db) return __builtin_sub_overflow(ams, bms, &r) ? Value::Null() : DurationResult(r);
      if (db && TimeMs(a, &t)) {
        return __builtin_sub_overflow(t, bms, &r) ? Value::Null() : TimeResult(r);
      }
      if (!da && !db && TimeMs(a, &t) && TimeMs(b, &u)) {
        return __builtin_sub_overflow(t, u, &r) ? Value::Null() : DurationResult(r);
      }
      return Value::Null();
    case Op::kMul:
      if (da && tb == ValueType::kNumber) {
        return DurationResult(static_cast<double>(ams) * b.as_number());
      }
      if (db && ta == ValueType::kNumber) {
        return DurationResult(a.as_number() * static_cast<double>(bms));
      }
      return Value::Null();
    default:
      if (da && tb == ValueType::kNumber) {
        if (b.as_number() == 0) return Value::Null();
        return DurationResult(static_cast<double>(ams) / b.as_number());
      }
      if (da && db) {
        if (bms == 0) return Value::Null();
        return NumberResult(static_cast<double>(ams) / static_cast<double>(bms));
      }
      return Value::Null();
  }
}

Value In(const Node& n, const Scope& scope) {
  const Value needle = EvalNode(*n.a, scope);
  const Node& list = *n.b;
  if (list.op == Op::kList && !list.constant) {
    for (const auto& item : list.items) {
      if (Equal(needle, EvalNode(*item, scope), 0)) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  const Value hay = EvalNode(list, scope);
  switch (hay.type()) {
    case ValueType::kList:
      for (const Value& v : hay.as_list()) {
        if (Equal(needle, v, 0)) return Value::Bool(true);
      }
      return Value::Bool(false);
    case ValueType::kString:
      if (needle.type() == ValueType::kString) {
        return Value::Bool(hay.as_string().find(needle.as_string()) != std::string_view::npos);
      }
      return needle.is_null() ? Value::Bool(false) : Value::Null();
    case ValueType::kNull:
      return Value::Bool(false);
    default:
      return Value::Null();
  }
}

Value EvalNode(const Node& n, const Scope& scope) {
  switch (n.op) {
    case Op::kLiteral:
      return n.type == StaticType::kString ? Value::String(n.text) : n.literal;
    case Op::kPath:
      return n.path.root == Root::kNow ? Value::Time(scope.Now()) : scope.Lookup(n.path);
    case Op::kList:
      return Value::List(n.values);
    case Op::kNot:
      return Value::Bool(!EvalNode(*n.a, scope).Truthy());
    case Op::kNeg: {
      const Value v = EvalNode(*n.a, scope);
      if (v.type() == ValueType::kNumber) return Value::Number(-v.as_number());
      if (v.type() == ValueType::kDuration) {
        const int64_t ms = v.as_duration().count();
        return ms < -kMaxDurationMs ? Value::Null() : DurationResult(-ms);
      }
      return Value::Null();
    }
    case Op::kAnd:
      return Value::Bool(EvalNode(*n.a, scope).Truthy() && EvalNode(*n.b, scope).Truthy());
    case Op::kOr:
      return Value::Bool(EvalNode(*n.a, scope).Truthy() || EvalNode(*n.b, scope).Truthy());
    case Op::kEq:
    case Op::kNe: {
      const Value a = EvalNode(*n.a, scope);
      const Value b = EvalNode(*n.b, scope);
      const bool equal = n.as_times ? EqualAsTimes(a, b) : Equal(a, b, 0);
      return Value::Bool(n.op == Op::kEq ? equal : !equal);
    }
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      return Compare(n.op, n.as_times, EvalNode(*n.a, scope), EvalNode(*n.b, scope));
    case Op::kIn:
      return In(n, scope);
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv: {
      const Value a = EvalNode(*n.a, scope);
      if (a.is_null()) return Value::Null();
      const Value b = EvalNode(*n.b, scope);
      if (b.is_null()) return Value::Null();
      return Arith(n.op, a, b);
    }
  }
  return Value::Null();
}

void VisitPaths(const Node& n, const std::function<void(const Path&)>& fn) {
  if (n.op == Op::kPath) fn(n.path);
  if (n.a) VisitPaths(*n.a, fn);
  if (n.b) VisitPaths(*n.b, fn);
  for (const auto& item : n.items) VisitPaths(*item, fn);
}

bool IsEventField(std::string_view f) {
  return f == "type" || f == "customer_id" || f == "event_id" || f == "ts";
}

}  // namespace

Expr::Expr() = default;
Expr::~Expr() = default;
Expr::Expr(const Expr&) = default;
Expr& Expr::operator=(const Expr&) = default;
Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;

std::optional<Expr> Expr::Parse(std::string_view text, const ExprOptions& options,
                                ExprError* error) {
  try {
    Parser parser(text, options);
    std::unique_ptr<Node> node = parser.Run();
    if (!node) {
      if (error) *error = parser.error();
      return std::nullopt;
    }
    Expr e;
    e.node_ = std::move(node);
    e.text_ = std::string(text);
    return e;
  } catch (const std::bad_alloc&) {
    if (error) *error = ExprError{0, "expression is too large"};
    return std::nullopt;
  }
}

StaticType Expr::type() const { return node_ ? node_->type : StaticType::kAny; }

Value Expr::Eval(const Scope& scope) const {
  return node_ ? EvalNode(*node_, scope) : Value::Null();
}

bool Expr::Test(const Scope& scope) const { return !node_ || Eval(scope).Truthy(); }

void Expr::ForEachPath(const std::function<void(const Path&)>& fn) const {
  if (node_) VisitPaths(*node_, fn);
}

StaticType KnownType(const Path& path) {
  if (path.root == Root::kNow) return StaticType::kTime;
  if (path.segments.size() != 1) return StaticType::kAny;
  const std::string& f = path.segments[0];
  switch (path.root) {
    case Root::kCustomer:
      if (f == "orders" || f == "revenue" || f == "points") return StaticType::kNumber;
      if (f == "birthday" || f == "points_expire_at" || f == "first_purchase_at" ||
          f == "last_purchase_at") {
        return StaticType::kTime;
      }
      if (f == "email" || f == "first_name" || f == "last_name" || f == "timezone" ||
          f == "locale" || f == "id") {
        return StaticType::kString;
      }
      if (f == "email_opt_in" || f == "unsubscribed" || f == "bouncing") return StaticType::kBool;
      return StaticType::kAny;
    case Root::kEvent:
    case Root::kTrigger:
      if (f == "type" || f == "customer_id" || f == "event_id") return StaticType::kString;
      if (f == "ts") return StaticType::kTime;
      return StaticType::kAny;
    default:
      return StaticType::kAny;
  }
}

std::string CheckPath(const Path& path) {
  switch (path.root) {
    case Root::kNow:
      return path.segments.empty() ? "" : "'now' has no fields";
    case Root::kVar:
      return path.segments.size() == 1 ? "" : fmt::format("'{}' is not a variable", path.text);
    case Root::kCustomer:
      if (path.segments.size() != 1) {
        return fmt::format("'{}': customer attributes are one word, such as customer.first_name",
                           path.text);
      }
      return "";
    case Root::kEvent:
    case Root::kTrigger:
      break;
  }
  const std::string_view root = path.root == Root::kEvent ? "event" : "trigger";
  if (path.segments.empty()) return fmt::format("'{}' needs a field, e.g. {}.type", root, root);
  const std::string& f = path.segments[0];
  if (IsEventField(f)) {
    if (path.segments.size() > 1) return fmt::format("'{}.{}' has no fields", root, f);
    return "";
  }
  if (f == "data" || f == "profile") {
    if (path.root == Root::kTrigger && f == "profile") {
      return "trigger.profile is not kept: use customer.* for the customer's profile";
    }
    if (path.segments.size() < 2) {
      return fmt::format("'{}.{}' needs a field, e.g. {}.{}.total", root, f, root, f);
    }
    return "";
  }
  constexpr std::string_view kFields[] = {"type", "customer_id", "event_id",
                                          "ts",   "data",        "profile"};
  if (std::string hint = DidYouMean(f, kFields); !hint.empty()) {
    return fmt::format("unknown {} field '{}'{}", root, f, hint);
  }
  return fmt::format("unknown {} field '{}'; use {}.data.{} for the event's data", root, f, root,
                     f);
}

std::string_view TypeName(StaticType t) {
  switch (t) {
    case StaticType::kAny:
      return "value";
    case StaticType::kNull:
      return "null";
    case StaticType::kBool:
      return "boolean";
    case StaticType::kNumber:
      return "number";
    case StaticType::kString:
      return "text";
    case StaticType::kDuration:
      return "duration";
    case StaticType::kTime:
      return "date";
    case StaticType::kList:
      return "list";
  }
  return "value";
}

}  // namespace journeyd::flow
