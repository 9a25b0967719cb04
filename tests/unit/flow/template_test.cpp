// TextTemplate: parsing placeholders, rendering with defaults, filters and HTML escaping, and
// clear errors (with byte offsets) on bad or hostile template text.
#include "journeyd/flow/template.h"
#include "journeyd/flow/loader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace journeyd::flow {
namespace {

// A Scope over strings (and a few typed values) keyed by Path.text. It owns its strings.
class MapScope final : public Scope {
 public:
  using Strings = std::initializer_list<std::pair<const std::string, std::string>>;
  using Typed = std::initializer_list<std::pair<const std::string, Value>>;
  explicit MapScope(Strings strings = {}, Typed typed = {}) : strings_(strings), typed_(typed) {}

  Value Lookup(const Path& path) const override {
    lookups_.push_back(path.text);
    if (auto it = typed_.find(path.text); it != typed_.end()) return it->second;
    if (auto it = strings_.find(path.text); it != strings_.end()) {
      return Value::String(it->second);
    }
    return Value::Null();
  }
  TimePoint Now() const override { return now_; }

  void set_now(TimePoint t) { now_ = t; }
  const std::vector<std::string>& lookups() const { return lookups_; }

 private:
  std::map<std::string, std::string> strings_;
  std::map<std::string, Value> typed_;
  TimePoint now_ = *ParseTimestamp("2026-03-04T05:06:07Z");
  mutable std::vector<std::string> lookups_;
};

TextTemplate MustParse(std::string_view source) {
  TemplateError error;
  auto t = TextTemplate::Parse(source, &error);
  EXPECT_TRUE(t.has_value()) << "'" << source << "': " << error.offset << ": " << error.message;
  return t ? *t : TextTemplate();
}

std::string Render(std::string_view source, const Scope& scope, bool html = false) {
  return MustParse(source).Render(scope, html);
}

// Parses `source`, expects it to fail, and returns the error.
TemplateError MustFail(std::string_view source) {
  TemplateError error;
  error.offset = 12345678;
  auto t = TextTemplate::Parse(source, &error);
  EXPECT_FALSE(t.has_value()) << source.substr(0, 80);
  EXPECT_FALSE(error.message.empty());
  return error;
}

// ---------------------------------------------------------------------------------------
// Parsing

TEST(TemplateParse, PlainTextHasNoPlaceholders) {
  TextTemplate t = MustParse("Hello } there { and }} too");
  EXPECT_TRUE(t.placeholders().empty());
  EXPECT_EQ(t.source(), "Hello } there { and }} too");
  EXPECT_EQ(t.Render(MapScope(), false), "Hello } there { and }} too");
  EXPECT_EQ(t.Render(MapScope(), true), "Hello } there { and }} too");
}

TEST(TemplateParse, EmptySource) {
  TextTemplate t = MustParse("");
  EXPECT_TRUE(t.placeholders().empty());
  EXPECT_EQ(t.Render(MapScope(), true), "");
}

TEST(TemplateParse, CustomerPathWithAndWithoutSpaces) {
  for (std::string_view src : {"Hi {{customer.first_name}}!", "Hi {{  customer.first_name\t}}!"}) {
    TextTemplate t = MustParse(src);
    ASSERT_EQ(t.placeholders().size(), 1u) << src;
    const Placeholder& p = t.placeholders()[0];
    EXPECT_EQ(p.path.root, Root::kCustomer);
    EXPECT_EQ(p.path.segments, (std::vector<std::string>{"first_name"}));
    EXPECT_EQ(p.path.text, "customer.first_name");
    EXPECT_EQ(p.offset, 3u);
    EXPECT_FALSE(p.raw);
    EXPECT_FALSE(p.default_value.has_value());
    EXPECT_TRUE(p.filters.empty());
  }
}

TEST(TemplateParse, RootsAndSegments) {
  TextTemplate t = MustParse(
      "{{trigger.data.total}} {{event.data.order_id}} {{now}} {{percent}} {{unsubscribe_url}} "
      "{{customer.Attr_2}}");
  ASSERT_EQ(t.placeholders().size(), 6u);
  const auto& ps = t.placeholders();
  EXPECT_EQ(ps[0].path.root, Root::kTrigger);
  EXPECT_EQ(ps[0].path.segments, (std::vector<std::string>{"data", "total"}));
  EXPECT_EQ(ps[0].path.text, "trigger.data.total");
  EXPECT_EQ(ps[0].offset, 0u);
  EXPECT_EQ(ps[1].path.root, Root::kEvent);
  EXPECT_EQ(ps[1].path.segments, (std::vector<std::string>{"data", "order_id"}));
  EXPECT_EQ(ps[1].offset, 23u);
  EXPECT_EQ(ps[2].path.root, Root::kNow);
  EXPECT_TRUE(ps[2].path.segments.empty());
  EXPECT_EQ(ps[2].path.text, "now");
  EXPECT_EQ(ps[3].path.root, Root::kVar);
  EXPECT_EQ(ps[3].path.segments, (std::vector<std::string>{"percent"}));
  EXPECT_EQ(ps[3].path.text, "percent");
  EXPECT_EQ(ps[4].path.root, Root::kVar);
  EXPECT_EQ(ps[4].path.segments, (std::vector<std::string>{"unsubscribe_url"}));
  EXPECT_EQ(ps[5].path.root, Root::kCustomer);
  EXPECT_EQ(ps[5].path.segments, (std::vector<std::string>{"Attr_2"}));
}

TEST(TemplateParse, FiltersInOrderAndDefaults) {
  TextTemplate t = MustParse(
      "{{ code | upper | lower }}{{ a | default: \"x\" }}{{ b|default:'y' }}{{ c | default: 0 }}"
      "{{ d | default: -1.5 | money }}{{ e | date }}");
  const auto& ps = t.placeholders();
  ASSERT_EQ(ps.size(), 6u);
  EXPECT_EQ(ps[0].filters, (std::vector<Filter>{Filter::kUpper, Filter::kLower}));
  EXPECT_FALSE(ps[0].default_value);
  EXPECT_EQ(ps[1].default_value, "x");
  EXPECT_TRUE(ps[1].filters.empty());
  EXPECT_EQ(ps[2].default_value, "y");
  EXPECT_EQ(ps[3].default_value, "0");
  EXPECT_EQ(ps[4].default_value, "-1.5");
  EXPECT_EQ(ps[4].filters, (std::vector<Filter>{Filter::kMoney}));
  EXPECT_EQ(ps[5].filters, (std::vector<Filter>{Filter::kDate}));
}

TEST(TemplateParse, DefaultTextMayHoldBarsBracesAndEscapedQuotes) {
  TextTemplate t = MustParse(
      R"({{ a | default: "x | y }} {{ z" | upper }}{{ b | default: 'it\'s "ok" \\ \n' }})");
  const auto& ps = t.placeholders();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].default_value, "x | y }} {{ z");
  EXPECT_EQ(ps[0].filters, (std::vector<Filter>{Filter::kUpper}));
  EXPECT_EQ(ps[1].default_value, R"(it's "ok" \ \n)");
  EXPECT_EQ(t.Render(MapScope(), false), R"(X | Y }} {{ Zit's "ok" \ \n)");
}

