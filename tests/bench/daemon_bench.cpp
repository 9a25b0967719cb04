#include "daemon_bench.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

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

// redis-benchmark's pipelined XADD rate on the server: the ceiling the figures divide by.
double XaddCeiling(int port, int requests) {
  std::string cmd = fmt::format(
      "redis-benchmark -h 127.0.0.1 -p {} -n {} -P 64 -q XADD journeyd:bench '*' type purchase "
      "customer_id c1 data '{{\"total\":42.5}}' 2>/dev/null",
      port, requests);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return 0;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  // "XADD ...: 512820.52 requests per second, p50=..." (the last such figure wins)
  double rate = 0;
  for (size_t at = out.find(" requests per second"); at != std::string::npos;
       at = out.find(" requests per second", at + 1)) {
    size_t start = out.rfind(' ', at - 1);
    rate = std::atof(out.c_str() + (start == std::string::npos ? 0 : start + 1));
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
    auto info = redis.Command({"XINFO", "GROUPS", store::Keys(kPrefix, p).events()}, &err);
    if (!info || info->elements.empty()) return false;
    int64_t pending = -1, lag = -1;
    const auto& g = info->elements[0].elements;
    for (size_t i = 0; i + 1 < g.size(); i += 2) {
      if (g[i].str == "pending") pending = g[i + 1].integer;
      if (g[i].str == "lag") lag = g[i + 1].integer;
    }
    if (pending != 0 || lag != 0) return false;
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

double RssMib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
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
template <typename Done>
std::optional<double> RunUntil(const std::string& config, const std::string& log, Done done,
                               double* rss_mib = nullptr) {
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
  std::vector<double> ceilings, ingest, timers, bytes, rss;
  DaemonFigures fig;
  for (int run = 0; run < o.runs; ++run) {
    TempDir tmp;
    RedisProc redis(tmp.path());
    auto client = redis.Client();
    if (!client) return std::nullopt;
    std::string err;
    ceilings.push_back(XaddCeiling(redis.port(), o.customers));
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
    double rss_now = 0;
    auto secs = RunUntil(
        config, tmp.path() + "/journeyd.log", [&] { return Drained(*client, o.partitions); },
        &rss_now);
    if (!secs) return std::nullopt;
    ingest.push_back(o.customers / *secs);
    rss.push_back(rss_now);
    const int64_t waiting = Sum(*client, o.partitions, [](const store::Keys& k) {
      return std::vector<std::string>{"ZCARD", k.timers()};
    });
    if (waiting != o.customers) {
      fig.note += fmt::format(" {} of {} customers have a timer;", waiting, o.customers);
    }

    // Memory per waiting customer: the events are consumed; drop them as trimming would.
    for (int p = 0; p < o.partitions; ++p) {
      client->Command({"XTRIM", store::Keys(kPrefix, p).events(), "MAXLEN", "0"}, &err);
    }
    bytes.push_back(static_cast<double>(redis.UsedMemory() - baseline) / o.customers);

    // Timers: virtual time moved 181 days on, so every win-back wait is due at once.
    const double ahead = 181.0 * 86400 * 1000 / (kTimerScale - 1);
    const int64_t now = NowMs();
    client->Command({"SET", std::string(kPrefix) + ":clock_anchor",
                     std::to_string(now - static_cast<int64_t>(ahead))},
                    &err);
    const int64_t due_by = now + 181LL * 86400 * 1000;
    std::string smtp = "smtp: { mode: file, dir: \"" + tmp.path() + "/mail\" }\n";
    WriteConfig(config, redis.port(), o.partitions, flows, kTimerScale, smtp);
    secs = RunUntil(config, tmp.path() + "/journeyd.log", [&] {
      return Sum(*client, o.partitions, [&](const store::Keys& k) {
               return std::vector<std::string>{"ZCOUNT", k.timers(), "-inf",
                                               std::to_string(due_by)};
             }) == 0;
    });
    if (!secs) return std::nullopt;
    timers.push_back(o.customers / *secs);
    const int64_t queued = Sum(*client, o.partitions, [](const store::Keys& k) {
      return std::vector<std::string>{"XLEN", k.outbox()};
    });
    if (queued < o.customers) {
      fig.note += fmt::format(" timers queued {} of {} mails;", queued, o.customers);
    }
  }
  fig.xadd_ceiling = Median(ceilings);
  fig.ingest_per_sec = Median(ingest);
  fig.timers_per_sec = Median(timers);
  fig.bytes_per_customer = Median(bytes);
  fig.rss_mib = Median(rss);
  return fig;
}

std::optional<double> RunRssBench(const std::string& flows_dir, int customers, int partitions) {
  TempDir tmp;
  RedisProc redis(tmp.path());
  auto client = redis.Client();
  if (!client) return std::nullopt;
  std::string err;
  if (!Preload(*client, customers, partitions, &err)) return std::nullopt;
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
