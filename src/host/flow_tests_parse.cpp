// Reading a flow test file: the YAML, checked key by key, into a FlowTestFile with the line of
// every expectation (a failure names it). Times are RFC 3339 or offsets from the test's start.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "journeyd/host/flow_tests.h"

namespace journeyd::host {
namespace {

using Json = nlohmann::json;

YAML::Node Get(const YAML::Node& n, const char* key) {
  if (n.IsMap()) {
    const YAML::Node& map = n;
    YAML::Node v = map[key];
    if (v.IsDefined()) return v;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

int LineOf(const YAML::Node& n) {
  return n.IsDefined() && !n.Mark().is_null() ? n.Mark().line + 1 : 1;
}

// A YAML scalar as JSON: quoted text stays text; true/false, null and numbers are typed.
Json ScalarJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "true" || s == "false") return s == "true";
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  int64_t i = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  double d = 0;
  auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec2 == std::errc() && q == s.data() + s.size()) return d;
  return s;
}

Json ToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    Json o = Json::object();
    for (const auto& kv : n) o[kv.first.Scalar()] = ToJson(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    Json a = Json::array();
    for (const auto& v : n) a.push_back(ToJson(v));
    return a;
  }
  if (n.IsScalar()) return ScalarJson(n);
  return nullptr;
}

class Parser {
 public:
  Parser(const flow::SourceFile& file, Diagnostics& diags) : file_(file), diags_(diags) {}

  std::optional<FlowTestFile> Parse();

 private:
  void Error(const YAML::Node& n, std::string message) {
    SourceLocation at{file_.path, 1, 1};
    if (n.IsDefined() && !n.Mark().is_null()) {
      at = {file_.path, n.Mark().line + 1, n.Mark().column + 1};
    }
    diags_.Error(at, std::move(message));
  }
  void CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                 std::string_view what);
  bool Text(const YAML::Node& n, std::string_view what, std::string* out);
  std::optional<TimePoint> Time(const YAML::Node& n, const std::optional<TimePoint>& start);
  bool Mapping(const YAML::Node& n, std::string_view what);
  void ParseCase(const YAML::Node& n, FlowTestCase& test);
  void ParseTimeline(const YAML::Node& list, FlowTestCase& test, Json profile);
  std::optional<engine::Event> ParseEvent(const YAML::Node& n, const FlowTestCase& test,
                                          std::optional<TimePoint>& start);
  void ParseExpect(const YAML::Node& n, FlowTestCase& test);
  void ParseSends(const YAML::Node& n, FlowTestCase& test);
  void ParseNoSend(const YAML::Node& n, FlowTestCase& test);
  void ParseExits(const YAML::Node& n, FlowTestCase& test);
  void ParseInStep(const YAML::Node& n, FlowTestCase& test);
  std::string FlowOf(const YAML::Node& n);
  std::optional<MailMatch> ParseMail(const YAML::Node& n, bool sends);
  void ComputeUntil(const YAML::Node& n, FlowTestCase& test);

  const flow::SourceFile& file_;
  Diagnostics& diags_;
  std::string default_flow_;  // the file's, then the test's `flow:`
  Json file_profile_ = Json::object();
  std::string file_customer_ = "c1";
  std::optional<TimePoint> start_;  // the current test's, once known
  YAML::Node current_test_;
};

void Parser::CheckKeys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                       std::string_view what) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    const std::string& key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string names;
    for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
    Error(kv.first,
          fmt::format("unknown key '{}' in {}{} (expected one of: {})", key, what,
                      DidYouMean(key, std::span(allowed.begin(), allowed.size())), names));
  }
}

bool Parser::Text(const YAML::Node& n, std::string_view what, std::string* out) {
  if (!n.IsScalar()) {
    Error(n, fmt::format("{} must be a single value", what));
    return false;
  }
  *out = n.Scalar();
  return true;
}

bool Parser::Mapping(const YAML::Node& n, std::string_view what) {
  if (n.IsMap()) return true;
  Error(n, fmt::format("{} must be a mapping (key: value lines)", what));
  return false;
}

