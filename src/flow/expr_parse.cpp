// The expression language's recursive-descent parser: Parser builds the tree, checking
// types as it goes (expr_typecheck.cpp); Expr::Parse.
#include "expr_internal.h"

#include <fmt/format.h>
#include <algorithm>
#include <new>
#include <utility>

#include "journeyd/common/diagnostics.h"

namespace journeyd::flow {
namespace expr_internal {
namespace {

constexpr std::string_view kTooDeep = "expression is nested too deeply (more than 64 levels)";

// Never consulted: folding only evaluates nodes that read no path and not `now`.
class NullScope final : public Scope {
 public:
  Value Lookup(const Path&) const override { return Value::Null(); }
  TimePoint Now() const override { return FromUnixMillis(0); }
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

}  // namespace

std::unique_ptr<Node> Parser::Run() {
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

std::nullptr_t Parser::Fail(size_t offset, std::string_view message) {
  if (!failed_) {
    failed_ = true;
    error_.offset = offset;
    error_.message = std::string(message);
  }
  tok_.kind = Tok::kError;
  return nullptr;
}

std::unique_ptr<Node> Parser::Make(Op op, size_t start, StaticType type) {
  auto n = std::make_unique<Node>();
  n->op = op;
  n->start = start;
  n->type = type;
  return n;
}

// After an operator: fails unless the current token can start an operand.
bool Parser::ExpectOperand(size_t op_offset, std::string_view op) {
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

std::unique_ptr<Node> Parser::Binary(Op op, size_t op_offset, StaticType type,
                                     std::unique_ptr<Node> a, std::unique_ptr<Node> b) {
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

std::unique_ptr<Node> Parser::Unary(Op op, size_t start, StaticType type, std::unique_ptr<Node> a) {
  auto n = Make(op, start, type);
  n->height = 1 + a->height;
  n->constant = a->constant;
  n->a = std::move(a);
  return n;
}

// or := and ( "||" and )*   and := not ( "&&" not )*
std::unique_ptr<Node> Parser::ParseOr() { return ParseLogical(Tok::kOr); }

std::unique_ptr<Node> Parser::ParseLogical(Tok which) {
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
std::unique_ptr<Node> Parser::ParseNot() {
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
std::unique_ptr<Node> Parser::ParseCompare() {
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

// sum := product ( ("+" | "-") product )*   product := unary ( ("*" | "/") unary )*
std::unique_ptr<Node> Parser::ParseSum() { return ParseArith(true); }

std::unique_ptr<Node> Parser::ParseArith(bool sum) {
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

// unary := "-" unary | primary
std::unique_ptr<Node> Parser::ParseUnary() {
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

std::unique_ptr<Node> Parser::ParsePrimary() {
  const size_t at = tok_.offset;
  switch (tok_.kind) {
    case Tok::kNumber:
    case Tok::kDuration:
    case Tok::kString:
      return ParseLiteral();
    case Tok::kName:
      return ParseName();
    case Tok::kLParen:
      return ParseParens();
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

// A number, a duration or a string.
std::unique_ptr<Node> Parser::ParseLiteral() {
  const size_t at = tok_.offset;
  std::unique_ptr<Node> n;
  if (tok_.kind == Tok::kNumber) {
    n = Make(Op::kLiteral, at, StaticType::kNumber);
    n->literal = Value::Number(tok_.number);
  } else if (tok_.kind == Tok::kDuration) {
    n = Make(Op::kLiteral, at, StaticType::kDuration);
    n->literal = Value::Dur(tok_.duration);
  } else {
    n = Make(Op::kLiteral, at, StaticType::kString);
    n->text = std::move(tok_.str);
  }
  Next();
  return failed_ ? nullptr : std::move(n);
}

// An expression in parentheses.
std::unique_ptr<Node> Parser::ParseParens() {
  const size_t at = tok_.offset;
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

std::unique_ptr<Node> Parser::ParseList() {
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

std::unique_ptr<Node> Parser::ParseName() {
  const size_t at = tok_.offset;
  const std::string_view word = tok_.text;
  const std::string_view head = word.substr(0, word.find('.'));
  const bool dotted = head.size() != word.size();
  if (head == "true" || head == "false" || head == "null" || head == "now") {
    return ParseKeyword(head, dotted);
  }
  Path p;
  if (auto root = RootOf(head, word, dotted)) {
    p.root = *root;
  } else {
    return nullptr;
  }
  if (!CheckRootAllowed(p.root)) return nullptr;
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

// true, false, null or now.
std::unique_ptr<Node> Parser::ParseKeyword(std::string_view head, bool dotted) {
  const size_t at = tok_.offset;
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

// The root a name starts with (customer, event, trigger), which needs a field after it.
std::optional<Root> Parser::RootOf(std::string_view head, std::string_view word, bool dotted) {
  const size_t at = tok_.offset;
  Root root;
  if (head == "customer") {
    root = Root::kCustomer;
  } else if (head == "event") {
    root = Root::kEvent;
  } else if (head == "trigger") {
    root = Root::kTrigger;
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
    Fail(at, fmt::format("unknown name '{}'{}", Shorten(head), hint));
    return std::nullopt;
  }
  if (!dotted) {
    std::string_view example = root == Root::kCustomer ? "customer.email"
                               : root == Root::kEvent  ? "event.data.total"
                                                       : "trigger.data.total";
    Fail(at, fmt::format("'{}' needs a field, e.g. {}", head, example));
    return std::nullopt;
  }
  return root;
}

// Whether this context may read `root`: event.* only where there is an event, trigger.* only
// inside a run.
bool Parser::CheckRootAllowed(Root root) {
  const size_t at = tok_.offset;
  if (root == Root::kEvent && !options_.allow_event) {
    Fail(at, options_.allow_trigger
                 ? "event.* is not available here: this condition has no event (use "
                   "customer.* or trigger.*)"
                 : "event.* is not available here: this condition has no event (use "
                   "customer.*)");
    return false;
  }
  if (root == Root::kTrigger && !options_.allow_trigger) {
    Fail(at, options_.allow_event
                 ? "trigger.* is not available here: no run has started yet (use "
                   "event.* for the event being checked)"
                 : "trigger.* is not available here: there is no trigger event (use "
                   "customer.*)");
    return false;
  }
  return true;
}

}  // namespace expr_internal

std::optional<Expr> Expr::Parse(std::string_view text, const ExprOptions& options,
                                ExprError* error) {
  try {
    expr_internal::Parser parser(text, options);
    std::unique_ptr<expr_internal::Node> node = parser.Run();
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

}  // namespace journeyd::flow