TEST(TemplateParse, RawPlaceholder) {
  TextTemplate t = MustParse("a {{{ body_html }}} b {{{ x | upper }}}");
  const auto& ps = t.placeholders();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_TRUE(ps[0].raw);
  EXPECT_EQ(ps[0].path.text, "body_html");
  EXPECT_EQ(ps[0].offset, 2u);
  EXPECT_TRUE(ps[1].raw);
  EXPECT_EQ(ps[1].filters, (std::vector<Filter>{Filter::kUpper}));
}

TEST(TemplateParse, LiteralBracesAreNotPlaceholders) {
  TextTemplate t = MustParse(R"(Write {{ "{{" }}name{{'}}'}} or {{"\"q\""}}.)");
  EXPECT_TRUE(t.placeholders().empty());
  EXPECT_EQ(t.Render(MapScope({{"name", "X"}}), true), R"(Write {{name}} or "q".)");
}

TEST(TemplateParse, ExactlyTheLimitsAreAccepted) {
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "{{x}}";
  TextTemplate t = MustParse(many);
  EXPECT_EQ(t.placeholders().size(), 1000u);
  EXPECT_EQ(t.Render(MapScope({{"x", "ab"}}), false).size(), 2000u);

  std::string big(256 * 1024, 'a');
  TextTemplate b = MustParse(big);
  EXPECT_EQ(b.Render(MapScope(), false).size(), big.size());
}

TEST(TemplateParse, ValidUtf8IsKept) {
  TextTemplate t = MustParse("Grüße, {{ name | default: \"Zoë\" }} — 🎂");
  EXPECT_EQ(t.Render(MapScope(), true), "Grüße, Zoë — 🎂");
}

// ---------------------------------------------------------------------------------------
// Rendering

