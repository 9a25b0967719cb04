// Flow tests (`journeyctl test`): YAML files that pin what a flow does for one customer: a
// profile, a timeline of events, and the mails, exits and steps expected, each at a time.
// They run on the engine's virtual-clock simulator (engine/simulator.h), so a test sees what
// production does. The format is documented in flows/README.md ("Testing a flow").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/common/time.h"
#include "journeyd/engine/engine.h"
#include "journeyd/engine/event.h"
#include "journeyd/flow/loader.h"

namespace journeyd::host {

// A mail the test expects (sends:) or forbids (no_send:). Empty fields match anything.
struct MailMatch {
  int line = 0;
  std::optional<TimePoint> at;  // sends: exactly then
  std::string flow;
  std::string step;
  std::string template_name;
  std::optional<TimePoint> after, before;  // no_send: only in this window
};

struct ExitMatch {
  int line = 0;
  std::optional<TimePoint> at;
  std::string flow;
  std::string reason;  // "" = any reason
};

struct StepMatch {
  int line = 0;
  TimePoint at{};
  std::string flow;
  std::string step;  // "" = not in the flow at that moment
};

struct FlowTestCase {
  std::string name;
  int line = 0;
  std::string customer_id = "c1";
  TimePoint start{};                  // what +0 means
  TimePoint until{};                  // the simulation runs up to here
  std::vector<engine::Event> events;  // in time order, the profile first
  bool check_sends = false;           // sends: was given
  int sends_line = 0;
  std::vector<MailMatch> sends;
  std::string sends_flow;       // sends: []: the flow that must send nothing
  bool no_mail_at_all = false;  // no_send: true
  int no_send_line = 0;
  std::vector<MailMatch> no_send;
  std::vector<ExitMatch> exits;
  std::vector<StepMatch> in_step;
};

struct FlowTestFile {
  std::string path;
  std::string flows_dir;  // `flows:` relative to the file's folder; default the folder above
  std::string timezone = "UTC";
  std::vector<FlowTestCase> tests;
};

// Reads a test file's text; problems go to `diags` as file:line:column (nullopt when any).
std::optional<FlowTestFile> ParseFlowTestFile(const flow::SourceFile& file, Diagnostics& diags);

// "file:line: expected ... got ..." lines; none when the test passes.
std::vector<std::string> RunFlowTestCase(const flow::FlowSet& flows, const engine::Policy& policy,
                                         const std::string& path, const FlowTestCase& test);

struct FlowTestOutcome {
  std::string file;
  std::string name;
  int line = 0;
  std::vector<std::string> failures;
};

struct FlowTestReport {
  Diagnostics diagnostics;  // unreadable test files, flows that do not load
  std::vector<FlowTestOutcome> outcomes;
  int files = 0;
  int failed_files = 0;  // files that could not run (their problems are in diagnostics)
};

// `journeyctl test PATH...`: every test file under the paths (files, folders, globs), each
// against its flows folder, loaded once per folder.
FlowTestReport RunFlowTests(const std::vector<std::string>& paths);

}  // namespace journeyd::host
