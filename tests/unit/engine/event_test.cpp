// Events from stream fields and from JSON lines (SPEC §3): every refusal names its field.
#include "journeyd/engine/event.h"
#include "journeyd/common/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "journeyd/common/time.h"

namespace journeyd::engine {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

TimePoint Ts(const std::string& rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  if (!t) ADD_FAILURE() << "bad time in test: " << rfc3339;
  return t.value_or(TimePoint{});
}

const TimePoint kEntryTime = Ts("2026-05-17T09:00:00Z");
const TimePoint kNow = Ts("2026-05-17T09:00:01Z");

// The attribute an event's profile sets, or null when it sets none of that name.
const flow::Literal* Attr(const Event& ev, std::string_view name) {
  for (const auto& [key, value] : ev.profile) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::optional<Event> FromFields(const Fields& f, EventError* err) {
  return EventFromFields(f, kEntryTime, kNow, err);
}

// The error text (as the dead stream gets it) for fields that must be refused.
std::string Refusal(const Fields& f) {
  EventError err;
  auto ev = FromFields(f, &err);
  EXPECT_FALSE(ev.has_value()) << "accepted, expected an error";
  EXPECT_FALSE(err.message.empty());
  return err.ToString();
}

Fields Base(Fields extra = {}) {
  Fields f = {{"type", "signup"}, {"customer_id", "c42"}};
  for (auto& kv : extra) f.push_back(std::move(kv));
  return f;
}

std::string Refusal(const nlohmann::json& j) {
  EventError err;
  auto ev = EventFromJson(j, &err);
  EXPECT_FALSE(ev.has_value()) << "accepted: " << j.dump();
  return err.ToString();
}

TEST(EventFields, AMinimalEventTakesTheEntryTime) {
  EventError err;
  auto ev = FromFields(Base(), &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ev->type, "signup");
  EXPECT_EQ(ev->customer_id, "c42");
  EXPECT_EQ(ev->event_id, "");
  EXPECT_EQ(ev->ts, kEntryTime);
  EXPECT_TRUE(ev->data.is_object() && ev->data.empty());
  EXPECT_TRUE(ev->profile.empty());
}

TEST(EventFields, AllFieldsAreRead) {
  EventError err;
  auto ev = FromFields(Base({{"event_id", "order-1001"},
                             {"ts", "2026-05-16T08:30:00.250+02:00"},
                             {"data", R"({"order_id":"1001","total":49.5,"items":[{"sku":"a"}]})"},
                             {"profile", R"({"email":"anna@example.com","first_name":"Anna",
                                "birthday":"1990-04-02","points":120,"email_opt_in":true,
                                "points_expire_at":"2026-09-01","locale":null})"},
                             {"utm_source", "newsletter"}}),
                       &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ev->event_id, "order-1001");
  EXPECT_EQ(FormatRfc3339(ev->ts), "2026-05-16T06:30:00.250Z");
  EXPECT_EQ(ev->data["total"], 49.5);
  EXPECT_EQ(ev->data["items"][0]["sku"], "a");
  ASSERT_EQ(ev->profile.size(), 7u);
  for (size_t i = 1; i < ev->profile.size(); ++i) {
    EXPECT_LT(ev->profile[i - 1].first, ev->profile[i].first);  // sorted by name
  }
  ASSERT_TRUE(Attr(*ev, "points"));
  EXPECT_EQ(Attr(*ev, "points")->kind, flow::Literal::Kind::kNumber);
  EXPECT_EQ(Attr(*ev, "points")->number, 120);
  ASSERT_TRUE(Attr(*ev, "email_opt_in"));
  EXPECT_TRUE(Attr(*ev, "email_opt_in")->b);
  ASSERT_TRUE(Attr(*ev, "first_name"));
  EXPECT_EQ(Attr(*ev, "first_name")->str, "Anna");
  ASSERT_TRUE(Attr(*ev, "locale"));
  EXPECT_EQ(Attr(*ev, "locale")->kind, flow::Literal::Kind::kNull);  // removes it
}

// A flat profile is read without a JSON object built first; any other text takes the general
// parse. Both must give the same attributes, or refuse alike.
TEST(EventFields, AFlatProfileReadsAsTheGeneralParseDoes) {
  const std::vector<std::string> texts = {
      R"({})",
      R"(  { "first_name" : "Anna" , "points" : 12 }  )",
      "\xEF\xBB\xBF{\"first_name\":\"Anna\"}",
      R"({"first_name":"Anna","first_name":"Bea"})",  // the last of duplicates wins
      R"({"z":1,"a":true,"m":null,"b":-2.5e3,"c":"\u00e9\n\"q\""})",
      R"({"points":18446744073709551615})",
      R"({"points":9007199254740993})",
      R"({"x":1e400})",
      R"({"x":01})",
      R"({"x":"a",})",
      R"({"x" "a"})",
      R"({"x":tru})",
      R"({"x":"\ud800"})",
      R"({"tags":["a"],"email":42})",
      R"({"a":{"b":1}})",
      R"({"email":"anna"} x)",
      R"([1])",
      R"("text")",
  };
  const size_t kFlat = 7;  // the first texts are flat objects, the others are not
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& text = texts[i];
    SCOPED_TRACE(text);
    FlatObject flat;
    const bool is_flat = ParseFlatObject(text, &flat);
    EXPECT_EQ(is_flat, i < kFlat);
    nlohmann::json j;
    const bool parsed = ParseJson(text, &j);
    EXPECT_TRUE(!is_flat || parsed) << "only valid JSON reads as flat";
    if (!parsed || !j.is_object()) {
      EXPECT_FALSE(is_flat);
      continue;
    }
    FlatObject general;
    EventError err;
    const bool ok = ProfileFromJson(j, &general, &err);
    if (is_flat) {
      ASSERT_TRUE(ok) << err.ToString();
      ASSERT_EQ(flat.size(), general.size());
      for (size_t k = 0; k < flat.size(); ++k) {
        EXPECT_EQ(flat[k].first, general[k].first);
        EXPECT_EQ(flat[k].second.kind, general[k].second.kind);
        EXPECT_EQ(flat[k].second.b, general[k].second.b);
        EXPECT_EQ(flat[k].second.number, general[k].second.number);
        EXPECT_EQ(flat[k].second.str, general[k].second.str);
      }
    }
    // Whichever way the field is read, the event is accepted or refused alike.
    EventError via_fields;
    auto ev = FromFields(Base({{"profile", text}}), &via_fields);
    EXPECT_EQ(ev.has_value(), ok);
    if (!ok) {
      EXPECT_EQ(via_fields.ToString(), err.ToString());
    }
  }
}

