// Flow tests (journeyctl test): the file format read with its lines, and the checks run on the
// simulator against the shipped flows.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "journeyd/host/flow_files.h"
#include "journeyd/host/flow_tests.h"
#include "journeyd/host/time_zones.h"

namespace journeyd::host {
namespace {

namespace fs = std::filesystem;

std::optional<FlowTestFile> Parse(const std::string& text, Diagnostics& d) {
  return ParseFlowTestFile({"t.yaml", text, ""}, d);
}

std::string Errors(const Diagnostics& d) {
  std::string out;
  for (const auto& x : d.all()) out += x.ToString() + "\n";
  return out;
}

const flow::FlowSet& Shipped() {
  static const auto* loaded =
      new flow::LoadResult(LoadFlowDirectory(std::string(JOURNEYD_SOURCE_DIR) + "/flows"));
  return *loaded->flows;
}

std::vector<std::string> RunTest(const std::string& text) {
  Diagnostics d;
  auto file = Parse(text, d);
  EXPECT_TRUE(file) << Errors(d);
  if (!file) return {"not parsed"};
  engine::Policy policy;
  policy.zones = &SystemTimeZones();
  std::vector<std::string> all;
  for (const auto& t : file->tests) {
    for (auto& f : RunFlowTestCase(Shipped(), policy, "t.yaml", t)) all.push_back(f);
  }
  return all;
}

constexpr const char* kWinback = R"(flow: winback
profile: { email: a@example.com, email_opt_in: true }
tests:
  - name: halted
    timeline:
      - at: 2026-01-05T10:00:00Z
        event: purchase
        data: { total: 42.5 }
      - at: +215d
        event: purchase
    expect:
      sends:
        - { at: +180d, step: mail1 }
        - { at: +210d, step: mail2 }
      no_send: [mail3]
      exits:
        - { at: +215d, reason: "exit_on:purchase" }
      in_step:
        - { at: +211d, step: mail2+1 }
        - { at: +216d, step: none }
)";

TEST(FlowTestFile, ReadsTimesRelativeToTheFirstEventWithTheProfileFirst) {
  Diagnostics d;
  auto f = Parse(kWinback, d);
  ASSERT_TRUE(f) << Errors(d);
  ASSERT_EQ(f->tests.size(), 1u);
  const FlowTestCase& t = f->tests[0];
  EXPECT_EQ(t.line, 4);
  EXPECT_EQ(t.start, *ParseTimestamp("2026-01-05T10:00:00Z"));
  ASSERT_EQ(t.events.size(), 3u);
  EXPECT_EQ(t.events[0].type, "profile_updated");
  EXPECT_EQ(t.events[0].ts, t.start);
  EXPECT_EQ(t.events[1].type, "purchase");
  EXPECT_EQ(t.events[1].data["total"], 42.5);
  EXPECT_EQ(t.events[2].ts, t.start + 215 * kDay);
  ASSERT_EQ(t.sends.size(), 2u);
  EXPECT_EQ(t.sends[1].line, 14);
  EXPECT_EQ(t.sends[1].flow, "winback");
  EXPECT_EQ(*t.sends[1].at, t.start + 210 * kDay);
  ASSERT_EQ(t.no_send.size(), 1u);
  EXPECT_EQ(t.no_send[0].step, "mail3");
  ASSERT_EQ(t.in_step.size(), 2u);
  EXPECT_EQ(t.in_step[1].step, "");          // none: not in the flow
  EXPECT_EQ(t.until, t.start + 615 * kDay);  // 400 days after the last event
}

TEST(FlowTestFile, MistakesAreReportedWithLineAndColumn) {
  Diagnostics d;
  auto f = Parse(R"(tests:
  - name: x
    start: 2026-01-05T10:00:00Z
    timeline:
      - { at: +2d, event: purchase, dta: {} }
      - { at: +1d, event: purchase }
      - { at: soon, event: purchase }
    expect:
      sends: [{ at: +1d }]
      exits: [{ flow: winback, when: now }]
)",
                 d);
  EXPECT_FALSE(f);
  std::string e = Errors(d);
  EXPECT_NE(e.find("t.yaml:5:37: error: unknown key 'dta' in an event — did you mean 'data'?"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("t.yaml:6:9: error: the timeline must be in time order"), std::string::npos)
      << e;
  EXPECT_NE(e.find("t.yaml:7:15: error: time 'soon': write an RFC 3339 time"), std::string::npos)
      << e;
  EXPECT_NE(e.find("t.yaml:9:15: error: which flow?"), std::string::npos) << e;
  EXPECT_NE(e.find("t.yaml:9:15: error: a mail needs 'step:' or 'template:'"), std::string::npos)
      << e;
  EXPECT_NE(e.find("t.yaml:10:32: error: unknown key 'when' in an exit"), std::string::npos) << e;
}

TEST(FlowTestFile, NeedsTestsAndAStartForRelativeTimes) {
  Diagnostics d;
  EXPECT_FALSE(Parse("flow: winback\n", d));
  EXPECT_NE(Errors(d).find("'tests:' must be a list of tests"), std::string::npos) << Errors(d);
  Diagnostics d2;
  EXPECT_FALSE(
      Parse("tests:\n  - name: x\n    timeline: [{ at: +1d, event: signup }]\n"
            "    expect: { no_send: true }\n",
            d2));
  EXPECT_NE(Errors(d2).find("t.yaml:3:22: error: '+1d' is relative, but the test has no start"),
            std::string::npos)
      << Errors(d2);
}

TEST(FlowTestRun, APassingTestHasNoFailures) {
  EXPECT_EQ(RunTest(kWinback), std::vector<std::string>{});
}

TEST(FlowTestRun, EachKindOfExpectationFailsWithItsLine) {
  std::string text = kWinback;
  auto swap = [&](const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
  };
  swap("{ at: +210d, step: mail2 }", "{ at: +209d, step: mail2 }");
  swap("no_send: [mail3]", "no_send: [mail1]");
  swap("reason: \"exit_on:purchase\"", "reason: completed");
  swap("step: mail2+1", "step: mail2");
  auto f = RunTest(text);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0],
            "t.yaml:14: expected winback mail2 at 2026-08-02T10:00:00Z (+209d), got mail2 "
            "(winback_discount) at 2026-08-03T10:00:00Z (+210d)");
  EXPECT_EQ(f[1],
            "t.yaml:15: expected no winback mail1, got mail1 (winback_benefits) at "
            "2026-07-04T10:00:00Z (+180d)");
  EXPECT_EQ(f[2],
            "t.yaml:17: expected winback to end with completed at 2026-08-08T10:00:00Z (+215d), "
            "got exit_on:purchase at 2026-08-08T10:00:00Z (+215d)");
  EXPECT_EQ(f[3],
            "t.yaml:19: expected winback at step mail2 at 2026-08-04T10:00:00Z (+211d), got step "
            "mail2+1");
}

