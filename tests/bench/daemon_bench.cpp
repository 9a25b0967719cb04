#include "daemon_bench.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "journeyd/store/keys.h"

namespace journeyd::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kPrefix = "journeyd";
constexpr double kTimerScale = 1000;  // clock.scale for the timer phase

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// redis-benchmark's pipelined XADD rate on the server: the ceiling the figures divide by. 0,
// with the reason on stderr, when it could not be measured (the bench then stops: a ratio over
// a ceiling that was not measured means nothing).
double XaddCeiling(int port, int requests) {
  std::string cmd = fmt::format(
      "redis-benchmark -h 127.0.0.1 -p {} -n {} -P 64 -q XADD journeyd:bench '*' type purchase "
      "customer_id c1 data '{{\"total\":42.5}}' 2>&1",
      port, requests);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    std::cerr << "XADD ceiling: cannot run redis-benchmark: " << std::strerror(errno) << "\n";
    return 0;
  }
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  // "XADD ...: 512820.52 requests per second, p50=..." (the last such figure wins)
  double rate = 0;
  for (size_t at = out.find(" requests per second"); at != std::string::npos;
       at = out.find(" requests per second", at + 1)) {
    size_t start = out.rfind(' ', at - 1);
    rate = std::atof(out.c_str() + (start == std::string::npos ? 0 : start + 1));
  }
  if (status != 0 || !(rate > 0)) {
    std::cerr << fmt::format("XADD ceiling: redis-benchmark {} and gave no rate; it said:\n{}\n",
                             ExitText(status), out);
    return 0;
  }
  return rate;
}

bool Preload(store::SyncRedis& redis, int customers, int partitions, std::string* err) {
  std::vector<std::vector<std::string>> batch;
  for (int i = 0; i < customers; ++i) {
    std::string id = fmt::format("c{}", i);
    store::Keys keys(kPrefix, store::PartitionOf(id, partitions));
    batch.push_back({"XADD", keys.events(), "*", "type", "purchase", "customer_id", id, "event_id",
                     "o" + id, "data", R"({"total":42.5})", "profile",
                     fmt::format(R"({{"email":"{}@example.com","first_name":"Sam",)"
                                 R"("email_opt_in":true}})",
                                 id)});
    if (batch.size() == 2000 || i + 1 == customers) {
      if (!redis.Pipeline(batch, err)) return false;
      batch.clear();
    }
  }
  return true;
}

// True when every partition's events group has read and acknowledged everything.
bool Drained(store::SyncRedis& redis, int partitions) {
  std::string err;
  for (int p = 0; p < partitions; ++p) {
    auto done = GroupDone(redis, store::Keys(kPrefix, p).events(), &err);
    if (!done) std::cerr << "drained? " << err << "\n";
    if (!done.value_or(false)) return false;
  }
  return true;
}

int64_t Sum(store::SyncRedis& redis, int partitions,
            const std::function<std::vector<std::string>(const store::Keys&)>& cmd) {
  std::string err;
  int64_t n = 0;
  for (int p = 0; p < partitions; ++p) {
    auto r = redis.Command(cmd(store::Keys(kPrefix, p)), &err);
    if (r) n += r->integer;
  }
  return n;
}

// CPU seconds (user + system) a process has used so far.
double CpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(field.c_str());  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Redis's own CPU seconds (INFO cpu: used_cpu_user + used_cpu_sys).
double RedisCpuSeconds(store::SyncRedis& redis) {
  std::string err;
  auto r = redis.Command({"INFO", "cpu"}, &err);
  if (!r) return 0;
  double total = 0;
  for (const char* key : {"used_cpu_user:", "used_cpu_sys:"}) {
    auto at = r->str.find(key);
    if (at != std::string::npos) total += std::atof(r->str.c_str() + at + std::strlen(key));
  }
  return total;
}

