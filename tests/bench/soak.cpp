// See soak.h. The load: purchases cycling over a pool of customers (each a state update and a
// win-back journey restarted) and, among them, ticks whose flow waits 30 s and sends a note:
// timers firing all along. Mail goes to Postfix's smtp-sink through the fault proxy, which
// every five minutes refuses connections, slows every reply, resets the connections or goes
// silent, in turn.
#include "soak.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

#include "daemon_bench.h"
#include "journeyd/store/keys.h"

namespace journeyd::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kPrefix = "journeyd";

// Set by SIGINT or SIGTERM: the soak stops at the next slice, reports the minutes it has and
// stops what it started.
std::atomic<bool> g_stop{false};
extern "C" void StopSoak(int) { g_stop = true; }

// What one request to 127.0.0.1:`port` answered (status line, headers and body); "" when the
// connection failed.
std::string Exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[8192];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string Metrics(int admin_port) {
  return Exchange(admin_port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

// The sum of the samples of `name` whose labels contain `label` ("" for any).
double MetricSum(const std::string& text, const std::string& name, const std::string& label) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    sum += std::atof(line.c_str() + line.rfind(' ') + 1);
  }
  return sum;
}

// A histogram's cumulative bucket counts by upper bound (+Inf as a large number).
std::vector<std::pair<double, double>> Buckets(const std::string& text, const std::string& name) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(text);
  const std::string head = name + "_bucket{le=\"";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(head, 0) != 0) continue;
    const std::string le = line.substr(head.size(), line.find('"', head.size()) - head.size());
    const double bound = le == "+Inf" ? 1e18 : std::atof(le.c_str());
    out.emplace_back(bound, std::atof(line.c_str() + line.rfind(' ') + 1));
  }
  return out;
}

// The upper bound of the bucket holding quantile `q` of what was observed between `before`
// and `now`; -1 when nothing was.
double Quantile(const std::vector<std::pair<double, double>>& now,
                const std::vector<std::pair<double, double>>& before, double q) {
  if (now.empty()) return -1;
  auto count = [&](size_t i) { return now[i].second - (i < before.size() ? before[i].second : 0); };
  const double total = count(now.size() - 1);
  if (total <= 0) return -1;
  for (size_t i = 0; i < now.size(); ++i) {
    if (count(i) >= q * total) return now[i].first;
  }
  return now.back().first;
}

// A field of the first group in an XINFO GROUPS reply; 0 when absent (a nil lag too: then
// `*known` is false).
int64_t GroupField(const store::Reply& groups, const std::string& field, bool* known = nullptr) {
  if (known) *known = false;
  if (groups.elements.empty()) return 0;
  const auto& g = groups.elements[0].elements;
  for (size_t i = 0; i + 1 < g.size(); i += 2) {
    if (g[i].str != field) continue;
    if (g[i + 1].type != store::Reply::Type::kInteger) return 0;
    if (known) *known = true;
    return g[i + 1].integer;
  }
  return 0;
}

// Entries read by nobody yet plus entries read and not acknowledged, over every partition's
// `stream` ("events" or "outbox"); with the retry set for the outbox. -1 when Redis gives no
// lag for a group.
int64_t Backlog(store::SyncRedis& redis, int partitions, bool outbox) {
  int64_t sum = 0;
  std::string err;
  for (int p = 0; p < partitions; ++p) {
    store::Keys keys(kPrefix, p);
    auto r = redis.Command({"XINFO", "GROUPS", outbox ? keys.outbox() : keys.events()}, &err);
    if (!r || r->is_error()) continue;
    bool known = false;
    const int64_t lag = GroupField(*r, "lag", &known);
    if (!known) return -1;  // Redis could not say (a nil lag): unknown, not 0
    sum += lag + GroupField(*r, "pending");
    if (outbox) {
      auto z = redis.Command({"ZCARD", keys.retry()}, &err);
      if (z && !z->is_error()) sum += z->integer;
    }
  }
  return sum;
}

