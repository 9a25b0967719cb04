// journeyd against a hostile network and a Redis in trouble, through the fault proxy
// (tests/integration/fault_proxy.py) or with Redis itself out of memory: nothing lost, nothing
// doubled, the daemon alive and its endpoints telling the truth meanwhile.
#include "../fault_proxy.h"
#include "../smtp_peer.h"
#include "daemon_fixture.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace journeyd {
namespace {

using testing::FaultProxy;
using testing::SmtpPeer;
namespace fs = std::filesystem;

class Faults : public testing::Daemon {
 protected:
  std::string DaemonLog() { return Read(dir_ / "journeyd.log"); }
  int64_t Len(const std::string& stream) { return Cmd({"XLEN", stream}).integer; }
  int64_t EventsPending() {
    return Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"}).elements[0].integer;
  }
  void PublishSignups(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      Publish(
          {"type", "signup", "customer_id", prefix + std::to_string(i), "profile", testing::kAnna});
    }
  }
  bool Ready() { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }
  // The daemon's resident memory, in KiB (VmRSS).
  int64_t RssKib() {
    std::istringstream in(Read("/proc/" + std::to_string(pid_) + "/status"));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
  }
  // An SMTP section for a relay at `port` (a proxy's), with `extra` settings.
  static std::string SmtpConfig(int port, const std::string& extra) {
    return "smtp: { mode: smtp, host: 127.0.0.1, port: " + std::to_string(port) +
           ", tls: none, from: \"Shop <news@shop.example>\", " + extra + " }\n";
  }
  // The relay got each customer's mail exactly once (by Message-ID); nothing is left pending,
  // retried or dead.
  void ExpectDeliveredOnce(const SmtpPeer& peer, int customers) {
    std::set<std::string> ids;
    for (const auto& m : peer.Messages()) ids.insert(Header(m, "Message-ID"));
    EXPECT_EQ(ids.size(), static_cast<size_t>(customers));
    EXPECT_EQ(peer.Messages().size(), static_cast<size_t>(customers));
    EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
    ASSERT_TRUE(WaitFor([&] {
      return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
    })) << DaemonLog();
    EXPECT_EQ(Len("journeyd:{0}:dead"), 0) << DaemonLog();
  }
  // Every customer's mail committed once and written once, every event acknowledged.
  void ExpectAllDoneOnce(int customers) {
    ASSERT_TRUE(
        WaitFor([&] { return Len("journeyd:{0}:outbox") >= customers; }, std::chrono::seconds(60)))
        << DaemonLog();
    ASSERT_TRUE(WaitFor([&] { return EventsPending() == 0; })) << DaemonLog();
    ASSERT_TRUE(WaitFor([&] { return static_cast<int>(Mails().size()) >= customers; }))
        << DaemonLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ExpectOneMailPerCustomer(customers);
    EXPECT_EQ(static_cast<int>(Mails().size()), customers);
    EXPECT_EQ(Len("journeyd:{0}:dead"), 0) << DaemonLog();
  }
};

// Redis gone (connections reset, new ones refused) for twice the lease, then back.
TEST_F(Faults, RedisUnreachableLongerThanTheLeaseThenBackLosesAndDoublesNothing) {
  FaultProxy proxy(redis_.port());
  daemon_redis_port_ = proxy.port();
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const int kCustomers = 400;
  PublishSignups(kCustomers / 2, "u");
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= 50; })) << DaemonLog();
  ASSERT_EQ(proxy.Tell("refuse"), "ok");
  ASSERT_EQ(proxy.Tell("reset"), "ok");
  PublishSignups(kCustomers / 2, "v");  // straight into Redis while the daemon cannot reach it
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // Alive, and not ready, saying why.
  EXPECT_NE(HttpGet("/healthz").find(" 200 "), std::string::npos);
  std::string ready = HttpGet("/readyz");
  EXPECT_NE(ready.find(" 503 "), std::string::npos) << ready;
  EXPECT_NE(ready.find("Redis unreachable"), std::string::npos) << ready;
  std::this_thread::sleep_for(std::chrono::seconds(3));  // 4 s in all; the lease is 2 s
  ASSERT_EQ(proxy.Tell("pass"), "ok");
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  ExpectAllDoneOnce(kCustomers);
}

// A reply cut in half, then nothing more on that connection: the command's deadline fires, the
// connection is dropped, and the daemon resumes from its pending entries.
TEST_F(Faults, ARedisReplyCutInHalfAndSilentIsResolvedWithoutDoubling) {
  FaultProxy proxy(redis_.port());
  daemon_redis_port_ = proxy.port();
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const int kCustomers = 300;
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "h" + std::to_string(i), "profile", testing::kAnna});
    if (i == kCustomers / 3) {
      ASSERT_EQ(proxy.Tell("cut"), "ok");
    }
  }
  ExpectAllDoneOnce(kCustomers);
  const std::string log = DaemonLog();
  EXPECT_NE(log.find("Redis did not answer in time"), std::string::npos) << log;
}

