// Running flow tests: each test's timeline through engine::Simulate, then every expectation
// compared with what the engine recorded; a failure names the expectation's line.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "journeyd/engine/simulator.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/flow_tests.h"
#include "journeyd/host/time_zones.h"

namespace journeyd::host {
namespace {

namespace fs = std::filesystem;
using engine::Record;

// "+180d", "+1d9h", "+0", "-2h": a time as an offset from the test's start, in days first.
std::string Offset(Duration d) {
  std::string out = d.count() < 0 ? "-" : "+";
  int64_t ms = d.count() < 0 ? -d.count() : d.count();
  if (ms == 0) return "+0";
  if (int64_t days = ms / kDay.count(); days > 0) out += fmt::format("{}d", days);
  if (int64_t rest = ms % kDay.count(); rest > 0) out += FormatDuration(Duration{rest});
  return out;
}

class Checker {
 public:
  Checker(const flow::FlowSet& flows, const std::string& path, const FlowTestCase& test,
          const engine::SimulationResult& result)
      : flows_(flows), path_(path), test_(test) {
    for (const Record& r : result.records) {
      if (r.customer_id == test.customer_id) records_.push_back(&r);
    }
  }

  void CheckNames();
  void CheckSends();
  void CheckNoSend();
  void CheckExits();
  void CheckInStep(const std::map<TimePoint, std::vector<engine::Journey>>& seen);
  // In the order of the file's lines.
  std::vector<std::string> failures() {
    std::stable_sort(failures_.begin(), failures_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& f : failures_) out.push_back(std::move(f.second));
    return out;
  }

 private:
  void Fail(int line, const std::string& expected, const std::string& got) {
    failures_.emplace_back(line,
                           fmt::format("{}:{}: expected {}, got {}", path_, line, expected, got));
  }
  std::string At(TimePoint t) const {
    return fmt::format("{} ({})", FormatRfc3339(t), Offset(t - test_.start));
  }
  std::string Mail(const Record& r) const {
    return fmt::format("{} ({}) at {}", r.step, r.template_name, At(r.at));
  }
  static std::string Wanted(const MailMatch& m) {
    std::string s = m.step.empty() ? m.template_name : m.step;
    if (!m.step.empty() && !m.template_name.empty()) s += " (" + m.template_name + ")";
    return s;
  }
  static bool Matches(const MailMatch& m, const Record& r) {
    return (m.flow.empty() || m.flow == r.flow) && (m.step.empty() || m.step == r.step) &&
           (m.template_name.empty() || m.template_name == r.template_name);
  }
  std::vector<const Record*> Of(Record::Kind kind, const std::string& flow) const {
    std::vector<const Record*> out;
    for (const Record* r : records_) {
      if (r->kind == kind && (flow.empty() || r->flow == flow)) out.push_back(r);
    }
    return out;
  }
  std::string WhyNoMore(const std::string& flow, TimePoint after) const;
  void CheckFlowSends(const std::string& flow, const std::vector<const MailMatch*>& expected);

