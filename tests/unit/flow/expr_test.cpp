// The expression language: parsing, precedence, static types, evaluation, error messages and
// offsets, and hostile input.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/flow/expr.h"

// Counts heap allocations (malloc and operator new alike) while a test asks for it, to prove
// that Eval allocates nothing. Uses the sanitizer runtime's observer hooks, which leave
// allocation itself untouched; without AddressSanitizer the test is skipped.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define JOURNEYD_COUNT_ALLOCATIONS 1
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void OnMalloc(const volatile void*, std::size_t) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
void OnFree(const volatile void*) {}
}  // namespace
#else
#define JOURNEYD_COUNT_ALLOCATIONS 0
#endif

namespace journeyd::flow {
namespace {

constexpr ExprOptions kAll{.allow_event = true, .allow_trigger = true};
constexpr ExprOptions kNone{.allow_event = false, .allow_trigger = false};

TimePoint At(std::string_view ts) {
  auto t = ParseTimestamp(ts);
  EXPECT_TRUE(t) << ts;
  return t.value_or(TimePoint{});
}

// A Scope over a map keyed by the path as written ("event.data.total").
class MapScope final : public Scope {
 public:
  MapScope() : now_(At("2026-05-20T12:00:00Z")) {}

  void Set(const std::string& path, Value v) { values_[path] = v; }
  void SetString(const std::string& path, std::string s) {
    strings_.push_back(std::move(s));
    values_[path] = Value::String(strings_.back());
  }
  void SetStrings(const std::string& path, const std::vector<std::string>& items) {
    auto& list = lists_.emplace_back();
    for (const auto& s : items) {
      strings_.push_back(s);
      list.push_back(Value::String(strings_.back()));
    }
    values_[path] = Value::List(list);
  }
  void set_now(TimePoint t) { now_ = t; }
  int lookups() const { return lookups_; }

  Value Lookup(const Path& path) const override {
    ++lookups_;
    auto it = values_.find(path.text);
    return it == values_.end() ? Value::Null() : it->second;
  }
  TimePoint Now() const override { return now_; }