TEST(TemplateRender, PlainAndStepVariables) {
  MapScope scope({{"customer.first_name", "Anna"}, {"percent", "10"}, {"code", "COMEBACK10"}});
  EXPECT_EQ(Render("Hi {{customer.first_name}}, {{percent}}% off with {{ code }}.", scope),
            "Hi Anna, 10% off with COMEBACK10.");
  EXPECT_EQ(scope.lookups(), (std::vector<std::string>{"customer.first_name", "percent", "code"}));
}

TEST(TemplateRender, TypedValuesUseAppendText) {
  MapScope scope({}, {{"n", Value::Number(3)},
                      {"f", Value::Number(2.5)},
                      {"b", Value::Bool(true)},
                      {"d", Value::Dur(3 * kDay)},
                      {"t", Value::Time(*ParseTimestamp("2026-05-17T09:00:00Z"))}});
  EXPECT_EQ(Render("{{n}}|{{f}}|{{b}}|{{d}}|{{t}}", scope), "3|2.5|true|3d|2026-05-17T09:00:00Z");
}

TEST(TemplateRender, MissingValueIsEmptyWithoutDefault) {
  EXPECT_EQ(Render("[{{customer.first_name}}]", MapScope()), "[]");
}

TEST(TemplateRender, DefaultForMissingAndEmptyButNotForPresent) {
  const char* src = "Hi {{customer.first_name | default: \"there\"}}!";
  EXPECT_EQ(Render(src, MapScope()), "Hi there!");
  EXPECT_EQ(Render(src, MapScope({{"customer.first_name", ""}})), "Hi there!");
  EXPECT_EQ(Render(src, MapScope({{"customer.first_name", "Bo"}})), "Hi Bo!");
  // A number default; a zero value is not empty.
  EXPECT_EQ(Render("{{ customer.points | default: 0 }}", MapScope()), "0");
  EXPECT_EQ(Render("{{ customer.points | default: 5 }}",
                   MapScope({}, {{"customer.points", Value::Number(0)}})),
            "0");
}

TEST(TemplateRender, UpperAndLowerAreAsciiOnly) {
  MapScope scope({{"code", "abc-xyz"}, {"name", "émile ÉLISE"}});
  EXPECT_EQ(Render("{{ code | upper }}", scope), "ABC-XYZ");
  EXPECT_EQ(Render("{{ name | upper }}", scope), "éMILE ÉLISE");
  EXPECT_EQ(Render("{{ name | lower }}", scope), "émile Élise");
  EXPECT_EQ(Render("{{ code | upper | lower }}", scope), "abc-xyz");
  // The default is shown with the same case.
  EXPECT_EQ(Render("{{ missing | default: \"none\" | upper }}", scope), "NONE");
}

TEST(TemplateRender, DateFilter) {
  MapScope scope(
      {{"customer.birthday", "1990-05-17"},
       {"customer.late", "2026-05-17T01:30:00+02:00"},
       {"customer.word", "soon"}},
      {{"customer.points_expire_at", Value::Time(*ParseTimestamp("2026-08-01T23:59:59.500Z"))},
       {"customer.points", Value::Number(12)}});
  EXPECT_EQ(Render("{{customer.points_expire_at | date}}", scope), "2026-08-01");
  EXPECT_EQ(Render("{{customer.birthday | date}}", scope), "1990-05-17");
  EXPECT_EQ(Render("{{customer.late | date}}", scope), "2026-05-16");  // in UTC
  EXPECT_EQ(Render("{{customer.word | date}}", scope), "soon");        // not a date: as is
  EXPECT_EQ(Render("{{customer.points | date}}", scope), "12");
  EXPECT_EQ(Render("{{customer.none | date | default: \"-\"}}", scope), "-");
  EXPECT_EQ(Render("{{ now | date }} {{now}}", scope), "2026-03-04 2026-03-04T05:06:07Z");
}

