// The expression language's evaluation: never allocates, never fails; a type mismatch gives
// null.
#include "expr_internal.h"

#include <cmath>
#include <cstdint>

namespace journeyd::flow {
namespace expr_internal {
namespace {

constexpr int64_t kMaxDurationMs = int64_t{1} << 53;
constexpr int64_t kMinTimeMs = -62135596800000;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

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

void VisitPaths(const Node& n, const std::function<void(const Path&)>& fn) {
  if (n.op == Op::kPath) fn(n.path);
  if (n.a) VisitPaths(*n.a, fn);
  if (n.b) VisitPaths(*n.b, fn);
  for (const auto& item : n.items) VisitPaths(*item, fn);
}

}  // namespace

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

}  // namespace expr_internal

Value Expr::Eval(const Scope& scope) const {
  return node_ ? expr_internal::EvalNode(*node_, scope) : Value::Null();
}

bool Expr::Test(const Scope& scope) const { return !node_ || Eval(scope).Truthy(); }

void Expr::ForEachPath(const std::function<void(const Path&)>& fn) const {
  if (node_) expr_internal::VisitPaths(*node_, fn);
}

}  // namespace journeyd::flow
