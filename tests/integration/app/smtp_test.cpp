// journeyd with smtp.mode: smtp against a real SMTP server (aiosmtpd) and a real redis-server:
// delivery, a rejected recipient (dead letter, bounce, later marketing suppressed), deferrals
// retried from Redis, a server that dies mid-transfer, header injection, a wrong password.
#include "../smtp_peer.h"
#include "daemon_fixture.h"

#include <nlohmann/json.hpp>

namespace journeyd {
namespace {

using store::Reply;
using testing::SmtpPeer;

class Smtp : public testing::Daemon {
 protected:
  void UseSmtp(const SmtpPeer& peer, const std::string& extra = "",
               const std::string& retry_delay = "1s") {
    smtp_config_ = "smtp: { mode: smtp, host: 127.0.0.1, port: " + std::to_string(peer.port()) +
                   ", tls: none, from: \"Shop <news@shop.example>\", retry_delay: " + retry_delay +
                   ", command_timeout: 5s, data_timeout: 5s" + extra + " }\n";
  }

  void StartAndWaitReady(double scale) {
    WriteConfig(scale);
    Start();
    ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  }

  std::string DaemonLog() { return Read(dir_ / "journeyd.log"); }

  // The customer's state as journeyctl inspect prints it.
  std::string Inspect(const std::string& customer) {
    std::string out = (dir_ / "inspect.out").string();
    std::string cmd = std::string(JOURNEYD_BINARY_DIR) + "/src/journeyctl -c " +
                      (dir_ / "journeyd.yaml").string() + " inspect " + customer + " > " + out;
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return Read(out);
  }

  int64_t Len(const std::string& stream) { return Cmd({"XLEN", stream}).integer; }

  // How many copies of each Message-ID the peer received.
  static std::map<std::string, int> Copies(const SmtpPeer& peer) {
    std::map<std::string, int> copies;
    for (const auto& m : peer.Messages()) ++copies[Header(m, "Message-ID")];
    return copies;
  }
  static int Extra(const std::map<std::string, int>& copies) {
    int extra = 0;
    for (const auto& [id, n] : copies) extra += n - 1;
    return extra;
  }

  void PublishSignups(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      Publish(
          {"type", "signup", "customer_id", prefix + std::to_string(i), "profile", testing::kAnna});
    }
  }
};

TEST_F(Smtp, DeliversTheWelcomeSeriesToTheRelay) {
  SmtpPeer peer;
  UseSmtp(peer);
  StartAndWaitReady(86400);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] { return peer.Messages().size() >= 3; })) << DaemonLog();
  std::multiset<std::string> steps;
  std::set<std::string> ids;
  for (const auto& m : peer.Messages()) {
    EXPECT_EQ(Header(m, "X-Journeyd-Flow"), "welcome");
    EXPECT_EQ(Header(m, "To"), "anna@example.com");
    steps.insert(Header(m, "X-Journeyd-Step"));
    ids.insert(Header(m, "Message-ID"));
  }
  EXPECT_EQ(steps, (std::multiset<std::string>{"loyalty_intro", "thanks", "tips"}));
  EXPECT_EQ(ids.size(), 3u);
  // Every job acknowledged, nothing dead.
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  }));
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Smtp, ARejectedRecipientIsDeadWithTheReplyAndLaterMarketingIsSuppressed) {
  SmtpPeer peer({"--reject", "anna@example.com"});
  UseSmtp(peer);
  StartAndWaitReady(86400);  // a day a second: the tips mail is due 3 s after the thanks mail
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:dead") >= 1; })) << DaemonLog();
  Reply dead = Cmd({"XRANGE", "journeyd:{0}:dead", "-", "+"});
  auto f = JobFields(dead.elements[0]);
  EXPECT_EQ(f["step"], "thanks");
  EXPECT_NE(f["error"].find("550"), std::string::npos) << f["error"];
  EXPECT_NE(f["error"].find("User unknown"), std::string::npos) << f["error"];
  EXPECT_FALSE(f["source_id"].empty());
  // The bounce went through the event path: the customer is marked.
  ASSERT_TRUE(WaitFor([&] {
    return Inspect("c1").find("\"bouncing\": true") != std::string::npos;
  })) << Inspect("c1");
  // Days later the tips and loyalty mails are due: suppressed, never offered to the relay.
  auto suppressed = [&] {
    std::set<std::string> steps;
    auto j = nlohmann::json::parse(Inspect("c1"), nullptr, false);
    if (!j.is_object() || !j.contains("history")) return steps;
    for (const auto& h : j["history"]) {
      if (h.value("kind", "") == "suppress" && h.value("detail", "") == "bouncing") {
        steps.insert(h.value("step", ""));
      }
    }
    return steps;
  };
  ASSERT_TRUE(WaitFor([&] { return suppressed().size() == 2; }, std::chrono::seconds(30)))
      << Inspect("c1");
  EXPECT_EQ(suppressed(), (std::set<std::string>{"tips", "loyalty_intro"}));
  EXPECT_EQ(peer.Count("RCPT anna@example.com"), 1) << peer.Log();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 1);
  EXPECT_TRUE(peer.Messages().empty());
}