 private:
  std::map<std::string, Value, std::less<>> values_;
  std::deque<std::string> strings_;
  std::deque<std::vector<Value>> lists_;
  TimePoint now_;
  mutable int lookups_ = 0;
};

std::optional<Expr> TryParse(std::string_view text, const ExprOptions& opts = kAll,
                             ExprError* error = nullptr) {
  ExprError local;
  return Expr::Parse(text, opts, error ? error : &local);
}

Expr MustParse(std::string_view text, const ExprOptions& opts = kAll) {
  ExprError err;
  auto e = Expr::Parse(text, opts, &err);
  EXPECT_TRUE(e) << "'" << text << "': " << err.offset << ": " << err.message;
  return e ? *e : Expr();
}

ExprError MustFail(std::string_view text, const ExprOptions& opts = kAll) {
  ExprError err;
  auto e = Expr::Parse(text, opts, &err);
  EXPECT_FALSE(e) << "'" << text << "' parsed, but should not";
  EXPECT_FALSE(err.message.empty()) << text;
  EXPECT_LE(err.offset, text.size()) << text;
  return err;
}

// Values view into the expression tree, so the parsed expressions stay alive for the test run.
Value Eval(std::string_view text, const Scope& scope) {
  static std::deque<Expr> kept;
  kept.push_back(MustParse(text));
  return kept.back().Eval(scope);
}

double Num(std::string_view text, const Scope& scope) {
  Value v = Eval(text, scope);
  EXPECT_EQ(v.type(), ValueType::kNumber) << text;
  return v.as_number();
}

bool Bool(std::string_view text, const Scope& scope) {
  Value v = Eval(text, scope);
  EXPECT_EQ(v.type(), ValueType::kBool) << text;
  return v.as_bool();
}

#define EXPECT_EXPR_ERROR(text, opts, want_offset, want_message) \
  do {                                                           \
    ExprError e_ = MustFail(text, opts);                         \
    EXPECT_EQ(e_.offset, size_t{want_offset}) << (text);         \
    EXPECT_EQ(e_.message, want_message) << (text);               \
  } while (0)

// ---------------------------------------------------------------------------------------------

TEST(Expr, ArithmeticPrecedenceAndAssociativity) {
  MapScope s;
  EXPECT_EQ(Num("1 + 2 * 3", s), 7);
  EXPECT_EQ(Num("(1 + 2) * 3", s), 9);
  EXPECT_EQ(Num("10 - 4 - 3", s), 3);
  EXPECT_EQ(Num("8 / 4 / 2", s), 1);
  EXPECT_EQ(Num("2 * 3 - 4 / 2", s), 4);
  EXPECT_EQ(Num("-2 * 3", s), -6);
  EXPECT_EQ(Num("- -4", s), 4);
  EXPECT_EQ(Num("1 - -1", s), 2);
  EXPECT_EQ(Num("2.5e1 + .5", s), 25.5);
  EXPECT_EQ(Num("((((7))))", s), 7);
}

TEST(Expr, LogicalPrecedence) {
  MapScope s;
  EXPECT_FALSE(Bool("!false && false", s));  // (!false) && false
  EXPECT_TRUE(Bool("true || false && false", s));
  EXPECT_TRUE(Bool("false && true || true", s));
  EXPECT_FALSE(Bool("false && (true || true)", s));
  EXPECT_TRUE(Bool("!!true", s));
  // `!` applies to the whole comparison: !(customer.orders == 1).
  s.Set("customer.orders", Value::Number(1));
  EXPECT_FALSE(Bool("!customer.orders == 1", s));
  s.Set("customer.orders", Value::Number(2));
  EXPECT_TRUE(Bool("!customer.orders == 1", s));
  // Comparison binds tighter than && and arithmetic tighter than comparison.
  EXPECT_TRUE(Bool("1 + 1 == 2 && 2 * 2 > 3", s));
}

TEST(Expr, ShortCircuitSkipsTheRightSide) {
  MapScope s;
  Expr e = MustParse("false && customer.orders > 1");
  EXPECT_FALSE(e.Test(s));
  EXPECT_EQ(s.lookups(), 0);
  Expr f = MustParse("true || customer.orders > 1");
  EXPECT_TRUE(f.Test(s));
  EXPECT_EQ(s.lookups(), 0);
  Expr g = MustParse("true && customer.orders > 1");
  EXPECT_FALSE(g.Test(s));
  EXPECT_EQ(s.lookups(), 1);
}

TEST(Expr, EveryComparisonOperator) {
  MapScope s;
  EXPECT_TRUE(Bool("2 == 2", s));
  EXPECT_FALSE(Bool("2 == 3", s));
  EXPECT_TRUE(Bool("2 != 3", s));
  EXPECT_FALSE(Bool("2 != 2", s));
  EXPECT_TRUE(Bool("2 < 3", s));
  EXPECT_FALSE(Bool("3 < 3", s));
  EXPECT_TRUE(Bool("3 <= 3", s));
  EXPECT_FALSE(Bool("4 <= 3", s));
  EXPECT_TRUE(Bool("4 > 3", s));
  EXPECT_FALSE(Bool("3 > 3", s));
  EXPECT_TRUE(Bool("3 >= 3", s));
  EXPECT_FALSE(Bool("2 >= 3", s));
  EXPECT_TRUE(Bool("'abc' < 'abd'", s));
  EXPECT_TRUE(Bool("\"a\" == 'a'", s));
  EXPECT_TRUE(Bool("1h < 90m", s));
  EXPECT_TRUE(Bool("true == true", s));
  EXPECT_TRUE(Bool("true != false", s));
  EXPECT_TRUE(Bool("[1, 'a'] == [1, 'a']", s));
  EXPECT_FALSE(Bool("[1, 'a'] == [1, 'b']", s));
}

TEST(Expr, Strings) {
  MapScope s;
  Value v = Eval(R"("say \"hi\"\n\tit's \\ 'ok'")", s);
  ASSERT_EQ(v.type(), ValueType::kString);
  EXPECT_EQ(v.as_string(), "say \"hi\"\n\tit's \\ 'ok'");
  EXPECT_EQ(Eval(R"('it\'s')", s).as_string(), "it's");
  s.SetString("customer.first_name", "Zoë");
  EXPECT_TRUE(Bool("customer.first_name == \"Zoë\"", s));
  EXPECT_EQ(Eval("''", s).as_string(), "");
}

TEST(Expr, Durations) {
  MapScope s;
  auto dur = [&](std::string_view text) {
    Value v = Eval(text, s);
    EXPECT_EQ(v.type(), ValueType::kDuration) << text;
    return v.as_duration();
  };
  EXPECT_EQ(dur("30m"), 30 * kMinute);
  EXPECT_EQ(dur("45s"), 45 * kSecond);
  EXPECT_EQ(dur("1h30m"), 90 * kMinute);
  EXPECT_EQ(dur("6w"), 6 * kWeek);
  EXPECT_EQ(dur("-14d"), -14 * kDay);
  EXPECT_EQ(dur("30m + 1h"), 90 * kMinute);
  EXPECT_EQ(dur("1d - 1h"), 23 * kHour);
  EXPECT_EQ(dur("2 * 3d"), 6 * kDay);
  EXPECT_EQ(dur("3d * 2"), 6 * kDay);
  EXPECT_EQ(dur("3d / 2"), 36 * kHour);
  EXPECT_EQ(Num("6w / 1w", s), 6);
  EXPECT_TRUE(Bool("30m + 1h == 90m", s));
  EXPECT_EQ(MustParse("2 * 3d").type(), StaticType::kDuration);
  EXPECT_EQ(MustParse("6w / 1d").type(), StaticType::kNumber);
}

TEST(Expr, DateArithmeticOnProfileStrings) {
  MapScope s;
  s.SetString("customer.points_expire_at", "2026-06-01");
  Expr e = MustParse("customer.points_expire_at - 3d");
  EXPECT_EQ(e.type(), StaticType::kTime);
  Value v = e.Eval(s);
  ASSERT_EQ(v.type(), ValueType::kTime);
  EXPECT_EQ(v.as_time(), At("2026-05-29"));
  EXPECT_EQ(Eval("customer.points_expire_at + 12h", s).as_time(), At("2026-06-01T12:00:00Z"));
  EXPECT_EQ(Eval("1d + customer.points_expire_at", s).as_time(), At("2026-06-02"));

  // A real time value works the same way.
  s.Set("customer.points_expire_at", Value::Time(At("2026-06-01")));
  EXPECT_EQ(Eval("customer.points_expire_at - 3d", s).as_time(), At("2026-05-29"));

  // time - time is a duration; times compare with profile strings.
  s.SetString("customer.birthday", "1990-05-17");
  s.set_now(At("2026-05-17T00:00:00Z"));
  EXPECT_EQ(MustParse("now - customer.birthday").type(), StaticType::kDuration);
  Value age = Eval("now - customer.birthday", s);
  ASSERT_EQ(age.type(), ValueType::kDuration);
  EXPECT_EQ(age.as_duration(), At("2026-05-17") - At("1990-05-17"));
  EXPECT_TRUE(Bool("now - customer.birthday > 365d", s));
  EXPECT_TRUE(Bool("customer.birthday < now", s));
  EXPECT_TRUE(Bool("customer.birthday == \"1990-05-17\"", s));
  EXPECT_TRUE(Bool("customer.birthday == \"1990-05-17T00:00:00Z\"", s));
  EXPECT_FALSE(Bool("customer.birthday == \"1990-05-18\"", s));
  EXPECT_EQ(Eval("now", s).as_time(), At("2026-05-17"));

  // An unknown attribute that holds a date string at run time.
  s.SetString("customer.renewal", "2026-01-10");
  EXPECT_EQ(MustParse("customer.renewal - 3d").type(), StaticType::kAny);
  EXPECT_EQ(Eval("customer.renewal - 3d", s).as_time(), At("2026-01-07"));

  // A profile string that is not a date gives null, not a crash.
  s.SetString("customer.points_expire_at", "soon");
  EXPECT_TRUE(Eval("customer.points_expire_at - 3d", s).is_null());
}

TEST(Expr, In) {
  MapScope s;
  s.SetString("event.type", "refund");
  EXPECT_TRUE(Bool("event.type in [\"purchase\", \"refund\"]", s));
  EXPECT_FALSE(Bool("event.type in [\"purchase\", \"signup\"]", s));
  EXPECT_FALSE(Bool("event.type in []", s));
  EXPECT_TRUE(Bool("3 in [1, 2, 3]", s));
  EXPECT_TRUE(Bool("-3 in [-3, 3,]", s));  // a trailing comma is fine
  EXPECT_TRUE(Bool("2h in [1h, 120m]", s));
  EXPECT_TRUE(Bool("[1] in [[0], [1]]", s));

  s.SetStrings("customer.tags", {"vip", "newsletter"});
  EXPECT_TRUE(Bool("\"vip\" in customer.tags", s));
  EXPECT_FALSE(Bool("\"gold\" in customer.tags", s));

  s.SetString("event.data.note", "please gift-wrap this");
  EXPECT_TRUE(Bool("\"gift\" in event.data.note", s));
  EXPECT_FALSE(Bool("\"Gift\" in event.data.note", s));
  EXPECT_TRUE(Bool("'wrap' in 'gift-wrap'", s));

  // Items read at run time, searched one by one.
  s.SetString("trigger.type", "refund");
  EXPECT_TRUE(Bool("event.type in [\"purchase\", trigger.type]", s));
  s.SetString("trigger.type", "signup");
  EXPECT_FALSE(Bool("event.type in [\"purchase\", trigger.type]", s));

  // Missing right side: false, never a crash.
  EXPECT_FALSE(Bool("\"vip\" in customer.missing", s));
  EXPECT_FALSE(MustParse("\"vip\" in customer.missing").Test(s));
  // A number where a list or string should be: null.
  s.Set("customer.score", Value::Number(5));
  EXPECT_TRUE(Eval("5 in customer.score", s).is_null());
}

TEST(Expr, NullHandling) {
  MapScope s;
  EXPECT_FALSE(Bool("customer.email != null", s));
  EXPECT_TRUE(Bool("customer.email == null", s));
  s.SetString("customer.email", "a@example.com");
  EXPECT_TRUE(Bool("customer.email != null", s));
  EXPECT_FALSE(Bool("customer.email == null", s));
  EXPECT_TRUE(Bool("null == null", s));

  // Ordering with a missing value is false both ways.
  EXPECT_FALSE(Bool("customer.score > 3", s));
  EXPECT_FALSE(Bool("customer.score <= 3", s));
  EXPECT_TRUE(Bool("!(customer.score > 3)", s));
  EXPECT_FALSE(Bool("customer.score == 3", s));
  EXPECT_TRUE(Bool("customer.score != 3", s));
  // Arithmetic with a missing value is null, and so is its comparison's truth.
  EXPECT_TRUE(Eval("customer.score + 1", s).is_null());
  EXPECT_FALSE(MustParse("customer.score + 1 > 0").Test(s));
  // `!` of a missing flag is true.
  EXPECT_TRUE(Bool("!customer.vip", s));
  EXPECT_TRUE(Eval("null", s).is_null());
}

TEST(Expr, RunTimeMismatchesGiveNull) {
  MapScope s;
  EXPECT_TRUE(Eval("1 / 0", s).is_null());
  EXPECT_TRUE(Eval("1d / 0", s).is_null());
  EXPECT_TRUE(Eval("1d / 0d", s).is_null());
  EXPECT_TRUE(Eval("1e308 * 10", s).is_null());  // overflow to infinity
  s.SetString("event.data.total", "abc");
  EXPECT_TRUE(Eval("event.data.total + 1", s).is_null());
  EXPECT_TRUE(Eval("event.data.total > 3", s).is_null());
  EXPECT_FALSE(MustParse("event.data.total > 3").Test(s));
  EXPECT_TRUE(Eval("-event.data.total", s).is_null());
  EXPECT_FALSE(Bool("event.data.total == 3", s));
  s.Set("event.data.flag", Value::Bool(true));
  EXPECT_TRUE(Eval("event.data.flag * 2", s).is_null());
  // Overflowing time arithmetic is null, not undefined behaviour.
  s.Set("event.data.big", Value::Dur(Duration{INT64_MAX}));
  EXPECT_TRUE(Eval("event.data.big + event.data.big", s).is_null());
  EXPECT_TRUE(Eval("now + event.data.big", s).is_null());
  EXPECT_TRUE(Eval("event.data.big * 1e300", s).is_null());
  s.Set("event.data.min", Value::Dur(Duration{INT64_MIN}));
  EXPECT_TRUE(Eval("-event.data.min", s).is_null());
  s.Set("event.data.t", Value::Time(FromUnixMillis(INT64_MAX)));
  EXPECT_TRUE(Eval("event.data.t + 1d", s).is_null());
  EXPECT_TRUE(Eval("event.data.t - event.data.min", s).is_null());
}

TEST(Expr, EmptyExpression) {
  MapScope s;
  Expr empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.Test(s));
  EXPECT_TRUE(empty.Eval(s).is_null());
  EXPECT_EQ(empty.type(), StaticType::kAny);
  EXPECT_EXPR_ERROR("", kAll, 0, "empty expression");
  EXPECT_EXPR_ERROR("   \t\n", kAll, 0, "empty expression");
}

TEST(Expr, TestUsesTruthiness) {
  MapScope s;
  s.SetString("customer.segment", "");
  EXPECT_FALSE(MustParse("customer.segment").Test(s));
  s.SetString("customer.segment", "gold");
  EXPECT_TRUE(MustParse("customer.segment").Test(s));
  EXPECT_FALSE(MustParse("0").Test(s));
  EXPECT_TRUE(MustParse("0 == 0").Test(s));
}

TEST(Expr, StaticTypes) {
  EXPECT_EQ(MustParse("customer.orders == 1").type(), StaticType::kBool);
  EXPECT_EQ(MustParse("customer.orders + 1").type(), StaticType::kNumber);
  EXPECT_EQ(MustParse("customer.anything + 1").type(), StaticType::kNumber);
  EXPECT_EQ(MustParse("customer.anything").type(), StaticType::kAny);
  EXPECT_EQ(MustParse("customer.anything * 2").type(), StaticType::kAny);  // number or duration
  EXPECT_EQ(MustParse("customer.email").type(), StaticType::kString);
  EXPECT_EQ(MustParse("customer.email_opt_in").type(), StaticType::kBool);
  EXPECT_EQ(MustParse("now").type(), StaticType::kTime);
  EXPECT_EQ(MustParse("now + 1h").type(), StaticType::kTime);
  EXPECT_EQ(MustParse("\"2026-05-17\" + 1d").type(), StaticType::kTime);
  EXPECT_EQ(MustParse("event.ts").type(), StaticType::kTime);
  EXPECT_EQ(MustParse("trigger.type").type(), StaticType::kString);
  EXPECT_EQ(MustParse("event.data.total").type(), StaticType::kAny);
  EXPECT_EQ(MustParse("[1, 2]").type(), StaticType::kList);
  EXPECT_EQ(MustParse("null").type(), StaticType::kNull);
  EXPECT_EQ(MustParse("'x'").type(), StaticType::kString);
  EXPECT_EQ(MustParse("-3d").type(), StaticType::kDuration);
  EXPECT_EQ(MustParse("!customer.vip").type(), StaticType::kBool);
}

TEST(Expr, SyntaxErrorsWithOffsets) {
  EXPECT_EXPR_ERROR("customer.orders = 1", kAll, 16, "'=' is not an operator: use '==' to compare");
  EXPECT_EXPR_ERROR("customer.orders == 1 and true", kAll, 21,
                    "'and' is not an operator: use '&&'");
  EXPECT_EXPR_ERROR("true or false", kAll, 5, "'or' is not an operator: use '||'");
  EXPECT_EXPR_ERROR("not true", kAll, 0, "'not' is not an operator: use '!'");
  EXPECT_EXPR_ERROR("event.type not in ['a']", kAll, 11,
                    "'not in' is not an operator: write !(x in [...])");
  EXPECT_EXPR_ERROR("true & false", kAll, 5, "'&' is not an operator: use '&&'");
  EXPECT_EXPR_ERROR("true | false", kAll, 5, "'|' is not an operator: use '||'");
  EXPECT_EXPR_ERROR("1 <> 2", kAll, 2, "'<>' is not an operator: use '!=' for \"not equal\"");
  EXPECT_EXPR_ERROR("customer.orders == 1 &&", kAll, 21, "expected an operand after '&&'");
  EXPECT_EXPR_ERROR("true && || false", kAll, 5, "expected an operand after '&&'");
  EXPECT_EXPR_ERROR("true ||", kAll, 5, "expected an operand after '||'");
  EXPECT_EXPR_ERROR("1 +", kAll, 2, "expected an operand after '+'");
  EXPECT_EXPR_ERROR("1 == )", kAll, 2, "expected an operand after '=='");
  EXPECT_EXPR_ERROR("!", kAll, 0, "expected an operand after '!'");
  EXPECT_EXPR_ERROR("&& true", kAll, 0, "expected an operand before '&&'");
  EXPECT_EXPR_ERROR("(customer.orders == 1))", kAll, 22, "unexpected ')'");
  EXPECT_EXPR_ERROR(")", kAll, 0, "unexpected ')'");
  EXPECT_EXPR_ERROR("(1 + 2", kAll, 0, "'(' is never closed: add ')'");
  EXPECT_EXPR_ERROR("(1 2)", kAll, 3, "expected ')' or an operator before '2'");
  EXPECT_EXPR_ERROR("()", kAll, 0, "empty parentheses '()'");
  EXPECT_EXPR_ERROR("[1, 2", kAll, 0, "'[' is never closed: add ']'");
  EXPECT_EXPR_ERROR("[1 2]", kAll, 3, "expected ',' or ']' in the list before '2'");
  EXPECT_EXPR_ERROR("[1,,2]", kAll, 3, "unexpected ','");
  EXPECT_EXPR_ERROR("customer.orders 1", kAll, 16,
                    "unexpected '1': expected an operator such as '==' or '&&'");
  EXPECT_EXPR_ERROR("1 < 2 < 3", kAll, 6,
                    "comparisons cannot be chained: join them with '&&', e.g. a > 1 && a < 5");
  EXPECT_EXPR_ERROR("1 == !true", kAll, 5,
                    "put '!' and what it negates in parentheses here, e.g. "
                    "(!customer.email_opt_in)");
  EXPECT_EXPR_ERROR("customer.", kAll, 8, "expected a field name after 'customer.'");
  EXPECT_EXPR_ERROR("1 # 2", kAll, 2, "unexpected character '#'");
  EXPECT_EXPR_ERROR("customer.email == “x”", kAll, 18,
                    "curly quote '“': use straight quotes \" or '");
}

TEST(Expr, LiteralErrors) {
  EXPECT_EXPR_ERROR("now + 3x", kAll, 6, "duration '3x': use s, m, h, d or w");
  EXPECT_EXPR_ERROR("3ms", kAll, 0, "duration '3ms': use s, m, h, d or w");
  EXPECT_EXPR_ERROR("now - 1.5h", kAll, 6,
                    "duration '1.5h': use a whole number with s, m, h, d or w (e.g. 90m "
                    "instead of 1.5h)");
  EXPECT_EXPR_ERROR("now + 200000w", kAll, 6, "duration '200000w' is longer than 100 years");
  EXPECT_EXPR_ERROR("1e999", kAll, 0, "number '1e999' is too large");
  EXPECT_EXPR_ERROR("customer.orders > 1e-999", kAll, 18, "number '1e-999' is too small");
  EXPECT_EXPR_ERROR(std::string(400, '9'), kAll, 0,
                    "number '999999999999999999999999999999...' is too large");
  EXPECT_EXPR_ERROR("customer.email == \"abc", kAll, 18, "unterminated string: add the closing \"");
  EXPECT_EXPR_ERROR("'abc", kAll, 0, "unterminated string: add the closing '");
  EXPECT_EXPR_ERROR("'abc\\", kAll, 0, "unterminated string: add the closing '");
  EXPECT_EXPR_ERROR("'a\nb'", kAll, 2,
                    "unterminated string: add the closing ' before the line break");
  EXPECT_EXPR_ERROR("'a\\qb'", kAll, 2,
                    "unknown escape in string: use \\\", \\', \\\\, \\n or \\t");
}

TEST(Expr, NameErrors) {
  EXPECT_EXPR_ERROR("custmer.orders == 1", kAll, 0,
                    "unknown name 'custmer' — did you mean 'customer'?");
  EXPECT_EXPR_ERROR("1 == 1 && evnt.type == 'x'", kAll, 10,
                    "unknown name 'evnt' — did you mean 'event'?");
  EXPECT_EXPR_ERROR("True", kAll, 0, "unknown name 'True' — did you mean 'true'?");
  EXPECT_EXPR_ERROR("orders > 1", kAll, 0,
                    "unknown name 'orders' — did you mean 'customer.orders'?");
  EXPECT_EXPR_ERROR("zebra", kAll, 0, "unknown name 'zebra'");
  EXPECT_EXPR_ERROR("customer", kAll, 0, "'customer' needs a field, e.g. customer.email");
  EXPECT_EXPR_ERROR("now.day", kAll, 0, "'now' has no fields");
  EXPECT_EXPR_ERROR("customer.address.city == 'x'", kAll, 0,
                    "'customer.address.city': customer attributes are one word, such as "
                    "customer.first_name");
  EXPECT_EXPR_ERROR("event.totl > 3", kAll, 0,
                    "unknown event field 'totl'; use event.data.totl for the event's data");
  EXPECT_EXPR_ERROR("1 == 1 && event.tpye == 'x'", kAll, 10,
                    "unknown event field 'tpye' — did you mean 'type'?");
  EXPECT_EXPR_ERROR("trigger.data > 1", kAll, 0,
                    "'trigger.data' needs a field, e.g. trigger.data.total");
  EXPECT_EXPR_ERROR("event.type.name == 'x'", kAll, 0, "'event.type' has no fields");
}

TEST(Expr, RootsNotAvailable) {
  constexpr ExprOptions kRun{.allow_event = false, .allow_trigger = true};
  constexpr ExprOptions kTrigger{.allow_event = true, .allow_trigger = false};
  EXPECT_EXPR_ERROR("event.type == 'x'", kRun, 0,
                    "event.* is not available here: this condition has no event (use "
                    "customer.* or trigger.*)");
  EXPECT_EXPR_ERROR("customer.orders > 1 && event.data.total > 3", kNone, 23,
                    "event.* is not available here: this condition has no event (use "
                    "customer.*)");
  EXPECT_EXPR_ERROR("trigger.data.total > 3", kTrigger, 0,
                    "trigger.* is not available here: no run has started yet (use event.* for "
                    "the event being checked)");
  EXPECT_EXPR_ERROR("trigger.data.total > 3", kNone, 0,
                    "trigger.* is not available here: there is no trigger event (use "
                    "customer.*)");
  EXPECT_TRUE(TryParse("event.data.total > 3", kTrigger));
  EXPECT_TRUE(TryParse("trigger.data.total > 3", kRun));
  EXPECT_TRUE(TryParse("customer.points > 0 && now > customer.birthday", kNone));
}

TEST(Expr, TypeErrorsWithOffsets) {
  EXPECT_EXPR_ERROR("customer.orders == \"one\"", kAll, 16, "cannot compare number with text");
  EXPECT_EXPR_ERROR("customer.orders < true", kAll, 18,
                    "'<' needs numbers, texts, durations or dates, got a boolean");
  EXPECT_EXPR_ERROR("customer.orders >= null", kAll, 16,
                    "cannot use '>=' with null: only == and != compare with null");
  EXPECT_EXPR_ERROR("1h == 60", kAll, 3, "cannot compare duration with number");
  EXPECT_EXPR_ERROR("customer.birthday + 3", kAll, 18,
                    "cannot add number to date: use a duration such as 3d");
  EXPECT_EXPR_ERROR("customer.birthday - 3", kAll, 18,
                    "cannot subtract number from date: use a duration such as 3d");
  EXPECT_EXPR_ERROR("\"x\" + 1", kAll, 4, "cannot add number to text");
  EXPECT_EXPR_ERROR("now * 2", kAll, 4, "cannot multiply date by number");
  EXPECT_EXPR_ERROR("1 / 1d", kAll, 2, "cannot divide number by duration");
  EXPECT_EXPR_ERROR("customer.x + true", kAll, 11, "'+' cannot be used with a boolean");
  EXPECT_EXPR_ERROR("customer.x * null", kAll, 11, "'*' cannot be used with null");
  EXPECT_EXPR_ERROR("customer.orders + 1 && true", kAll, 0,
                    "'&&' needs true/false values, got a number");
  EXPECT_EXPR_ERROR("true || (customer.email)", kAll, 8, "'||' needs true/false values, got text");
  EXPECT_EXPR_ERROR("!3", kAll, 1, "'!' needs a true/false value, got a number");
  EXPECT_EXPR_ERROR("-\"x\"", kAll, 1, "'-' needs a number or a duration, got text");
  EXPECT_EXPR_ERROR("customer.orders in 3", kAll, 19,
                    "'in' needs a list such as [\"a\", \"b\"] or text on its right, got a "
                    "number");
  EXPECT_EXPR_ERROR("customer.orders in \"abc\"", kAll, 0, "cannot look for a number in text");
  EXPECT_EXPR_ERROR("customer.orders in [1, \"two\"]", kAll, 23, "cannot compare number with text");
  EXPECT_EXPR_ERROR("customer.birthday == \"tomorrow\"", kAll, 21,
                    "'tomorrow' is not a date: write it like \"2026-05-17\" or "
                    "\"2026-05-17T09:00:00Z\"");
  EXPECT_EXPR_ERROR("[customer.orders] == [1]", kAll, 0,
                    "a list that uses customer.*, event.*, trigger.* or now can only follow "
                    "'in'");
  // Unknown types are accepted statically.
  EXPECT_TRUE(TryParse("customer.x == \"one\" && customer.x > 3 && customer.x + 1 > 2"));
  EXPECT_TRUE(TryParse("customer.email != null && customer.x != null"));
}

TEST(Expr, HostileNesting) {
  EXPECT_TRUE(TryParse(std::string(64, '(') + "1" + std::string(64, ')')));
  EXPECT_EXPR_ERROR(std::string(65, '(') + "1" + std::string(65, ')'), kAll, 64,
                    "expression is nested too deeply (more than 64 levels)");
  EXPECT_EXPR_ERROR(std::string(100000, '('), kAll, 64,
                    "expression is nested too deeply (more than 64 levels)");
  EXPECT_EXPR_ERROR(std::string(100000, '['), kAll, 64,
                    "expression is nested too deeply (more than 64 levels)");
  EXPECT_EXPR_ERROR(std::string(100000, '!') + "true", kAll, 64,
                    "expression is nested too deeply (more than 64 levels)");
  EXPECT_EXPR_ERROR(std::string(100000, '-') + "1", kAll, 64,
                    "expression is nested too deeply (more than 64 levels)");
  std::string mixed;
  for (int i = 0; i < 40; ++i) mixed += "(!";
  ExprError err = MustFail(mixed + "true" + std::string(40, ')'));
  EXPECT_EQ(err.message, "expression is nested too deeply (more than 64 levels)");

  // A long flat chain is bounded too, so evaluation cannot run out of stack.
  std::string chain = "1";
  for (int i = 0; i < 300; ++i) chain += " + 1";
  err = MustFail(chain);
  EXPECT_EQ(err.message,
            "expression is too long: more than 256 operations in a row (use 'in [...]' to test "
            "many values)");
  std::string ok = "1";
  for (int i = 0; i < 200; ++i) ok += " + 1";
  MapScope s;
  EXPECT_EQ(Num(ok, s), 201);
}

TEST(Expr, HostileBytes) {
  EXPECT_EXPR_ERROR("\xff\xfe", kAll, 0, "invalid UTF-8 (byte 0xff)");
  EXPECT_EXPR_ERROR("1 == \xc3", kAll, 5, "invalid UTF-8 (byte 0xc3)");
  EXPECT_EXPR_ERROR("'ab\xc0\xaf'", kAll, 3, "invalid UTF-8 in string (byte 0xc0)");    // overlong
  EXPECT_EXPR_ERROR("'\xed\xa0\x80'", kAll, 1, "invalid UTF-8 in string (byte 0xed)");  // surrogate
  EXPECT_EXPR_ERROR("'\xf4\x90\x80\x80'", kAll, 1,
                    "invalid UTF-8 in string (byte 0xf4)");  // above U+10FFFF
  EXPECT_EXPR_ERROR(std::string("1 ==\x01 1"), kAll, 4, "unexpected control character (byte 0x01)");
  EXPECT_EXPR_ERROR(std::string("1 == 1\0", 7), kAll, 6,
                    "unexpected control character (byte 0x00)");
  EXPECT_EXPR_ERROR(std::string("'a\x02'"), kAll, 2, "control character in string (byte 0x02)");
  EXPECT_EXPR_ERROR("1 == 1 €", kAll, 7, "unexpected character '€'");

  // 10 MB: garbage stops at the first bad byte; a valid-looking flood stops at the size limit.
  std::string garbage(10 << 20, '#');
  EXPECT_EXPR_ERROR(garbage, kAll, 0, "unexpected character '#'");
  std::string letters(10 << 20, 'a');
  EXPECT_EXPR_ERROR(letters, kAll, 65536, "expression is longer than 65536 bytes");
  std::string list = "[";
  while (list.size() < (10 << 20)) list += "1,";
  EXPECT_EXPR_ERROR(list, kAll, 65536, "expression is longer than 65536 bytes");
  std::string quoted = "'" + std::string(10 << 20, 'x') + "'";
  EXPECT_EXPR_ERROR(quoted, kAll, 65536, "expression is longer than 65536 bytes");
}

// Random bytes and random token soup: every outcome is a clean error or an expression that
// evaluates without crashing (ASan/UBSan watch the rest).
TEST(Expr, FuzzNeverCrashes) {
  std::mt19937 rng(12345);
  MapScope s;
  s.Set("customer.orders", Value::Number(3));
  s.SetString("customer.birthday", "1990-05-17");
  s.SetString("event.type", "purchase");
  s.SetStrings("customer.tags", {"vip"});
  s.Set("event.data.total", Value::Number(0));
  int parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    size_t len = rng() % 40;
    for (size_t i = 0; i < len; ++i) text += static_cast<char>(rng() % 256);
    ExprError err;
    auto e = Expr::Parse(text, kAll, &err);
    if (e) {
      e->Eval(s);
    } else {
      EXPECT_FALSE(err.message.empty());
      EXPECT_LE(err.offset, text.size());
    }
  }
  const char* vocab[] = {"customer.orders",
                         "customer.birthday",
                         "event.type",
                         "customer.tags",
                         "event.data.total",
                         "now",
                         "3d",
                         "1",
                         "0",
                         "-",
                         "+",
                         "*",
                         "/",
                         "==",
                         "!=",
                         "<",
                         ">=",
                         "&&",
                         "||",
                         "!",
                         "(",
                         ")",
                         "[",
                         "]",
                         ",",
                         "in",
                         "null",
                         "true",
                         "'vip'",
                         "\"2026-06-01\"",
                         "1e308"};
  constexpr size_t kVocab = sizeof(vocab) / sizeof(vocab[0]);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    size_t len = 1 + rng() % 12;
    for (size_t i = 0; i < len; ++i) {
      text += vocab[rng() % kVocab];
      text += ' ';
    }
    ExprError err;
    auto e = Expr::Parse(text, kAll, &err);
    if (e) {
      ++parsed;
      Value v = e->Eval(s);
      (void)e->Test(s);
      std::string out;
      v.AppendText(out);
    } else {
      EXPECT_FALSE(err.message.empty()) << text;
      EXPECT_LE(err.offset, text.size()) << text;
    }
  }
  EXPECT_GT(parsed, 100);  // the soup produces real expressions, not only errors
}

