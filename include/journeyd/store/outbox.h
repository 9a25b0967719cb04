// The fields of a send job in `{N}:outbox` (SPEC §4): what the commit script writes and the
// sender reads back. The mail itself is not there: `template`, `locale` and `vars` are what
// the sender renders it from (engine/render.h).
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/engine/engine.h"

namespace journeyd::store {

// Calls `add(name, value)` for each field, in order (string_views valid during the call).
template <typename Add>
void ForEachOutboxField(const engine::SendJob& j, Add&& add) {
  add("job_id", j.job_id);
  add("customer_id", j.customer_id);
  add("flow", j.flow);
  add("step", j.step);
  char run[16];
  auto end = std::to_chars(run, run + sizeof run, j.run).ptr;
  add("run", std::string_view(run, static_cast<size_t>(end - run)));
  add("marketing", j.marketing ? "1" : "0");
  add("template", j.template_name);
  add("locale", j.locale);
  add("to", j.to);
  add("vars", j.vars);
  add("unsubscribe_url", j.unsubscribe_url);
  const std::string at = FormatRfc3339(j.at);
  add("at", at);
}

inline std::vector<std::string> OutboxFields(const engine::SendJob& j) {
  std::vector<std::string> f;
  f.reserve(24);
  ForEachOutboxField(j, [&f](std::string_view k, std::string_view v) {
    f.emplace_back(k);
    f.emplace_back(v);
  });
  return f;
}

}  // namespace journeyd::store
