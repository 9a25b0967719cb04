// journeyctl: the tool for marketers and ops. Thin: parse flags, call the libraries, print.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "journeyd/app/config.h"
#include "journeyd/app/preview.h"
#include "journeyd/engine/simulator.h"
#include "journeyd/flow/graph.h"
#include "journeyd/flow/loader.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/flow_tests.h"
#include "journeyd/host/time_zones.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/publish.h"
#include "journeyd/store/sync.h"

namespace {

using namespace journeyd;

void PrintDiagnostics(const Diagnostics& diags, std::ostream& out) {
  for (const Diagnostic& d : diags.all()) out << d.ToString() << "\n";
}

int RunValidate(const std::vector<std::string>& paths) {
  Diagnostics diags = host::ValidatePaths(paths);
  PrintDiagnostics(diags, std::cout);
  if (diags.HasErrors()) {
    std::cout << diags.error_count() << (diags.error_count() == 1 ? " error" : " errors") << "\n";
    return 1;
  }
  std::cout << "ok: " << paths.size() << (paths.size() == 1 ? " path" : " paths") << " valid\n";
  return 0;
}

struct SimulateArgs {
  std::string flows_dir;
  std::string events_file;
  bool json = false;
  std::string horizon = "400d";
  std::string timezone = "UTC";
  std::string quiet_hours;
  std::string frequency_cap;
};

bool ParseQuietHours(const std::string& s, engine::Policy& p, std::string* err) {
  // "21:00-08:00"
  int h1, m1, h2, m2;
  char tail;
  if (std::sscanf(s.c_str(), "%d:%d-%d:%d%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 < 0 ||
      h1 > 23 || h2 < 0 || h2 > 23 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59) {
    *err = fmt::format("--quiet-hours '{}': write HH:MM-HH:MM, e.g. 21:00-08:00", s);
    return false;
  }
  p.quiet_start = h1 * 60 + m1;
  p.quiet_end = h2 * 60 + m2;
  return true;
}

bool ParseFrequencyCap(const std::string& s, engine::Policy& p, std::string* err) {
  // "1/24h": at most 1 marketing mail per 24 hours
  auto slash = s.find('/');
  int count = 0;
  if (slash == std::string::npos || std::sscanf(s.substr(0, slash).c_str(), "%d", &count) != 1 ||
      count <= 0) {
    *err = fmt::format("--frequency-cap '{}': write COUNT/DURATION, e.g. 1/24h", s);
    return false;
  }
  auto d = ParseDuration(s.substr(slash + 1), err);
  if (!d || d->count() <= 0) {
    if (d) *err = "--frequency-cap needs a positive duration";
    return false;
  }
  p.cap_count = count;
  p.cap_window = *d;
  return true;
}

// The simulation's policy from the command line; false (after saying why) on a bad option.
bool SimulationPolicy(const SimulateArgs& args, engine::Policy& policy) {
  policy.timezone = args.timezone;
  policy.zones = &host::SystemTimeZones();
  std::string err;
  if (!policy.zones->Find(args.timezone)) {
    std::cerr << "journeyctl: --timezone '" << args.timezone << "' is not a known time zone\n";
    return false;
  }
  if ((!args.quiet_hours.empty() && !ParseQuietHours(args.quiet_hours, policy, &err)) ||
      (!args.frequency_cap.empty() && !ParseFrequencyCap(args.frequency_cap, policy, &err))) {
    std::cerr << "journeyctl: " << err << "\n";
    return false;
  }
  policy.unsubscribe_url = [](std::string_view, std::string_view, std::string_view job) {
    return fmt::format("https://unsubscribe.invalid/simulated?job={}", job);
  };
  return true;
}

// The events of a JSON-lines file, in time order; nullopt (after naming every bad line as
// file:line) when a line is not an event.
std::optional<std::vector<engine::Event>> ReadEventsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << path << ": error: cannot open the events file\n";
    return std::nullopt;
  }
  std::vector<engine::Event> events;
  std::string line;
  int line_no = 0, bad = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    engine::EventError e;
    std::optional<engine::Event> ev;
    if (j.is_discarded() || !j.is_object()) {
      std::cerr << fmt::format("{}:{}: error: not a JSON object\n", path, line_no);
    } else if (!(ev = engine::EventFromJson(j, &e))) {
      std::cerr << fmt::format("{}:{}: error: {}\n", path, line_no, e.ToString());
    }
    if (!ev) {
      ++bad;
      continue;
    }
    events.push_back(std::move(*ev));
  }
  if (bad) {
    std::cerr << fmt::format("{}: {} bad line{}; nothing simulated\n", path, bad,
                             bad == 1 ? "" : "s");
    return std::nullopt;
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const engine::Event& a, const engine::Event& b) { return a.ts < b.ts; });
  return events;
}