// Long profiles are sorted another way than short ones: the same members must come out.
TEST(EventFields, ALongFlatProfileIsSortedWithTheLastOfDuplicatesKept) {
  std::string text = "{";
  for (int i = 40; i >= 1; --i) {
    if (i != 40) text += ",";
    text += "\"a" + std::to_string(i % 25) + "\":" + std::to_string(i);  // a1..a15 twice
  }
  text += "}";
  FlatObject flat;
  ASSERT_TRUE(ParseFlatObject(text, &flat));
  nlohmann::json j;
  ASSERT_TRUE(ParseJson(text, &j));
  FlatObject general;
  EventError err;
  ASSERT_TRUE(ProfileFromJson(j, &general, &err)) << err.ToString();
  ASSERT_EQ(flat.size(), 25u);
  ASSERT_EQ(general.size(), 25u);
  for (size_t i = 0; i < flat.size(); ++i) {
    EXPECT_EQ(flat[i].first, general[i].first);
    EXPECT_EQ(flat[i].second.number, general[i].second.number) << flat[i].first;
  }
  EXPECT_EQ(flat[0].first, "a0");
  EXPECT_EQ(flat[0].second.number, 25);  // "a0" is 25 only
  EXPECT_EQ(flat[1].first, "a1");
  EXPECT_EQ(flat[1].second.number, 1);  // 26 came first in the text, 1 last
}

TEST(EventFields, UnixMillisecondsAreATime) {
  EventError err;
  auto ev = FromFields(Base({{"ts", "1778922000000"}}), &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ToUnixMillis(ev->ts), 1778922000000);
}