TEST_F(Smtp, DeferredTwiceThenAcceptedIsDeliveredOnce) {
  SmtpPeer peer({"--defer", "2"});
  UseSmtp(peer);
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] { return peer.Messages().size() >= 1; }, std::chrono::seconds(40)))
      << DaemonLog() << peer.Log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(peer.Messages().size(), 1u);
  EXPECT_EQ(peer.Count("DATA 451"), 2) << peer.Log();
  EXPECT_EQ(peer.Count("DATA 250"), 1) << peer.Log();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog() << peer.Log();
  EXPECT_NE(DaemonLog().find("deferred for a retry: end of data: 451"), std::string::npos)
      << DaemonLog();
}

// The worker loses its partition while a mail is out and takes it back: the sender of its first
// ownership settles that mail; the next one, started only then, does not read it again from
// the pending entries and send it twice.
TEST_F(Smtp, APartitionLostAndRetakenWhileAMailIsOutSendsItOnce) {
  SmtpPeer peer({"--data-delay", "3"});
  UseSmtp(peer);
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] { return peer.Count("DATA wait") >= 1; })) << DaemonLog() << peer.Log();
  // Another instance holds the partition for a second; the worker takes it back after.
  ASSERT_EQ(Cmd({"SET", "journeyd:{0}:lease", "999999", "PX", "1000"}).str, "OK");
  ASSERT_TRUE(WaitFor([&] { return DaemonLog().find("lost the lease") != std::string::npos; }))
      << DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    Reply lease = Cmd({"GET", "journeyd:{0}:lease"});
    return lease.type == Reply::Type::kString && lease.str != "999999";
  })) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return peer.Messages().size() >= 1; })) << DaemonLog() << peer.Log();
  // Long enough for a second copy's delayed DATA to end.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(peer.Messages().size(), 1u) << DaemonLog() << peer.Log();
  EXPECT_EQ(peer.Count("DATA wait"), 1) << peer.Log();
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  })) << DaemonLog();
}

TEST_F(Smtp, TheRetryScheduleSurvivesARestartOfTheDaemon) {
  SmtpPeer peer({"--defer", "1"});
  UseSmtp(peer, "", "4s");
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"ZCARD", "journeyd:{0}:retry"}).integer == 1;
  })) << DaemonLog();
  Reply due = Cmd({"ZRANGE", "journeyd:{0}:retry", "0", "0", "WITHSCORES"});
  const int64_t due_ms = std::stoll(due.elements[1].str);
  EXPECT_EQ(Stop(SIGTERM), 0);
  Start();  // the same retry, not a new schedule from zero
  ASSERT_TRUE(WaitFor([&] { return peer.Messages().size() >= 1; }, std::chrono::seconds(20)))
      << DaemonLog();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_GE(now_ms, due_ms);
  EXPECT_EQ(peer.Messages().size(), 1u);
  EXPECT_NE(peer.Messages()[0].find("X-Journeyd-Step: thanks"), std::string::npos);
}

TEST_F(Smtp, ServerDyingAfterTheFinalDotThenRestartedDeliversWithTheSameMessageId) {
  auto peer = std::make_unique<SmtpPeer>(std::vector<std::string>{"--die-after-data", "1"});
  UseSmtp(*peer);
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] { return peer->Exited(); })) << DaemonLog();
  ASSERT_EQ(peer->Messages().size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  peer->Start({});  // back up, on the same port
  ASSERT_TRUE(WaitFor([&] { return peer->Messages().size() >= 2; }, std::chrono::seconds(30)))
      << DaemonLog() << peer->Log();
  auto msgs = peer->Messages();
  // At least once: the copy whose reply was lost and the retry carry one Message-ID.
  EXPECT_EQ(Header(msgs[0], "Message-ID"), Header(msgs[1], "Message-ID"));
  EXPECT_FALSE(Header(msgs[0], "Message-ID").empty());
  EXPECT_NE(DaemonLog().find("may have been delivered"), std::string::npos) << DaemonLog();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
}