struct Sample {
  int minute = 0;
  double published_per_s = 0, rss_mib = 0, mails_per_s = 0;
  int64_t event_lag = 0, outbox_depth = 0;
  double late_p50 = -1, late_p99 = -1;
  std::string fault;
};

// The relay's misbehaviour, one every five minutes from the second on, in turn: what to tell
// the proxy and for how long (0: a single blow).
struct Fault {
  const char* command;
  int seconds;
  const char* label;
};
constexpr Fault kFaults[] = {{"refuse", 20, "relay refusing 20 s"},
                             {"delay 300", 30, "relay 300 ms late each way, 30 s"},
                             {"reset", 0, "relay connections reset"},
                             {"silent", 15, "relay silent 15 s"}};

// The fault proxy's control port: one command, its answer.
std::string Tell(int control, const std::string& command) {
  std::string a = Exchange(control, command + "\n");
  while (!a.empty() && (a.back() == '\n' || a.back() == '\r')) a.pop_back();
  return a;
}

std::string Cell(double v, const char* fmt_spec = "{:.0f}") {
  return v < 0 ? "-" : fmt::format(fmt::runtime(fmt_spec), v);
}

// One panel per series, one point per minute, as an SVG drawing.
std::string Svg(const std::vector<Sample>& s) {
  struct Series {
    const char* title;
    std::function<double(const Sample&)> value;
  };
  const std::vector<Series> series = {
      {"journeyd RSS (MiB)", [](const Sample& x) { return x.rss_mib; }},
      {"event lag (entries unread or unacknowledged)",
       [](const Sample& x) { return static_cast<double>(x.event_lag); }},
      {"outbox depth (unsent, in flight, awaiting a retry)",
       [](const Sample& x) { return static_cast<double>(x.outbox_depth); }},
      {"timer lateness p99 (s, bucket bound)",
       [](const Sample& x) { return std::max(0.0, x.late_p99); }}};
  const int w = 720, h = 150, left = 70, pad = 30;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      w, (h + pad) * static_cast<int>(series.size()) + pad);
  const double span = std::max<size_t>(1, s.size() - 1);
  for (size_t k = 0; k < series.size(); ++k) {
    const int top = pad + static_cast<int>(k) * (h + pad);
    double hi = 0;
    for (const auto& x : s) hi = std::max(hi, series[k].value(x));
    if (hi <= 0) hi = 1;
    hi *= 1.1;
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", left, top - 8, series[k].title);
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
        left, top, w - left - 20, h);
    out += fmt::format("<text x=\"4\" y=\"{}\">{:.4g}</text>\n<text x=\"4\" y=\"{}\">0</text>\n",
                       top + 12, hi, top + h);
    std::string points;
    for (size_t i = 0; i < s.size(); ++i) {
      const double x = left + (w - left - 20) * static_cast<double>(i) / span;
      const double y = top + h - h * series[k].value(s[i]) / hi;
      points += fmt::format("{:.1f},{:.1f} ", x, y);
    }
    out += fmt::format(
        "<polyline fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"2\" points=\"{}\"/>\n", points);
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\">minutes 1 to {}</text>\n</svg>\n", left,
                     (h + pad) * static_cast<int>(series.size()) + pad - 8, s.size());
  return out;
}

void PrintSample(const Sample& x) {
  std::cout << fmt::format("{:>6} {:>12} {:>9.1f} {:>10} {:>12} {:>9} {:>9} {:>8}  {}\n", x.minute,
                           Cell(x.published_per_s), x.rss_mib,
                           Cell(static_cast<double>(x.event_lag)),
                           Cell(static_cast<double>(x.outbox_depth)), Cell(x.late_p50, "{:g}"),
                           Cell(x.late_p99, "{:g}"), Cell(x.mails_per_s), x.fault)
            << std::flush;
}