// "2026-03-01T09:00:00Z", "2026-03-01", or an offset from the start: "+3d", "+1d9h", "+0".
std::optional<TimePoint> Parser::Time(const YAML::Node& n, const std::optional<TimePoint>& start) {
  std::string s;
  if (!Text(n, "'at:'", &s)) return std::nullopt;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (!start) {
      Error(n, fmt::format("'{}' is relative, but the test has no start: write 'start:' or give "
                           "the first event an absolute time such as 2026-03-01T09:00:00Z",
                           s));
      return std::nullopt;
    }
    if (s == "+0" || s == "-0") return *start;
    std::string err;
    auto d = ParseDuration(s[0] == '+' ? std::string_view(s).substr(1) : std::string_view(s), &err);
    if (!d) {
      Error(n, fmt::format("offset '{}': write + and a duration such as +3d or +1d9h", s));
      return std::nullopt;
    }
    return *start + *d;
  }
  if (auto t = ParseTimestamp(s)) return *t;
  Error(n, fmt::format("time '{}': write an RFC 3339 time such as 2026-03-01T09:00:00Z or an "
                       "offset from the start such as +3d",
                       s));
  return std::nullopt;
}

std::optional<FlowTestFile> Parser::Parse() {
  YAML::Node root = YAML::Load(file_.text);
  if (!root.IsMap()) {
    Error(root, "a flow test file is a mapping with 'tests:', a list of tests");
    return std::nullopt;
  }
  CheckKeys(root, {"flows", "flow", "timezone", "customer", "profile", "tests"}, "a test file");
  FlowTestFile out;
  out.path = file_.path;
  if (auto f = Get(root, "flows"); f) Text(f, "'flows:'", &out.flows_dir);
  if (auto f = Get(root, "flow"); f) Text(f, "'flow:'", &default_flow_);
  if (auto z = Get(root, "timezone"); z) Text(z, "'timezone:'", &out.timezone);
  if (auto c = Get(root, "customer"); c) Text(c, "'customer:'", &file_customer_);
  if (auto p = Get(root, "profile"); p && Mapping(p, "'profile:'")) file_profile_ = ToJson(p);
  YAML::Node tests = Get(root, "tests");
  if (!tests.IsSequence() || tests.size() == 0) {
    Error(tests.IsDefined() ? tests : root,
          "'tests:' must be a list of tests, each with a "
          "name, a timeline and what to expect");
    return std::nullopt;
  }
  const std::string file_flow = default_flow_;
  for (const auto& t : tests) {
    default_flow_ = file_flow;
    FlowTestCase test;
    ParseCase(t, test);
    out.tests.push_back(std::move(test));
  }
  return out;
}

void Parser::ParseCase(const YAML::Node& n, FlowTestCase& test) {
  test.line = LineOf(n);
  start_.reset();
  current_test_.reset(n);  // rebinds (operator= would overwrite the node it refers to)
  if (!Mapping(n, "a test")) return;
  CheckKeys(n, {"name", "flow", "customer", "start", "until", "profile", "timeline", "expect"},
            "a test");
  if (auto v = Get(n, "name"); v) Text(v, "'name:'", &test.name);
  if (test.name.empty()) Error(n, "a test needs a 'name:' saying what it shows");
  if (auto v = Get(n, "flow"); v) Text(v, "'flow:'", &default_flow_);
  test.customer_id = file_customer_;
  if (auto v = Get(n, "customer"); v) Text(v, "'customer:'", &test.customer_id);
  Json profile = file_profile_;
  if (auto p = Get(n, "profile"); p && Mapping(p, "'profile:'")) profile.update(ToJson(p));
  if (auto s = Get(n, "start"); s) {
    if (auto t = Time(s, std::nullopt)) test.start = *t;
  }
  ParseTimeline(Get(n, "timeline"), test, std::move(profile));
  YAML::Node expect = Get(n, "expect");
  if (!expect.IsDefined()) {
    Error(n, "a test needs 'expect:' (sends, no_send, exits or in_step)");
  } else if (Mapping(expect, "'expect:'")) {
    ParseExpect(expect, test);
  }
  ComputeUntil(Get(n, "until"), test);
}