// Redis at maxmemory with noeviction refuses writes: no event is acknowledged without its
// effects, the daemon says why and waits, and it resumes once memory is freed.
TEST_F(Faults, RedisOutOfMemoryAcknowledgesNothingWithoutItsEffectsAndResumes) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const int kCustomers = 300;
  PublishSignups(kCustomers / 3, "m");
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= kCustomers / 3; })) << DaemonLog();
  // Events published before the limit (Redis refuses XADD beyond it), then the limit set below
  // what Redis holds; the daemon held still meanwhile, so that it meets the limit with these
  // events still to commit, however fast it is.
  ::kill(pid_, SIGSTOP);
  PublishSignups(kCustomers - kCustomers / 3, "n");
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).str, "OK");
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory", "1"}).str, "OK");
  ::kill(pid_, SIGCONT);
  const int64_t outbox_at_limit = Len("journeyd:{0}:outbox");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Whatever was acknowledged has its mail: events pending plus mails queued cover everyone.
  const int64_t queued = Len("journeyd:{0}:outbox");
  const int64_t pending = EventsPending();
  const int64_t unread =
      Cmd({"XINFO", "GROUPS", "journeyd:{0}:events"}).elements[0].elements[11].integer;
  EXPECT_EQ(queued + pending + unread, kCustomers)
      << "queued " << queued << " (at the limit " << outbox_at_limit << "), pending " << pending
      << ", unread " << unread << "\n"
      << DaemonLog();
  EXPECT_NE(DaemonLog().find("OOM"), std::string::npos) << DaemonLog();
  EXPECT_NE(HttpGet("/healthz").find(" 200 "), std::string::npos);
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory", "0"}).str, "OK");
  ExpectAllDoneOnce(kCustomers);
}

// An SMTP relay that takes connections and says nothing: the engine keeps committing (the outbox
// grows), no attempt is counted, and every mail goes out once the relay speaks again.
TEST_F(Faults, ASilentRelayKeepsTheEngineCommittingAndDeliveryResumesAfter) {
  SmtpPeer peer;
  FaultProxy proxy(peer.port());
  smtp_config_ = "smtp: { mode: smtp, host: 127.0.0.1, port: " + std::to_string(proxy.port()) +
                 ", tls: none, from: \"Shop <news@shop.example>\", retry_delay: 1m, "
                 "command_timeout: 2s, data_timeout: 2s }\n";
  WriteConfig(1);
  ASSERT_EQ(proxy.Tell("silent"), "ok");
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const int kCustomers = 200;
  PublishSignups(kCustomers, "s");
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= kCustomers; })) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    return DaemonLog().find("the relay cannot be reached") != std::string::npos;
  })) << DaemonLog();
  EXPECT_TRUE(peer.Messages().empty());
  EXPECT_EQ(EventsPending(), 0);
  ASSERT_EQ(proxy.Tell("pass"), "ok");
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(peer.Messages().size()) >= kCustomers; }))
      << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ExpectDeliveredOnce(peer, kCustomers);
}

// A relay that answers, but a second late each way on every reply: mail goes out slowly, none
// of it fails, the engine commits at its own pace, and /readyz does not call delivery down.
TEST_F(Faults, ASlowRelayDeliversSlowlyWhileTheEngineCommitsAtItsOwnPace) {
  SmtpPeer peer;
  FaultProxy proxy(peer.port());
  smtp_config_ =
      SmtpConfig(proxy.port(), "retry_delay: 1m, command_timeout: 10s, data_timeout: 10s");
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  ASSERT_EQ(proxy.Tell("delay 1000"), "ok");
  const int kCustomers = 120;
  PublishSignups(kCustomers, "w");
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= kCustomers; })) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return EventsPending() == 0; })) << DaemonLog();
  // Some mail goes out meanwhile, seconds apart; not all of it.
  ASSERT_TRUE(WaitFor([&] { return !peer.Messages().empty(); })) << DaemonLog();
  EXPECT_LT(static_cast<int>(peer.Messages().size()), kCustomers);
  const std::string ready = HttpGet("/readyz");
  EXPECT_NE(ready.find(" 200 "), std::string::npos) << ready;
  EXPECT_EQ(ready.find("degraded"), std::string::npos) << ready;
  ASSERT_EQ(proxy.Tell("pass"), "ok");
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(peer.Messages().size()) >= kCustomers; },
                      std::chrono::seconds(60)))
      << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ExpectDeliveredOnce(peer, kCustomers);
}