// INFO commandstats since the last CONFIG RESETSTAT, per item, the costliest command first.
std::string CommandStats(store::SyncRedis& redis, int items) {
  std::string err;
  auto r = redis.Command({"INFO", "commandstats"}, &err);
  if (!r) return "  (INFO commandstats: " + err + ")\n";
  struct Row {
    std::string name;
    double calls = 0, usec = 0;
  };
  std::vector<Row> rows;
  std::istringstream in(r->str);
  for (std::string line; std::getline(in, line);) {
    // cmdstat_xadd:calls=200000,usec=412345,usec_per_call=2.06,...
    if (line.rfind("cmdstat_", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    Row row{line.substr(8, colon - 8)};
    for (const char* key : {"calls=", "usec="}) {
      auto at = line.find(key, colon);
      if (at == std::string::npos) continue;
      (key[0] == 'c' ? row.calls : row.usec) = std::atof(line.c_str() + at + std::strlen(key));
    }
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.usec > b.usec; });
  std::string out;
  double total = 0;
  for (const Row& row : rows) total += row.usec;
  for (const Row& row : rows) {
    if (row.usec < total / 200) continue;  // under half a percent
    out += fmt::format("  {:<14} {:>9.0f} calls  {:>7.3f} calls/item  {:>6.2f} us/item\n", row.name,
                       row.calls, row.calls / items, row.usec / items);
  }
  out += fmt::format("  {:<14} {:>48.2f} us/item in commands\n", "all", total / items);
  return out;
}

// Customers with a wake time: in the timers sets or in timing-wheel buckets.
int64_t Waiting(store::SyncRedis& redis, int partitions) {
  std::string err;
  int64_t n = 0;
  for (int p = 0; p < partitions; ++p) {
    const store::Keys k(kPrefix, p);
    if (auto r = redis.Command({"ZCARD", k.timers()}, &err)) n += r->integer;
    auto buckets = redis.Command({"ZRANGE", k.wheel(), "0", "-1"}, &err);
    if (!buckets) continue;
    for (const auto& b : buckets->elements) {
      if (auto r = redis.Command({"LLEN", k.wheel_bucket(b.str)}, &err)) n += r->integer;
    }
  }
  return n;
}

void WriteConfig(const std::string& path, int redis_port, int partitions,
                 const std::string& flows_dir, double scale, const std::string& smtp) {
  std::ofstream(path) << "redis: { port: " << redis_port << ", partitions: " << partitions << " }\n"
                      << "flows: { dir: \"" << flows_dir << "\" }\n"
                      << smtp << "admin: { listen: \"127.0.0.1:" << FreeLoopbackPort() << "\" }\n"
                      << "clock: { scale: " << scale << " }\n"
                      << "log: { level: warn }\n";
}

// Runs journeyd until `done` or it exits; the seconds it took, or nullopt.
// `cpu_seconds`, when given, gets the daemon's CPU time until `done`.
template <typename Done>
std::optional<double> RunUntil(const std::string& config, const std::string& log, Done done,
                               double* rss_mib = nullptr, double* cpu_seconds = nullptr) {
  Process daemon;
  auto start = Clock::now();
  daemon.Start({SelfDir() + "/journeyd", "-c", config}, {}, log);
  while (Since(start) < 1200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int status = 0;
    if (::waitpid(daemon.pid(), &status, WNOHANG) == daemon.pid()) {
      std::ifstream in(log);
      std::cerr << "journeyd exited:\n" << in.rdbuf() << "\n";
      return std::nullopt;
    }
    if (done()) {
      double secs = Since(start);
      if (rss_mib) *rss_mib = RssMib(daemon.pid());
      if (cpu_seconds) *cpu_seconds = CpuSeconds(daemon.pid());
      daemon.Stop();
      return secs;
    }
  }
  std::cerr << "journeyd did not finish within 20 minutes\n";
  return std::nullopt;
}

}  // namespace

