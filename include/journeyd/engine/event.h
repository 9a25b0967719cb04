// Customer events as the shop sends them (SPEC §3), checked field by field.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/engine/json.h"

namespace journeyd::engine {

struct Event {
  std::string type;
  std::string customer_id;
  std::string event_id;  // "" when the shop gave none
  TimePoint ts{};
  nlohmann::json data;  // object (empty object when absent)
  // The profile attributes the event sets, sorted by name, one per name (a null removes the
  // attribute): read straight from the field's text, without building a JSON object first.
  FlatObject profile;
};

inline constexpr size_t kMaxFieldBytes = 64 * 1024;

struct EventError {
  std::string field;    // the field at fault: "type", "customer_id", "data", ...
  std::string message;  // "data is not a JSON object (got an array)"
  std::string ToString() const { return field.empty() ? message : field + ": " + message; }
};

// Builds an Event from a stream entry's field/value pairs. `default_ts` is the entry id's
// time. `now` bounds `ts`: an event more than a day in the future is refused.
// Returns the first problem found (the entry then goes to the dead stream).
// The fields are views into the entry as read (the daemon's reply): nothing is copied before
// it is known to be wanted.
using FieldView = std::pair<std::string_view, std::string_view>;
std::optional<Event> EventFromFields(std::span<const FieldView> fields, TimePoint default_ts,
                                     TimePoint now, EventError* error);
std::optional<Event> EventFromFields(const std::vector<std::pair<std::string, std::string>>& fields,
                                     TimePoint default_ts, TimePoint now, EventError* error);

// The same from a JSON object (a line of a simulate timeline): `data`/`profile` as objects,
// `ts` required (RFC 3339 or Unix ms).
std::optional<Event> EventFromJson(const nlohmann::json& object, EventError* error);

// A profile given as a JSON object (EventFromJson; tests and tools that build events in
// memory), checked as an entry's `profile` field is: into `*out`, or false with the first
// attribute at fault named in `*error`.
bool ProfileFromJson(const nlohmann::json& object, FlatObject* out, EventError* error);

// Checks shared by both: type pattern, customer id bytes, profile attribute types.
bool ValidEventType(std::string_view type);
bool ValidCustomerId(std::string_view id);
bool ValidUtf8(std::string_view s);

}  // namespace journeyd::engine
