// journeyd against a hostile network and a Redis in trouble, through the fault proxy
// (tests/integration/fault_proxy.py) or with Redis itself out of memory: nothing lost, nothing
// doubled, the daemon alive and its endpoints telling the truth meanwhile.
#include "../fault_proxy.h"
#include "../smtp_peer.h"
#include "daemon_fixture.h"

namespace journeyd {
namespace {

using testing::FaultProxy;
using testing::SmtpPeer;

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
  // Events published before the limit, then the limit set below what Redis holds.
  PublishSignups(kCustomers - kCustomers / 3, "n");
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).str, "OK");
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory", "1"}).str, "OK");
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
  std::set<std::string> ids;
  for (const auto& m : peer.Messages()) ids.insert(Header(m, "Message-ID"));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCustomers));
  EXPECT_EQ(peer.Messages().size(), static_cast<size_t>(kCustomers));
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  })) << DaemonLog();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0) << DaemonLog();
}

}  // namespace
}  // namespace journeyd