std::optional<DaemonFigures> RunDaemonBench(const DaemonBenchOptions& o) {
  const std::string flows = std::filesystem::absolute(o.flows_dir).string();
  std::vector<double> ceilings, timer_ceilings, ingest, timers, bytes, rss, ingest_ratio,
      timers_ratio;
  std::vector<double> xadd_redis_us, ingest_daemon_us, ingest_redis_us, timers_daemon_us,
      timers_redis_us;
  DaemonFigures fig;
  for (int run = 0; run < o.runs; ++run) {
    TempDir tmp;
    RedisProc redis(tmp.path());
    auto client = redis.Client();
    if (!client) return std::nullopt;  // Client() said why
    std::string err;
    double before = RedisCpuSeconds(*client);
    ceilings.push_back(XaddCeiling(redis.port(), o.customers));
    if (ceilings.back() <= 0) return std::nullopt;
    xadd_redis_us.push_back((RedisCpuSeconds(*client) - before) * 1e6 / o.customers);
    client->Command({"FLUSHALL"}, &err);
    const int64_t baseline = redis.UsedMemory();

    // Ingest: first purchases preloaded, then drained by journeyd.
    if (!Preload(*client, o.customers, o.partitions, &err)) {
      std::cerr << err << "\n";
      return std::nullopt;
    }
    std::string config = tmp.path() + "/journeyd.yaml";
    WriteConfig(config, redis.port(), o.partitions, flows, 1,
                "smtp: { mode: file, dir: \"" + tmp.path() + "/mail\" }\n");
    double rss_now = 0, daemon_cpu = 0;
    double redis_cpu = RedisCpuSeconds(*client);
    client->Command({"CONFIG", "RESETSTAT"}, &err);
    auto secs = RunUntil(
        config, tmp.path() + "/journeyd.log", [&] { return Drained(*client, o.partitions); },
        &rss_now, &daemon_cpu);
    if (!secs) return std::nullopt;
    ingest.push_back(o.customers / *secs);
    ingest_ratio.push_back(ingest.back() / ceilings.back());
    ingest_daemon_us.push_back(daemon_cpu * 1e6 / o.customers);
    ingest_redis_us.push_back((RedisCpuSeconds(*client) - redis_cpu) * 1e6 / o.customers);
    fig.ingest_commands = CommandStats(*client, o.customers);
    rss.push_back(rss_now);
    const int64_t waiting = Waiting(*client, o.partitions);
    if (waiting != o.customers) {
      fig.note += fmt::format(" {} of {} customers have a timer;", waiting, o.customers);
      fig.complete = false;
    }

    // Memory per waiting customer: the events are consumed; drop them as trimming would.
    for (int p = 0; p < o.partitions; ++p) {
      client->Command({"XTRIM", store::Keys(kPrefix, p).events(), "MAXLEN", "0"}, &err);
    }
    bytes.push_back(static_cast<double>(redis.UsedMemory() - baseline) / o.customers);

    // The ceiling again, next to the timer phase (its stream dropped afterwards).
    timer_ceilings.push_back(XaddCeiling(redis.port(), o.customers));
    if (timer_ceilings.back() <= 0) return std::nullopt;
    client->Command({"DEL", "journeyd:bench"}, &err);

    // Timers: virtual time moved 181 days on, so every win-back wait is due at once.
    const double ahead = 181.0 * 86400 * 1000 / (kTimerScale - 1);
    const int64_t now = NowMs();
    client->Command({"SET", std::string(kPrefix) + ":clock_anchor",
                     std::to_string(now - static_cast<int64_t>(ahead))},
                    &err);
    const int64_t due_by = now + 181LL * 86400 * 1000;
    // The mails go to smtp-sink, as in production they go to a relay.
    Process sink;
    const int sink_port =
        o.postfix.why_not.empty() ? StartSmtpSink(o.postfix, tmp.path(), &sink) : 0;
    if (sink_port == 0 && run == 0) fig.note += " timers: mail written to files (no smtp-sink);";
    WriteConfig(config, redis.port(), o.partitions, flows, kTimerScale,
                SmtpConfig(sink_port, 4, tmp.path()));
    redis_cpu = RedisCpuSeconds(*client);
    client->Command({"CONFIG", "RESETSTAT"}, &err);
    secs = RunUntil(
        config, tmp.path() + "/journeyd.log",
        [&] {
          // Nothing due left in the timers set nor in a timing-wheel bucket.
          auto due_in = [&](std::string (store::Keys::*key)() const) {
            return Sum(*client, o.partitions, [&](const store::Keys& k) {
              return std::vector<std::string>{"ZCOUNT", (k.*key)(), "-inf", std::to_string(due_by)};
            });
          };
          return due_in(&store::Keys::timers) == 0 && due_in(&store::Keys::wheel) == 0;
        },
        nullptr, &daemon_cpu);
    if (!secs) return std::nullopt;
    timers.push_back(o.customers / *secs);
    timers_ratio.push_back(timers.back() / timer_ceilings.back());
    timers_daemon_us.push_back(daemon_cpu * 1e6 / o.customers);
    timers_redis_us.push_back((RedisCpuSeconds(*client) - redis_cpu) * 1e6 / o.customers);
    fig.timers_commands = CommandStats(*client, o.customers);
    const int64_t queued = Sum(*client, o.partitions, [](const store::Keys& k) {
      return std::vector<std::string>{"XLEN", k.outbox()};
    });
    if (queued < o.customers) {
      fig.note += fmt::format(" timers queued {} of {} mails;", queued, o.customers);
      fig.complete = false;
    }
  }
  fig.xadd_ceiling = Median(ceilings);
  fig.timers_xadd_ceiling = Median(timer_ceilings);
  fig.ingest_ratio = Median(ingest_ratio);
  fig.timers_ratio = Median(timers_ratio);
  fig.ingest_per_sec = Median(ingest);
  fig.timers_per_sec = Median(timers);
  fig.bytes_per_customer = Median(bytes);
  fig.rss_mib = Median(rss);
  fig.xadd_redis_us = Median(xadd_redis_us);
  fig.ingest_daemon_us = Median(ingest_daemon_us);
  fig.ingest_redis_us = Median(ingest_redis_us);
  fig.timers_daemon_us = Median(timers_daemon_us);
  fig.timers_redis_us = Median(timers_redis_us);
  return fig;
}