TEST(EventFields, AnUnknownTypeIsAccepted) {
  EventError err;
  auto ev = FromFields({{"type", "review_left"}, {"customer_id", "c7"}}, &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ev->type, "review_left");
  EXPECT_TRUE(FromFields({{"type", "a.b-c_9"}, {"customer_id", "c7"}}, &err));
}

TEST(EventFields, MissingTypeOrCustomer) {
  EXPECT_EQ(Refusal(Fields{{"customer_id", "c1"}}), "type: is missing");
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}}), "customer_id: is missing");
  EXPECT_EQ(Refusal(Fields{}), "type: is missing");
}

TEST(EventFields, BadTypes) {
  EXPECT_NE(Refusal(Fields{{"type", "Signup"}, {"customer_id", "c1"}}).find("type: 'Signup'"),
            std::string::npos);
  EXPECT_NE(Refusal(Fields{{"type", ""}, {"customer_id", "c1"}}).find("type:"), std::string::npos);
  EXPECT_NE(Refusal(Fields{{"type", "sign up"}, {"customer_id", "c1"}}).find("type:"),
            std::string::npos);
  EXPECT_NE(Refusal(Fields{{"type", std::string(65, 'a')}, {"customer_id", "c1"}}).find("type:"),
            std::string::npos);
  EventError err;
  EXPECT_TRUE(FromFields({{"type", std::string(64, 'a')}, {"customer_id", "c1"}}, &err));
}

TEST(EventFields, DataMustBeAJsonObject) {
  EXPECT_EQ(Refusal(Base({{"data", "{nope"}})), "data: is not valid JSON");
  EXPECT_EQ(Refusal(Base({{"data", ""}})), "data: is not valid JSON");
  EXPECT_EQ(Refusal(Base({{"data", "[1,2]"}})), "data: is not a JSON object (got an array)");
  EXPECT_EQ(Refusal(Base({{"data", "\"x\""}})), "data: is not a JSON object (got a string)");
  EXPECT_EQ(Refusal(Base({{"data", "42"}})), "data: is not a JSON object (got a number)");
  EXPECT_EQ(Refusal(Base({{"data", "null"}})), "data: is not a JSON object (got null)");
  EXPECT_EQ(Refusal(Base({{"profile", "true"}})), "profile: is not a JSON object (got a boolean)");
}

TEST(EventFields, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = std::string(33, '[') + std::string(33, ']');
  EventError err;
  EXPECT_TRUE(FromFields(
      Base({{"data", "{\"a\":" + std::string(31, '[') + std::string(31, ']') + "}"}}), &err))
      << err.ToString();
  EXPECT_EQ(Refusal(Base({{"data", "{\"a\":" + deep + "}"}})),
            "data: JSON is nested more than 32 levels deep");
  // A bomb that would exhaust the stack of a recursive parser: refused, no crash.
  std::string bomb = std::string(60000, '[');
  EXPECT_NE(Refusal(Base({{"data", bomb}})).find("nested more than 32"), std::string::npos);
  // Brackets inside strings do not count.
  EXPECT_TRUE(FromFields(Base({{"data", R"({"a":")" + std::string(100, '[') + "\"}"}}), &err))
      << err.ToString();
}

TEST(EventFields, ProfileAttributesHaveTypes) {
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":42})"}})),
            "profile.email: must be text, got a number");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":"anna"})"}})),
            "profile.email: is not a valid e-mail address");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":"a@b@c.com"})"}})),
            "profile.email: is not a valid e-mail address");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":"anna smith@example.com"})"}})),
            "profile.email: is not a valid e-mail address");
  EXPECT_EQ(
      Refusal(Base({{"profile", R"({"email":")" + std::string(250, 'a') + R"(@example.com"})"}})),
      "profile.email: is not a valid e-mail address");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"first_name":true})"}})),
            "profile.first_name: must be text, got a boolean");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"timezone":1})"}})),
            "profile.timezone: must be text, got a number");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"birthday":"02/04/1990"})"}})),
            "profile.birthday: must be a date as YYYY-MM-DD");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"birthday":"1990-02-30"})"}})),
            "profile.birthday: must be a date as YYYY-MM-DD");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"points":"120"})"}})),
            "profile.points: must be a whole number, got a string");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"points":1.5})"}})),
            "profile.points: must be a whole number, got a number");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"points_expire_at":"soon"})"}})),
            "profile.points_expire_at: must be a date (YYYY-MM-DD) or an RFC 3339 time");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email_opt_in":"yes"})"}})),
            "profile.email_opt_in: must be true or false, got a string");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"tags":["a"]})"}})),
            "profile.tags: must be text, a number, true/false or null");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"address":{"city":"Delft"}})"}})),
            "profile.address: must be text, a number, true/false or null");
  // Null removes any attribute, whatever its type.
  EventError err;
  EXPECT_TRUE(FromFields(Base({{"profile", R"({"email":null,"points":null,"birthday":null,
                                               "email_opt_in":null,"custom":"x","vip":true})"}}),
                         &err))
      << err.ToString();
}