TEST(TemplateRender, MoneyFilter) {
  MapScope scope({{"s", "19.9"}, {"word", "free"}, {"sci", "1e3"}},
                 {{"a", Value::Number(19.9)},
                  {"b", Value::Number(5)},
                  {"c", Value::Number(0.125)},
                  {"d", Value::Number(-0.001)},
                  {"e", Value::Number(1234567.891)},
                  {"nan", Value::Number(std::nan(""))},
                  {"yes", Value::Bool(true)}});
  EXPECT_EQ(Render("{{a | money}}", scope), "19.90");
  EXPECT_EQ(Render("{{b | money}}", scope), "5.00");
  EXPECT_EQ(Render("{{c | money}}", scope), "0.13");
  EXPECT_EQ(Render("{{d | money}}", scope), "0.00");
  EXPECT_EQ(Render("{{e | money}}", scope), "1234567.89");
  EXPECT_EQ(Render("{{s | money}}", scope), "19.90");  // a number sent as text
  EXPECT_EQ(Render("{{word | money}}", scope), "free");
  EXPECT_EQ(Render("{{sci | money}}", scope), "1e3");
  EXPECT_EQ(Render("{{yes | money}}", scope), "true");
  EXPECT_EQ(Render("{{nan | money | default: \"?\"}}", scope), "?");
  EXPECT_EQ(Render("{{none | money | default: \"0.00\"}}", scope), "0.00");
}

TEST(TemplateRender, HtmlEscapesValuesAndDefaultsButNotLiteralText) {
  MapScope scope({{"customer.first_name", R"(<b>"Tom" & 'Jerry'</b>)"}});
  const char* src = R"(<p class="x">Hi {{customer.first_name}} & co</p>)";
  EXPECT_EQ(Render(src, scope, true),
            R"(<p class="x">Hi &lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt; & co</p>)");
  EXPECT_EQ(Render(src, scope, false), R"(<p class="x">Hi <b>"Tom" & 'Jerry'</b> & co</p>)");
  EXPECT_EQ(Render(R"({{ x | default: "<you & me>" }})", scope, true), "&lt;you &amp; me&gt;");
  EXPECT_EQ(Render(R"({{ "<&>" }})", scope, true), "<&>");  // literal text
}

TEST(TemplateRender, RawIsNeverEscaped) {
  MapScope scope({{"block", "<a href=\"x?a=1&b=2\">go</a>"}});
  EXPECT_EQ(Render("{{{block}}}|{{block}}", scope, true),
            "<a href=\"x?a=1&b=2\">go</a>|&lt;a href=&quot;x?a=1&amp;b=2&quot;&gt;go&lt;/a&gt;");
}

TEST(TemplateRender, AppendsToExistingOutput) {
  TextTemplate t = MustParse("{{a}}<{{b}}>");
  std::string out = "prefix&";
  t.Render(MapScope({{"a", "1&"}, {"b", "2"}}), true, out);
  EXPECT_EQ(out, "prefix&1&amp;<2>");
  t.Render(MapScope({{"a", "x"}}), false, out);
  EXPECT_EQ(out, "prefix&1&amp;<2>x<>");
}

TEST(TemplateRender, RenderIsRepeatable) {
  TextTemplate t = MustParse("{{ x | upper | default: \"d\" }}-{{y}}");
  MapScope a({{"x", "a"}, {"y", "b"}});
  MapScope b;
  EXPECT_EQ(t.Render(a, false), "A-b");
  EXPECT_EQ(t.Render(b, false), "D-");
  EXPECT_EQ(t.Render(a, false), "A-b");
}

// ---------------------------------------------------------------------------------------
// Errors, each with its message and byte offset

struct ErrorCase {
  std::string source;
  size_t offset;
  std::string message;
};