std::optional<LatenessFigures> RunLatenessBench(double rate, double timer_rate, int seconds,
                                                int partitions, const std::string& flows_dir,
                                                const PostfixTools& postfix) {
  TempDir tmp;
  RedisProc redis(tmp.path());
  auto client = redis.Client();
  if (!client) return std::nullopt;  // Client() said why
  // The shipped flows, and the tick flow beside them.
  const std::string flows = tmp.path() + "/flows";
  std::filesystem::copy(flows_dir, flows, std::filesystem::copy_options::recursive);
  std::ofstream(flows + "/tick.yaml") << "flow: tick\nname: Tick\ncategory: transactional\n"
                                         "trigger: { event: tick }\nreentry: always\n"
                                         "steps:\n  - wait: 2s\n  - send: note\n";
  std::ofstream(flows + "/templates/note.yaml") << "subject: Tick\ntext: tock\n";
  std::string config = tmp.path() + "/journeyd.yaml";
  Process sink;
  const int sink_port = postfix.why_not.empty() ? StartSmtpSink(postfix, tmp.path(), &sink) : 0;
  WriteConfig(config, redis.port(), partitions, flows, 1, SmtpConfig(sink_port, 4, tmp.path()));
  Process daemon;
  daemon.Start({SelfDir() + "/journeyd", "-c", config}, {}, tmp.path() + "/journeyd.log");
  std::string err;
  // Ready once every partition's events group exists.
  for (int i = 0; i < 500; ++i) {
    bool all = true;
    for (int p = 0; p < partitions && all; ++p) {
      auto r = client->Command({"XINFO", "GROUPS", store::Keys(kPrefix, p).events()}, &err);
      all = r && !r->is_error() && !r->elements.empty();
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Offer `rate` events a second in 10 ms slices; remember each event's entry time. Every
  // 100 ms, read the new outbox entries (the daemon trims the outbox past 100k entries): each
  // mail's entry time is when its timer's commit happened.
  std::unordered_map<std::string, int64_t> due;  // customer → when the wait ends (ms)
  std::vector<double> late;
  std::vector<std::string> last(static_cast<size_t>(partitions), "-");
  auto collect = [&] {
    for (int p = 0; p < partitions; ++p) {
      std::string& from = last[static_cast<size_t>(p)];
      auto r = client->Command({"XRANGE", store::Keys(kPrefix, p).outbox(),
                                from == "-" ? from : "(" + from, "+", "COUNT", "100000"},
                               &err);
      if (!r) continue;
      for (const auto& e : r->elements) {
        if (e.elements.size() < 2) continue;
        from = e.elements[0].str;
        const auto& f = e.elements[1].elements;
        for (size_t i = 0; i + 1 < f.size(); i += 2) {
          if (f[i].str != "customer_id") continue;
          auto it = due.find(f[i + 1].str);
          if (it != due.end()) {
            late.push_back(static_cast<double>(std::atoll(from.c_str()) - it->second));
          }
        }
      }
    }
  };
  const int per_slice = std::max(1, static_cast<int>(std::lround(rate / 100)));
  const int ticks_per_slice =
      std::clamp(static_cast<int>(std::lround(timer_rate / 100)), 1, per_slice);
  const double redis_cpu = RedisCpuSeconds(*client);
  auto start = Clock::now();
  int n = 0, ticks = 0;
  for (int slice = 0; slice < seconds * 100; ++slice) {
    std::vector<std::vector<std::string>> cmds;
    std::vector<std::string> ids;  // the ticks' customers, by command index
    for (int k = 0; k < per_slice; ++k, ++n) {
      const bool tick = k < ticks_per_slice;
      std::string id = fmt::format("{}{}", tick ? "t" : "p", n);
      const std::string stream = store::Keys(kPrefix, store::PartitionOf(id, partitions)).events();
      if (tick) {
        cmds.push_back({"XADD", stream, "*", "type", "tick", "customer_id", id, "profile",
                        R"({"email":"t@example.com"})"});
        ids.push_back(id);
        ++ticks;
      } else {
        cmds.push_back({"XADD", stream, "*", "type", "purchase", "customer_id", id, "event_id",
                        "o" + id, "data", R"({"total":42.5})", "profile",
                        fmt::format(R"({{"email":"{}@example.com","first_name":"Sam",)"
                                    R"("email_opt_in":true}})",
                                    id)});
        ids.emplace_back();
      }
    }
    auto replies = client->Pipeline(cmds, &err);
    if (!replies) {
      std::cerr << "lateness: publishing failed: " << err << "\n";
      return std::nullopt;
    }
    for (size_t k = 0; k < ids.size(); ++k) {
      if (!ids[k].empty()) due[ids[k]] = std::atoll((*replies)[k].str.c_str()) + 2000;
    }
    if (slice % 10 == 9) collect();
    // Behind the schedule this returns at once: the rate reached, below, shows it.
    auto next = start + std::chrono::milliseconds(10 * (slice + 1));
    std::this_thread::sleep_until(next);
  }
  const double published_secs = Since(start);
  // Wait for the last mails.
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline && static_cast<int>(late.size()) < ticks) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    collect();
  }
  LatenessFigures fig;
  fig.daemon_us = CpuSeconds(daemon.pid()) * 1e6 / n;
  fig.redis_us = (RedisCpuSeconds(*client) - redis_cpu) * 1e6 / n;
  daemon.Stop();
  fig.target_rate = rate;
  fig.rate = n / published_secs;
  fig.timer_rate = ticks / published_secs;
  fig.ticks = ticks;
  fig.timers = static_cast<int>(late.size());
  if (late.empty()) {
    std::cerr << "lateness: none of the " << ticks << " tick mails was queued within a minute\n";
    return std::nullopt;
  }
  std::sort(late.begin(), late.end());
  fig.p50_ms = late[late.size() / 2];
  fig.p99_ms = late[std::min(late.size() - 1, late.size() * 99 / 100)];
  fig.max_ms = late.back();
  if (static_cast<int>(late.size()) < ticks) {
    fig.note =
        fmt::format(" only {} of {} tick mails were queued within a minute;", late.size(), ticks);
  }
  return fig;
}

std::optional<double> RunRssBench(const std::string& flows_dir, int customers, int partitions) {
  TempDir tmp;
  RedisProc redis(tmp.path());
  auto client = redis.Client();
  if (!client) return std::nullopt;  // Client() said why
  std::string err;
  if (!Preload(*client, customers, partitions, &err)) {
    std::cerr << "rss: preloading the events failed: " << err << "\n";
    return std::nullopt;
  }
  std::string config = tmp.path() + "/journeyd.yaml";
  WriteConfig(config, redis.port(), partitions, std::filesystem::absolute(flows_dir).string(), 1,
              "smtp: { mode: file, dir: \"" + tmp.path() + "/mail\" }\n");
  double rss = 0;
  auto secs = RunUntil(
      config, tmp.path() + "/journeyd.log", [&] { return Drained(*client, partitions); }, &rss);
  if (!secs) return std::nullopt;
  return rss;
}

}  // namespace journeyd::bench
