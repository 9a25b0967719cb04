// The fields of a send job in `{N}:outbox` (SPEC §4): what the commit writes and the sender
// reads back. The mail itself is not there: `template`, `locale` and `vars` are what the
// sender renders it from (engine/render.h).
//
// An entry has six fields: `job_id`, `customer_id`, `flow` and `to` as themselves, `vars`
// (the template's values, a JSON object) and `job`, a JSON object with the rest:
//
//   {"step":"mail1","run":1,"marketing":true,"template":"winback_1","at":"2026-...Z",
//    "locale":"de"}
//
// (`locale` only when not empty). A marketing mail's unsubscribe link is signed by the sender
// when it sends the job (app/sender.cpp), not stored: it was a third of the entry. A job that
// carries `unsubscribe_url` (earlier versions wrote it) is sent with that link.
//
// Redis's cost of an XADD grows with its number of fields, and a commit adds one per mail:
// with twelve fields the outbox XADD took 2.9 to 3.5 µs of Redis per mail, with six 2.4 to 2.7
// (`journeyd-bench --redis-commands`). Entries written by earlier versions, with `step`, `run`,
// `marketing`, `template`, `locale`, `unsubscribe_url` and `at` as fields of their own, are
// read too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "journeyd/engine/engine.h"

namespace journeyd::store {

// The `job` field of `j`.
std::string OutboxJob(const engine::SendJob& j);

// Reads a `job` field into `j`'s step, run, marketing, template_name, locale, at and
// unsubscribe_url; false with `*error` naming what is wrong.
bool ReadOutboxJob(std::string_view text, engine::SendJob* j, std::string* error);

// Calls `add(name, value)` for each field, in order (string_views valid during the call).
template <typename Add>
void ForEachOutboxField(const engine::SendJob& j, Add&& add) {
  add("job_id", j.job_id);
  add("customer_id", j.customer_id);
  add("flow", j.flow);
  add("to", j.to);
  add("vars", j.vars);
  const std::string job = OutboxJob(j);
  add("job", job);
}

inline std::vector<std::string> OutboxFields(const engine::SendJob& j) {
  std::vector<std::string> f;
  f.reserve(12);
  ForEachOutboxField(j, [&f](std::string_view k, std::string_view v) {
    f.emplace_back(k);
    f.emplace_back(v);
  });
  return f;
}

}  // namespace journeyd::store