TEST_F(Smtp, NoProfileValueReachesTheWireAsAHeader) {
  SmtpPeer peer;
  UseSmtp(peer);
  StartAndWaitReady(1);
  // CR/LF in the name (used in the subject) must not start a header.
  Publish({"type", "signup", "customer_id", "c1", "profile",
           R"({"email":"anna@example.com","first_name":"Anna\r\nBcc: evil@attacker.example\r\n)"
           R"(X-Injected: yes","email_opt_in":true})"});
  // A non-ASCII name arrives RFC 2047-encoded.
  Publish({"type", "signup", "customer_id", "c2", "profile",
           R"({"email":"zoe@example.com","first_name":"Zoë Ångström","email_opt_in":true})"});
  // CR/LF in the address: refused before the wire.
  Publish({"type", "signup", "customer_id", "c3", "profile",
           R"({"email":"bob@example.com\r\nRCPT TO:<evil@attacker.example>",)"
           R"("email_opt_in":true})"});
  ASSERT_TRUE(WaitFor([&] { return peer.Messages().size() >= 2; })) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return Len("journeyd:{0}:dead") >= 1; })) << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto msgs = peer.Messages();
  ASSERT_EQ(msgs.size(), 2u);
  for (const auto& m : msgs) {
    std::string headers = m.substr(0, m.find("\r\n\r\n"));
    EXPECT_EQ(headers.find("\r\nBcc:"), std::string::npos) << headers;
    EXPECT_EQ(headers.find("\r\nX-Injected:"), std::string::npos) << headers;
    EXPECT_EQ(headers.find("\nRCPT"), std::string::npos) << headers;
    if (Header(m, "To") == "zoe@example.com") {
      EXPECT_NE(Header(m, "Subject").find("=?UTF-8?"), std::string::npos) << headers;
      EXPECT_EQ(Header(m, "Subject").find("Zoë"), std::string::npos) << headers;
    }
  }
  EXPECT_EQ(peer.Count("RCPT evil@attacker.example"), 0) << peer.Log();
  EXPECT_EQ(peer.Count("RCPT"), 2) << peer.Log();
  Reply dead = Cmd({"XRANGE", "journeyd:{0}:dead", "-", "+"});
  ASSERT_EQ(dead.elements.size(), 1u);
  EXPECT_EQ(Fields(dead.elements[0])["customer_id"], "c3");
}

TEST_F(Smtp, AWrongPasswordIsLoggedClearlyAndRetriedWithoutABusyLoop) {
  SmtpPeer peer({"--auth", "shop:s3cret"});
  std::ofstream(dir_ / "smtp.password") << "not-the-password\n";
  UseSmtp(peer, ", username: shop, password_file: " + (dir_ / "smtp.password").string());
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  std::this_thread::sleep_for(std::chrono::seconds(6));
  std::string log = DaemonLog();
  EXPECT_NE(log.find("login as 'shop' refused: 535"), std::string::npos) << log;
  EXPECT_EQ(log.find("not-the-password"), std::string::npos);
  // Backoff, not a busy loop: a handful of logins in six seconds.
  EXPECT_GE(peer.Count("AUTH"), 1);
  EXPECT_LE(peer.Count("AUTH"), 5) << peer.Log();
  EXPECT_TRUE(peer.Messages().empty());
  // The mail is kept for a retry, not thrown away: in the retry set, or back in the outbox
  // (read or not yet). Counted in one script, so a move between the two is seen once.
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
  Reply kept = Cmd({"EVAL",
                    "local n = redis.call('ZCARD', KEYS[1]) "
                    "local g = redis.call('XINFO', 'GROUPS', KEYS[2])[1] "
                    "for i = 1, #g, 2 do "
                    "  if (g[i] == 'pending' or g[i] == 'lag') and type(g[i + 1]) == 'number' "
                    "  then n = n + g[i + 1] end "
                    "end return n",
                    "2", "journeyd:{0}:retry", "journeyd:{0}:outbox"});
  EXPECT_EQ(kept.integer, 1) << kept.str;
}

