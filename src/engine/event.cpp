#include "journeyd/engine/event.h"

#include "journeyd/engine/json.h"

#include "journeyd/common/utf8.h"

#include <fmt/format.h>

#include <array>
#include <cmath>

namespace journeyd::engine {
namespace {

constexpr int kMaxJsonDepth = 32;
static_assert(kMaxFieldBytes == 65536 && kMaxJsonDepth == 32, "messages below name them");
// 9999-12-31T23:59:59.999Z: later times cannot be written as RFC 3339.
constexpr int64_t kMaxMillis = 253402300799999;

std::string_view JsonTypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

bool HasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Bracket depth of a JSON text, outside strings; deep nesting is refused before parsing.
int JsonDepth(std::string_view s) {
  int depth = 0, max = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max;
}

bool Fail(EventError* error, std::string field, std::string message) {
  if (error) {
    error->field = std::move(field);
    error->message = std::move(message);
  }
  return false;
}

// Bytes an address may not hold: controls, DEL, and the specials that would let it be read
// as more than one address (or more than an address) in a header.
constexpr std::array<bool, 256> kNotInEmail = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t[0x7f] = true;
  for (unsigned char c : std::string_view(" <>,;\"()[]\\")) t[c] = true;
  return t;
}();

// One '@' with text on both sides, none of kNotInEmail, at most 254 bytes: one pass.
bool ValidEmail(std::string_view e) {
  if (e.size() > 254) return false;
  size_t at = std::string_view::npos;
  for (size_t i = 0; i < e.size(); ++i) {
    const auto c = static_cast<unsigned char>(e[i]);
    if (kNotInEmail[c]) return false;
    if (c == '@') {
      if (at != std::string_view::npos) return false;
      at = i;
    }
  }
  return at != std::string_view::npos && at != 0 && at + 1 < e.size();
}

bool ValidDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  return ParseTimestamp(s).has_value();
}

std::string_view LiteralTypeName(const flow::Literal& v) {
  switch (v.kind) {
    case flow::Literal::Kind::kString:
      return "a string";
    case flow::Literal::Kind::kBool:
      return "a boolean";
    case flow::Literal::Kind::kNull:
      return "null";
    case flow::Literal::Kind::kNumber:
      break;
  }
  return "a number";
}

bool CheckAttributeName(std::string_view key, EventError* error) {
  if (key.empty() || key.size() > 64 || HasControl(key) || !ValidUtf8(key)) {
    return Fail(error, "profile", "attribute names must be 1-64 printable characters");
  }
  return true;
}

// Profile attributes with a meaning must have the right type; others may be any scalar.
bool CheckAttribute(std::string_view key, const flow::Literal& v, EventError* error) {
  using Kind = flow::Literal::Kind;
  if (v.kind == Kind::kNull) return true;  // removes the attribute
  const auto field = [&key] { return std::string("profile.").append(key); };  // when refused
  auto need_string = [&]() {
    if (v.kind != Kind::kString) {
      return Fail(error, field(), fmt::format("must be text, got {}", LiteralTypeName(v)));
    }
    return true;
  };
  // Comparisons of a view with the names below check the length first.
  if (key == "email") {
    if (!need_string()) return false;
    if (!ValidEmail(v.str)) return Fail(error, field(), "is not a valid e-mail address");
  } else if (key == "first_name" || key == "last_name" || key == "locale" || key == "timezone") {
    if (!need_string()) return false;
  } else if (key == "birthday") {
    if (!need_string()) return false;
    if (!ValidDate(v.str)) return Fail(error, field(), "must be a date as YYYY-MM-DD");
  } else if (key == "points_expire_at" || key == "first_purchase_at" || key == "last_purchase_at") {
    if (!need_string()) return false;
    if (!ParseTimestamp(v.str)) {
      return Fail(error, field(), "must be a date (YYYY-MM-DD) or an RFC 3339 time");
    }
  } else if (key == "points" || key == "orders") {
    if (v.kind != Kind::kNumber || std::floor(v.number) != v.number) {
      return Fail(error, field(),
                  fmt::format("must be a whole number, got {}", LiteralTypeName(v)));
    }
  } else if (key == "revenue") {
    if (v.kind != Kind::kNumber) {
      return Fail(error, field(), fmt::format("must be a number, got {}", LiteralTypeName(v)));
    }
  } else if (key == "email_opt_in") {
    if (v.kind != Kind::kBool) {
      return Fail(error, field(), fmt::format("must be true or false, got {}", LiteralTypeName(v)));
    }
  }
  if (v.kind == Kind::kString) {
    if (v.str.size() > 4096) return Fail(error, field(), "is longer than 4096 bytes");
    if (!ValidUtf8(v.str)) return Fail(error, field(), "is not valid UTF-8");
  }
  return true;
}

