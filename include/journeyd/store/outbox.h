// The fields of a send job in `{N}:outbox` (SPEC §4): what the commit script writes and the
// sender reads back. The mail itself is not there: `template`, `locale` and `vars` are what
// the sender renders it from (engine/render.h).
#pragma once

#include <string>
#include <vector>

#include "journeyd/engine/engine.h"

namespace journeyd::store {

inline std::vector<std::string> OutboxFields(const engine::SendJob& j) {
  std::vector<std::string> f;
  f.reserve(24);
  auto add = [&f](const char* k, std::string v) {
    f.emplace_back(k);
    f.push_back(std::move(v));
  };
  add("job_id", j.job_id);
  add("customer_id", j.customer_id);
  add("flow", j.flow);
  add("step", j.step);
  add("run", std::to_string(j.run));
  add("marketing", j.marketing ? "1" : "0");
  add("template", j.template_name);
  add("locale", j.locale);
  add("to", j.to);
  add("vars", j.vars);
  add("unsubscribe_url", j.unsubscribe_url);
  add("at", FormatRfc3339(j.at));
  return f;
}

}  // namespace journeyd::store
