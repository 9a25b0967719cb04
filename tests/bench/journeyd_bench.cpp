// journeyd-bench: performance figures, each measured in this run on this machine.
//
// Sections (--only to pick): ingest and timers through the real journeyd over the XADD ceiling
// redis-benchmark measures; timer lateness under load; the daemon's RSS; SMTP delivery from the
// outbox through the real journeyd into Postfix's smtp-sink, next to Postfix's smtp-source (a
// peer); the engine alone (the `journeyctl simulate` path, no I/O) over the shipped flows.
// Figures are medians of --runs runs (default 3). At the end it prints its verdict on each
// target from the figures it just measured, and --markdown writes them as a table. A section
// that cannot measure what it claims (a ceiling not measured, mails not all delivered) stops
// the program with exit status 1.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <csignal>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_support.h"
#include "daemon_bench.h"
#include "journeyd/engine/simulator.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/time_zones.h"
#include "smtp_bench.h"
#include "soak.h"

namespace {

using namespace journeyd;

std::vector<engine::Event> MakeEvents(int customers) {
  // Per customer: a signup, a cart, a first purchase: the mix a growing shop sees.
  std::vector<engine::Event> events;
  events.reserve(customers * 3);
  TimePoint t = *ParseTimestamp("2026-01-01T00:00:00Z");
  for (int i = 0; i < customers; ++i) {
    std::string id = fmt::format("c{}", i);
    engine::Event signup;
    signup.type = "signup";
    signup.customer_id = id;
    signup.ts = t;
    signup.data = nlohmann::json::object();
    engine::ProfileFromJson({{"email", id + "@example.com"},
                             {"first_name", "Sam"},
                             {"email_opt_in", true},
                             {"birthday", "1990-05-17"}},
                            &signup.profile, nullptr);
    engine::Event cart = signup;
    cart.type = "cart_updated";
    cart.profile.clear();
    cart.data = {{"total", 80}, {"currency", "EUR"}};
    engine::Event purchase = cart;
    purchase.type = "purchase";
    purchase.event_id = "o" + id;
    events.push_back(std::move(signup));
    events.push_back(std::move(cart));
    events.push_back(std::move(purchase));
    t += Duration{1};
  }
  return events;
}

using bench::Median;

// One target: what the figure is, the value measured, the target, and whether it was met.
struct Verdict {
  std::string figure, value, target;
  bool met = false;
  std::string why;  // why not, when the figure alone does not say
};

// 248k, 19.2k, 880: three significant digits at most.
std::string Short(double v) {
  if (v >= 100000) return fmt::format("{:.0f}k", v / 1000);
  if (v >= 1000) return fmt::format("{:.1f}k", v / 1000);
  return fmt::format("{:.0f}", v);
}

// 1M, 200k, 20k, 1500: a size as the README writes it.
std::string Count(int n) {
  if (n >= 1000000 && n % 1000000 == 0) return fmt::format("{}M", n / 1000000);
  if (n >= 1000 && n % 1000 == 0) return fmt::format("{}k", n / 1000);
  return std::to_string(n);
}

void PrintVerdicts(const std::vector<Verdict>& verdicts) {
  std::cout << "verdicts (from the figures above):\n";
  for (const auto& v : verdicts) {
    std::cout << fmt::format("  {:<7} {}: {} (target {}){}\n", v.met ? "met" : "NOT MET", v.figure,
                             v.value, v.target, v.why.empty() ? "" : " — " + v.why);
  }
}

// The table the README's performance section is made from.
bool WriteMarkdown(const std::string& path, const std::vector<Verdict>& verdicts,
                   const std::string& how) {
  std::ofstream out(path);
  const std::time_t now = std::time(nullptr);
  char day[32];
  std::strftime(day, sizeof day, "%Y-%m-%d", std::gmtime(&now));
  out << "Measured on " << day << " on a " << std::thread::hardware_concurrency()
      << "-core machine with `" << how << "`.\n\n";
  out << "| figure | value | target | met |\n|---|---|---|---|\n";
  for (const auto& v : verdicts) {
    out << "| " << v.figure << " | " << v.value << " | " << v.target << " | "
        << (v.met ? "yes" : "no") << (v.why.empty() ? "" : " (" + v.why + ")") << " |\n";
  }
  out.close();
  if (!out) std::cerr << "cannot write " << path << "\n";
  return static_cast<bool>(out);
}

struct Options {
  int customers = 100000, runs = 3;
  std::string flows_dir = "flows";
  bool quick = false, redis_commands = false;
  std::string only = "ingest,lateness,rss,smtp,engine";
  double timer_rate = 1000;  // timers a second due during the lateness run
  double lateness_rate = 0;  // 0: half the measured ingest rate
  int bench_customers = 200000, rss_customers = 1000000, partitions = 4;
  int messages = 20000, connections = 4;
  std::string cache_dir = bench::DefaultCacheDir();
  std::string markdown;
  int soak_minutes = 0;
  double soak_rate = 0;
  std::string soak_out = ".";
};

// The ingest section: false when it could not measure (the reason is on stderr).
bool Ingest(const Options& opt, std::vector<Verdict>* verdicts, double* ingest_rate) {
  bench::DaemonBenchOptions o;
  o.flows_dir = opt.flows_dir;
  o.postfix = bench::FindPostfixTools(opt.cache_dir);
  o.customers = opt.bench_customers;
  o.partitions = opt.partitions;
  o.runs = opt.runs;
  auto f = bench::RunDaemonBench(o);
  if (!f) return false;
  std::cout << fmt::format(
      "redis: XADD ceiling (redis-benchmark -P 64, same server), measured right before each "
      "phase: {:.0f} entries/s before ingest, {:.0f} before the timers (medians of {})\n",
      f->xadd_ceiling, f->timers_xadd_ceiling, opt.runs);
  std::cout << fmt::format(
      "ingest: {} first purchases drained to committed state ({} partitions): {:.0f} "
      "events/s   ratio {:.3f} of the XADD ceiling   target >= 0.25\n",
      opt.bench_customers, opt.partitions, f->ingest_per_sec, f->ingest_ratio);
  std::cout << fmt::format(
      "timers: {} customers due at once, fired and committed (each queues a mail): {:.0f} "
      "timers/s   ratio {:.3f} of the XADD ceiling   target >= 0.25\n",
      opt.bench_customers, f->timers_per_sec, f->timers_ratio);
  std::cout << "  (ratio: the median of each run's figure divided by the ceiling measured "
               "right before it)\n";
  std::cout << fmt::format(
      "cpu per item: XADD ceiling redis {:.2f} us; ingest daemon {:.2f} us, redis {:.2f} us; "
      "timers daemon {:.2f} us, redis {:.2f} us\n",
      f->xadd_redis_us, f->ingest_daemon_us, f->ingest_redis_us, f->timers_daemon_us,
      f->timers_redis_us);
  std::cout << fmt::format(
      "memory: {:.0f} bytes of Redis per customer waiting in win-back (email and first name "
      "in the profile)   target <= 300\n",
      f->bytes_per_customer);
  std::cout << fmt::format("daemon RSS after the ingest of {} customers: {:.1f} MiB\n",
                           opt.bench_customers, f->rss_mib);
  if (opt.redis_commands) {
    std::cout << "redis commands per ingested event (last run):\n" << f->ingest_commands;
    std::cout << "redis commands per fired timer (last run):\n" << f->timers_commands;
  }
  if (!f->note.empty()) std::cout << "  note:" << f->note << "\n";
  const std::string incomplete = f->complete ? "" : "not every customer's work was done";
  verdicts->push_back(
      {fmt::format("ingest: {} first purchases drained to committed state",
                   Count(opt.bench_customers)),
       fmt::format("{} events/s, {:.2f} of redis-benchmark's XADD ({}/s)", Short(f->ingest_per_sec),
                   f->ingest_ratio, Short(f->xadd_ceiling)),
       "≥ 0.25 of XADD", f->ingest_ratio >= 0.25 && f->complete, incomplete});
  verdicts->push_back({fmt::format("timers: {} due at once, fired, each queuing a mail",
                                   Count(opt.bench_customers)),
                       fmt::format("{} timers/s, {:.2f} of XADD ({}/s)", Short(f->timers_per_sec),
                                   f->timers_ratio, Short(f->timers_xadd_ceiling)),
                       "≥ 0.25 of XADD", f->timers_ratio >= 0.25 && f->complete, incomplete});
  verdicts->push_back({"Redis memory per customer waiting in win-back",
                       fmt::format("{:.0f} bytes", f->bytes_per_customer), "≤ 300 bytes",
                       f->bytes_per_customer <= 300, ""});
  *ingest_rate = f->ingest_per_sec;
  return true;
}

bool Lateness(const Options& opt, double ingest_rate, std::vector<Verdict>* verdicts) {
  // Half the ingest rate measured above (or 10k/s when that section did not run).
  const double rate = opt.lateness_rate > 0 ? opt.lateness_rate
                      : ingest_rate > 0     ? ingest_rate / 2
                                            : 10000;
  const int seconds = opt.quick ? 5 : 20;
  const auto postfix = bench::FindPostfixTools(opt.cache_dir);
  std::vector<double> p50, p99, worst, daemon_us, redis_us, reached, reached_timers;
  std::string note;
  int timers = 0, ticks = 0;
  for (int r = 0; r < opt.runs; ++r) {
    auto f = bench::RunLatenessBench(rate, opt.timer_rate, seconds, opt.partitions, opt.flows_dir,
                                     postfix);
    if (!f) return false;
    p50.push_back(f->p50_ms);
    p99.push_back(f->p99_ms);
    worst.push_back(f->max_ms);
    daemon_us.push_back(f->daemon_us);
    redis_us.push_back(f->redis_us);
    reached.push_back(f->rate);
    reached_timers.push_back(f->timer_rate);
    timers += f->timers;
    ticks += f->ticks;
    note += f->note;
  }
  const double got = Median(reached);
  // The publisher falls behind when the host cannot keep up: the p99 then belongs to a
  // smaller load than the target's.
  const bool short_of = got < 0.98 * rate;
  std::cout << fmt::format(
      "timer lateness at clock.scale 1 for {} s: target load {:.0f} events/s, reached {:.0f} "
      "events/s ({:.1f} %{}; first purchases, and {:.0f}/s ticks among them, each starting a 2 s "
      "wait and then a mail), {} of {} timers measured: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} "
      "ms (medians of {})   target p99 <= 50 ms\n",
      seconds, rate, got, 100 * got / rate, short_of ? ": FELL SHORT of the target load" : "",
      Median(reached_timers), timers, ticks, Median(p50), Median(p99), Median(worst), p50.size());
  std::cout << fmt::format(
      "  CPU per event offered: journeyd {:.1f} us, redis-server {:.1f} us (its XADD "
      "included)\n",
      Median(daemon_us), Median(redis_us));
  if (!note.empty()) std::cout << "  note:" << note << "\n";
  std::string why;
  if (short_of) why = fmt::format("the load reached {:.0f} of {:.0f} events/s", got, rate);
  if (timers < ticks) {
    why += fmt::format("{}{} of {} tick mails seen", why.empty() ? "" : "; ", timers, ticks);
  }
  verdicts->push_back(
      {fmt::format("timer lateness p99 while ingesting {}", opt.lateness_rate > 0 ? "at a set rate"
                                                            : ingest_rate > 0
                                                                ? "half the ingest rate"
                                                                : "10k events/s"),
       fmt::format("{:.1f} ms (p50 {:.0f} ms) at {} events/s reached of {} targeted", Median(p99),
                   Median(p50), Short(got), Short(rate)),
       "≤ 50 ms", Median(p99) <= 50 && why.empty(), why});
  return true;
}

bool Rss(const Options& opt, std::vector<Verdict>* verdicts) {
  auto rss = bench::RunRssBench(opt.flows_dir, opt.rss_customers, opt.partitions);
  if (!rss) return false;
  std::cout << fmt::format(
      "daemon RSS after the ingest of {} customers: {:.1f} MiB   target <= 64\n", opt.rss_customers,
      *rss);
  verdicts->push_back({fmt::format("daemon RSS after {} customers", Count(opt.rss_customers)),
                       fmt::format("{:.1f} MiB", *rss), "≤ 64 MiB", *rss <= 64, ""});
  return true;
}

bool Smtp(const Options& opt, const flow::FlowSet& flows, std::vector<Verdict>* verdicts) {
  auto tools = bench::FindPostfixTools(opt.cache_dir);
  if (!tools.why_not.empty()) {
    // Nothing to measure against: said plainly, and the section counts as not met; not a
    // failed measurement (the other sections' figures stand).
    std::cout << "smtp: not measured: " << tools.why_not << "\n";
    verdicts->push_back({"SMTP", "not measured", "≥ 0.8 of smtp-source", false, tools.why_not});
    return true;
  }
  auto f =
      bench::RunSmtpBench(flows, tools, opt.messages, opt.runs, opt.connections, opt.flows_dir);
  if (!f) return false;
  std::cout << fmt::format(
      "smtp: {} mails of {} bytes over {} connections into Postfix smtp-sink, each sender's "
      "every mail counted by the sink (median of {})\n",
      opt.messages, f->message_bytes, opt.connections, opt.runs);
  std::cout << fmt::format(
      "  Postfix smtp-source (a peer to compare with, not a ceiling): {:.0f} mails/s, {} "
      "delivered\n",
      f->postfix_per_sec, f->delivered);
  std::cout << fmt::format(
      "  journeyd, outbox -> smtp-sink: {:.0f} mails/s, {} delivered and settled as sent   "
      "ratio {:.2f} of smtp-source   target >= 0.80\n",
      f->daemon_per_sec, f->delivered, f->ratio);
  std::cout << fmt::format(
      "  our SMTP client alone: {:.0f} mails/s, {} delivered   ratio {:.2f} of smtp-source\n",
      f->client_per_sec, f->delivered, f->client_per_sec / f->postfix_per_sec);
  verdicts->push_back({fmt::format("SMTP: {} mails from the outbox into smtp-sink, {} connections",
                                   Count(opt.messages), opt.connections),
                       fmt::format("{} mails/s, {:.2f} of smtp-source ({}/s, a peer)",
                                   Short(f->daemon_per_sec), f->ratio, Short(f->postfix_per_sec)),
                       "≥ 0.8 of smtp-source", f->ratio >= 0.8, ""});
  return true;
}

void Engine(const Options& opt, const flow::FlowSet& flows, std::vector<Verdict>* verdicts) {
  const int customers = opt.customers, runs = opt.runs;
  auto events = MakeEvents(customers);
  engine::Policy policy;  // renders every mail, as simulate does
  engine::Policy daemon_policy;
  policy.zones = daemon_policy.zones = &host::SystemTimeZones();
  daemon_policy.render_mail = false;  // as journeyd runs it: the sender renders at send time

  std::vector<double> ingest_rates, rendering_rates, total_rates;
  size_t mails = 0, steps = 0, mail_bytes = 0, state_bytes = 0;
  // The daemon moves each parsed event into its input; the inputs here are made once, before
  // every timed loop, and only read by them.
  std::vector<engine::Input> inputs;
  inputs.reserve(events.size());
  for (const auto& ev : events) inputs.emplace_back(engine::EventInput{ev});
  for (int r = 0; r < runs; ++r) {
    // Engine alone, as the daemon drives it: one Step per event on the customer's state,
    // decisions handed on (here: counted, then dropped). Once with the daemon's policy, once
    // rendering every mail at once as simulate does.
    std::unordered_map<std::string, engine::CustomerState> states;
    double secs = 0;
    for (const engine::Policy* p : {&daemon_policy, &policy}) {
      states.clear();
      states.reserve(customers);
      mails = 0;
      mail_bytes = 0;
      auto start = std::chrono::steady_clock::now();
      for (const auto& in : inputs) {
        const engine::Event& ev = std::get<engine::EventInput>(in).event;
        auto& st = states[ev.customer_id];
        if (st.id.empty()) st.id = ev.customer_id;
        engine::Decisions d = engine::Step(flows, *p, st, in, ev.ts);
        mails += d.sends.size();
        for (const auto& j : d.sends) mail_bytes += j.text.size() + j.html.size();
      }
      secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      (p == &policy ? rendering_rates : ingest_rates).push_back(events.size() / secs);
    }
    state_bytes = 0;
    for (const auto& [id, st] : states) state_bytes += engine::EncodeState(st).size();

    // Whole simulation over 400 days, state encoded/decoded after every step (as in production).
    engine::SimulationOptions o;
    o.horizon = 400 * kDay;
    o.roundtrip_state = true;
    auto start = std::chrono::steady_clock::now();
    auto result = engine::Simulate(flows, policy, events, o);
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total_rates.push_back(result.steps / secs);
    steps = result.steps;
  }
  std::cout << fmt::format(
      "engine ingest (events only, state in memory, mails left to the sender as in journeyd): "
      "{:.0f} events/s (median of {}, {} events)   target >= 500000\n",
      Median(ingest_rates), runs, events.size());
  std::cout << fmt::format(
      "  rendering each mail at once (as simulate does): {:.0f} events/s; {} mails rendered "
      "({:.0f} bytes of body each), state {:.0f} bytes per customer (codec)\n",
      Median(rendering_rates), mails, mails ? static_cast<double>(mail_bytes) / mails : 0.0,
      static_cast<double>(state_bytes) / customers);
  std::cout << fmt::format(
      "simulation (400 days, state encoded/decoded after every step, every "
      "record and mail kept): {:.0f} steps/s (median of {}, {} steps)\n",
      Median(total_rates), runs, steps);
  verdicts->push_back({"engine alone, as the daemon runs it",
                       fmt::format("{} events/s", Short(Median(ingest_rates))), "≥ 500k events/s",
                       Median(ingest_rates) >= 500000, ""});
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a lost Redis connection is an error message, not a kill
  CLI::App app{"journeyd-bench: performance figures measured side by side"};
  Options opt;
  app.add_option("--customers", opt.customers, "customers in the engine run")
      ->capture_default_str();
  app.add_option("--runs", opt.runs, "runs per figure (the median is printed)")
      ->capture_default_str();
  app.add_option("--flows", opt.flows_dir, "flows directory")->capture_default_str();
  app.add_flag("--quick", opt.quick, "small sizes and one run: a smoke run of every section");
  app.add_flag("--redis-commands", opt.redis_commands,
               "also print Redis's commandstats of the last ingest and timer phases, per item");
  app.add_option("--only", opt.only,
                 "sections to run, comma-separated: ingest, lateness, rss, smtp, engine")
      ->capture_default_str();
  app.add_option("--messages", opt.messages, "mails in the SMTP section")->capture_default_str();
  app.add_option("--lateness-timers", opt.timer_rate,
                 "timers a second due during the lateness section (ticks among its events)")
      ->capture_default_str();
  app.add_option("--lateness-rate", opt.lateness_rate,
                 "events a second during the lateness section (default: half the measured "
                 "ingest rate, or 10000 when the ingest section does not run)");
  app.add_option("--ingest-customers", opt.bench_customers, "customers in the ingest/timer section")
      ->capture_default_str();
  app.add_option("--rss-customers", opt.rss_customers, "customers for the daemon's RSS figure")
      ->capture_default_str();
  app.add_option("--partitions", opt.partitions, "redis.partitions for the daemon sections")
      ->capture_default_str();
  app.add_option("--connections", opt.connections, "SMTP connections (ours and smtp-source's)")
      ->capture_default_str();
  app.add_option("--cache-dir", opt.cache_dir, "where Postfix's test tools are unpacked")
      ->capture_default_str();
  app.add_option("--markdown", opt.markdown,
                 "also write the verdicts as a Markdown table to this file (the README's table)");
  app.add_option("--soak", opt.soak_minutes,
                 "instead of the figures: a soak of this many minutes (30 is the standard one)");
  app.add_option("--soak-rate", opt.soak_rate,
                 "events a second in the soak (default: half the ingest rate, measured first)");
  app.add_option("--soak-out", opt.soak_out, "where the soak writes soak.csv and soak.svg")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (opt.soak_minutes > 0) {
    bench::SoakOptions so;
    so.minutes = opt.soak_minutes;
    so.rate = opt.soak_rate;
    so.partitions = opt.partitions;
    so.flows_dir = opt.flows_dir;
    so.proxy_script = "tests/integration/fault_proxy.py";
    so.out_dir = opt.soak_out;
    so.postfix = bench::FindPostfixTools(opt.cache_dir);
    return bench::RunSoak(so);
  }
  if (opt.quick) {
    opt.customers = std::min(opt.customers, 5000);
    opt.messages = std::min(opt.messages, 1000);
    opt.bench_customers = std::min(opt.bench_customers, 5000);
    opt.rss_customers = std::min(opt.rss_customers, 10000);
    opt.runs = 1;
  }
  auto wants = [&](std::string_view s) { return opt.only.find(s) != std::string::npos; };

  auto loaded = host::LoadFlowDirectory(opt.flows_dir);
  for (const auto& d : loaded.diagnostics.all()) std::cerr << d.ToString() << "\n";
  if (!loaded.flows) return 1;
  std::cout << fmt::format("machine: {} cores\n", std::thread::hardware_concurrency());
  std::vector<Verdict> verdicts;
  double ingest_rate = 0;  // measured by the ingest section; the lateness load is half of it
  auto failed = [](std::string_view section) {
    std::cout << section << ": FAILED, see the reason above; stopping\n";
    return 1;
  };
  if (wants("ingest") && !Ingest(opt, &verdicts, &ingest_rate)) return failed("ingest");
  if (wants("lateness") && !Lateness(opt, ingest_rate, &verdicts)) return failed("lateness");
  if (wants("rss") && !Rss(opt, &verdicts)) return failed("rss");
  if (wants("smtp") && !Smtp(opt, *loaded.flows, &verdicts)) return failed("smtp");
  if (wants("engine")) Engine(opt, *loaded.flows, &verdicts);
  PrintVerdicts(verdicts);
  std::string how = "journeyd-bench";
  for (int i = 1; i < argc; ++i) how += std::string(" ") + argv[i];
  if (!opt.markdown.empty() && !WriteMarkdown(opt.markdown, verdicts, how)) return 1;
  return 0;
}