bool CheckProfile(const FlatObject& profile, EventError* error) {
  for (const auto& [key, value] : profile) {
    if (!CheckAttributeName(key, error) || !CheckAttribute(key, value, error)) return false;
  }
  return true;
}

bool ParseObject(std::string_view field, std::string_view text, nlohmann::json* out,
                 EventError* error) {
  if (JsonDepth(text) > kMaxJsonDepth) {
    return Fail(error, std::string(field),
                fmt::format("JSON is nested more than {} levels deep", kMaxJsonDepth));
  }
  nlohmann::json j;
  if (!ParseJson(text, &j)) return Fail(error, std::string(field), "is not valid JSON");
  if (!j.is_object()) {
    return Fail(error, std::string(field),
                fmt::format("is not a JSON object (got {})", JsonTypeName(j)));
  }
  *out = std::move(j);
  return true;
}

// `ts` must lie between 1970 and, when `now` is given, a day from now.
bool CheckTs(TimePoint ts, std::string_view text, std::optional<TimePoint> now, EventError* error) {
  if (ToUnixMillis(ts) < 0) return Fail(error, "ts", fmt::format("{} is before 1970", text));
  if (ToUnixMillis(ts) > kMaxMillis || (now && ts > *now + kDay)) {
    return Fail(error, "ts", fmt::format("{} is in the future", text));
  }
  return true;
}

// For JSON built in memory (EventFromJson): nesting, UTF-8 and size, the checks a parse of
// the text would have made. Recursion stops at kMaxJsonDepth + 1. Returns the problem, or "".
std::string_view CheckJsonValue(const nlohmann::json& j, int depth, size_t* bytes) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    *bytes += s.size() + 2;
    return ValidUtf8(s) ? "" : "is not valid UTF-8";
  }
  if (!j.is_structured()) {
    *bytes += 8;
    return "";
  }
  if (depth > kMaxJsonDepth) return "is nested more than 32 levels deep";
  *bytes += 2;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (j.is_object()) {
      *bytes += it.key().size() + 3;
      if (!ValidUtf8(it.key())) return "is not valid UTF-8";
    }
    std::string_view why = CheckJsonValue(it.value(), depth + 1, bytes);
    if (!why.empty()) return why;
    if (*bytes > kMaxFieldBytes) return "is over 65536 bytes";
  }
  return "";
}

bool CheckCommon(const Event& e, EventError* error) {
  if (!ValidEventType(e.type)) {
    return Fail(error, "type",
                fmt::format("'{}' is not an event type: use 1-64 characters of a-z, 0-9, _ . -",
                            e.type.size() > 64 || HasControl(e.type) ? "..." : e.type));
  }
  if (!ValidCustomerId(e.customer_id)) {
    return Fail(error, "customer_id",
                e.customer_id.empty()        ? "is empty"
                : e.customer_id.size() > 128 ? "is longer than 128 bytes"
                                             : "contains control characters or invalid UTF-8");
  }
  if (e.event_id.size() > 128 || HasControl(e.event_id) || !ValidUtf8(e.event_id)) {
    return Fail(error, "event_id", "must be at most 128 printable characters");
  }
  return true;
}

}  // namespace

bool ValidUtf8(std::string_view s) { return journeyd::ValidUtf8(s); }