void Parser::ParseTimeline(const YAML::Node& list, FlowTestCase& test, Json profile) {
  std::optional<TimePoint> start;
  if (test.start != TimePoint{}) start = test.start;
  if (list.IsDefined() && !list.IsSequence()) {
    Error(list, "'timeline:' must be a list of events");
    return;
  }
  std::vector<engine::Event> events;
  std::optional<TimePoint> last;
  for (const auto& e : list) {
    auto ev = ParseEvent(e, test, start);
    if (!ev) continue;
    if (last && ev->ts < *last) {
      Error(e, "the timeline must be in time order: this event is before the one above it");
    }
    last = ev->ts;
    events.push_back(std::move(*ev));
  }
  if (!start) {
    if (!profile.empty()) {
      Error(list.IsDefined() ? list : current_test_,
            "write 'start:' (the moment the profile is known and +0 means) or give the test a "
            "timeline");
    }
    return;
  }
  test.start = *start;
  start_ = *start;
  if (!profile.empty()) {
    // The profile as of the start: journeyd learns it from a profile_updated event.
    Json j = {{"type", "profile_updated"},
              {"customer_id", test.customer_id},
              {"ts", FormatRfc3339(*start)},
              {"profile", std::move(profile)}};
    engine::EventError err;
    if (auto ev = engine::EventFromJson(j, &err)) {
      test.events.push_back(std::move(*ev));
    } else {
      Error(list, "profile: " + err.ToString());
    }
  }
  for (auto& ev : events) test.events.push_back(std::move(ev));
  std::stable_sort(test.events.begin(), test.events.end(),
                   [](const engine::Event& a, const engine::Event& b) { return a.ts < b.ts; });
}

std::optional<engine::Event> Parser::ParseEvent(const YAML::Node& n, const FlowTestCase& test,
                                                std::optional<TimePoint>& start) {
  if (!Mapping(n, "an event")) return std::nullopt;
  CheckKeys(n, {"at", "event", "data", "profile", "event_id"}, "an event");
  YAML::Node at = Get(n, "at"), type = Get(n, "event");
  // The time first: a first event with a mistake elsewhere still sets the start.
  std::optional<TimePoint> ts;
  if (at) ts = Time(at, start);
  if (ts && !start) start = *ts;
  if (!at || !type) {
    Error(n, "an event needs 'at:' (when) and 'event:' (its type, e.g. purchase)");
    return std::nullopt;
  }
  if (!ts) return std::nullopt;
  Json j = {{"type", ToJson(type)}, {"customer_id", test.customer_id}, {"ts", FormatRfc3339(*ts)}};
  if (auto d = Get(n, "data"); d) j["data"] = ToJson(d);
  if (auto p = Get(n, "profile"); p) j["profile"] = ToJson(p);
  if (auto id = Get(n, "event_id"); id) j["event_id"] = id.Scalar();
  engine::EventError err;
  auto ev = engine::EventFromJson(j, &err);
  if (!ev) {
    Error(n, err.ToString());
    return std::nullopt;
  }
  return ev;
}

void Parser::ParseExpect(const YAML::Node& n, FlowTestCase& test) {
  CheckKeys(n, {"sends", "no_send", "exits", "in_step"}, "'expect:'");
  for (const auto& kv : n) {  // a failure about the whole list names the line of its key
    if (kv.first.Scalar() == "sends") test.sends_line = LineOf(kv.first);
    if (kv.first.Scalar() == "no_send") test.no_send_line = LineOf(kv.first);
  }
  if (auto s = Get(n, "sends"); s) ParseSends(s, test);
  if (auto s = Get(n, "no_send"); s) ParseNoSend(s, test);
  if (auto s = Get(n, "exits"); s) ParseExits(s, test);
  if (auto s = Get(n, "in_step"); s) ParseInStep(s, test);
}

std::string Parser::FlowOf(const YAML::Node& n) {
  std::string flow = default_flow_;
  if (auto f = Get(n, "flow"); f) Text(f, "'flow:'", &flow);
  if (flow.empty()) Error(n, "which flow? write 'flow:' here, in the test or in the file");
  return flow;
}

// A mail: a step id alone ("mail1"), or {at, flow, step, template} (no_send also after, before).
std::optional<MailMatch> Parser::ParseMail(const YAML::Node& n, bool sends) {
  MailMatch m;
  m.line = LineOf(n);
  const std::optional<TimePoint>& start = start_;
  if (n.IsScalar()) {
    m.step = n.Scalar();
    m.flow = FlowOf(n);
    return m;
  }
  if (!Mapping(n, "a mail")) return std::nullopt;
  if (sends) {
    CheckKeys(n, {"at", "flow", "step", "template"}, "a mail");
  } else {
    CheckKeys(n, {"flow", "step", "template", "after", "before"}, "a mail");
  }
  m.flow = FlowOf(n);
  if (auto v = Get(n, "step"); v) Text(v, "'step:'", &m.step);
  if (auto v = Get(n, "template"); v) Text(v, "'template:'", &m.template_name);
  if (auto v = Get(n, "at"); v) m.at = Time(v, start);
  if (auto v = Get(n, "after"); v) m.after = Time(v, start);
  if (auto v = Get(n, "before"); v) m.before = Time(v, start);
  if (sends && m.step.empty() && m.template_name.empty()) {
    Error(n, "a mail needs 'step:' or 'template:'");
  }
  return m;
}

