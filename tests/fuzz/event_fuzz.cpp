// A stream entry's fields into an engine::Event (engine/event.h EventFromFields), the
// `data` and `profile` JSON included, and the same bytes as a simulate line (EventFromJson).
// Invariants: an accepted event has a valid type and customer id, an object for data, a time
// no more than a day ahead, and a profile sorted by name with one entry per name; the flat
// profile parser agrees with the general JSON parser whenever it accepts a text.
//
// Input: field names and values alternating, separated by NUL bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "journeyd/engine/event.h"
#include "journeyd/engine/json.h"

using namespace journeyd;

namespace {

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

bool SameLiteral(const flow::Literal& l, const nlohmann::json& j) {
  switch (l.kind) {
    case flow::Literal::Kind::kNull:
      return j.is_null();
    case flow::Literal::Kind::kBool:
      return j.is_boolean() && j.get<bool>() == l.b;
    case flow::Literal::Kind::kNumber:
      return j.is_number() && j.get<double>() == l.number;
    case flow::Literal::Kind::kString:
      return j.is_string() && j.get_ref<const std::string&>() == l.str;
  }
  return false;
}

// ParseFlatObject is a fast path of ParseJson: where it answers, it answers the same.
void CheckFlat(std::string_view text) {
  engine::FlatObject flat;
  if (!engine::ParseFlatObject(text, &flat)) return;
  nlohmann::json j;
  if (!engine::ParseJson(text, &j) || !j.is_object()) Fail("flat parse of non-object", text);
  if (j.size() != flat.size()) Fail("flat parse lost or added names", text);
  for (const auto& [name, literal] : flat) {
    auto it = j.find(name);
    if (it == j.end() || !SameLiteral(literal, *it)) Fail("flat parse differs", text);
  }
}

void CheckEvent(const engine::Event& ev, TimePoint now) {
  if (!engine::ValidEventType(ev.type)) Fail("invalid type accepted", ev.type);
  if (!engine::ValidCustomerId(ev.customer_id)) Fail("invalid customer id", ev.customer_id);
  if (!ev.data.is_object()) Fail("data not an object", ev.data.dump());
  if (ev.ts > now + kDay) Fail("ts more than a day ahead", ev.type);
  for (size_t i = 1; i < ev.profile.size(); ++i) {
    if (!(ev.profile[i - 1].first < ev.profile[i].first)) Fail("profile not sorted", ev.type);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<engine::FieldView> fields;
  std::vector<std::string_view> parts;
  for (size_t at = 0; at <= in.size() && parts.size() < 64;) {
    const size_t nul = std::min(in.find('\0', at), in.size());
    parts.push_back(in.substr(at, nul - at));
    at = nul + 1;
  }
  for (size_t i = 0; i + 1 < parts.size(); i += 2) fields.emplace_back(parts[i], parts[i + 1]);

  const TimePoint entry_time = FromUnixMillis(1779008400000);  // 2026-05-17T09:00:00Z
  const TimePoint now = entry_time + kSecond;
  engine::EventError error;
  std::optional<engine::Event> ev = engine::EventFromFields(fields, entry_time, now, &error);
  if (ev) {
    CheckEvent(*ev, now);
  } else if (error.message.empty()) {
    Fail("refused without a reason", in);
  }
  for (const auto& [name, value] : fields) {
    if (name == "profile" || name == "data") CheckFlat(value);
  }

  // The whole input as one line of a simulate timeline.
  nlohmann::json line;
  if (engine::ParseJson(in, &line) && line.is_object()) {
    engine::EventError json_error;
    if (auto e = engine::EventFromJson(line, &json_error)) {
      if (!engine::ValidEventType(e->type)) Fail("invalid type accepted from JSON", e->type);
    }
  }
  return 0;
}