TEST(Expr, CopiesShareTheTreeSafely) {
  MapScope s;
  s.SetString("event.type", "refund");
  Expr copy;
  {
    auto original = TryParse("event.type in [\"purchase\", \"refund\"]");
    ASSERT_TRUE(original);
    copy = *original;
    Expr moved = std::move(*original);
    EXPECT_TRUE(moved.Test(s));
  }
  EXPECT_TRUE(copy.Test(s));
  EXPECT_EQ(copy.text(), "event.type in [\"purchase\", \"refund\"]");
  Expr a = MustParse("['short', 'a string too long for small-string storage']");
  Expr b = a;
  a = Expr();
  Value v = b.Eval(s);
  ASSERT_EQ(v.type(), ValueType::kList);
  ASSERT_EQ(v.as_list().size(), 2u);
  EXPECT_EQ(v.as_list()[0].as_string(), "short");
  EXPECT_EQ(v.as_list()[1].as_string(), "a string too long for small-string storage");
}

TEST(Expr, EvalDoesNotAllocate) {
#if JOURNEYD_COUNT_ALLOCATIONS
  static const bool installed = __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree) != 0;
  ASSERT_TRUE(installed);
#else
  GTEST_SKIP() << "allocation counting needs the AddressSanitizer build";
#endif
  MapScope s;
  s.SetString("customer.points_expire_at", "2026-06-01");
  s.SetString("event.type", "refund");
  s.SetStrings("customer.tags", {"vip"});
  s.Set("event.data.total", Value::Number(42));
  const char* texts[] = {
      "customer.points_expire_at - 3d > now && event.type in [\"purchase\", \"refund\"]",
      "\"vip\" in customer.tags || event.data.total * 2 >= 80",
      "event.type in [customer.first_name, 'refund'] && 'fun' in event.type",
      "['a', 'b']",
      "-(1d + 2h) / 2 == -13h",
  };
  // The counter works: parsing allocates.
  g_allocations = 0;
  g_counting = true;
  auto parsed = TryParse("customer.first_name == 'a string longer than the small buffer'");
  g_counting = false;
  ASSERT_TRUE(parsed);
  EXPECT_GT(g_allocations.load(), 0);
  for (const char* text : texts) {
    Expr e = MustParse(text);
    g_allocations = 0;
    g_counting = true;
    Value v = e.Eval(s);
    bool t = e.Test(s);
    g_counting = false;
    EXPECT_EQ(g_allocations.load(), 0) << text;
    EXPECT_FALSE(v.is_null()) << text;
    EXPECT_TRUE(t) << text;
  }
}

