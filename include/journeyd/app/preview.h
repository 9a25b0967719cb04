// journeyctl preview: the exact mail a send step would hand the relay for one customer, built
// by the code the outbox sender uses (the engine's job, rendered from its snapshot, the
// message with its headers and signed unsubscribe link), written as an .eml and an .html file.
#pragma once

#include <ostream>
#include <string>

#include "journeyd/app/config.h"

namespace journeyd::app {

struct PreviewRequest {
  std::string flow, step;
  // The customer: their state in Redis, or a profile (a JSON object, as an event's `profile`).
  std::string customer_id;
  std::string profile_json;
  std::string locale;             // the template's language; the customer's when empty
  std::string trigger_data_json;  // the trigger event's `data` (a cart's items, an order's)
  std::string out_dir = ".";
};

// Writes `<out>/<flow>.<step>[.<locale>].eml` and `.html` (the html part, or the text part
// when the template has none), prints the subject and the two paths on `out`; 0, or 1 with
// the reason on `err`.
int RunPreview(const Config& config, const PreviewRequest& request, std::ostream& out,
               std::ostream& err);

}  // namespace journeyd::app