// One line of the simulation's journal: a JSON object, or a column of the table.
void PrintRecord(const engine::Record& r, bool json) {
  if (json) {
    nlohmann::json o;
    o["at"] = FormatRfc3339(r.at);
    o["kind"] = engine::RecordKindName(r.kind);
    o["customer_id"] = r.customer_id;
    o["flow"] = r.flow;
    o["step"] = r.step;
    if (!r.template_name.empty()) o["template"] = r.template_name;
    if (r.kind == engine::Record::Kind::kSend) o["subject"] = r.subject;
    if (!r.reason.empty()) o["reason"] = r.reason;
    std::cout << o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  std::string what;
  if (r.kind == engine::Record::Kind::kSend) {
    what = fmt::format("{}  \"{}\"", r.template_name, r.subject);
  } else if (r.kind == engine::Record::Kind::kSuppress) {
    what = r.template_name.empty() ? r.reason : r.template_name + "  (" + r.reason + ")";
  } else {
    what = r.reason;
  }
  std::cout << fmt::format("{:<20}  {:<8}  {:<12}  {:<15}  {:<22}  {}\n", FormatRfc3339(r.at),
                           engine::RecordKindName(r.kind), r.customer_id, r.flow, r.step, what);
}

// A flow's tally in the simulation's summary.
struct FlowCounts {
  int entered = 0, sent = 0, suppressed = 0, exited = 0, converted = 0;

  void Add(engine::Record::Kind kind) {
    switch (kind) {
      case engine::Record::Kind::kEnter:
        ++entered;
        break;
      case engine::Record::Kind::kSend:
        ++sent;
        break;
      case engine::Record::Kind::kSuppress:
        ++suppressed;
        break;
      case engine::Record::Kind::kExit:
        ++exited;
        break;
      case engine::Record::Kind::kConvert:
        ++converted;
        break;
    }
  }
};

void PrintSummary(const flow::FlowSet& flows, size_t events, const engine::SimulationResult& result,
                  std::map<std::string, FlowCounts>& per_flow) {
  std::cout << fmt::format("\n{} events, {} customers, {} mails\n", events, result.customers.size(),
                           result.sends.size());
  std::cout << fmt::format("{:<16} {:>8} {:>6} {:>11} {:>7} {:>10}\n", "flow", "entered", "sent",
                           "suppressed", "exited", "converted");
  for (const auto& f : flows.flows()) {
    const FlowCounts& c = per_flow[f.id];
    std::cout << fmt::format("{:<16} {:>8} {:>6} {:>11} {:>7} {:>10}\n", f.id, c.entered, c.sent,
                             c.suppressed, c.exited, c.converted);
  }
}

int RunSimulate(const SimulateArgs& args) {
  engine::Policy policy;
  if (!SimulationPolicy(args, policy)) return 2;
  std::string err;
  auto horizon = ParseDuration(args.horizon, &err);
  if (!horizon || horizon->count() < 0) {
    std::cerr << "journeyctl: --horizon: " << (horizon ? "must not be negative" : err) << "\n";
    return 2;
  }
  flow::LoadResult loaded = host::LoadFlowDirectory(args.flows_dir);
  PrintDiagnostics(loaded.diagnostics, std::cerr);
  if (!loaded.flows) return 1;
  std::optional<std::vector<engine::Event>> events = ReadEventsFile(args.events_file);
  if (!events) return 1;

  engine::SimulationOptions options;
  options.horizon = *horizon;
  options.roundtrip_state = true;  // exactly what the daemon does between steps
  engine::SimulationResult result = engine::Simulate(*loaded.flows, policy, *events, options);
  for (const auto& w : result.warnings) std::cerr << "warning: " << w << "\n";
  std::map<std::string, FlowCounts> per_flow;
  for (const auto& r : result.records) {
    per_flow[r.flow].Add(r.kind);
    if (r.kind != engine::Record::Kind::kConvert) PrintRecord(r, args.json);
  }
  if (!args.json) PrintSummary(*loaded.flows, events->size(), result, per_flow);
  if (!result.error.empty()) {
    std::cerr << "journeyctl: " << result.error << "\n";
    return 1;
  }
  return 0;
}

// Several flows: DOT, one digraph after another (Graphviz draws each); Mermaid, one diagram
// with a subgraph per flow, so that it renders as one block.
int RunGraph(const std::vector<std::string>& paths, const std::string& format) {
  std::vector<flow::Flow> flows;
  bool ok = true;
  for (const std::string& path : host::FlowFilesOf(paths)) {
    Diagnostics diags;
    auto f = host::LoadFlowFile(path, diags);
    PrintDiagnostics(diags, std::cerr);
    if (f) {
      flows.push_back(std::move(*f));
    } else {
      ok = false;
    }
  }
  if (!ok) return 1;
  if (flows.empty()) {
    std::cerr << "journeyctl: no flow files in the paths given\n";
    return 1;
  }
  if (format == "mermaid") {
    std::cout << (flows.size() == 1 ? flow::ToMermaid(flows[0]) : flow::ToMermaid(flows));
  } else {
    for (const auto& f : flows) std::cout << flow::ToDot(f);
  }
  return 0;
}

int RunTest(const std::vector<std::string>& paths) {
  host::FlowTestReport report = host::RunFlowTests(paths);
  PrintDiagnostics(report.diagnostics, std::cout);
  int failed = 0;
  for (const auto& o : report.outcomes) {
    failed += !o.failures.empty();
    std::cout << fmt::format("{}  {}:{}  {}\n", o.failures.empty() ? "ok  " : "FAIL", o.file,
                             o.line, o.name);
    for (const auto& f : o.failures) std::cout << "      " << f << "\n";
  }
  const int total = static_cast<int>(report.outcomes.size());
  std::cout << fmt::format("\n{} test{} in {} file{}: {} passed, {} failed", total,
                           total == 1 ? "" : "s", report.files, report.files == 1 ? "" : "s",
                           total - failed, failed);
  if (report.failed_files) {
    std::cout << fmt::format(", {} file{} not run", report.failed_files,
                             report.failed_files == 1 ? "" : "s");
  }
  std::cout << "\n";
  if (report.files == 0) std::cout << "no test files found\n";
  return failed || report.failed_files || report.files == 0 ? 1 : 0;
}

// The config for commands that talk to Redis: the given file, else the default path when it
// exists, else the built-in defaults.
std::optional<app::Config> ToolConfig(const std::string& path, bool explicit_path) {
  Diagnostics diags;
  std::optional<app::Config> cfg;
  std::error_code ec;
  if (explicit_path || std::filesystem::exists(path, ec)) {
    cfg = app::LoadConfig(path, diags);
  } else {
    cfg = app::ParseConfig("", "(defaults)", ".", diags);
  }
  PrintDiagnostics(diags, std::cerr);
  return cfg;
}

std::unique_ptr<store::SyncRedis> ToolRedis(const app::Config& cfg) {
  store::RedisOptions o = app::RedisOptionsOf(cfg);
  std::string err;
  auto r = store::SyncRedis::Connect(o, &err);
  if (!r) std::cerr << "journeyctl: " << err << "\n";
  return r;
}

struct PublishArgs {
  std::string type, customer, data, profile, event_id, ts;
};

int RunPublish(const app::Config& cfg, const PublishArgs& a) {
  std::vector<store::EventField> fields = {{"type", a.type}, {"customer_id", a.customer}};
  if (!a.event_id.empty()) fields.emplace_back("event_id", a.event_id);
  if (!a.ts.empty()) fields.emplace_back("ts", a.ts);
  if (!a.data.empty()) fields.emplace_back("data", a.data);
  if (!a.profile.empty()) fields.emplace_back("profile", a.profile);
  // Check it here, so a typo is reported to the person typing rather than dead-lettered.
  auto now = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  engine::EventError err;
  if (!engine::EventFromFields(fields, now, now, &err)) {
    std::cerr << "journeyctl: not published: " << err.ToString() << "\n";
    return 1;
  }
  auto redis = ToolRedis(cfg);
  if (!redis) return 1;
  int partition = store::PartitionOf(a.customer, cfg.redis.partitions);
  store::Keys keys(cfg.redis.prefix, partition);
  store::Got<std::string> id = store::Run(*redis, store::PublishEvent(keys, fields));
  if (!id.ok()) {
    std::cerr << "journeyctl: " << id.error << "\n";
    return 1;
  }
  std::cout << keys.events() << " " << *id.value << "\n";
  return 0;
}

int RunInspect(const app::Config& cfg, const std::string& customer) {
  auto redis = ToolRedis(cfg);
  if (!redis) return 1;
  store::Keys keys(cfg.redis.prefix, store::PartitionOf(customer, cfg.redis.partitions));
  store::Got<std::optional<std::string>> got =
      store::Run(*redis, store::CustomerState(keys, customer));
  if (!got.ok()) {
    std::cerr << "journeyctl: " << got.error << "\n";
    return 1;
  }
  if (!*got.value) {
    std::cerr << "journeyctl: no customer '" << customer << "' in " << keys.customer(customer)
              << "\n";
    return 1;
  }
  engine::CustomerState state;
  std::string error;
  if (!engine::DecodeState(**got.value, &state, &error)) {
    std::cerr << "journeyctl: " << error << "\n";
    return 1;
  }
  nlohmann::json out = engine::StateToJson(state);
  const auto now = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  out["rfm"] = engine::RfmToJson(
      engine::ScoreRfm(state.orders, state.revenue, state.last_purchase_at, now, cfg.rfm));
  std::cout << out.dump(2) << "\n";
  return 0;
}

CLI::App* AddSimulate(CLI::App& app, SimulateArgs& sim) {
  auto* simulate = app.add_subcommand(
      "simulate", "run the flows over a timeline of events on a virtual clock (no Redis, no SMTP)");
  simulate->add_option("--flows", sim.flows_dir, "flows directory")->required();
  simulate->add_option("--events", sim.events_file, "timeline: one JSON event per line")
      ->required();
  simulate->add_flag("--json", sim.json, "one JSON object per line");
  simulate->add_option("--horizon", sim.horizon, "how long to run after the last event")
      ->capture_default_str();
  simulate->add_option("--timezone", sim.timezone, "policy.timezone")->capture_default_str();
  simulate->add_option("--quiet-hours", sim.quiet_hours, "policy.quiet_hours, e.g. 21:00-08:00");
  simulate->add_option("--frequency-cap", sim.frequency_cap,
                       "policy.frequency_cap, e.g. 1/24h (at most 1 marketing mail a day)");
  return simulate;
}

CLI::App* AddPublish(CLI::App& app, PublishArgs& pub) {
  auto* publish = app.add_subcommand("publish", "publish one event to the right stream");
  publish->add_option("--type", pub.type, "event type, e.g. signup")->required();
  publish->add_option("--customer", pub.customer, "the shop's customer id")->required();
  publish->add_option("--data", pub.data, "the event's properties as a JSON object");
  publish->add_option("--profile", pub.profile, "customer attributes as a JSON object");
  publish->add_option("--event-id", pub.event_id, "idempotency key");
  publish->add_option("--ts", pub.ts, "when it happened (RFC 3339 or Unix ms)");
  return publish;
}

CLI::App* AddPreview(CLI::App& app, app::PreviewRequest& pre) {
  auto* preview = app.add_subcommand(
      "preview", "the exact mail a send step would send a customer, as .eml and .html files");
  preview->add_option("flow", pre.flow, "flow id")->required();
  preview->add_option("step", pre.step, "send step id")->required();
  auto* customer =
      preview->add_option("--customer", pre.customer_id, "a customer in Redis (their profile)");
  preview->add_option("--profile", pre.profile_json, "a profile as a JSON object instead")
      ->excludes(customer);
  preview->add_option("--locale", pre.locale, "the template's language (default: the customer's)");
  preview->add_option("--trigger-data", pre.trigger_data_json,
                      "the trigger event's data as a JSON object (a cart's items, an order's)");
  preview->add_option("--out", pre.out_dir, "where the files go")->capture_default_str();
  return preview;
}

int RunPreview(const std::string& config_path, bool explicit_path, const app::PreviewRequest& pre) {
  auto cfg = ToolConfig(config_path, explicit_path);
  if (!cfg) return 1;
  if (pre.customer_id.empty() && pre.profile_json.empty()) {
    std::cerr << "journeyctl: preview: give --customer ID or --profile JSON\n";
    return 2;
  }
  return app::RunPreview(*cfg, pre, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a lost Redis connection is an error message, not a kill
  CLI::App app{"journeyctl: validate, test, simulate and draw journeyd flows"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("journeyctl ") + JOURNEYD_VERSION);

  std::vector<std::string> validate_paths;
  auto* validate = app.add_subcommand("validate", "check flow and template files");
  validate->add_option("paths", validate_paths, "flow files, template files, directories or globs")
      ->required();

  SimulateArgs sim;
  auto* simulate = AddSimulate(app, sim);

  std::vector<std::string> graph_paths;
  std::string graph_format = "dot";
  auto* graph = app.add_subcommand("graph", "draw flows (Graphviz DOT or Mermaid)");
  graph->add_option("flows", graph_paths, "flow files, folders or globs")->required();
  graph->add_option("--format", graph_format, "dot or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();

  std::vector<std::string> test_paths = {"flows/tests/"};
  auto* test = app.add_subcommand(
      "test", "run flow tests (YAML files) on a virtual clock; exit 1 on any failure");
  test->add_option("paths", test_paths, "test files, folders or globs")->capture_default_str();

  std::string config_path = "/etc/journeyd/journeyd.yaml";
  auto* config_opt =
      app.add_option("-c,--config", config_path, "journeyd config (for publish and inspect)")
          ->capture_default_str();

  PublishArgs pub;
  auto* publish = AddPublish(app, pub);

  std::string inspect_id;
  auto* inspect = app.add_subcommand(
      "inspect", "a customer's profile, active journeys, next wake-up and recent history");
  inspect->add_option("customer", inspect_id, "customer id")->required();

  app::PreviewRequest pre;
  auto* preview = AddPreview(app, pre);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (*validate) return RunValidate(validate_paths);
  if (*simulate) return RunSimulate(sim);
  if (*graph) return RunGraph(graph_paths, graph_format);
  if (*test) return RunTest(test_paths);
  if (*preview) return RunPreview(config_path, config_opt->count() > 0, pre);
  if (*publish || *inspect) {
    auto cfg = ToolConfig(config_path, config_opt->count() > 0);
    if (!cfg) return 1;
    return *publish ? RunPublish(*cfg, pub) : RunInspect(*cfg, inspect_id);
  }
  return 2;
}