TEST(EventFields, EmailWithCrLfIsRefused) {
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":"anna@example.com\r\nBcc: x@evil.com"})"}})),
            "profile.email: is not a valid e-mail address");
  EXPECT_EQ(Refusal(Base({{"profile", R"({"email":"anna@example.com\u0000"})"}})),
            "profile.email: is not a valid e-mail address");
}

TEST(EventFields, AFieldOverTheLimitNamesItsSize) {
  EXPECT_EQ(Refusal(Base({{"data", std::string(1 << 20, 'x')}})),
            "data: is 1048576 bytes; the limit is 65536 bytes");
  EXPECT_EQ(Refusal(Base({{"note", std::string(kMaxFieldBytes + 1, 'x')}})),
            "note: is 65537 bytes; the limit is 65536 bytes");
  EventError err;
  std::string at_limit = "{\"a\":\"" + std::string(kMaxFieldBytes - 8, 'x') + "\"}";
  ASSERT_EQ(at_limit.size(), kMaxFieldBytes);
  EXPECT_TRUE(FromFields(Base({{"data", at_limit}}), &err)) << err.ToString();
}

TEST(EventFields, InvalidUtf8IsRefusedNamingTheField) {
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", "c\xff\xfe"}}),
            "customer_id: is not valid UTF-8");
  EXPECT_EQ(Refusal(Base({{"event_id", "e\xc3"}})), "event_id: is not valid UTF-8");
  EXPECT_EQ(Refusal(Base({{"data", "{\"a\":\"\xed\xa0\x80\"}"}})),  // a surrogate
            "data: is not valid UTF-8");
  EXPECT_EQ(Refusal(Base({{"profile", "{\"first_name\":\"\xc0\xaf\"}"}})),  // overlong
            "profile: is not valid UTF-8");
  EventError err;
  auto ev = FromFields({{"type", "signup"}, {"customer_id", "Zoë-東京"}}, &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ev->customer_id, "Zoë-東京");
}

TEST(EventFields, CustomerIdBytes) {
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", "c\n1"}}),
            "customer_id: contains control characters or invalid UTF-8");
  EXPECT_EQ(Refusal(Fields{{"type", "signup"},
                           {"customer_id", std::string("c\0"
                                                       "1",
                                                       3)}}),
            "customer_id: contains control characters or invalid UTF-8");
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", "c\x7f"}}),
            "customer_id: contains control characters or invalid UTF-8");
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", ""}}), "customer_id: is empty");
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", std::string(129, 'c')}}),
            "customer_id: is longer than 128 bytes");
  EventError err;
  EXPECT_TRUE(FromFields({{"type", "signup"}, {"customer_id", std::string(128, 'c')}}, &err));
}

TEST(EventFields, EventIdBytes) {
  EXPECT_EQ(Refusal(Base({{"event_id", std::string(129, 'e')}})),
            "event_id: must be at most 128 printable characters");
  EXPECT_EQ(Refusal(Base({{"event_id", "e\t1"}})),
            "event_id: must be at most 128 printable characters");
}

