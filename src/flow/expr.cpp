// The expression language of flows: lexer, recursive-descent parser, static type checker and
// evaluator. See expr.h for the grammar, and expr_internal.h for the pieces.
#include "journeyd/flow/expr.h"

#include <fmt/format.h>

#include "expr_internal.h"

namespace journeyd::flow {
namespace expr_internal {

std::string WithArticle(StaticType t) {
  if (t == StaticType::kNull || t == StaticType::kString) return std::string(TypeName(t));
  return fmt::format("a {}", TypeName(t));
}

std::string Shorten(std::string_view s) {
  constexpr size_t kMax = 30;
  if (s.size() <= kMax) return std::string(s);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("{}...", s.substr(0, cut));
}

}  // namespace expr_internal

Expr::Expr() = default;
Expr::~Expr() = default;
Expr::Expr(const Expr&) = default;
Expr& Expr::operator=(const Expr&) = default;
Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;

StaticType Expr::type() const { return node_ ? node_->type : StaticType::kAny; }

}  // namespace journeyd::flow
