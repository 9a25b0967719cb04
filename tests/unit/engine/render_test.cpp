// Mails rendered at send time from the values a step kept (engine/render.h): the same mail
// as rendering at once, for every kind of value, escaping included.
#include "journeyd/engine/render.h"

#include <gtest/gtest.h>

#include <map>

#include "test_support.h"

namespace journeyd::engine {
namespace {

using flow::Path;
using flow::Root;
using flow::Value;

// Values by path ("customer.first_name", "trigger.data.total", a bare step variable name).
class MapScope final : public flow::Scope {
 public:
  explicit MapScope(TimePoint now) : now_(now) {}
  std::map<std::string, Value> values;
  TimePoint Now() const override { return now_; }
  Value Lookup(const Path& p) const override {
    std::string key = p.root == Root::kCustomer  ? "customer"
                      : p.root == Root::kTrigger ? "trigger"
                      : p.root == Root::kEvent   ? "event"
                                                 : "";
    for (const auto& s : p.segments) key += (key.empty() ? "" : ".") + s;
    auto it = values.find(key);
    return it == values.end() ? Value::Null() : it->second;
  }

 private:
  TimePoint now_;
};

flow::TextTemplate Parse(const std::string& text) {
  flow::TemplateError err;
  auto t = flow::TextTemplate::Parse(text, &err);
  EXPECT_TRUE(t) << err.message << " at " << err.offset;
  return t.value_or(flow::TextTemplate{});
}

TEST(Render, FromTheSnapshotIsTheSameMailAsRenderingAtOnce) {
  const TimePoint now = testing::T("2026-03-04T05:06:07.089Z");
  MapScope scope(now);
  const std::vector<Value> tags = {Value::String("red"), Value::Number(2.5), Value::Bool(false)};
  scope.values = {
      {"customer.first_name", Value::String("Zoë \"Z\" <b>&\\ \x01 end\nline")},
      {"customer.points", Value::Number(1234)},
      {"customer.vip", Value::Bool(true)},
      {"customer.first_purchase_at", Value::Time(testing::T("2025-12-31T23:59:59.999Z"))},
      {"trigger.data.total", Value::Number(42.5)},
      {"trigger.data.tags", Value::List(tags)},
      {"percent", Value::Number(15)},
      {"code", Value::String("COMEBACK15")},
      {"grace", Value::Dur(Duration{3 * 86'400'000LL})},
      {"unsubscribe_url", Value::String("https://shop.example/u?t=abc&x=1")},
      {"flow_id", Value::String("winback")},
      {"step_id", Value::String("mail2")},
  };
  const std::string body =
      "{{customer.first_name}}|{{customer.first_name | upper}}|{{customer.points}}|"
      "{{customer.vip}}|{{customer.first_purchase_at}}|{{customer.first_purchase_at | date}}|"
      "{{trigger.data.total | money}}|{{trigger.data.tags}}|{{percent}}|{{code | lower}}|"
      "{{grace}}|{{customer.missing | default: \"none\"}}|{{now | date}}|{{now}}|"
      "{{unsubscribe_url}}|{{flow_id}}|{{step_id}}|{{{code}}}";
  flow::Template t;
  t.name = "sample";
  t.subject = Parse("{{percent}}% off, {{customer.first_name | default: \"friend\"}}");
  t.text = Parse(body);
  t.html = Parse("<p>" + body + "</p>");

  SendJob job;
  job.at = now;
  job.flow = "winback";
  job.step = "mail2";
  job.unsubscribe_url = "https://shop.example/u?t=abc&x=1";
  job.vars = SnapshotVars(t, scope);
  // What the job carries itself, and what is missing, stays out of the snapshot.
  EXPECT_EQ(job.vars.find("unsubscribe_url"), std::string::npos) << job.vars;
  EXPECT_EQ(job.vars.find("missing"), std::string::npos) << job.vars;
  EXPECT_EQ(job.vars.find("now"), std::string::npos) << job.vars;
  EXPECT_NE(job.vars.find(R"("percent":15)"), std::string::npos) << job.vars;
  EXPECT_NE(job.vars.find(R"("customer.first_name":"Zoë \"Z\" <b>&\\ \u0001 end\u000aline")"),
            std::string::npos)
      << job.vars;

  std::string err;
  ASSERT_TRUE(RenderSendJob(t, job, &err)) << err;
  EXPECT_EQ(job.subject, OneLine(t.subject.Render(scope, false)));
  EXPECT_EQ(job.text, t.text.Render(scope, false));
  EXPECT_EQ(job.html, t.html->Render(scope, true));
  // And the values really went through: escaped in html, filters applied.
  EXPECT_NE(job.html.find("Zoë &quot;Z&quot; &lt;b&gt;&amp;"), std::string::npos) << job.html;
  EXPECT_NE(job.text.find("|42.50|red, 2.5, false|15|comeback15|3d|none|2026-03-04|"),
            std::string::npos)
      << job.text;
  EXPECT_NE(job.text.find("|2025-12-31T23:59:59.999Z|2025-12-31|"), std::string::npos) << job.text;
  // One header line: the control character became a space.
  EXPECT_EQ(job.subject, "15% off, Zoë \"Z\" <b>&\\   end line");
}

// A list holding times and durations comes back from the snapshot whole (found by
// fuzz_template: they were dropped, and the mail said "0, true" where "0, 3d, true, ..." was due).
TEST(Render, AListOfTimesAndDurationsComesBackFromTheSnapshotWhole) {
  const TimePoint now = testing::T("2026-03-04T05:06:07Z");
  MapScope scope(now);
  const std::vector<Value> items = {
      Value::Number(0),  Value::Dur(Duration{3 * 86'400'000LL}),
      Value::Bool(true), Value::Time(testing::T("2026-01-02T03:04:05.006Z")),
      Value::Null(),     Value::String("x")};
  scope.values = {{"dates", Value::List(items)}};
  flow::Template t;
  t.name = "list";
  t.subject = Parse("s");
  t.text = Parse("{{dates}}");
  SendJob job;
  job.at = now;
  job.vars = SnapshotVars(t, scope);
  std::string err;
  ASSERT_TRUE(RenderSendJob(t, job, &err)) << err;
  EXPECT_EQ(job.text, t.text.Render(scope, false)) << job.vars;
  EXPECT_NE(job.text.find("3d"), std::string::npos) << job.text;
  EXPECT_NE(job.text.find("2026-01-02T03:04:05.006Z"), std::string::npos) << job.text;
}

TEST(Render, BadVarsAndAMissingTemplateAreErrors) {
  flow::Template t;
  t.subject = Parse("Hi {{customer.first_name}}");
  t.text = Parse("text");
  SendJob job;
  std::string err;
  for (const char* bad : {"{nope", "[1,2]", "\"text\""}) {
    job.vars = bad;
    err.clear();
    EXPECT_FALSE(RenderSendJob(t, job, &err)) << bad;
    EXPECT_NE(err.find("vars"), std::string::npos) << err;
  }
  job.vars = "";  // nothing to look up: still a mail
  EXPECT_TRUE(RenderSendJob(t, job, &err)) << err;
  EXPECT_EQ(job.subject, "Hi ");
  flow::TemplateSet none;
  job.template_name = "gone";
  EXPECT_FALSE(RenderSendJob(none, job, &err));
  EXPECT_EQ(err, "template 'gone' is not loaded");
}

// The daemon leaves rendering to the sender (render_mail off); what the sender renders from
// the job is what the engine renders when asked to.
TEST(Render, AnUnrenderedJobRendersToTheSameMailAsTheEngine) {
  auto flows = testing::ShippedFlows();
  ASSERT_TRUE(flows);
  Event ev = testing::Ev(R"({"type":"signup","customer_id":"c1","ts":"2026-01-10T12:00:00Z",)" +
                         testing::kOptedIn + "}");
  Policy rendering;
  rendering.unsubscribe_url = [](std::string_view, std::string_view, std::string_view) {
    return std::string("https://shop.example/unsubscribe?token=t");
  };
  Policy deferred = rendering;
  deferred.render_mail = false;
  CustomerState a, b;
  a.id = b.id = "c1";
  Decisions da = Step(*flows, rendering, a, EventInput{ev}, ev.ts);
  Decisions db = Step(*flows, deferred, b, EventInput{ev}, ev.ts);
  ASSERT_EQ(da.sends.size(), 1u);
  ASSERT_EQ(db.sends.size(), 1u);
  SendJob job = db.sends[0];
  EXPECT_TRUE(job.text.empty());
  EXPECT_EQ(job.vars, da.sends[0].vars);
  EXPECT_NE(job.vars.find("Anna"), std::string::npos) << job.vars;
  std::string err;
  ASSERT_TRUE(RenderSendJob(flows->templates(), job, &err)) << err;
  EXPECT_EQ(job.subject, da.sends[0].subject);
  EXPECT_EQ(job.text, da.sends[0].text);
  EXPECT_EQ(job.html, da.sends[0].html);
  EXPECT_NE(job.text.find("Anna"), std::string::npos);
  EXPECT_NE(job.text.find("https://shop.example/unsubscribe?token=t"), std::string::npos);
}

}  // namespace
}  // namespace journeyd::engine
