// The expression language's static types: what the operands of comparisons and arithmetic
// may be (Parser checks them as it builds the tree), and the types of known paths.
#include "expr_internal.h"

#include <fmt/format.h>

#include "journeyd/common/diagnostics.h"

namespace journeyd::flow {
namespace expr_internal {
namespace {

bool IsDateLiteral(const Node& n) {
  return n.op == Op::kLiteral && n.type == StaticType::kString && ParseTimestamp(n.text);
}

// The arithmetic kinds a node's value may have.
constexpr unsigned kNum = 1, kDur = 2, kTim = 4;

unsigned Kinds(const Node& n) {
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

unsigned ArithRule(Op op, unsigned x, unsigned y) {
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

}  // namespace

// Whether values of the two sides can be equal; `at` is where to report a mismatch.
bool Parser::CheckEqualTypes(const Node& a, const Node& b, size_t at) {
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

bool Parser::CheckComparison(Op op, size_t at, std::string_view name, const Node& a,
                             const Node& b) {
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

std::optional<StaticType> Parser::ArithType(Op op, size_t at, std::string_view name, const Node& a,
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

// A list that reads run-time values has no storage to be evaluated into, so it may only be
// searched by 'in', item by item.
bool Parser::CheckLists(const Node& n, bool right_of_in) {
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

}  // namespace expr_internal

namespace {

bool IsEventField(std::string_view f) {
  return f == "type" || f == "customer_id" || f == "event_id" || f == "ts";
}

}  // namespace

StaticType KnownType(const Path& path) {
  if (path.root == Root::kNow) return StaticType::kTime;
  if (path.root == Root::kCustomer && path.segments.size() == 2 && path.segments[0] == "rfm") {
    return path.segments[1] == "segment" ? StaticType::kString : StaticType::kNumber;
  }
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
      if (!path.segments.empty() && path.segments[0] == "rfm") {
        constexpr std::string_view kRfm[] = {"r", "f", "m", "segment"};
        const std::string_view field =
            path.segments.size() == 2 ? std::string_view(path.segments[1]) : std::string_view();
        for (std::string_view k : kRfm) {
          if (field == k) return "";
        }
        return fmt::format("'{}': the RFM fields are customer.rfm.r, .f, .m and .segment{}",
                           path.text, DidYouMean(field, kRfm));
      }
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