// The summary, the CSV and the drawing; figures from minute 2 on (the first warms up).
void Report(const std::vector<Sample>& s, const std::string& out_dir) {
  std::ofstream csv(out_dir + "/soak.csv");
  csv << "minute,published_per_s,rss_mib,event_lag,outbox_depth,late_p50_s,late_p99_s,"
         "mails_per_s,fault\n";
  for (const auto& x : s) {
    csv << fmt::format("{},{:.0f},{:.1f},{},{},{},{},{:.0f},{}\n", x.minute, x.published_per_s,
                       x.rss_mib, x.event_lag, x.outbox_depth, x.late_p50, x.late_p99,
                       x.mails_per_s, x.fault);
  }
  std::ofstream(out_dir + "/soak.svg") << Svg(s);
  if (s.size() < 4) return;
  // From minute 2 on (the first warms up): growth is the median RSS of the last third against
  // that of the first third, so that a fault's passing peak is not taken for a leak; the peak
  // is printed beside it.
  std::vector<double> rss;
  double rate = 0, late = 0, peak = 0;
  int64_t lag = 0, depth = 0;
  int peak_minute = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    rss.push_back(s[i].rss_mib);
    if (s[i].rss_mib > peak) std::tie(peak, peak_minute) = std::pair(s[i].rss_mib, s[i].minute);
    lag = std::max(lag, s[i].event_lag);
    depth = std::max(depth, s[i].outbox_depth);
    late = std::max(late, s[i].late_p99);
    rate += s[i].published_per_s;
  }
  rate /= static_cast<double>(rss.size());
  const size_t third = std::max<size_t>(1, rss.size() / 3);
  const double early = Median({rss.begin(), rss.begin() + static_cast<long>(third)});
  const double late_rss = Median({rss.end() - static_cast<long>(third), rss.end()});
  const double growth = 100 * (late_rss - early) / early;
  // Bounded: never as much as a minute's worth of events behind.
  bool lag_unknown = false;
  for (size_t i = 1; i < s.size(); ++i) lag_unknown = lag_unknown || s[i].event_lag < 0;
  const bool lag_bounded = lag < static_cast<int64_t>(rate * 60);
  std::cout << fmt::format(
      "\nfrom minute 2 on: {:.0f} events/s published on average\n"
      "RSS: median {:.1f} MiB in the first third, {:.1f} MiB in the last ({:+.1f} %: {}); peak "
      "{:.1f} MiB in minute {}\n"
      "event lag at most {} ({}); outbox depth at most {}; timer lateness p99 at most {:g} s\n"
      "written: {}/soak.csv, {}/soak.svg\n",
      rate, early, late_rss, growth, std::abs(growth) <= 10 ? "flat within 10 %" : "NOT flat", peak,
      peak_minute, lag,
      lag_unknown   ? "not known in every minute: Redis gave no lag"
      : lag_bounded ? "bounded: under a minute of events"
                    : "NOT bounded: a minute behind or more",
      depth, late, out_dir, out_dir);
}

struct Rig {
  TempDir tmp;
  RedisProc redis{tmp.path()};
  Process sink, proxy, daemon;
  int proxy_control = 0, admin_port = 0;
};

