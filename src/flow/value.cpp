#include "journeyd/flow/value.h"

#include <fmt/format.h>
#include <cmath>

namespace journeyd::flow {

bool Value::Truthy() const {
  switch (type_) {
    case ValueType::kNull:
      return false;
    case ValueType::kBool:
    case ValueType::kNumber:
      return num_ != 0 && !std::isnan(num_);
    case ValueType::kString:
      return !str_.empty();
    case ValueType::kDuration:
      return ms_ != 0;
    case ValueType::kTime:
      return true;
    case ValueType::kList:
      return !list_.empty();
  }
  return false;
}

void Value::AppendText(std::string& out) const {
  switch (type_) {
    case ValueType::kNull:
      return;
    case ValueType::kBool:
      out += num_ != 0 ? "true" : "false";
      return;
    case ValueType::kNumber: {
      if (!std::isfinite(num_)) return;
      double r = std::round(num_);
      if (r == num_ && std::fabs(num_) < 9e15) {
        fmt::format_to(std::back_inserter(out), "{}", static_cast<int64_t>(r));
      } else {
        fmt::format_to(std::back_inserter(out), "{}", num_);  // shortest round-trip form
      }
      return;
    }
    case ValueType::kString:
      out += str_;
      return;
    case ValueType::kDuration:
      out += FormatDuration(as_duration());
      return;
    case ValueType::kTime:
      out += FormatRfc3339(as_time());
      return;
    case ValueType::kList:
      for (size_t i = 0; i < list_.size(); ++i) {
        if (i) out += ", ";
        list_[i].AppendText(out);
      }
      return;
  }
}

bool Value::ToTime(TimePoint* out) const {
  if (type_ == ValueType::kTime) {
    *out = as_time();
    return true;
  }
  if (type_ == ValueType::kString) {
    auto t = ParseTimestamp(str_);
    if (t) *out = *t;
    return t.has_value();
  }
  return false;
}

}  // namespace journeyd::flow