void Parser::ParseSends(const YAML::Node& n, FlowTestCase& test) {
  test.check_sends = true;
  if (!n.IsSequence()) {
    Error(n, "'sends:' must be a list of mails ([] for none)");
    return;
  }
  if (n.size() == 0) test.sends_flow = FlowOf(n);
  for (const auto& m : n) {
    if (auto mail = ParseMail(m, true)) test.sends.push_back(std::move(*mail));
  }
}

void Parser::ParseNoSend(const YAML::Node& n, FlowTestCase& test) {
  if (n.IsScalar() && n.Scalar() == "true") {
    test.no_mail_at_all = true;
    return;
  }
  if (!n.IsSequence()) {
    Error(n, "'no_send:' must be true (no mail at all) or a list of mails");
    return;
  }
  for (const auto& m : n) {
    if (auto mail = ParseMail(m, false)) test.no_send.push_back(std::move(*mail));
  }
}

void Parser::ParseExits(const YAML::Node& n, FlowTestCase& test) {
  if (!n.IsSequence()) {
    Error(n, "'exits:' must be a list such as [{at: +3d, reason: exit_on:purchase}]");
    return;
  }
  const std::optional<TimePoint>& start = start_;
  for (const auto& e : n) {
    if (!Mapping(e, "an exit")) continue;
    CheckKeys(e, {"at", "flow", "reason"}, "an exit");
    ExitMatch x;
    x.line = LineOf(e);
    x.flow = FlowOf(e);
    if (auto v = Get(e, "at"); v) x.at = Time(v, start);
    if (auto v = Get(e, "reason"); v) Text(v, "'reason:'", &x.reason);
    test.exits.push_back(std::move(x));
  }
}

void Parser::ParseInStep(const YAML::Node& n, FlowTestCase& test) {
  if (!n.IsSequence()) {
    Error(n, "'in_step:' must be a list such as [{at: +2d, step: mail1}]");
    return;
  }
  const std::optional<TimePoint>& start = start_;
  for (const auto& e : n) {
    if (!Mapping(e, "an in_step")) continue;
    CheckKeys(e, {"at", "flow", "step"}, "an in_step");
    StepMatch s;
    s.line = LineOf(e);
    s.flow = FlowOf(e);
    YAML::Node at = Get(e, "at"), step = Get(e, "step");
    if (!at || !step) {
      Error(e, "an in_step needs 'at:' and 'step:' (a step id, or none: not in the flow)");
      continue;
    }
    if (auto t = Time(at, start)) s.at = *t;
    if (!step.IsNull() && step.Scalar() != "none") Text(step, "'step:'", &s.step);
    test.in_step.push_back(std::move(s));
  }
}

// The simulation runs to `until:`, else 400 days after the last event (as simulate does),
// and at least to the latest time an expectation names.
void Parser::ComputeUntil(const YAML::Node& n, FlowTestCase& test) {
  const std::optional<TimePoint>& start = start_;
  if (n) {
    if (auto t = Time(n, start)) test.until = *t;
    return;
  }
  TimePoint until = test.events.empty() ? test.start : test.events.back().ts + 400 * kDay;
  for (const auto& m : test.sends) {
    if (m.at) until = std::max(until, *m.at);
  }
  for (const auto& x : test.exits) {
    if (x.at) until = std::max(until, *x.at);
  }
  for (const auto& s : test.in_step) until = std::max(until, s.at);
  test.until = until;
}

}  // namespace

std::optional<FlowTestFile> ParseFlowTestFile(const flow::SourceFile& file, Diagnostics& diags) {
  if (!file.error.empty()) {
    diags.Error({file.path, 0, 0}, file.error);
    return std::nullopt;
  }
  Diagnostics mine;
  std::optional<FlowTestFile> out;
  try {
    out = Parser(file, mine).Parse();
  } catch (const YAML::Exception& e) {
    mine.Error({file.path, e.mark.line + 1, e.mark.column + 1},
               fmt::format("cannot read this test file: {}", e.msg));
  }
  bool bad = mine.HasErrors();
  mine.Sort();
  diags.Append(mine);
  if (bad) return std::nullopt;
  return out;
}

}  // namespace journeyd::host