TEST(Expr, ForEachPathInSourceOrder) {
  Expr e = MustParse(
      "customer.orders > 1 && event.data.total >= 20 || now > trigger.ts && "
      "event.type in ['a', customer.x]");
  std::vector<std::string> texts;
  std::vector<Root> roots;
  std::vector<std::vector<std::string>> segments;
  e.ForEachPath([&](const Path& p) {
    texts.push_back(p.text);
    roots.push_back(p.root);
    segments.push_back(p.segments);
  });
  EXPECT_EQ(texts, (std::vector<std::string>{"customer.orders", "event.data.total", "now",
                                             "trigger.ts", "event.type", "customer.x"}));
  EXPECT_EQ(roots, (std::vector<Root>{Root::kCustomer, Root::kEvent, Root::kNow, Root::kTrigger,
                                      Root::kEvent, Root::kCustomer}));
  EXPECT_EQ(segments[1], (std::vector<std::string>{"data", "total"}));
  EXPECT_TRUE(segments[2].empty());
  int calls = 0;
  Expr().ForEachPath([&](const Path&) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(Expr, KnownTypeAndCheckPath) {
  auto path = [](Root root, std::vector<std::string> segs) {
    Path p;
    p.root = root;
    p.segments = std::move(segs);
    return p;
  };
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"orders"})), StaticType::kNumber);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"revenue"})), StaticType::kNumber);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"birthday"})), StaticType::kTime);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"last_purchase_at"})), StaticType::kTime);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"locale"})), StaticType::kString);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"email_opt_in"})), StaticType::kBool);
  EXPECT_EQ(KnownType(path(Root::kCustomer, {"tier"})), StaticType::kAny);
  EXPECT_EQ(KnownType(path(Root::kEvent, {"customer_id"})), StaticType::kString);
  EXPECT_EQ(KnownType(path(Root::kEvent, {"ts"})), StaticType::kTime);
  EXPECT_EQ(KnownType(path(Root::kEvent, {"data", "ts"})), StaticType::kAny);
  EXPECT_EQ(KnownType(path(Root::kEvent, {"profile", "email"})), StaticType::kAny);
  EXPECT_EQ(KnownType(path(Root::kNow, {})), StaticType::kTime);

  EXPECT_EQ(CheckPath(path(Root::kEvent, {"type"})), "");
  EXPECT_EQ(CheckPath(path(Root::kEvent, {"data", "total"})), "");
  EXPECT_EQ(CheckPath(path(Root::kEvent, {"profile", "tier"})), "");
  EXPECT_EQ(CheckPath(path(Root::kTrigger, {"data", "total"})), "");
  EXPECT_EQ(CheckPath(path(Root::kCustomer, {"tier"})), "");
  EXPECT_EQ(CheckPath(path(Root::kNow, {})), "");
  EXPECT_EQ(CheckPath(path(Root::kVar, {"percent"})), "");
  EXPECT_EQ(CheckPath(path(Root::kEvent, {"totl"})),
            "unknown event field 'totl'; use event.data.totl for the event's data");
  EXPECT_EQ(CheckPath(path(Root::kTrigger, {"amount"})),
            "unknown trigger field 'amount'; use trigger.data.amount for the event's data");
  EXPECT_EQ(CheckPath(path(Root::kTrigger, {"profile", "x"})),
            "trigger.profile is not kept: use customer.* for the customer's profile");
  EXPECT_NE(CheckPath(path(Root::kEvent, {"data"})), "");
  EXPECT_NE(CheckPath(path(Root::kEvent, {})), "");
}

TEST(Expr, ShippedFlowExpressions) {
  MapScope s;
  s.Set("customer.orders", Value::Number(1));
  s.Set("event.data.total", Value::Number(25));
  EXPECT_TRUE(MustParse("customer.orders == 1 && event.data.total >= 20").Test(s));
  s.Set("event.data.total", Value::Number(19.99));
  EXPECT_FALSE(MustParse("customer.orders == 1 && event.data.total >= 20").Test(s));
  s.Set("customer.points", Value::Number(10));
  EXPECT_TRUE(MustParse("customer.points > 0", kNone).Test(s));
  s.Set("trigger.data.total", Value::Number(50));
  EXPECT_TRUE(MustParse("trigger.data.total >= 50").Test(s));
  s.Set("trigger.data.total", Value::Number(49.5));
  EXPECT_FALSE(MustParse("trigger.data.total >= 50").Test(s));
}

}  // namespace
}  // namespace journeyd::flow
