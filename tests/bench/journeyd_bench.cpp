// journeyd-bench: performance figures, each measured in this run on this machine.
//
// Sections (--only to pick): the engine alone (the `journeyctl simulate` path, no I/O) over
// the shipped flows; SMTP delivery from the outbox through the real journeyd into Postfix's
// smtp-sink, next to Postfix's smtp-source. Figures are medians of --runs runs (default 3).
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <csignal>

#include <algorithm>
#include <chrono>
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

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a lost Redis connection is an error message, not a kill
  CLI::App app{"journeyd-bench: performance figures measured side by side"};
  int customers = 100000, runs = 3;
  std::string flows_dir = "flows";
  bool quick = false, redis_commands = false;
  std::string only = "ingest,lateness,rss,smtp,engine";
  double ingest_rate = 0;    // measured by the ingest section; the lateness load is half of it
  double timer_rate = 1000;  // timers a second due during the lateness run
  int bench_customers = 200000, rss_customers = 1000000, partitions = 4;
  int messages = 20000, connections = 4;
  std::string cache_dir = bench::SelfDir() + "/../bench-cache";
  app.add_option("--customers", customers, "customers in the engine run")->capture_default_str();
  app.add_option("--runs", runs, "runs per figure (the median is printed)")->capture_default_str();
  app.add_option("--flows", flows_dir, "flows directory")->capture_default_str();
  app.add_flag("--quick", quick, "small sizes, for a one-minute run");
  app.add_flag("--redis-commands", redis_commands,
               "also print Redis's commandstats of the last ingest and timer phases, per item");
  app.add_option("--only", only,
                 "sections to run, comma-separated: ingest, lateness, rss, smtp, engine")
      ->capture_default_str();
  app.add_option("--messages", messages, "mails in the SMTP section")->capture_default_str();
  app.add_option("--lateness-timers", timer_rate,
                 "timers a second due during the lateness section (ticks among its events)")
      ->capture_default_str();
  double lateness_rate = 0;  // 0: half the measured ingest rate
  app.add_option("--lateness-rate", lateness_rate,
                 "events a second during the lateness section (default: half the measured "
                 "ingest rate, or 10000 when the ingest section does not run)");
  app.add_option("--ingest-customers", bench_customers, "customers in the ingest/timer section")
      ->capture_default_str();
  app.add_option("--rss-customers", rss_customers, "customers for the daemon's RSS figure")
      ->capture_default_str();
  app.add_option("--partitions", partitions, "redis.partitions for the daemon sections")
      ->capture_default_str();
  app.add_option("--connections", connections, "SMTP connections (ours and smtp-source's)")
      ->capture_default_str();
  app.add_option("--cache-dir", cache_dir, "where Postfix's test tools are unpacked")
      ->capture_default_str();
  int soak_minutes = 0;
  double soak_rate = 0;
  std::string soak_out = ".";
  app.add_option("--soak", soak_minutes,
                 "instead of the figures: a soak of this many minutes (30 is the standard one)");
  app.add_option("--soak-rate", soak_rate,
                 "events a second in the soak (default: half the ingest rate, measured first)");
  app.add_option("--soak-out", soak_out, "where the soak writes soak.csv and soak.svg")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (soak_minutes > 0) {
    bench::SoakOptions so;
    so.minutes = soak_minutes;
    so.rate = soak_rate;
    so.partitions = partitions;
    so.flows_dir = flows_dir;
    so.proxy_script = "tests/integration/fault_proxy.py";
    so.out_dir = soak_out;
    so.postfix = bench::FindPostfixTools(cache_dir);
    return bench::RunSoak(so);
  }
  if (quick) {
    customers = std::min(customers, 20000);
    messages = std::min(messages, 5000);
    bench_customers = std::min(bench_customers, 20000);
    rss_customers = std::min(rss_customers, 50000);
    runs = 1;
  }
  auto wants = [&](std::string_view s) { return only.find(s) != std::string::npos; };

  auto loaded = host::LoadFlowDirectory(flows_dir);
  for (const auto& d : loaded.diagnostics.all()) std::cerr << d.ToString() << "\n";
  if (!loaded.flows) return 1;
  std::cout << fmt::format("machine: {} cores\n", std::thread::hardware_concurrency());
  if (wants("ingest")) {
    bench::DaemonBenchOptions o;
    o.flows_dir = flows_dir;
    o.postfix = bench::FindPostfixTools(cache_dir);
    o.customers = bench_customers;
    o.partitions = partitions;
    o.runs = runs;
    if (auto f = bench::RunDaemonBench(o)) {
      std::cout << fmt::format(
          "redis: XADD ceiling (redis-benchmark -P 64, same server), measured right before each "
          "phase: {:.0f} entries/s before ingest, {:.0f} before the timers (medians of {})\n",
          f->xadd_ceiling, f->timers_xadd_ceiling, runs);
      std::cout << fmt::format(
          "ingest: {} first purchases drained to committed state ({} partitions): {:.0f} "
          "events/s   ratio {:.3f}   target >= 0.25\n",
          bench_customers, partitions, f->ingest_per_sec, f->ingest_ratio);
      std::cout << fmt::format(
          "timers: {} customers due at once, fired and committed (each queues a mail): {:.0f} "
          "timers/s   ratio {:.3f}   target >= 0.25\n",
          bench_customers, f->timers_per_sec, f->timers_ratio);
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
                               bench_customers, f->rss_mib);
      if (redis_commands) {
        std::cout << "redis commands per ingested event (last run):\n" << f->ingest_commands;
        std::cout << "redis commands per fired timer (last run):\n" << f->timers_commands;
      }
      if (!f->note.empty()) std::cout << "  note:" << f->note << "\n";
      ingest_rate = f->ingest_per_sec;
    } else {
      std::cout << "ingest: failed (see above)\n";
    }
  }
  if (wants("lateness")) {
    // Half the ingest rate measured above (or 10k/s when that section did not run).
    const double rate = lateness_rate > 0 ? lateness_rate
                        : ingest_rate > 0 ? ingest_rate / 2
                                          : 10000;
    const int seconds = quick ? 5 : 20;
    const auto postfix = bench::FindPostfixTools(cache_dir);
    std::vector<double> p50, p99, worst, daemon_us, redis_us;
    std::string note;
    int timers = 0;
    double offered = 0, offered_timers = 0;
    for (int r = 0; r < runs; ++r) {
      if (auto f =
              bench::RunLatenessBench(rate, timer_rate, seconds, partitions, flows_dir, postfix)) {
        p50.push_back(f->p50_ms);
        p99.push_back(f->p99_ms);
        worst.push_back(f->max_ms);
        daemon_us.push_back(f->daemon_us);
        redis_us.push_back(f->redis_us);
        timers = f->timers;
        offered = f->rate;
        offered_timers = f->timer_rate;
        note += f->note;
      }
    }
    if (p50.empty()) {
      std::cout << "lateness: failed (see above)\n";
    } else {
      std::cout << fmt::format(
          "timer lateness at clock.scale 1 while ingesting {:.0f} events/s for {} s (first "
          "purchases, and {:.0f}/s ticks among them, each starting a 2 s wait and then a mail), "
          "{} timers: p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms (medians of {})   "
          "target p99 <= 50 ms\n",
          offered, seconds, offered_timers, timers, Median(p50), Median(p99), Median(worst),
          p50.size());
      std::cout << fmt::format(
          "  CPU per event offered: journeyd {:.1f} us, redis-server {:.1f} us (its XADD "
          "included)\n",
          Median(daemon_us), Median(redis_us));
      if (!note.empty()) std::cout << "  note:" << note << "\n";
    }
  }
  if (wants("rss")) {
    if (auto rss = bench::RunRssBench(flows_dir, rss_customers, partitions)) {
      std::cout << fmt::format(
          "daemon RSS after the ingest of {} customers: {:.1f} MiB   target <= 64\n", rss_customers,
          *rss);
    } else {
      std::cout << "rss: failed (see above)\n";
    }
  }
  if (wants("smtp")) {
    auto tools = bench::FindPostfixTools(cache_dir);
    if (!tools.why_not.empty()) {
      std::cout << "smtp: skipped: " << tools.why_not << "\n";
    } else if (auto f = bench::RunSmtpBench(*loaded.flows, tools, messages, runs, connections,
                                            flows_dir)) {
      std::cout << fmt::format(
          "smtp: {} mails of {} bytes over {} connections into Postfix smtp-sink (median of "
          "{})\n",
          messages, f->message_bytes, connections, runs);
      std::cout << fmt::format("  Postfix smtp-source (ceiling): {:.0f} mails/s\n",
                               f->postfix_per_sec);
      std::cout << fmt::format(
          "  journeyd, outbox -> smtp-sink: {:.0f} mails/s   ratio {:.2f}   target >= 0.80\n",
          f->daemon_per_sec, f->daemon_per_sec / f->postfix_per_sec);
      std::cout << fmt::format("  our SMTP client alone: {:.0f} mails/s   ratio {:.2f}\n",
                               f->client_per_sec, f->client_per_sec / f->postfix_per_sec);
      if (!f->note.empty()) std::cout << "  note:" << f->note << "\n";
    } else {
      std::cout << "smtp: failed (see above)\n";
    }
  }
  if (!wants("engine")) return 0;
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
        engine::Decisions d = engine::Step(*loaded.flows, *p, st, in, ev.ts);
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
    auto result = engine::Simulate(*loaded.flows, policy, events, o);
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total_rates.push_back(result.steps / secs);
    steps = result.steps;
  }
  std::cout << fmt::format(
      "engine ingest (events only, state in memory, mails left to the sender as in journeyd): "
      "{:.0f} events/s (median of {}, {} events)   target >= 500000   ratio {:.2f}\n",
      Median(ingest_rates), runs, events.size(), Median(ingest_rates) / 500000.0);
  std::cout << fmt::format(
      "  rendering each mail at once (as simulate does): {:.0f} events/s; {} mails rendered "
      "({:.0f} bytes of body each), state {:.0f} bytes per customer (codec)\n",
      Median(rendering_rates), mails, mails ? static_cast<double>(mail_bytes) / mails : 0.0,
      static_cast<double>(state_bytes) / customers);
  std::cout << fmt::format(
      "simulation (400 days, state encoded/decoded after every step, every "
      "record and mail kept): {:.0f} steps/s (median of {}, {} steps)\n",
      Median(total_rates), runs, steps);
  return 0;
}
