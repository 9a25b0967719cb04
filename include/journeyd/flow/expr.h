// The expression language of flows: `customer.orders == 1 && event.data.total >= 20`,
// `customer.points_expire_at - 3d`, `event.type in ["purchase", "refund"]`, `!customer.vip`.
//
// Grammar (lowest precedence first):
//   or      := and ( "||" and )*
//   and     := not ( "&&" not )*
//   not     := "!" not | compare
//   compare := sum ( ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") sum )?
//   sum     := product ( ("+" | "-") product )*
//   product := unary ( ("*" | "/") unary )*
//   unary   := "-" unary | primary
//   primary := number | duration | string | true | false | null | path | "now"
//            | "(" or ")" | "[" ( or ( "," or )* )? "]"
//   path    := ("customer" | "event" | "trigger") ( "." name )+
//   duration:= digits ("s" | "m" | "h" | "d" | "w")        e.g. 30m 1h 3d 6w
// Strings use double or single quotes with \" \' \\ \n \t escapes.
//
// Expressions are parsed and type-checked once, at flow load; evaluation allocates nothing.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/flow/value.h"

namespace journeyd::flow {

// Where a name points. kVar is a template-only name: a step variable (`percent`) or a
// built-in such as `unsubscribe_url`.
enum class Root : uint8_t { kCustomer, kEvent, kTrigger, kNow, kVar };

struct Path {
  Root root = Root::kCustomer;
  std::vector<std::string> segments;  // after the root: {"data", "total"}; for kVar: {"percent"}
  std::string text;                   // as written: "event.data.total"
};

// What an expression or template can see at run time. The engine implements it over the
// customer's state; tests implement it over maps.
class Scope {
 public:
  virtual ~Scope() = default;
  // Null when the path does not exist. Strings and lists stay valid while the Scope lives.
  virtual Value Lookup(const Path& path) const = 0;
  virtual TimePoint Now() const = 0;
};

// Static types found by the checker. kAny: not known until run time (shop-defined
// profile attributes, event data).
enum class StaticType : uint8_t { kAny, kNull, kBool, kNumber, kString, kDuration, kTime, kList };
// The one name of each type in messages ("number", "text", "date"...).
std::string_view TypeName(StaticType t);

// Which roots a context allows, so that `event.*` in a date trigger is a load error.
struct ExprOptions {
  bool allow_event = false;    // event.* : trigger/exit_on/wait_for/goal conditions
  bool allow_trigger = false;  // trigger.*: anything inside a run
};

struct ExprError {
  size_t offset = 0;  // byte offset in the text where the problem starts
  std::string message;
};

class Expr {
 public:
  Expr();  // an empty expression; Eval returns null, Test returns true
  ~Expr();
  Expr(const Expr&);
  Expr& operator=(const Expr&);
  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;

  // Parses and type-checks. On failure returns nullopt and fills `error`. Never throws and
  // never crashes on hostile input: nesting deeper than 64 levels, numbers that do not fit a
  // double, invalid UTF-8 and stray bytes are errors with an offset.
  static std::optional<Expr> Parse(std::string_view text, const ExprOptions& options,
                                   ExprError* error);

  bool empty() const { return node_ == nullptr; }
  const std::string& text() const { return text_; }
  StaticType type() const;

  Value Eval(const Scope& scope) const;
  // Condition value: Truthy() of Eval; an empty expression is true.
  bool Test(const Scope& scope) const;

  // Every path the expression reads, in source order.
  void ForEachPath(const std::function<void(const Path&)>& fn) const;

  struct Node;  // defined in src/flow/expr_internal.h

 private:
  std::shared_ptr<const Node> node_;
  std::string text_;
};

// Known attributes and their types, shared by the checker and the engine.
// customer.orders/revenue/points → number; birthday/points_expire_at/first_purchase_at/
// last_purchase_at → time; email/first_name/last_name/timezone/locale → string;
// email_opt_in → bool; anything else → any. event.type/customer_id/event_id → string,
// event.ts → time, event.data.* / event.profile.* → any.
StaticType KnownType(const Path& path);

// Checks that a path names something that can exist. event.<x> must be one of type,
// customer_id, event_id, ts, data.*, profile.*. Returns an empty string when valid, else a
// message ("unknown event field 'totl'; use event.data.totl for the event's data").
std::string CheckPath(const Path& path);

}  // namespace journeyd::flow