// Redis, smtp-sink behind the fault proxy, and journeyd with the shipped flows plus the tick.
bool StartRig(const SoakOptions& o, Rig& rig) {
  const std::string flows = rig.tmp.path() + "/flows";
  std::filesystem::copy(o.flows_dir, flows, std::filesystem::copy_options::recursive);
  std::ofstream(flows + "/tick.yaml") << "flow: tick\nname: Tick\ncategory: transactional\n"
                                         "trigger: { event: tick }\nreentry: always\n"
                                         "steps:\n  - wait: 30s\n  - send: note\n";
  std::ofstream(flows + "/templates/note.yaml") << "subject: Tick\ntext: tock\n";
  int relay = 0;
  if (o.postfix.why_not.empty()) {
    const int sink_port = StartSmtpSink(o.postfix, rig.tmp.path(), &rig.sink);
    relay = FreeLoopbackPort();
    rig.proxy_control = FreeLoopbackPort();
    rig.proxy.Start(
        {"/usr/bin/python3", o.proxy_script, "--listen", std::to_string(relay), "--target-port",
         std::to_string(sink_port), "--control", std::to_string(rig.proxy_control)},
        {}, rig.tmp.path() + "/proxy.log");
    if (sink_port == 0 || !WaitForPort(rig.proxy_control, 5000)) {
      std::cerr << "journeyd-bench --soak: smtp-sink or the fault proxy (" << o.proxy_script
                << ") did not start\n";
      return false;
    }
  } else {
    std::cout << "(no relay faults: " << o.postfix.why_not << "; mail goes to files)\n";
  }
  rig.admin_port = FreeLoopbackPort();
  const std::string config = rig.tmp.path() + "/journeyd.yaml";
  std::ofstream(config) << "redis: { port: " << rig.redis.port() << ", partitions: " << o.partitions
                        << " }\n"
                        << "flows: { dir: \"" << flows << "\" }\n"
                        << SmtpConfig(relay, 4, rig.tmp.path())
                        << "admin: { listen: \"127.0.0.1:" << rig.admin_port << "\" }\n"
                        << "log: { level: warn }\n";
  rig.daemon.Start({SelfDir() + "/journeyd", "-c", config}, {}, rig.tmp.path() + "/journeyd.log");
  if (!WaitForPort(rig.admin_port, 10000)) {
    std::cerr << "journeyd-bench --soak: journeyd did not start; its log:\n"
              << std::ifstream(rig.tmp.path() + "/journeyd.log").rdbuf();
    return false;
  }
  return true;
}

// The next 10 ms slice of the load: `n` events, the first `ticks` of them ticks.
std::vector<std::vector<std::string>> Slice(const SoakOptions& o, int n, int ticks, int64_t* seq,
                                            int64_t* tick_seq, int64_t tick_pool) {
  std::vector<std::vector<std::string>> cmds;
  cmds.reserve(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) {
    const bool tick = k < ticks;
    const std::string id = tick ? fmt::format("t{}", (*tick_seq)++ % tick_pool)
                                : fmt::format("p{}", *seq % o.customers);
    const std::string stream = store::Keys(kPrefix, store::PartitionOf(id, o.partitions)).events();
    if (tick) {
      cmds.push_back({"XADD", stream, "*", "type", "tick", "customer_id", id, "profile",
                      R"({"email":"t@example.com"})"});
    } else {
      cmds.push_back({"XADD", stream, "*", "type", "purchase", "customer_id", id, "event_id",
                      fmt::format("o{}", *seq), "data", R"({"total":42.5})", "profile",
                      fmt::format(R"({{"email":"{}@example.com","first_name":"Sam",)"
                                  R"("email_opt_in":true}})",
                                  id)});
    }
    ++*seq;
  }
  return cmds;
}

}  // namespace

