// The journey engine: one pure function that moves a customer through every flow.
//
//   Decisions Step(flows, policy, state, input, now)
//
// No I/O, no clock, no randomness: the daemon, `journeyctl simulate` and the tests all call
// it, so a simulation shows exactly what production will do.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/engine/calendar.h"
#include "journeyd/engine/event.h"
#include "journeyd/engine/rfm.h"
#include "journeyd/engine/state.h"
#include "journeyd/flow/flow.h"

namespace journeyd::engine {

struct Policy {
  std::string timezone = "UTC";  // policy.timezone: for customers without a valid zone
  // Where the customers' and the policy's zones are looked up: the daemon, journeyctl and
  // most tests give the host's tz database (host::SystemTimeZones()); it must outlive Step.
  const TimeZoneDatabase* zones = &UtcOnlyTimeZones();
  // policy.quiet_hours: local minutes [start, end); start == end means none.
  int quiet_start = 0;
  int quiet_end = 0;
  // policy.frequency_cap: at most `cap_count` marketing mails per `cap_window` (0 = no cap).
  int cap_count = 0;
  Duration cap_window{0};
  // Builds the unsubscribe link for a mail at Step (simulate shows a stand-in). The daemon
  // leaves it unset: its outbox sender signs the link when it sends the job (app/sender.cpp).
  std::function<std::string(std::string_view customer_id, std::string_view flow_id,
                            std::string_view job_id)>
      unsubscribe_url;
  // rfm.*: the thresholds of customer.rfm.r, .f and .m.
  RfmThresholds rfm;
  // Render each send job's subject, text and html in Step (simulate, tests). The daemon
  // leaves it off: the outbox sender renders the job from its `vars` (see render.h).
  bool render_mail = true;
};

struct EventInput {
  Event event;
};
struct TimerInput {};
// The address bounced (SMTP 5xx on the recipient): later marketing mail is suppressed.
struct BounceInput {
  std::string email;
};
using Input = std::variant<EventInput, TimerInput, BounceInput>;

// A mail for the outbox: who, which template, and the values it renders with (`vars`);
// subject, text and html are filled once it is rendered (see render.h).
struct SendJob {
  std::string job_id;  // deterministic: customer, flow, run, step
  std::string customer_id;
  std::string flow;
  std::string step;
  uint32_t run = 0;
  bool marketing = true;
  std::string template_name;
  std::string locale;  // of the template variant used ("" = default)
  std::string to;
  std::string subject;
  std::string text;
  std::string html;             // empty when the template has none
  std::string unsubscribe_url;  // empty for transactional mail
  std::string vars;             // the template's values, a JSON object (SnapshotVars)
  TimePoint at{};
};

// Something that happened to a journey: what `simulate` prints and the metrics count.
struct Record {
  enum class Kind : uint8_t { kEnter, kSend, kSuppress, kExit, kConvert };
  Kind kind = Kind::kEnter;
  TimePoint at{};
  std::string customer_id;
  std::string flow;
  std::string step;  // step id ("" for enter/convert without a step)
  uint32_t run = 0;
  std::string template_name;
  std::string subject;
  std::string reason;  // suppress: no_email, no_opt_in, unsubscribed, bouncing, holdout;
                       // exit: completed, exit_on:<type>, restarted, flow_changed,
                       // flow_removed, <exit step reason>
};
std::string_view RecordKindName(Record::Kind k);

struct Decisions {
  bool duplicate = false;  // an event_id seen before: nothing changed
  bool changed = false;    // the state must be stored
  std::vector<SendJob> sends;
  std::vector<Record> records;
  std::vector<std::string> warnings;  // e.g. an unknown time zone (logged by the caller)
};

Decisions Step(const flow::FlowSet& flows, const Policy& policy, CustomerState& state,
               const Input& input, TimePoint now);

// What send step `step_id` of flow `flow_id` would hand the sender for `state` at `now`
// (journeyctl preview): the template in `locale` when given (the customer's `locale`
// otherwise), its values snapshotted from the customer, their journey in the flow (a new run
// of it when they are in none; `trigger_data`, when given, as its trigger event's data) and
// rendered from that snapshot as the sender renders it. Consent, caps and quiet hours are not
// applied: a preview shows the mail, not whether it would go. nullopt with `*error` when the
// flow or step does not exist, the step sends no mail, its template is not loaded, or the
// customer has no email address.
std::optional<SendJob> PreviewSend(const flow::FlowSet& flows, const Policy& policy,
                                   const CustomerState& state, std::string_view flow_id,
                                   std::string_view step_id, std::string_view locale,
                                   const nlohmann::json* trigger_data, TimePoint now,
                                   std::string* error);

// The deterministic job id: 32 hex digits.
std::string JobId(std::string_view customer_id, std::string_view flow, uint32_t run,
                  std::string_view step);

}  // namespace journeyd::engine