TEST(TemplateErrors, MessagesAndOffsets) {
  const std::vector<ErrorCase> cases = {
      {"Hi {{customer.first_name", 3, "'{{' without a closing '}}'"},
      {"Hi {{ x \n}}", 3, "'{{' without a closing '}}'"},
      {"ab {{{ x }}", 3, "'{{{' without a closing '}}}'"},
      {"{{}}", 0, "empty placeholder '{{}}'"},
      {"x {{   }}", 2, "empty placeholder '{{}}'"},
      {"x {{{ }}}", 2, "empty placeholder '{{{}}}'"},
      {"{{ x y }}", 3, "'x y' is not a variable name"},
      {"{{Percent}}", 2, "'Percent' is not a variable name"},
      {"{{ 9lives }}", 3, "'9lives' is not a variable name"},
      {"{{ customer..x }}", 3, "'customer..x' is not a variable name"},
      {"{{ customer.first-name }}", 3, "'customer.first-name' is not a variable name"},
      {"{{ it's }}", 3, "'it's' is not a variable name"},
      {"{{ customer }}", 3, "'customer' needs a field, e.g. customer.first_name"},
      {"{{ trigger }}", 3, "'trigger' needs a field, e.g. trigger.data.total"},
      {"{{ now.day }}", 3, "'now' has no fields"},
      {"{{ custmer.first_name }}", 3, "unknown name 'custmer' — did you mean 'customer'?"},
      {"{{ shop.name }}", 3, "unknown name 'shop': use customer.*, trigger.* or a step variable"},
      {"{{ code | uper }}", 10, "unknown filter 'uper' — did you mean 'upper'?"},
      {"{{ code | money | bold }}", 18, "unknown filter 'bold'"},
      {"{{ x | defualt: \"a\" }}", 7, "unknown filter 'defualt' — did you mean 'default'?"},
      {"{{ x | }}", 5, "empty filter after '|'"},
      {"{{ x || upper }}", 5, "empty filter after '|'"},
      {"{{ | upper }}", 3, "missing variable name before '|'"},
      {"{{ x | -upper }}", 7, "'-upper' is not a filter"},
      {"{{ x | upper: 2 }}", 12, "the filter 'upper' takes no value"},
      {"{{ x | default }}", 7, "default needs a value, e.g. default: \"there\""},
      {"{{ x | default: }}", 7, "default needs a value, e.g. default: \"there\""},
      {"{{ x | default: there }}", 16, "default needs quotes around text: default: \"there\""},
      {"{{ x | default: \"a\" \"b\" }}", 20, "unexpected '\"b\"' after the default value"},
      {"{{ x | default: \"a\" | default: \"b\" }}", 22, "default is given twice"},
      {"{{ x | default: \"abc }}", 16, "the text starting with \" has no closing \""},
      {"{{ x | default: 'abc\n' }}", 16, "the text starting with ' has no closing '"},
      {"{{ a {{ b }} }}", 5, "'{{' inside a placeholder: close the first one with '}}'"},
      {"{{{{x}}}}", 3, "unexpected '{' inside a placeholder"},
      {"{{ a } }}", 5, "unexpected '}' inside a placeholder"},
      {"{{{ a }} b", 0, "'{{{' without a closing '}}}'"},
      {"ok \xc3\x28 text", 3, "template text is not valid UTF-8"},
  };
  for (const ErrorCase& c : cases) {
    TemplateError e = MustFail(c.source);
    EXPECT_EQ(e.message, c.message) << "source: " << c.source;
    EXPECT_EQ(e.offset, c.offset) << "source: " << c.source;
  }
}

TEST(TemplateErrors, NullErrorPointerIsAllowed) {
  EXPECT_FALSE(TextTemplate::Parse("{{", nullptr).has_value());
  EXPECT_TRUE(TextTemplate::Parse("{{x}}", nullptr).has_value());
}

