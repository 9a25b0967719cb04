// A Scope for the expression and template fuzzers: every path has a value, its type and
// content picked by a few bytes of the input, so that one input reaches comparisons of
// numbers, strings, times, durations and lists, and the edge values among them (NaN,
// infinities, the first and last representable days, text with CR and LF).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "journeyd/common/hash.h"
#include "journeyd/flow/expr.h"

namespace journeyd::fuzz {

class FuzzScope final : public flow::Scope {
 public:
  // `choice` picks the values; it may be empty (every path is then the first kind). With
  // `as_stored`, only values a customer's state, an event or a profile can hold: no NaN or
  // infinity (arithmetic makes those null, JSON has none) and no invalid UTF-8 (every input is
  // checked); text with CR and LF stays.
  explicit FuzzScope(std::string_view choice, bool as_stored = false)
      : choice_(choice), as_stored_(as_stored) {
    for (size_t i = 0; i < list_.size(); ++i) list_[i] = Value(static_cast<uint8_t>(i * 7 + 3));
  }

  flow::Value Lookup(const flow::Path& path) const override {
    const uint64_t h = StableHash64(path.text);
    const uint8_t b = choice_.empty() ? 0 : static_cast<uint8_t>(choice_[h % choice_.size()]);
    if (b % 16 == 15) return flow::Value::List(list_);
    return Value(b);
  }
  TimePoint Now() const override { return FromUnixMillis(1779278400000); }  // 2026-05-20

 private:
  static constexpr std::array<std::string_view, 8> kText = {
      "",          "Anna", "2026-05-17",   "1990-02-29", "\r\nBcc: victim@example.com",
      "a\x80\xff", "0",    "1779278400000"};

  flow::Value Value(uint8_t b) const {
    flow::Value v = Pick(b);
    if (!as_stored_) return v;
    if (v.type() == flow::ValueType::kNumber && !std::isfinite(v.as_number())) {
      return flow::Value::Null();
    }
    if (v.type() == flow::ValueType::kString && v.as_string() == kText[5]) {
      return flow::Value::String("a\xc3\xa9");  // "aé": valid, and not ASCII
    }
    return v;
  }

  static flow::Value Pick(uint8_t b) {
    constexpr double kNum[] = {0,   -0.0, 1,     -1,     19.995,  1e308, -1e308,     2.5e-324,
                               1e6, 3e15, 1e300, 9.2e18, -9.2e18, 0.001, 123456789.5};
    // Times and durations as a customer's state can hold them: within 0001-01-01 and
    // 9999-12-31, the range the state codec keeps.
    constexpr int64_t kMs[] = {0, 1, -1, 86400000, 253402300799999, -62135596800000, 1779278400000};
    const uint8_t v = b / 16;
    switch (b % 16) {
      case 0:
        return flow::Value::Null();
      case 1:
        return flow::Value::Bool(v & 1);
      case 2:
      case 3:
        return flow::Value::Number(kNum[v % std::size(kNum)]);
      case 4:
        return flow::Value::Number(v & 1 ? std::numeric_limits<double>::quiet_NaN()
                                         : (v & 2 ? -1 : 1) *
                                               std::numeric_limits<double>::infinity());
      case 5:
      case 6:
      case 7:
        return flow::Value::String(kText[v % kText.size()]);
      case 8:
      case 9:
        return flow::Value::Time(FromUnixMillis(kMs[v % std::size(kMs)]));
      case 10:
      case 11:
        return flow::Value::Dur(Duration{kMs[v % std::size(kMs)]});
      default:
        return flow::Value::Number(static_cast<double>(v));
    }
  }

  std::string_view choice_;
  bool as_stored_;
  std::array<flow::Value, 5> list_;
};

}  // namespace journeyd::fuzz