TEST(FlowTestRun, SendsListsEveryMailOfItsFlows) {
  std::string text = kWinback;
  text.replace(text.find("      - at: +215d\n        event: purchase\n"), 42, "");
  auto f = RunTest(text);
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0],
            "t.yaml:10: expected no more winback mails, got mail3 (winback_discount_reminder) at "
            "2026-08-17T10:00:00Z (+224d)");
}

TEST(FlowTestRun, AMissingMailSaysWhyTheJourneyEnded) {
  std::string text = kWinback;
  const std::string mail2 = "        - { at: +210d, step: mail2 }\n";
  text.replace(text.find(mail2), mail2.size(), mail2 + "        - { step: mail3 }\n");
  auto f = RunTest(text);
  ASSERT_EQ(f.size(), 1u) << f[0];
  EXPECT_EQ(f[0],
            "t.yaml:15: expected winback mail3, got no more winback mails (the journey ended at "
            "2026-08-08T10:00:00Z (+215d): exit_on:purchase)");
}

TEST(FlowTestRun, AnEmptySendsMeansTheFlowSendsNothing) {
  constexpr const char* kText = R"(flow: welcome
profile: { email: a@example.com, email_opt_in: true }
tests:
  - name: signup
    timeline: [{ at: 2026-01-05T10:00:00Z, event: signup }]
    expect:
      sends: []
)";
  auto f = RunTest(kText);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0],
            "t.yaml:7: expected no welcome mail, got thanks (welcome_thanks) at "
            "2026-01-05T10:00:00Z (+0)");
  std::string other = kText;
  other.replace(0, 13, "flow: winback");
  EXPECT_EQ(RunTest(other), std::vector<std::string>{});
}