// A relay that refuses connections is the relay's state, not the mail's: the mail waiting on it
// burns no attempt (nothing in the retry set, whose first delay is a minute here) and goes out
// within a few seconds of the relay answering.
TEST_F(Smtp, ARelayRefusingConnectionsForTwoSecondsDeliversSoonAfterAndCountsNoAttempt) {
  auto peer = std::make_unique<SmtpPeer>();
  peer->Stop();  // the port refuses connections
  UseSmtp(*peer, "", "1m");
  StartAndWaitReady(1);
  Publish({"type", "signup", "customer_id", "c1", "profile", testing::kAnna});
  ASSERT_TRUE(WaitFor([&] {
    return DaemonLog().find("the relay cannot be reached") != std::string::npos;
  })) << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  peer->Start();
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return peer->Messages().size() >= 1; }, std::chrono::seconds(20)))
      << DaemonLog();
  const auto took = std::chrono::steady_clock::now() - back;
  EXPECT_LT(took, std::chrono::seconds(5)) << DaemonLog();
  EXPECT_EQ(peer->Messages().size(), 1u);
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:retry"}).integer, 0) << DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  })) << DaemonLog();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
}

// At most this many mails are sent again when the daemon dies or freezes while delivering over 4
// connections: one on each connection with its DATA out, and one on each whose 250 came in
// just before and is being settled.
constexpr int kInFlight = 2 * 4;

// kill -9 while mail flows steadily: each mail is settled as its 250 arrives, so a restart sends
// again at most the mails in flight on the open connections when the daemon died, not the rest
// of a batch.
TEST_F(Smtp, KilledWhileDeliveringSendsAgainOnlyTheMailsInFlight) {
  SmtpPeer peer({"--data-delay", "0.02"});
  UseSmtp(peer);
  StartAndWaitReady(1);
  const int kCustomers = 600;
  PublishSignups(kCustomers, "k");
  std::vector<int> extra_per_kill;
  for (int kill = 1; kill <= 3; ++kill) {
    const size_t before = Copies(peer).size();
    ASSERT_TRUE(WaitFor([&] { return Copies(peer).size() >= before + 80; })) << DaemonLog();
    const int extra_before = Extra(Copies(peer));
    EXPECT_EQ(Stop(SIGKILL), SIGKILL);
    Start();
    // Long enough for the restarted daemon to send its pending mails again.
    ASSERT_TRUE(WaitFor([&] { return Copies(peer).size() >= before + 120; })) << DaemonLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    extra_per_kill.push_back(Extra(Copies(peer)) - extra_before);
  }
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(Copies(peer).size()) >= kCustomers; },
                      std::chrono::seconds(60)))
      << DaemonLog();
  for (size_t i = 0; i < extra_per_kill.size(); ++i) {
    std::printf("kill %zu: %d mail(s) sent a second time\n", i + 1, extra_per_kill[i]);
    EXPECT_LE(extra_per_kill[i], kInFlight) << "kill " << i + 1;
  }
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:outbox", "senders"}).elements[0].integer == 0;
  })) << DaemonLog();
  EXPECT_EQ(Len("journeyd:{0}:dead"), 0);
}

// The owner frozen (SIGSTOP) past its lease while a second instance takes over, then woken: it
// commits nothing (AStaleOwnerCannotCommit) and sends nothing more, so the only mails sent
// twice are those in flight when it froze.
TEST_F(Smtp, AnOwnerFrozenPastItsLeaseSendsNothingMoreOnceWoken) {
  SmtpPeer peer({"--data-delay", "0.02"});
  UseSmtp(peer);
  WriteConfig(1);
  int second_admin = testing::FreeLoopbackPort();
  WriteConfig(1, "second.yaml", second_admin);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  second_pid_ = Spawn("second.yaml");
  const int kCustomers = 500;
  PublishSignups(kCustomers, "z");
  ASSERT_TRUE(WaitFor([&] { return Copies(peer).size() >= 50; })) << DaemonLog();
  ::kill(pid_, SIGSTOP);
  // The lease is 2 s: the second instance takes over and sends meanwhile.
  const size_t frozen_at = Copies(peer).size();
  ASSERT_TRUE(WaitFor([&] { return Copies(peer).size() >= frozen_at + 50; }))
      << DaemonLog() << peer.Log();
  ::kill(pid_, SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(Copies(peer).size()) >= kCustomers; },
                      std::chrono::seconds(60)))
      << DaemonLog();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto copies = Copies(peer);
  EXPECT_EQ(static_cast<int>(copies.size()), kCustomers);
  std::printf("mails sent twice after the freeze: %d\n", Extra(copies));
  EXPECT_LE(Extra(copies), kInFlight) << DaemonLog();
  EXPECT_NE(DaemonLog().find("not offered: the lease ran out"), std::string::npos) << DaemonLog();
}

}  // namespace
}  // namespace journeyd
