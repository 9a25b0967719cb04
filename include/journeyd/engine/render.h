// A send job's mail is rendered when it is sent, not when its step runs.
//
// The step's commit stores in the job only the values the template looks up (`vars`, a small
// JSON object: `{"customer.first_name":"Anna","percent":15}`); the outbox sender renders the
// template with them. A send job in Redis is then a few hundred bytes instead of the whole
// mail, and the mail is still exactly what the customer's state was when the step ran: the
// same job renders the same mail on every retry. `simulate` renders through the same path.
#pragma once

#include <string>
#include <string_view>

#include "journeyd/engine/engine.h"
#include "journeyd/flow/flow.h"

namespace journeyd::engine {

// The values the template's placeholders look up in `scope`, as a JSON object keyed by the
// path (`customer.first_name`, `trigger.data.total`, a step variable's bare name). Left out:
// missing values, and what the job itself carries (`now` is the job's `at`; `unsubscribe_url`,
// `flow_id` and `step_id` come from its fields). Times are written as {"time_ms": n},
// durations as {"duration_ms": n}.
std::string SnapshotVars(const flow::Template& t, const flow::Scope& scope);

// Fills job.subject, job.text and job.html from `t` and job.vars. False, with the reason in
// `*error`, when job.vars is not such a JSON object.
bool RenderSendJob(const flow::Template& t, SendJob& job, std::string* error);

// The same, with the template named by job.template_name in its variant job.locale.
bool RenderSendJob(const flow::TemplateSet& templates, SendJob& job, std::string* error);

// `s` as one header-safe line: control characters (CR and LF among them) become one space.
std::string OneLine(std::string_view s);

}  // namespace journeyd::engine
