// ParseJson against nlohmann::json::parse: the same verdict and the same value, for hand-picked
// texts and for many mutations of them.
#include "journeyd/engine/json.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace journeyd::engine {
namespace {

// "" when both agree; else what differs.
std::string Compare(const std::string& text) {
  nlohmann::json ours;
  const bool ok = ParseJson(text, &ours);
  const nlohmann::json theirs = nlohmann::json::parse(text, nullptr, false);
  if (ok != !theirs.is_discarded()) {
    return std::string(ok ? "accepted" : "refused") + " what nlohmann " +
           (ok ? "refuses" : "accepts");
  }
  if (!ok) return "";
  // Same value and the same number types all the way down (1 and 1.0 dump differently).
  if (ours != theirs || ours.dump() != theirs.dump()) {
    return "parsed as " + ours.dump() + ", nlohmann: " + theirs.dump();
  }
  return "";
}

const std::vector<std::string> kTexts = {
    R"({})",
    R"({"total": 42.5, "currency": "EUR", "items": [{"sku": "A1", "qty": 2}]})",
    R"({"email":"sam@example.com","first_name":"Sam","email_opt_in":true})",
    R"(  {"a" : [ 1 , -2 , 3.0e2 , -0 , 0.5E-3 , true , false , null ] }  )",
    R"({"big": 18446744073709551615, "bigger": 18446744073709551616, "neg": -9223372036854775808,
        "more_neg": -9223372036854775809, "tiny": 1e-400, "zero": -0.0})",
    R"({"huge": 1e400})",
    R"({"dup": 1, "dup": 2})",
    R"({"esc": "q\"b\\s\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000"})",
    R"({"lone": "\ud83d"})",
    R"({"lone": "\ude00"})",
    R"({"bad": "\ud83d\u0041"})",
    R"({"bad": "\x"})",
    R"({"bad": "\u12"})",
    "{\"raw\": \"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}",
    "{\"overlong\": \"\xC0\xAF\"}",
    "{\"surrogate\": \"\xED\xA0\x80\"}",
    "{\"cut\": \"\xE2\x82\"}",
    "{\"ctl\": \"a\x01\"}",
    "{\"del\": \"a\x7F\"}",
    "\xEF\xBB\xBF{\"bom\": 1}",
    "\xEF\xBB{}",
    R"([1, 2,])",
    R"({"a": 1,})",
    R"({"a" 1})",
    R"({a: 1})",
    R"({"a": 01})",
    R"({"a": 1.})",
    R"({"a": .5})",
    R"({"a": +1})",
    R"({"a": 1e})",
    R"({"a": -})",
    R"({"a": tru})",
    R"({"a": nulls})",
    R"({"a": 1} x)",
    R"({"a": 1}{})",
    R"("just a string")",
    R"(12)",
    R"([])",
    R"([[[[[[]]]]]])",
    "",
    "   ",
    R"({"a": /* no */ 1})",
    R"({"a": NaN})",
    R"({"a": Infinity})",
    "{\"a\":\t1\r\n}",
    "{\"a\":\f1}",
};

TEST(ParseJson, AgreesWithNlohmannOnHandPickedTexts) {
  for (const auto& text : kTexts) EXPECT_EQ(Compare(text), "") << "text: " << text;
}

TEST(ParseJson, AgreesWithNlohmannOnMutatedTexts) {
  // Insertions, deletions and replacements from bytes that matter to JSON and UTF-8.
  const std::string alphabet =
      "{}[]\":,\\/ -+.eE0123456789tfnulrsaxuU\t\n\x01\x7F\x80\xBF\xC3\xE2"
      "\xED\xF0\xF4\xFF";
  std::mt19937 rng(20261201);
  int checked = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = kTexts[rng() % kTexts.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = c;
      }
    }
    const std::string diff = Compare(text);
    ASSERT_EQ(diff, "") << "text: " << text;
    ++checked;
  }
  EXPECT_EQ(checked, 20000);
}

TEST(ParseJson, RefusesNestingDeeperThanAsked) {
  nlohmann::json j;
  EXPECT_TRUE(ParseJson("[[[]]]", &j, 3));
  EXPECT_FALSE(ParseJson("[[[[]]]]", &j, 3));
  EXPECT_FALSE(ParseJson(R"({"a":{"b":{"c":{}}}})", &j, 3));
}

TEST(ParseJson, LeavesTheTargetAloneOnError) {
  nlohmann::json j = {{"kept", true}};
  EXPECT_FALSE(ParseJson(R"({"a": [1, 2)", &j));
  EXPECT_EQ(j.dump(), R"({"kept":true})");
}

// Every byte value, alone and inside runs: the text reads back through a JSON parser as it was.
TEST(AppendJsonString, EscapesWhatJsonNeedsAndReadsBackExactly) {
  std::string out = "x";
  AppendJsonString(out, "");
  EXPECT_EQ(out, R"(x"")");
  out.clear();
  AppendJsonString(out,
                   "a\"b\\c\n\x01"
                   "d\x7f caf\xc3\xa9");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\u000a\\u0001d\x7f caf\xc3\xa9\"");
  for (int c = 0; c < 128; ++c) {
    const std::string text = "run" + std::string(1, static_cast<char>(c)) + "tail";
    out.clear();
    AppendJsonString(out, text);
    nlohmann::json back;
    ASSERT_TRUE(ParseJson(out, &back, 1)) << c << ": " << out;
    ASSERT_TRUE(back.is_string()) << c;
    EXPECT_EQ(back.get<std::string>(), text) << c;
  }
}

// A byte that needs an escape at every place in texts of every length up to 24, where
// escapes are found eight bytes at a time: each comes out escaped, the rest as it was.
TEST(AppendJsonString, FindsAnEscapeAtEveryPlaceInAWord) {
  for (size_t len = 1; len <= 24; ++len) {
    for (size_t at = 0; at < len; ++at) {
      for (char c : {'"', '\\', '\n', '\x1f', '\0'}) {
        std::string text(len, 'a');
        text[at] = c;
        if (at + 2 < len) text.replace(at + 1, 2, "\xc3\xa9");  // stays as it is
        std::string out;
        AppendJsonString(out, text);
        nlohmann::json back;
        ASSERT_TRUE(ParseJson(out, &back, 1)) << len << " " << at << ": " << out;
        EXPECT_EQ(back.get<std::string>(), text) << len << " " << at;
        EXPECT_EQ(out.size(), text.size() + 2 + (c == '"' || c == '\\' ? 1 : 5))
            << len << " " << at << ": " << out;
      }
    }
  }
  // Bytes next to the ones that need an escape, which a word test could confuse with them.
  const std::string near = "!#[]^` ~\x7f\x80\xa2\xdc\xff";
  std::string out;
  AppendJsonString(out, near + near);
  EXPECT_EQ(out, "\"" + near + near + "\"");
}

}  // namespace
}  // namespace journeyd::engine