TEST(TemplateErrors, LongNamesAreShortenedInMessages) {
  std::string name(5000, 'A');
  TemplateError e = MustFail("{{ " + name + " }}");
  EXPECT_EQ(e.offset, 3u);
  EXPECT_LT(e.message.size(), 100u);
  EXPECT_NE(e.message.find("is not a variable name"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Hostile input: a clear error, never a crash

TEST(TemplateHostile, UnclosedBraces) {
  for (std::string_view src : {"{{", "{{{", "x{{y", "{{ a | default: \"", "}}{{", "{{ {{"}) {
    TemplateError e = MustFail(src);
    EXPECT_LE(e.offset, src.size()) << src;
  }
  TemplateError e = MustFail("fine {{a}} then {{ b");
  EXPECT_EQ(e.message, "'{{' without a closing '}}'");
  EXPECT_EQ(e.offset, 16u);
}

TEST(TemplateHostile, SourceOver256KiB) {
  std::string big(300 * 1024, 'a');
  TemplateError e = MustFail(big);
  EXPECT_EQ(e.message, "template text is longer than 256 KiB");
  EXPECT_EQ(e.offset, 256u * 1024u);
  TemplateError e2 = MustFail(std::string(256 * 1024 + 1, '{'));
  EXPECT_EQ(e2.message, "template text is longer than 256 KiB");
}

TEST(TemplateHostile, InvalidUtf8) {
  struct Case {
    std::string source;
    size_t offset;
  };
  const std::vector<Case> cases = {
      {"\xc3\x28", 0},                          // bad continuation byte
      {"ab\xc3", 2},                            // truncated at the end
      {"x\x80y", 1},                            // lone continuation byte
      {"\xc0\xaf", 0},                          // overlong '/'
      {"ok\xe0\x80\xaf", 2},                    // overlong, 3 bytes
      {"\xed\xa0\x80", 0},                      // UTF-16 surrogate
      {"\xf4\x90\x80\x80", 0},                  // above U+10FFFF
      {"\xff", 0},                              // never valid
      {"{{ x | default: \"\xc3\x28\" }}", 17},  // inside a placeholder
  };
  for (const Case& c : cases) {
    TemplateError e = MustFail(c.source);
    EXPECT_EQ(e.message, "template text is not valid UTF-8");
    EXPECT_EQ(e.offset, c.offset);
  }
}

TEST(TemplateHostile, TooManyPlaceholders) {
  std::string src;
  for (int i = 0; i < 5000; ++i) src += "{{x}}";
  TemplateError e = MustFail(src);
  EXPECT_EQ(e.message, "a template has at most 1000 placeholders");
  EXPECT_EQ(e.offset, 1000u * 5u);  // the 1001st
}

TEST(TemplateHostile, NestedBraces) {
  for (std::string_view src : {"{{{{x}}}}", "{{{{{x}}}}}", "{{ {{x}} }}", "{{x{{y}}}}"}) {
    TemplateError e = MustFail(src);
    EXPECT_NE(e.message.find("inside a placeholder"), std::string::npos) << src;
    EXPECT_LT(e.offset, src.size()) << src;
  }
}

TEST(TemplateHostile, ManyBracesAndQuotesAreLinear) {
  // 200 KiB of one repeated pattern must neither crash nor take long.
  for (std::string_view unit : {"{", "}", "{{\"", "{{ x | default: '", "|", "{{x|"}) {
    std::string src;
    while (src.size() < 200 * 1024) src += unit;
    TemplateError e;
    auto t = TextTemplate::Parse(src, &e);
    if (t) {
      EXPECT_FALSE(t->Render(MapScope(), true).empty()) << unit;
    } else {
      EXPECT_FALSE(e.message.empty()) << unit;
      EXPECT_LE(e.offset, src.size()) << unit;
    }
  }
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80                 ? 1
                     : c >= 0xC2 && c < 0xE0  ? 2
                     : c >= 0xE0 && c < 0xF0  ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(TemplateHostile, RandomInputNeverCrashes) {
  const std::string_view alphabet[] = {"{{",    "}}", "{",    "}",    "|", ":",        "\"",
                                       "'",     "\\", " ",    "x",    ".", "customer", "default",
                                       "upper", "\n", "\xc3", "\xa9", "<", "&",        "9"};
  std::mt19937 rng(20260517);
  std::uniform_int_distribution<size_t> pick(0, std::size(alphabet) - 1);
  std::uniform_int_distribution<int> length(0, 40);
  MapScope scope({{"x", "<&>"}, {"customer.x", "X"}});
  int parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string src;
    for (int n = length(rng); n > 0; --n) src += alphabet[pick(rng)];
    TemplateError e;
    auto t = TextTemplate::Parse(src, &e);
    if (t) {
      ++parsed;
      // Splitting valid UTF-8 at ASCII braces keeps it valid, and so does every value.
      ASSERT_TRUE(IsUtf8(t->Render(scope, true))) << src;
      if (src.find("{{") == std::string::npos) {
        ASSERT_EQ(t->Render(scope, false), src);
      }
    } else {
      ASSERT_FALSE(e.message.empty()) << src;
      ASSERT_LE(e.offset, src.size()) << src;
    }
  }
  EXPECT_GT(parsed, 100);  // the generator does produce valid templates too
}

}  // namespace
}  // namespace journeyd::flow

namespace journeyd::flow {
namespace {

// Found by tests/fuzz (loader): a flows directory with only templates/nl/welcome.yaml, or a
// template file named Welcome.yaml, gave an error without a line (file: error: ...), where
// every other error is at file:line:column.
TEST(TemplateFiles, ErrorsAboutAWholeFileAreAtItsFirstLine) {
  const std::string ok = "subject: Hi\ntext: Hello\n";
  for (const TemplateSource& src :
       {TemplateSource{"nl", {"flows/templates/nl/welcome.yaml", ok, ""}},
        TemplateSource{"", {"flows/templates/Welcome.yaml", ok, ""}}}) {
    TemplateSet set;
    Diagnostics diags;
    CompileTemplates({src}, "flows/templates", set, diags);
    ASSERT_TRUE(diags.HasErrors()) << src.file.path;
    for (const Diagnostic& d : diags.all()) {
      EXPECT_EQ(d.where.file, src.file.path);
      EXPECT_EQ(d.where.line, 1) << d.ToString();
      EXPECT_EQ(d.where.column, 1) << d.ToString();
    }
  }
}

}  // namespace
}  // namespace journeyd::flow