int RunSoak(const SoakOptions& o) {
  double rate = o.rate;
  if (rate <= 0) {
    DaemonBenchOptions d;
    d.flows_dir = o.flows_dir;
    d.postfix = o.postfix;
    d.customers = 100000;
    d.partitions = o.partitions;
    d.runs = 1;
    auto fig = RunDaemonBench(d);
    if (!fig || fig->ingest_per_sec <= 0) {
      std::cerr << "journeyd-bench --soak: the ingest rate could not be measured\n";
      return 1;
    }
    rate = fig->ingest_per_sec / 2;
    std::cout << fmt::format("ingest measured at {:.0f} events/s; the soak offers half\n",
                             fig->ingest_per_sec);
  }
  Rig rig;
  if (!StartRig(o, rig)) return 1;
  auto client = rig.redis.Client();
  if (!client) return 1;
  const int per_slice = std::max(1, static_cast<int>(rate / 100));
  const int ticks_per_slice =
      std::clamp(static_cast<int>(rate * o.timer_share / 100), 1, per_slice);
  // Each tick customer is ticked again a minute later, once its 30 s wait has fired.
  const int64_t tick_pool = static_cast<int64_t>(ticks_per_slice) * 100 * 60;
  std::cout << fmt::format(
      "soak: {} minutes, {} events/s offered ({} of them ticks firing a timer 30 s later), {} "
      "partitions, purchases over {} customers\n",
      o.minutes, per_slice * 100, ticks_per_slice * 100, o.partitions, o.customers);
  std::cout << fmt::format("{:>6} {:>12} {:>9} {:>10} {:>12} {:>9} {:>9} {:>8}  {}\n", "minute",
                           "published/s", "RSS MiB", "event lag", "outbox depth", "late p50",
                           "late p99", "mails/s", "relay fault");
  std::vector<Sample> samples;
  std::string err, metrics_before = Metrics(rig.admin_port);
  int64_t seq = 0, tick_seq = 0, published_before = 0;
  const auto start = Clock::now();
  auto minute_start = start;
  Clock::time_point fault_ends{};
  std::string fault_label;
  std::signal(SIGINT, StopSoak);
  std::signal(SIGTERM, StopSoak);
  for (int64_t slice = 0; slice < static_cast<int64_t>(o.minutes) * 6000 && !g_stop; ++slice) {
    if (slice % 6000 == 6000 - 1) {
      const std::string m = Metrics(rig.admin_port);
      Sample x;
      x.minute = static_cast<int>(slice / 6000) + 1;
      const double secs = std::chrono::duration<double>(Clock::now() - minute_start).count();
      x.published_per_s = static_cast<double>(seq - published_before) / secs;
      x.rss_mib = RssMib(rig.daemon.pid());
      x.event_lag = Backlog(*client, o.partitions, false);
      x.outbox_depth = Backlog(*client, o.partitions, true);
      const auto late_now = Buckets(m, "journeyd_timer_lateness_seconds");
      const auto late_before = Buckets(metrics_before, "journeyd_timer_lateness_seconds");
      x.late_p50 = Quantile(late_now, late_before, 0.5);
      x.late_p99 = Quantile(late_now, late_before, 0.99);
      x.mails_per_s = (MetricSum(m, "journeyd_mails_total", "outcome=\"sent\"") -
                       MetricSum(metrics_before, "journeyd_mails_total", "outcome=\"sent\"")) /
                      secs;
      x.fault = std::exchange(fault_label, "");
      PrintSample(x);
      samples.push_back(std::move(x));
      metrics_before = m;
      published_before = seq;
      minute_start = Clock::now();
    }
    // At the start of minutes 2, 7, 12, ...: the next fault.
    if (rig.proxy_control != 0 && slice % 6000 == 0 && (slice / 6000) % 5 == 1) {
      const Fault& f = kFaults[(slice / 6000 / 5) % std::size(kFaults)];
      Tell(rig.proxy_control, f.command);
      fault_label = f.label;
      fault_ends = Clock::now() + std::chrono::seconds(f.seconds);
    }
    if (fault_ends != Clock::time_point{} && Clock::now() >= fault_ends) {
      Tell(rig.proxy_control, "pass");
      fault_ends = {};
    }
    auto cmds = Slice(o, per_slice, ticks_per_slice, &seq, &tick_seq, tick_pool);
    if (!client->Pipeline(cmds, &err)) {
      std::cerr << "journeyd-bench --soak: publishing: " << err << "\n";
      return 1;
    }
    std::this_thread::sleep_until(start + std::chrono::milliseconds(10 * (slice + 1)));
  }
  Report(samples, o.out_dir);
  return 0;
}

}  // namespace journeyd::bench