TEST(EventFields, TimesOutOfRange) {
  EXPECT_EQ(Refusal(Base({{"ts", "3000-01-01T00:00:00Z"}})),
            "ts: 3000-01-01T00:00:00Z is in the future");
  EXPECT_EQ(Refusal(Base({{"ts", "99999999999999999"}})), "ts: 99999999999999999 is in the future");
  EXPECT_EQ(Refusal(Base({{"ts", "1969-12-31T23:59:59Z"}})),
            "ts: 1969-12-31T23:59:59Z is before 1970");
  EXPECT_EQ(Refusal(Base({{"ts", "yesterday"}})),
            "ts: must be an RFC 3339 time or Unix milliseconds");
  EXPECT_EQ(Refusal(Base({{"ts", "-5"}})), "ts: must be an RFC 3339 time or Unix milliseconds");
  // Up to a day ahead of the clock is tolerated (clock skew between shop and daemon).
  EventError err;
  EXPECT_TRUE(FromFields(Base({{"ts", "2026-05-18T09:00:00Z"}}), &err)) << err.ToString();
  EXPECT_FALSE(FromFields(Base({{"ts", "2026-05-18T09:00:02Z"}}), &err));
  EXPECT_TRUE(FromFields(Base({{"ts", "1970-01-01T00:00:00Z"}}), &err)) << err.ToString();
}

TEST(EventFields, AFieldGivenTwiceIsRefused) {
  EXPECT_EQ(Refusal(Fields{{"type", "signup"}, {"customer_id", "c1"}, {"type", "purchase"}}),
            "type: field 'type' given twice");
  EXPECT_EQ(Refusal(Base({{"data", "{}"}, {"data", "{}"}})), "data: field 'data' given twice");
  // Unknown fields may repeat: they are ignored.
  EventError err;
  EXPECT_TRUE(FromFields(Base({{"x", "1"}, {"x", "2"}}), &err)) << err.ToString();
}

TEST(EventFields, ANullErrorPointerIsAllowed) {
  EXPECT_FALSE(EventFromFields(std::span<const FieldView>{}, kEntryTime, kNow, nullptr));
  EXPECT_FALSE(EventFromJson(nlohmann::json::array(), nullptr));
}

TEST(EventJson, ATimelineLine) {
  EventError err;
  auto ev = EventFromJson(nlohmann::json::parse(R"({"type":"purchase","customer_id":"c1",
      "ts":"2026-01-10T12:00:00Z","event_id":"o-1","data":{"total":40},
      "profile":{"email":"anna@example.com"}})"),
                          &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ev->type, "purchase");
  EXPECT_EQ(ev->event_id, "o-1");
  EXPECT_EQ(FormatRfc3339(ev->ts), "2026-01-10T12:00:00Z");
  EXPECT_EQ(ev->data["total"], 40);
  ASSERT_TRUE(Attr(*ev, "email"));
  EXPECT_EQ(Attr(*ev, "email")->str, "anna@example.com");

  ev = EventFromJson({{"type", "signup"}, {"customer_id", "c1"}, {"ts", 1778922000000}}, &err);
  ASSERT_TRUE(ev) << err.ToString();
  EXPECT_EQ(ToUnixMillis(ev->ts), 1778922000000);
  EXPECT_TRUE(ev->data.is_object());
  EXPECT_TRUE(ev->profile.empty());
}