// A relay refusing connections for a minute while signups keep coming: each wave is committed
// as it comes (the outbox grows), no attempt is counted, the daemon's memory stays flat, and
// every mail goes out within a probe interval (retry_delay, 10 s here) of the relay answering.
TEST_F(Faults, ARelayRefusingForAMinuteKeepsTheEngineCommittingInFlatMemory) {
  SmtpPeer peer;
  FaultProxy proxy(peer.port());
  smtp_config_ = SmtpConfig(proxy.port(), "retry_delay: 10s, command_timeout: 5s");
  WriteConfig(1);
  ASSERT_EQ(proxy.Tell("refuse"), "ok");
  // Under AddressSanitizer, freed memory is held back in a quarantine (256 MiB) that grows
  // RSS by itself: without it, RSS is what the daemon keeps.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_was = asan ? asan : "";
  ::setenv("ASAN_OPTIONS", (asan_was + ":quarantine_size_mb=0").c_str(), 1);
  Start();
  ::setenv("ASAN_OPTIONS", asan_was.c_str(), 1);
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const int kWaves = 12, kPerWave = 50;
  std::vector<int64_t> rss;
  const auto start = std::chrono::steady_clock::now();
  for (int w = 0; w < kWaves; ++w) {
    PublishSignups(kPerWave, "r" + std::to_string(w) + "-");
    ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= (w + 1) * kPerWave; }))
        << "wave " << w << "\n"
        << DaemonLog();
    rss.push_back(RssKib());
    std::this_thread::sleep_until(start + std::chrono::seconds(5 * (w + 1)));
  }
  EXPECT_EQ(EventsPending(), 0);
  EXPECT_TRUE(peer.Messages().empty());
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  const std::string ready = HttpGet("/readyz");
  EXPECT_NE(ready.find(" 200 "), std::string::npos) << ready;
  EXPECT_NE(ready.find("degraded: no mail delivered for "), std::string::npos) << ready;
  EXPECT_NE(ready.find("the relay cannot be reached"), std::string::npos) << ready;
  const std::string metrics = HttpGet("/metrics");
  EXPECT_NE(metrics.find("journeyd_delivery_up{sink=\"smtp\"} 0"), std::string::npos) << metrics;
  // Flat: the last half of the minute holds no more than the first half did, give or take a
  // tenth (the waiting mails are in Redis, not in the daemon).
  const int64_t first = *std::max_element(rss.begin(), rss.begin() + kWaves / 2);
  const int64_t last = *std::max_element(rss.begin() + kWaves / 2, rss.end());
  std::string series;
  for (int64_t r : rss) series += std::to_string(r) + " ";
  EXPECT_LE(last, first + first / 10) << "RSS (KiB) every 5 s: " << series;
  ASSERT_EQ(proxy.Tell("pass"), "ok");
  const auto back = std::chrono::steady_clock::now();
  const int kCustomers = kWaves * kPerWave;
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(peer.Messages().size()) >= kCustomers; },
                      std::chrono::seconds(40)))
      << DaemonLog();
  const auto took = std::chrono::steady_clock::now() - back;
  EXPECT_LT(took, std::chrono::seconds(25)) << "the probe waits at most retry_delay (10 s)";
  std::cout << "RSS (KiB) every 5 s while refused: " << series << "\n"
            << kCustomers << " mails delivered "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms after the relay answered again\n";
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ExpectDeliveredOnce(peer, kCustomers);
  EXPECT_NE(HttpGet("/metrics").find("journeyd_delivery_up{sink=\"smtp\"} 1"), std::string::npos);
  EXPECT_EQ(HttpGet("/readyz").find("degraded"), std::string::npos);
}

// smtp.mode: file with a mail folder that cannot be written (a file where it should be): the
// mails stay in the outbox with no attempt counted, the log and /readyz name the path, and each
// is written once when the folder is back.
TEST_F(Faults, AMailFolderThatCannotBeWrittenKeepsItsMailsUntilItCan) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return Ready(); })) << DaemonLog();
  const fs::path folder = dir_ / "mail";
  fs::remove_all(folder);
  std::ofstream(folder) << "not a folder";
  const int kCustomers = 100;
  PublishSignups(kCustomers, "f");
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:outbox") >= kCustomers; })) << DaemonLog();
  const std::string why =
      "cannot create a file in the mail folder " + folder.string() + " (smtp.dir): Not a directory";
  ASSERT_TRUE(WaitFor([&] { return DaemonLog().find(why) != std::string::npos; })) << DaemonLog();
  EXPECT_NE(DaemonLog().find("mail(s) stay in the outbox, no attempt counted"), std::string::npos);
  const std::string ready = HttpGet("/readyz");
  EXPECT_NE(ready.find(" 200 "), std::string::npos) << ready;
  EXPECT_NE(ready.find(why), std::string::npos) << ready;
  EXPECT_NE(HttpGet("/metrics").find("journeyd_delivery_up{sink=\"file\"} 0"), std::string::npos);
  EXPECT_EQ(EventsPending(), 0);
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0) << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  fs::remove(folder);
  fs::create_directories(folder);
  ExpectAllDoneOnce(kCustomers);
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  })) << DaemonLog();
  EXPECT_NE(HttpGet("/metrics").find("journeyd_delivery_up{sink=\"file\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace journeyd
