// Mails rendered at send time from the values a step's commit kept. See render.h.
#include "journeyd/engine/render.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <vector>

#include "journeyd/engine/json.h"

namespace journeyd::engine {
namespace {

using flow::Path;
using flow::Root;
using flow::Value;
using flow::ValueType;

// What the job carries itself, so the snapshot leaves it out.
bool FromJob(const Path& p) {
  if (p.root == Root::kNow) return true;
  if (p.root != Root::kVar || p.segments.size() != 1) return false;
  const std::string& n = p.segments[0];
  return n == "unsubscribe_url" || n == "flow_id" || n == "step_id";
}

// "customer.first_name", "trigger.data.total", "percent" (a step variable).
void AppendKey(std::string& out, const Path& p) {
  switch (p.root) {
    case Root::kCustomer:
      out += "customer";
      break;
    case Root::kEvent:
      out += "event";
      break;
    case Root::kTrigger:
      out += "trigger";
      break;
    case Root::kNow:
      out += "now";
      break;
    case Root::kVar:
      break;
  }
  for (const std::string& s : p.segments) {
    if (p.root != Root::kVar || &s != &p.segments.front()) out += '.';
    out += s;
  }
}

void AppendJsonValue(std::string& out, const Value& v) {
  switch (v.type()) {
    case ValueType::kNull:
      out += "null";
      return;
    case ValueType::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case ValueType::kNumber:
      if (std::isfinite(v.as_number())) {
        fmt::format_to(std::back_inserter(out), "{}", v.as_number());  // shortest round trip
      } else {
        out += "null";  // renders as nothing, as the number would
      }
      return;
    case ValueType::kString:
      AppendJsonString(out, v.as_string());
      return;
    case ValueType::kDuration:
      fmt::format_to(std::back_inserter(out), R"({{"duration_ms":{}}})", v.as_duration().count());
      return;
    case ValueType::kTime:
      fmt::format_to(std::back_inserter(out), R"({{"time_ms":{}}})", ToUnixMillis(v.as_time()));
      return;
    case ValueType::kList: {
      out += '[';
      bool first = true;
      for (const Value& item : v.as_list()) {
        if (!first) out += ',';
        first = false;
        AppendJsonValue(out, item);
      }
      out += ']';
      return;
    }
  }
}

// The snapshot read back: values by key, viewing into the parsed JSON.
class SnapshotScope final : public flow::Scope {
 public:
  explicit SnapshotScope(const SendJob& job) : job_(job) {}

  bool Parse(std::string* error) {
    if (!ParseJson(job_.vars.empty() ? std::string_view("{}") : job_.vars, &json_) ||
        !json_.is_object()) {
      if (error) *error = "the job's vars are not a JSON object";
      return false;
    }
    values_.reserve(json_.size());
    for (const auto& [key, value] : json_.items()) values_.emplace_back(key, Convert(value));
    return true;
  }

  TimePoint Now() const override { return job_.at; }

  Value Lookup(const Path& p) const override {
    if (p.root == Root::kNow) return Value::Time(job_.at);
    if (FromJob(p)) {
      const std::string& n = p.segments[0];
      if (n == "unsubscribe_url") return Value::String(job_.unsubscribe_url);
      if (n == "flow_id") return Value::String(job_.flow);
      return Value::String(job_.step);
    }
    key_.clear();
    AppendKey(key_, p);
    for (const auto& [k, v] : values_) {
      if (k == key_) return v;
    }
    return Value::Null();
  }

 private:
  // As JsonToValue, and times and durations back from their objects, in a list too (a list
  // of times lost them here once; found by fuzz_template).
  Value Convert(const nlohmann::json& j) {
    // Made on first use: a std::deque allocates as soon as it is constructed, and most jobs'
    // values hold no list.
    if (!lists_) lists_.emplace();
    if (j.is_array()) {
      std::vector<Value>& items = lists_->emplace_back();  // a deque keeps it where it is
      items.reserve(j.size());
      for (const auto& e : j) {
        if (e.is_primitive()) items.push_back(JsonToValue(e, *lists_));
        if (e.is_object()) {
          const Value v = Convert(e);
          if (!v.is_null()) items.push_back(v);
        }
      }
      return Value::List(items);
    }
    if (!j.is_object()) return JsonToValue(j, *lists_);
    if (j.size() == 1 && j.begin().value().is_number_integer()) {
      const int64_t n = j.begin().value().get<int64_t>();
      if (j.begin().key() == "time_ms") return Value::Time(FromUnixMillis(n));
      if (j.begin().key() == "duration_ms") return Value::Dur(Duration{n});
    }
    return Value::Null();
  }

  const SendJob& job_;
  nlohmann::json json_;
  std::vector<std::pair<std::string_view, Value>> values_;
  std::optional<std::deque<std::vector<Value>>> lists_;
  mutable std::string key_;
};

}  // namespace

std::string OneLine(std::string_view s) {
  // Nearly always there is nothing to replace: then the result is the text itself.
  if (std::none_of(s.begin(), s.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x20 || c == 0x7f;
      })) {
    return std::string(s);
  }
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(c);
  }
  return out;
}

std::string SnapshotVars(const flow::Template& t, const flow::Scope& scope) {
  std::string out;
  out.reserve(256);
  out += '{';
  std::vector<const Path*> seen;
  seen.reserve(8);
  std::string key;  // reused for every placeholder
  auto add = [&](const flow::TextTemplate& part) {
    for (const flow::Placeholder& p : part.placeholders()) {
      if (FromJob(p.path)) continue;
      bool dup = false;
      for (const Path* s : seen) {
        dup = dup || (s->root == p.path.root && s->segments == p.path.segments);
      }
      if (dup) continue;
      seen.push_back(&p.path);
      Value v = scope.Lookup(p.path);
      if (v.is_null()) continue;
      if (out.size() > 1) out += ',';
      key.clear();
      AppendKey(key, p.path);
      AppendJsonString(out, key);
      out += ':';
      AppendJsonValue(out, v);
    }
  };
  add(t.subject);
  add(t.text);
  if (t.html) add(*t.html);
  out += '}';
  return out;
}

bool RenderSendJob(const flow::Template& t, SendJob& job, std::string* error) {
  SnapshotScope scope(job);
  if (!scope.Parse(error)) return false;
  job.subject = OneLine(t.subject.Render(scope, false));
  job.text.clear();
  t.text.Render(scope, false, job.text);
  job.html.clear();
  if (t.html) t.html->Render(scope, true, job.html);
  return true;
}

bool RenderSendJob(const flow::TemplateSet& templates, SendJob& job, std::string* error) {
  const flow::Template* t = templates.Find(job.template_name, job.locale);
  if (!t) {
    if (error) *error = fmt::format("template '{}' is not loaded", job.template_name);
    return false;
  }
  return RenderSendJob(*t, job, error);
}

}  // namespace journeyd::engine
