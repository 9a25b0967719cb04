// See outbox.h.
#include "journeyd/store/outbox.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "journeyd/common/time.h"
#include "journeyd/engine/json.h"

namespace journeyd::store {

std::string OutboxJob(const engine::SendJob& j) {
  std::string out;
  out.reserve(96 + j.step.size() + j.template_name.size() + j.unsubscribe_url.size());
  out += R"({"step":)";
  engine::AppendJsonString(out, j.step);
  out += R"(,"run":)";
  char digits[16];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, j.run).ptr);
  out += j.marketing ? R"(,"marketing":true,"template":)" : R"(,"marketing":false,"template":)";
  engine::AppendJsonString(out, j.template_name);
  out += R"(,"at":")";  // digits, '-', ':', '.', 'T' and 'Z': nothing to escape
  AppendRfc3339(out, j.at);
  out += '"';
  if (!j.locale.empty()) {
    out += R"(,"locale":)";
    engine::AppendJsonString(out, j.locale);
  }
  if (!j.unsubscribe_url.empty()) {
    out += R"(,"unsubscribe_url":)";
    engine::AppendJsonString(out, j.unsubscribe_url);
  }
  out += '}';
  return out;
}

bool ReadOutboxJob(std::string_view text, engine::SendJob* j, std::string* error) {
  nlohmann::json o;
  if (!engine::ParseJson(text, &o, 4) || !o.is_object()) {
    *error = "the job field is not a JSON object";
    return false;
  }
  auto text_of = [&](const char* name, std::string* to, bool required) {
    auto it = o.find(name);
    if (it == o.end()) {
      if (required) *error = std::string("the job field has no ") + name;
      to->clear();
      return !required;
    }
    if (!it->is_string()) {
      *error = std::string("the job field's ") + name + " is not a string";
      return false;
    }
    *to = it->get_ref<const std::string&>();
    return true;
  };
  std::string at;
  if (!text_of("step", &j->step, true) || !text_of("template", &j->template_name, true) ||
      !text_of("at", &at, true) || !text_of("locale", &j->locale, false) ||
      !text_of("unsubscribe_url", &j->unsubscribe_url, false)) {
    return false;
  }
  auto when = ParseTimestamp(at);
  if (!when) {
    *error = "the job field's at is not a time: " + at;
    return false;
  }
  j->at = *when;
  auto run = o.find("run");
  const bool whole = run != o.end() && (run->is_number_unsigned() ||
                                        (run->is_number_integer() && run->get<int64_t>() >= 0));
  if (!whole || run->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
    *error = "the job field's run is not a journey run number";
    return false;
  }
  j->run = static_cast<uint32_t>(run->get<uint64_t>());
  auto marketing = o.find("marketing");
  if (marketing == o.end() || !marketing->is_boolean()) {
    *error = "the job field's marketing is not true or false";
    return false;
  }
  j->marketing = marketing->get<bool>();
  return true;
}

}  // namespace journeyd::store