  const flow::FlowSet& flows_;
  const std::string& path_;
  const FlowTestCase& test_;
  std::vector<const Record*> records_;
  std::vector<std::pair<int, std::string>> failures_;
};

// Every flow and step an expectation names exists: a typo fails the test, not silently passes.
void Checker::CheckNames() {
  auto check = [&](int line, const std::string& flow, const std::string& step) {
    const flow::Flow* f = flows_.Find(flow);
    if (!f) {
      std::string names;
      for (const auto& g : flows_.flows()) names += (names.empty() ? "" : ", ") + g.id;
      Fail(line, fmt::format("a flow '{}'", flow), fmt::format("none of that name ({})", names));
    } else if (!step.empty() && f->FindStep(step) == flow::kEnd) {
      Fail(line, fmt::format("a step '{}' in {}", step, flow), "none of that id");
    }
  };
  for (const auto& m : test_.sends) check(m.line, m.flow, m.step);
  if (!test_.sends_flow.empty()) check(test_.sends_line, test_.sends_flow, "");
  for (const auto& m : test_.no_send) check(m.line, m.flow, m.step);
  for (const auto& x : test_.exits) check(x.line, x.flow, "");
  for (const auto& s : test_.in_step) check(s.line, s.flow, s.step);
}

std::string Checker::WhyNoMore(const std::string& flow, TimePoint after) const {
  for (const Record* r : Of(Record::Kind::kExit, flow)) {
    if (r->at >= after) return fmt::format(" (the journey ended at {}: {})", At(r->at), r->reason);
  }
  for (const Record* r : Of(Record::Kind::kSuppress, flow)) {
    if (r->at >= after) {
      return fmt::format(" ({} was suppressed at {}: {})", r->step, At(r->at), r->reason);
    }
  }
  return "";
}

// The i-th expected mail of a flow is its i-th mail; the first difference is reported.
void Checker::CheckFlowSends(const std::string& flow,
                             const std::vector<const MailMatch*>& expected) {
  std::vector<const Record*> got = Of(Record::Kind::kSend, flow);
  for (size_t i = 0; i < expected.size(); ++i) {
    const MailMatch& m = *expected[i];
    std::string want = fmt::format("{} {}", flow, Wanted(m));
    if (m.at) want += " at " + At(*m.at);
    if (i >= got.size()) {
      TimePoint after = i ? got[i - 1]->at : test_.start;
      Fail(m.line, want,
           fmt::format("no {} mail{}", i ? "more " + flow : flow,
                       (i ? "s" : "") + WhyNoMore(flow, after)));
      return;
    }
    if (!Matches(m, *got[i]) || (m.at && *m.at != got[i]->at)) {
      Fail(m.line, want, Mail(*got[i]));
      return;
    }
  }
  if (got.size() > expected.size()) {
    Fail(test_.sends_line,
         (expected.empty() ? "no " : "no more ") + flow + (expected.empty() ? " mail" : " mails"),
         Mail(*got[expected.size()]));
  }
}

void Checker::CheckSends() {
  if (!test_.check_sends) return;
  std::map<std::string, std::vector<const MailMatch*>> by_flow;
  if (!test_.sends_flow.empty()) by_flow[test_.sends_flow];  // sends: []
  for (const auto& m : test_.sends) by_flow[m.flow].push_back(&m);
  for (const auto& [flow, expected] : by_flow) CheckFlowSends(flow, expected);
}

void Checker::CheckNoSend() {
  if (test_.no_mail_at_all) {
    auto sent = Of(Record::Kind::kSend, "");
    if (!sent.empty()) {
      Fail(test_.no_send_line, "no mail at all",
           fmt::format("{} {}", sent.front()->flow, Mail(*sent.front())));
    }
  }
  for (const auto& m : test_.no_send) {
    for (const Record* r : Of(Record::Kind::kSend, m.flow)) {
      if (!Matches(m, *r) || (m.after && r->at < *m.after) || (m.before && r->at >= *m.before)) {
        continue;
      }
      std::string want = Wanted(m).empty() ? fmt::format("no {} mail", m.flow)
                                           : fmt::format("no {} {}", m.flow, Wanted(m));
      Fail(m.line, want, Mail(*r));
      break;
    }
  }
}

void Checker::CheckExits() {
  for (const auto& x : test_.exits) {
    auto exits = Of(Record::Kind::kExit, x.flow);
    bool found = std::any_of(exits.begin(), exits.end(), [&](const Record* r) {
      return (x.reason.empty() || x.reason == r->reason) && (!x.at || *x.at == r->at);
    });
    if (found) continue;
    std::string want = fmt::format("{} to end", x.flow);
    if (!x.reason.empty()) want += " with " + x.reason;
    if (x.at) want += " at " + At(*x.at);
    std::string got;
    for (const Record* r : exits) {
      got += fmt::format("{}{} at {}", got.empty() ? "" : "; ", r->reason, At(r->at));
    }
    Fail(x.line, want, got.empty() ? "no end of " + x.flow + " by " + At(test_.until) : got);
  }
}

void Checker::CheckInStep(const std::map<TimePoint, std::vector<engine::Journey>>& seen) {
  for (const auto& s : test_.in_step) {
    std::string got;
    if (auto it = seen.find(s.at); it != seen.end()) {
      for (const auto& j : it->second) {
        if (j.flow == s.flow) got = j.step;
      }
    }
    if (got == s.step) continue;
    std::string want = s.step.empty() ? fmt::format("not in {}", s.flow)
                                      : fmt::format("{} at step {}", s.flow, s.step);
    Fail(s.line, fmt::format("{} at {}", want, At(s.at)),
         got.empty() ? fmt::format("not in {}", s.flow) : fmt::format("step {}", got));
  }
}

std::vector<std::string> Expand(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const std::string& p : ExpandPaths(paths)) {
    if (!fs::is_directory(p, ec)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> in_dir;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      auto ext = e.path().extension();
      if (e.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml")) {
        in_dir.push_back(e.path().string());
      }
    }
    std::sort(in_dir.begin(), in_dir.end());
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  return files;
}

// The flows folder a test file names (relative to its own folder), else the one above it.
std::string FlowsDirOf(const FlowTestFile& file) {
  fs::path dir = fs::path(file.path).parent_path();
  if (dir.empty()) dir = ".";
  fs::path flows = file.flows_dir.empty() ? dir / ".." : dir / file.flows_dir;
  return flows.lexically_normal().string();
}

}  // namespace

std::vector<std::string> RunFlowTestCase(const flow::FlowSet& flows, const engine::Policy& policy,
                                         const std::string& path, const FlowTestCase& test) {
  engine::SimulationOptions options;
  options.roundtrip_state = true;  // as the daemon stores and reads every state
  options.horizon = test.events.empty() ? Duration{0} : test.until - test.events.back().ts;
  if (options.horizon.count() < 0) options.horizon = Duration{0};
  std::map<TimePoint, std::vector<engine::Journey>> seen;
  for (const auto& s : test.in_step) options.observe_at.push_back(s.at);
  std::sort(options.observe_at.begin(), options.observe_at.end());
  options.observe = [&](TimePoint t, const std::map<std::string, engine::CustomerState>& all) {
    auto it = all.find(test.customer_id);
    seen[t] = it == all.end() ? std::vector<engine::Journey>{} : it->second.journeys;
  };
  engine::SimulationResult result = engine::Simulate(flows, policy, test.events, options);
  Checker c(flows, path, test, result);
  c.CheckNames();
  c.CheckSends();
  c.CheckNoSend();
  c.CheckExits();
  c.CheckInStep(seen);
  std::vector<std::string> failures = c.failures();
  if (!result.error.empty()) {
    failures.push_back(
        fmt::format("{}:{}: the simulation stopped: {}", path, test.line, result.error));
  }
  return failures;
}

FlowTestReport RunFlowTests(const std::vector<std::string>& paths) {
  FlowTestReport report;
  std::map<std::string, flow::LoadResult> loaded;  // by flows folder
  for (const std::string& path : Expand(paths)) {
    ++report.files;
    Diagnostics diags;
    auto file = ParseFlowTestFile(ReadSourceFile(path), diags);
    report.diagnostics.Append(diags);
    if (!file) {
      ++report.failed_files;
      continue;
    }
    std::string dir = FlowsDirOf(*file);
    auto it = loaded.find(dir);
    if (it == loaded.end()) {
      it = loaded.emplace(dir, LoadFlowDirectory(dir)).first;
      if (!it->second.flows) report.diagnostics.Append(it->second.diagnostics);
    }
    if (!it->second.flows) {
      report.diagnostics.Error({path, 1, 1}, fmt::format("the flows in {} do not load", dir));
      ++report.failed_files;
      continue;
    }
    engine::Policy policy;
    policy.zones = &SystemTimeZones();
    policy.timezone = file->timezone;
    if (!policy.zones->Find(file->timezone)) {
      report.diagnostics.Error(
          {path, 1, 1}, fmt::format("timezone '{}' is not a known time zone", file->timezone));
      ++report.failed_files;
      continue;
    }
    policy.unsubscribe_url = [](std::string_view, std::string_view, std::string_view job) {
      return fmt::format("https://unsubscribe.invalid/test?job={}", job);
    };
    for (const FlowTestCase& test : file->tests) {
      report.outcomes.push_back(
          {path, test.name, test.line, RunFlowTestCase(*it->second.flows, policy, path, test)});
    }
  }
  return report;
}

}  // namespace journeyd::host
