// The values expressions and templates compute with. A Value never owns memory: strings
// and lists point into the expression tree or into the Scope that produced them, so
// evaluation allocates nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "journeyd/common/time.h"

namespace journeyd::flow {

enum class ValueType : uint8_t { kNull, kBool, kNumber, kString, kDuration, kTime, kList };

class Value {
 public:
  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b) {
    Value v;
    v.type_ = ValueType::kBool;
    v.num_ = b ? 1 : 0;
    return v;
  }
  static Value Number(double d) {
    Value v;
    v.type_ = ValueType::kNumber;
    v.num_ = d;
    return v;
  }
  static Value String(std::string_view s) {
    Value v;
    v.type_ = ValueType::kString;
    v.str_ = s;
    return v;
  }
  static Value Dur(Duration d) {
    Value v;
    v.type_ = ValueType::kDuration;
    v.ms_ = d.count();
    return v;
  }
  static Value Time(TimePoint t) {
    Value v;
    v.type_ = ValueType::kTime;
    v.ms_ = ToUnixMillis(t);
    return v;
  }
  static Value List(std::span<const Value> items) {
    Value v;
    v.type_ = ValueType::kList;
    v.list_ = items;
    return v;
  }

  ValueType type() const { return type_; }
  bool is_null() const { return type_ == ValueType::kNull; }
  bool as_bool() const { return num_ != 0; }
  double as_number() const { return num_; }
  std::string_view as_string() const { return str_; }
  Duration as_duration() const { return Duration{ms_}; }
  TimePoint as_time() const { return FromUnixMillis(ms_); }
  std::span<const Value> as_list() const { return list_; }

  // Truthiness for conditions: null, false, 0 and "" are false; everything else true.
  bool Truthy() const;

  // Text for templates: 3 → "3", 2.5 → "2.5", 19.999 → "19.999", a time → RFC 3339,
  // a duration → "3d", null → "".
  void AppendText(std::string& out) const;
  std::string ToText() const {
    std::string s;
    AppendText(s);
    return s;
  }

  // A time from a time value or from a string that holds a date or timestamp
  // ("1990-05-17", RFC 3339, Unix ms). Profiles hold dates as strings.
  bool ToTime(TimePoint* out) const;

 private:
  ValueType type_ = ValueType::kNull;
  double num_ = 0;
  int64_t ms_ = 0;
  std::string_view str_;
  std::span<const Value> list_;
};

}  // namespace journeyd::flow