TEST(EventJson, Refusals) {
  using nlohmann::json;
  EXPECT_EQ(Refusal(json::array()), "an event is a JSON object");
  EXPECT_EQ(Refusal(json{{"customer_id", "c1"}, {"ts", 0}}), "type: is missing");
  EXPECT_EQ(Refusal(json{{"type", "signup"}, {"ts", 0}}), "customer_id: is missing");
  EXPECT_EQ(Refusal(json{{"type", 7}, {"customer_id", "c1"}, {"ts", 0}}),
            "type: must be a string, got a number");
  EXPECT_EQ(Refusal(json{{"type", "signup"}, {"customer_id", "c1"}}), "ts: is missing");
  EXPECT_EQ(Refusal(json{{"type", "signup"}, {"customer_id", "c1"}, {"ts", 1.5}}),
            "ts: must be an RFC 3339 time or Unix milliseconds");
  EXPECT_EQ(Refusal(json{{"type", "signup"}, {"customer_id", "c1"}, {"ts", -1}}),
            "ts: -1 is before 1970");
  EXPECT_EQ(Refusal(json{{"type", "signup"}, {"customer_id", "c1"}, {"ts", UINT64_MAX}}),
            "ts: 18446744073709551615 is in the future");
  json base = {{"type", "signup"}, {"customer_id", "c1"}, {"ts", "2026-01-10T12:00:00Z"}};
  json j = base;
  j["data"] = json::array({1, 2});
  EXPECT_EQ(Refusal(j), "data: is not a JSON object (got an array)");
  j = base;
  j["profile"] = {{"email", 42}};
  EXPECT_EQ(Refusal(j), "profile.email: must be text, got a number");
  j = base;
  j["customer_id"] = "c\r\n";
  EXPECT_EQ(Refusal(j), "customer_id: contains control characters or invalid UTF-8");
  // JSON built in memory gets the checks a parse would have made.
  j = base;
  json deep = json::object();
  for (int i = 0; i < 40; ++i) deep = json{{"a", deep}};
  j["data"] = deep;
  EXPECT_EQ(Refusal(j), "data: is nested more than 32 levels deep");
  deep = json::object();
  for (int i = 0; i < 31; ++i) deep = json{{"a", deep}};
  j["data"] = deep;  // 32 levels: accepted
  EventError err;
  EXPECT_TRUE(EventFromJson(j, &err)) << err.ToString();
  j = base;
  j["data"] = {{"x", "\xff"}};
  EXPECT_EQ(Refusal(j), "data: is not valid UTF-8");
  j = base;
  j["data"] = {{"x", std::string(kMaxFieldBytes, 'x')}};
  EXPECT_EQ(Refusal(j), "data: is over 65536 bytes");
  j = base;
  j["profile"] = {{"first_name", "\xc3"}};
  EXPECT_EQ(Refusal(j), "profile: is not valid UTF-8");
}

TEST(EventHelpers, Validators) {
  EXPECT_TRUE(ValidEventType("signup"));
  EXPECT_TRUE(ValidEventType("cart_updated"));
  EXPECT_TRUE(ValidEventType("shop.review-left_2"));
  EXPECT_FALSE(ValidEventType(""));
  EXPECT_FALSE(ValidEventType("Signup"));
  EXPECT_FALSE(ValidEventType("sign up"));
  EXPECT_FALSE(ValidEventType("ünicode"));
  EXPECT_FALSE(ValidEventType(std::string(65, 'a')));

  EXPECT_TRUE(ValidCustomerId("c42"));
  EXPECT_TRUE(ValidCustomerId("user@example.com"));
  EXPECT_TRUE(ValidCustomerId("Zoë"));
  EXPECT_FALSE(ValidCustomerId(""));
  EXPECT_FALSE(ValidCustomerId("a\tb"));
  EXPECT_FALSE(ValidCustomerId("a\x7f"));
  EXPECT_FALSE(ValidCustomerId("\xff"));
  EXPECT_FALSE(ValidCustomerId(std::string(129, 'a')));

  EXPECT_TRUE(ValidUtf8(""));
  EXPECT_TRUE(ValidUtf8("plain"));
  EXPECT_TRUE(ValidUtf8("Zoë 東京 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(ValidUtf8("\xff"));
  EXPECT_FALSE(ValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(ValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(ValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(ValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

// ASCII texts are checked a word at a time: a bad byte or a good multi-byte character at any
// place, in texts of every length up to 24, is judged as alone; the offset names the byte.
TEST(EventFields, Utf8IsJudgedAtEveryPlaceInAWord) {
  for (size_t len = 1; len <= 24; ++len) {
    EXPECT_TRUE(journeyd::ValidUtf8(std::string(len, 'a'))) << len;
    for (size_t at = 0; at < len; ++at) {
      std::string bad(len, 'a');
      bad[at] = '\xff';
      size_t offset = 99;
      EXPECT_FALSE(journeyd::ValidUtf8(bad, &offset)) << len << " " << at;
      EXPECT_EQ(offset, at) << len;
      std::string cut(len, 'a');
      cut[at] = '\xc3';  // a two-byte start with 'a' after it, or nothing
      EXPECT_FALSE(journeyd::ValidUtf8(cut, &offset)) << len << " " << at;
      EXPECT_EQ(offset, at) << len;
      if (at + 1 < len) {
        std::string good(len, 'a');
        good[at] = '\xc3';
        good[at + 1] = '\xa9';
        EXPECT_TRUE(journeyd::ValidUtf8(good)) << len << " " << at;
      }
    }
  }
}

}  // namespace
}  // namespace journeyd::engine
