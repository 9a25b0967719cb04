// What the pieces of the expression language share; not a public header (expr.h is). The
// pieces:
//   expr_lex.cpp        the lexer: Parser's tokens
//   expr_parse.cpp      the recursive-descent parser, building the tree; Expr::Parse
//   expr_typecheck.cpp  the static types: operands of comparisons and arithmetic, KnownType,
//                       CheckPath, TypeName
//   expr_eval.cpp       evaluation: never allocates, never fails; Expr::Eval, Test, ForEachPath
//   expr.cpp            Expr's special members and type(), and the helpers for messages
//
// Parsing builds an immutable tree of heap-allocated nodes. String literals live in their node,
// and constant list literals are folded once into a std::vector<Value> whose strings point into
// the item nodes, so evaluation only hands out views and never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/flow/expr.h"

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

namespace expr_internal {

using Node = Expr::Node;
using Op = Expr::Node::Op;

constexpr int kMaxDepth = 64;             // brackets, parentheses, '!' and '-'
constexpr int kMaxHeight = 256;           // bounds recursion in Eval and destruction
constexpr size_t kMaxLength = 64 * 1024;  // bytes

// "a number", "text", "null".
std::string WithArticle(StaticType t);

// A token's text for a message, cut at a character boundary when long.
std::string Shorten(std::string_view s);

// The value of a node (expr_eval.cpp).
Value EvalNode(const Node& n, const Scope& scope);

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

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;
  std::string_view text;  // as written
  double number = 0;
  Duration duration{0};
  std::string str;  // decoded string literal
};

// Lexes, parses and type-checks one expression; the first problem found is its error.
class Parser {
 public:
  Parser(std::string_view text, const ExprOptions& options) : s_(text), options_(options) {}

  std::unique_ptr<Node> Run();

  const ExprError& error() const { return error_; }

 private:
  std::nullptr_t Fail(size_t offset, std::string_view message);

  // ---- lexer (expr_lex.cpp) ----
  void Next();
  void TooLong();
  void Set(Tok kind, size_t start, size_t len);
  void Lex();
  void LexOther(char c, char next, size_t at);
  void LexName();
  void LexNumber();
  void LexDuration(size_t at, size_t i, bool whole);
  void LexString(char quote);
  bool LexEscape(char quote, size_t at, size_t i, std::string& out);

  // ---- parser (expr_parse.cpp) ----
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

  static std::unique_ptr<Node> Make(Op op, size_t start, StaticType type);
  bool ExpectOperand(size_t op_offset, std::string_view op);
  std::unique_ptr<Node> Binary(Op op, size_t op_offset, StaticType type, std::unique_ptr<Node> a,
                               std::unique_ptr<Node> b);
  std::unique_ptr<Node> Unary(Op op, size_t start, StaticType type, std::unique_ptr<Node> a);
  std::unique_ptr<Node> ParseOr();
  std::unique_ptr<Node> ParseLogical(Tok which);
  std::unique_ptr<Node> ParseNot();
  std::unique_ptr<Node> ParseCompare();
  std::unique_ptr<Node> ParseSum();
  std::unique_ptr<Node> ParseArith(bool sum);
  std::unique_ptr<Node> ParseUnary();
  std::unique_ptr<Node> ParsePrimary();
  std::unique_ptr<Node> ParseLiteral();
  std::unique_ptr<Node> ParseParens();
  std::unique_ptr<Node> ParseList();
  std::unique_ptr<Node> ParseName();
  std::unique_ptr<Node> ParseKeyword(std::string_view head, bool dotted);
  std::optional<Root> RootOf(std::string_view head, std::string_view word, bool dotted);
  bool CheckRootAllowed(Root root);

  // ---- static types (expr_typecheck.cpp) ----
  bool CheckEqualTypes(const Node& a, const Node& b, size_t at);
  bool CheckComparison(Op op, size_t at, std::string_view name, const Node& a, const Node& b);
  std::optional<StaticType> ArithType(Op op, size_t at, std::string_view name, const Node& a,
                                      const Node& b);
  bool CheckLists(const Node& n, bool right_of_in);

  std::string_view s_;
  ExprOptions options_;
  size_t pos_ = 0;
  Token tok_;
  int depth_ = 0;
  bool failed_ = false;
  ExprError error_;
};

}  // namespace expr_internal
}  // namespace journeyd::flow