bool ValidEventType(std::string_view type) {
  if (type.empty() || type.size() > 64) return false;
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

bool ValidCustomerId(std::string_view id) {
  return !id.empty() && id.size() <= 128 && !HasControl(id) && ValidUtf8(id);
}

namespace {

// The stream entry fields SPEC §3 names; others are kept in the entry but not read.
enum class KnownField : uint8_t { kOther, kType, kCustomerId, kEventId, kTs, kData, kProfile };

KnownField Classify(std::string_view name) {
  switch (name.size()) {
    case 2:
      return name == "ts" ? KnownField::kTs : KnownField::kOther;
    case 4:
      return name == "type"   ? KnownField::kType
             : name == "data" ? KnownField::kData
                              : KnownField::kOther;
    case 7:
      return name == "profile" ? KnownField::kProfile : KnownField::kOther;
    case 8:
      return name == "event_id" ? KnownField::kEventId : KnownField::kOther;
    case 11:
      return name == "customer_id" ? KnownField::kCustomerId : KnownField::kOther;
    default:
      return KnownField::kOther;
  }
}

}  // namespace

bool ProfileFromJson(const nlohmann::json& object, FlatObject* out, EventError* error) {
  out->clear();
  if (!object.is_object()) {
    return Fail(error, "profile",
                fmt::format("is not a JSON object (got {})", JsonTypeName(object)));
  }
  out->reserve(object.size());
  for (auto it = object.begin(); it != object.end(); ++it) {  // by name, as FlatObject is
    const std::string_view key = it.key();
    const nlohmann::json& v = it.value();
    if (!CheckAttributeName(key, error)) return false;
    if (v.is_object() || v.is_array()) {
      return Fail(error, std::string("profile.").append(key),
                  "must be text, a number, true/false or null");
    }
    flow::Literal a;  // null unless set below
    if (v.is_string()) {
      a.kind = flow::Literal::Kind::kString;
      a.str = v.get<std::string>();
    } else if (v.is_boolean()) {
      a.kind = flow::Literal::Kind::kBool;
      a.b = v.get<bool>();
    } else if (v.is_number()) {
      a.kind = flow::Literal::Kind::kNumber;
      a.number = v.get<double>();
    }
    if (!CheckAttribute(key, a, error)) return false;
    out->emplace_back(std::string(key), std::move(a));
  }
  return true;
}

std::optional<Event> EventFromFields(const std::vector<std::pair<std::string, std::string>>& fields,
                                     TimePoint default_ts, TimePoint now, EventError* error) {
  std::vector<FieldView> views(fields.begin(), fields.end());
  return EventFromFields(std::span<const FieldView>(views), default_ts, now, error);
}

std::optional<Event> EventFromFields(std::span<const FieldView> fields, TimePoint default_ts,
                                     TimePoint now, EventError* error) {
  Event e;
  e.ts = default_ts;
  e.data = nlohmann::json::object();
  // A profile that is not a flat object of scalars is parsed as JSON and checked at the end.
  std::optional<nlohmann::json> profile_json;
  bool has_type = false, has_customer = false;
  unsigned seen = 0;  // bits of the known fields read so far
  for (const auto& [name, value] : fields) {
    if (value.size() > kMaxFieldBytes) {
      Fail(error,
           std::string(name.size() <= 64 && !HasControl(name) && ValidUtf8(name) ? name : "?"),
           fmt::format("is {} bytes; the limit is {} bytes", value.size(), kMaxFieldBytes));
      return std::nullopt;
    }
    const KnownField known = Classify(name);
    if (known == KnownField::kOther) continue;
    const unsigned bit = 1u << static_cast<unsigned>(known);
    if (seen & bit) {
      Fail(error, std::string(name), fmt::format("field '{}' given twice", name));
      return std::nullopt;
    }
    seen |= bit;
    if (!ValidUtf8(value)) {
      Fail(error, std::string(name), "is not valid UTF-8");
      return std::nullopt;
    }
    if (known == KnownField::kType) {
      e.type = value;
      has_type = true;
    } else if (known == KnownField::kCustomerId) {
      e.customer_id = value;
      has_customer = true;
    } else if (known == KnownField::kEventId) {
      e.event_id = value;
    } else if (known == KnownField::kTs) {
      auto t = ParseTimestamp(value);
      if (!t) {
        Fail(error, "ts", "must be an RFC 3339 time or Unix milliseconds");
        return std::nullopt;
      }
      if (!CheckTs(*t, value, now, error)) return std::nullopt;
      e.ts = *t;
    } else if (known == KnownField::kData) {
      if (!ParseObject("data", value, &e.data, error)) return std::nullopt;
    } else if (!ParseFlatObject(value, &e.profile)) {
      if (!ParseObject("profile", value, &profile_json.emplace(), error)) return std::nullopt;
    }
  }
  if (!has_type) {
    Fail(error, "type", "is missing");
    return std::nullopt;
  }
  if (!has_customer) {
    Fail(error, "customer_id", "is missing");
    return std::nullopt;
  }
  if (!CheckCommon(e, error)) return std::nullopt;
  // The entry id's time (no ts field) must be printable too.
  if (ToUnixMillis(e.ts) < 0 || ToUnixMillis(e.ts) > kMaxMillis) {
    if (!CheckTs(e.ts, fmt::format("{} ms", ToUnixMillis(e.ts)), std::nullopt, error)) {
      return std::nullopt;
    }
  }
  if (profile_json ? !ProfileFromJson(*profile_json, &e.profile, error)
                   : !CheckProfile(e.profile, error)) {
    return std::nullopt;
  }
  return e;
}

std::optional<Event> EventFromJson(const nlohmann::json& o, EventError* error) {
  if (!o.is_object()) {
    Fail(error, "", "an event is a JSON object");
    return std::nullopt;
  }
  Event e;
  e.data = nlohmann::json::object();
  nlohmann::json profile = nlohmann::json::object();
  auto str = [&](const char* key, std::string* out, bool required) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) {
      if (required) return Fail(error, key, "is missing");
      return true;
    }
    if (!it->is_string()) {
      return Fail(error, key, fmt::format("must be a string, got {}", JsonTypeName(*it)));
    }
    *out = it->get<std::string>();
    return true;
  };
  if (!str("type", &e.type, true) || !str("customer_id", &e.customer_id, true) ||
      !str("event_id", &e.event_id, false)) {
    return std::nullopt;
  }
  auto ts = o.find("ts");
  if (ts == o.end()) {
    Fail(error, "ts", "is missing");
    return std::nullopt;
  }
  std::optional<TimePoint> t;
  std::string text;
  if (ts->is_string()) {
    text = ts->get<std::string>();
    t = ParseTimestamp(text);
  } else if (ts->is_number_unsigned()) {
    text = ts->dump();
    if (ts->get<uint64_t>() <= static_cast<uint64_t>(kMaxMillis)) {
      t = FromUnixMillis(static_cast<int64_t>(ts->get<uint64_t>()));
    } else {
      t = FromUnixMillis(kMaxMillis + 1);  // refused below as in the future
    }
  } else if (ts->is_number_integer()) {
    text = ts->dump();
    t = FromUnixMillis(ts->get<int64_t>());
  }
  if (!t) {
    Fail(error, "ts", "must be an RFC 3339 time or Unix milliseconds");
    return std::nullopt;
  }
  if (!CheckTs(*t, text, std::nullopt, error)) return std::nullopt;
  e.ts = *t;
  for (const char* key : {"data", "profile"}) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) continue;
    if (!it->is_object()) {
      Fail(error, key, fmt::format("is not a JSON object (got {})", JsonTypeName(*it)));
      return std::nullopt;
    }
    size_t bytes = 0;
    std::string_view why = CheckJsonValue(*it, 1, &bytes);
    if (!why.empty()) {
      Fail(error, key, std::string(why));
      return std::nullopt;
    }
    (std::string_view(key) == "data" ? e.data : profile) = *it;
  }
  if (!CheckCommon(e, error) || !ProfileFromJson(profile, &e.profile, error)) return std::nullopt;
  return e;
}

}  // namespace journeyd::engine