TEST(FlowTestRun, UnknownFlowsAndStepsFail) {
  auto f = RunTest(R"(tests:
  - name: typo
    timeline: [{ at: 2026-01-05T10:00:00Z, event: signup }]
    expect:
      no_send: [{ flow: welcom }, { flow: welcome, step: thank }]
)");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].rfind("t.yaml:5: expected a flow 'welcom', got none of that name (", 0), 0u)
      << f[0];
  EXPECT_EQ(f[1], "t.yaml:5: expected a step 'thank' in welcome, got none of that id");
}

TEST(FlowTestRun, NoSendTrueMeansNoMailFromAnyFlow) {
  auto f = RunTest(R"(profile: { email: a@example.com, email_opt_in: true }
tests:
  - name: signup
    timeline: [{ at: 2026-01-05T10:00:00Z, event: signup }]
    expect:
      no_send: true
)");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0],
            "t.yaml:6: expected no mail at all, got welcome thanks (welcome_thanks) at "
            "2026-01-05T10:00:00Z (+0)");
}

TEST(FlowTests, RunsFilesFromFoldersAndGlobsAgainstTheFolderAboveThem) {
  const fs::path dir = fs::temp_directory_path() / ("journeyd-ft-" + std::to_string(::getpid()));
  fs::create_directories(dir / "flows" / "tests");
  fs::copy(fs::path(JOURNEYD_SOURCE_DIR) / "flows", dir / "flows",
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ofstream(dir / "flows" / "tests" / "mine.yaml") << kWinback;
  auto r = RunFlowTests({(dir / "flows" / "tests" / "mi*.yaml").string()});
  EXPECT_FALSE(r.diagnostics.HasErrors()) << Errors(r.diagnostics);
  EXPECT_EQ(r.files, 1);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_TRUE(r.outcomes[0].failures.empty());
  EXPECT_EQ(r.outcomes[0].name, "halted");
  auto all = RunFlowTests({(dir / "flows" / "tests").string()});
  EXPECT_EQ(all.files, 7);  // the six shipped flows' tests and mine
  EXPECT_EQ(all.failed_files, 0);
  fs::remove_all(dir);
}

TEST(Paths, GlobsExpandSortedAndAGlobWithoutMatchesStays) {
  const std::string flows = std::string(JOURNEYD_SOURCE_DIR) + "/flows";
  auto p = ExpandPaths({flows + "/w*.yaml", flows, flows + "/nothing*.yaml"});
  EXPECT_EQ(p, (std::vector<std::string>{flows + "/welcome.yaml", flows + "/winback.yaml", flows,
                                         flows + "/nothing*.yaml"}));
  auto files = FlowFilesOf({flows});
  EXPECT_EQ(files.size(), 6u);
  EXPECT_EQ(files.front(), flows + "/abandoned_cart.yaml");
  EXPECT_TRUE(ValidatePaths({flows + "/*.yaml"}).all().empty());
  EXPECT_TRUE(ValidatePaths({flows + "/nothing*.yaml"}).HasErrors());
}

}  // namespace
}  // namespace journeyd::host
