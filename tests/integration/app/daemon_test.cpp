// The real journeyd binary against a real redis-server: mails written, bad input dead-lettered,
// nothing lost or doubled when the daemon is killed mid-work.
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "daemon_fixture.h"

namespace journeyd {
namespace {

using store::Reply;
using testing::Daemon;
using testing::kAnna;
namespace fs = std::filesystem;

TEST_F(Daemon, SignupGetsTheThreeWelcomeMailsOnScaledTime) {
  WriteConfig(86400);  // a day per second
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }))
      << HttpGet("/readyz");
  EXPECT_NE(HttpGet("/healthz").find(" 200 "), std::string::npos);
  Publish({"type", "signup", "customer_id", "c42", "profile", kAnna});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 3; }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::multiset<std::string> steps;
  for (const auto& m : Mails()) {
    std::string mail = Read(m);
    EXPECT_EQ(Header(mail, "X-Journeyd-Flow"), "welcome");
    EXPECT_EQ(Header(mail, "To"), "anna@example.com");
    EXPECT_NE(Header(mail, "List-Unsubscribe").find("/unsubscribe?token="), std::string::npos);
    steps.insert(Header(mail, "X-Journeyd-Step"));
  }
  EXPECT_EQ(steps, (std::multiset<std::string>{"loyalty_intro", "thanks", "tips"}));
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Daemon, BadInputGoesToTheDeadStreamAndTheRestIsProcessed) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  std::map<std::string, std::string> expect;  // entry id → expected error text
  expect[Publish({"customer_id", "c1"})] = "type: is missing";
  expect[Publish({"type", "signup"})] = "customer_id: is missing";
  expect[Publish({"type", "signup", "customer_id", "c1", "data", "{nope"})] =
      "data: is not valid JSON";
  expect[Publish({"type", "signup", "customer_id", "c1", "data", "[1,2]"})] =
      "data: is not a JSON object (got an array)";
  expect[Publish({"type", "signup", "customer_id", "c1", "profile", R"({"email":42})"})] =
      "profile.email";
  expect[Publish({"type", "signup", "customer_id", "c1", "data", std::string(1 << 20, 'x')})] =
      "data: is 1048576 bytes";
  expect[Publish({"type", "signup", "customer_id", "c\xff\xfe"})] =
      "customer_id: is not valid UTF-8";
  expect[Publish({"type", "signup", "customer_id", "c1", "ts", "3000-01-01T00:00:00Z"})] =
      "in the future";
  expect[Publish({"type", "signup", "customer_id", "c\n1"})] = "customer_id: contains control";
  Publish({"type", "review_left", "customer_id", "c7"});  // unknown type: valid, triggers nothing
  Publish({"type", "signup", "customer_id", "c8", "profile", kAnna});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 1; }));
  ASSERT_TRUE(WaitFor([&] { return Cmd({"XLEN", "journeyd:{0}:dead"}).integer >= 9; }));
  Reply dead = Cmd({"XRANGE", "journeyd:{0}:dead", "-", "+"});
  ASSERT_EQ(dead.elements.size(), 9u);
  for (const Reply& e : dead.elements) {
    auto f = Fields(e);
    ASSERT_TRUE(expect.count(f["source_id"])) << f["source_id"];
    EXPECT_NE(f["error"].find(expect[f["source_id"]]), std::string::npos)
        << f["error"] << " vs " << expect[f["source_id"]];
  }
  // Nothing stays pending, and the daemon is alive.
  Reply pending = Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"});
  EXPECT_EQ(pending.elements[0].integer, 0);
  EXPECT_NE(HttpGet("/healthz").find(" 200 "), std::string::npos);
  // The unknown event type was stored on the customer.
  EXPECT_EQ(Cmd({"EXISTS", "journeyd:{0}:c:c7"}).integer, 1);
}

TEST_F(Daemon, KilledThreeTimesMidWorkLosesAndDoublesNothing) {
  WriteConfig(1);
  const int kCustomers = 3000;
  // Publish in one pipeline-ish burst while the daemon starts and gets killed.
  Start();
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "k" + std::to_string(i), "profile", kAnna});
  }
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 100 * round));
    Stop(SIGKILL);
    Start();
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers;
      },
      std::chrono::seconds(60)));
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"}).elements[0].integer == 0;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Reply out = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
  std::set<std::string> jobs;
  std::set<std::string> customers;
  for (const Reply& e : out.elements) {
    const auto& f = e.elements[1].elements;
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      if (f[i].str == "job_id") {
        EXPECT_TRUE(jobs.insert(f[i + 1].str).second) << f[i + 1].str;
      }
      if (f[i].str == "customer_id") customers.insert(f[i + 1].str);
    }
  }
  EXPECT_EQ(out.elements.size(), static_cast<size_t>(kCustomers));
  EXPECT_EQ(customers.size(), static_cast<size_t>(kCustomers));
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= static_cast<size_t>(kCustomers); },
                      std::chrono::seconds(60)));
  EXPECT_EQ(Mails().size(), static_cast<size_t>(kCustomers));
}

TEST_F(Daemon, FirstPurchaseGetsTheFiveWinbackMailsOnTheirDays) {
  const double kScale = 2'880'000;  // a month per second
  WriteConfig(kScale);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const int64_t t0 = VirtualNow(kScale);
  Publish({"type", "purchase", "customer_id", "w1", "event_id", "o1", "data", R"({"total":42.5})",
           "profile", kAnna});
  // The journey's entry on the daemon's own clock, as its state holds it: every wait counts
  // from there (each from when the one before was due, so a late mail does not push the next).
  std::optional<int64_t> entered;
  ASSERT_TRUE(WaitFor([&] { return (entered = JourneyEntered("w1", "winback")).has_value(); }));
  EXPECT_GE(*entered, t0);
  ASSERT_TRUE(WaitFor(
      [&] {
        int n = 0;
        for (const auto& m : Mails()) n += Header(Read(m), "X-Journeyd-Flow") == "winback";
        return n >= 5;
      },
      std::chrono::seconds(60)));
  // In order, each once, none before its day (180, 210, 224, 254, 268 days from the entry, to
  // the millisecond of the daemon's clock). How late one is depends on the machine's load (at
  // this speed a millisecond is 48 minutes): two seconds is a deadline, not a measure.
  const std::map<std::string, int64_t> kDays = {
      {"mail1", 180}, {"mail2", 210}, {"mail3", 224}, {"mail4", 254}, {"mail5", 268}};
  const auto kDeadline = static_cast<int64_t>(2000 * kScale);
  Reply out = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
  std::vector<std::string> steps;
  for (const Reply& e : out.elements) {
    auto f = JobFields(e);
    if (f["flow"] != "winback") continue;
    steps.push_back(f["step"]);
    auto at = ParseTimestamp(f["at"]);
    ASSERT_TRUE(at) << f["at"];
    ASSERT_TRUE(kDays.count(f["step"])) << f["step"];
    const int64_t due = *entered + kDays.at(f["step"]) * 86'400'000;
    EXPECT_GE(ToUnixMillis(*at), due) << f["step"] << " early by " << due - ToUnixMillis(*at);
    EXPECT_LE(ToUnixMillis(*at), due + kDeadline) << f["step"];
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"mail1", "mail2", "mail3", "mail4", "mail5"}));
}

TEST_F(Daemon, ASecondInstanceTakesOverAKilledOwnerAfterTheLease) {
  WriteConfig(1);
  int second_admin = testing::FreeLoopbackPort();
  WriteConfig(1, "second.yaml", second_admin);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  second_pid_ = Spawn("second.yaml");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string first_token = Cmd({"GET", "journeyd:{0}:lease"}).str;  // the owner's
  ASSERT_FALSE(first_token.empty());
  const int kCustomers = 2000;
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "f" + std::to_string(i), "profile", kAnna});
    if (i == kCustomers / 2) Stop(SIGKILL);  // the owner dies mid-stream
  }
  // The second instance owns the partition once the dead owner's lease (2 s) has run out: it
  // holds the lease under a newer fencing token. How soon is the machine's business; the
  // deadline is generous.
  int old_port = admin_port_;
  admin_port_ = second_admin;
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; },
                      std::chrono::seconds(60)));
  admin_port_ = old_port;
  const std::string lease = Cmd({"GET", "journeyd:{0}:lease"}).str;
  ASSERT_FALSE(lease.empty());
  EXPECT_GT(std::stoll(lease), std::stoll(first_token));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers;
      },
      std::chrono::seconds(60)));
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"}).elements[0].integer == 0;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ExpectOneMailPerCustomer(kCustomers);
}

TEST_F(Daemon, RedisRestartedUnderTheDaemonLosesNothing) {
  // A Redis with an append-only file, restarted while the daemon works.
  testing::RedisServer aof(/*append_only=*/true);
  std::ofstream(dir_ / "aof.yaml")
      << "redis: { port: " << aof.port() << ", lease_ms: 2000 }\n"
      << "flows: { dir: " << JOURNEYD_SOURCE_DIR << "/flows }\n"
      << "smtp: { mode: file, dir: " << (dir_ / "mail").string() << " }\n"
      << "admin: { listen: \"127.0.0.1:" << admin_port_ << "\" }\n"
      << "log: { level: warn }\n";
  store::RedisOptions o;
  o.port = aof.port();
  std::string err;
  client_ = store::SyncRedis::Connect(o, &err);
  ASSERT_TRUE(client_) << err;
  Start("aof.yaml");
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const int kCustomers = 1500;
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "r" + std::to_string(i), "profile", kAnna});
  }
  aof.Stop(SIGKILL);  // appendfsync always: every acknowledged write is on disk
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  aof.Start();
  client_ = store::SyncRedis::Connect(o, &err);
  ASSERT_TRUE(client_) << err;
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers;
      },
      std::chrono::seconds(60)));
  ASSERT_TRUE(WaitFor([&] {
    return Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"}).elements[0].integer == 0;
  }));
  ExpectOneMailPerCustomer(kCustomers);
  EXPECT_NE(HttpGet("/healthz").find(" 200 "), std::string::npos);
}

TEST_F(Daemon, AStaleOwnerCannotCommit) {
  WriteConfig(1);
  int second_admin = testing::FreeLoopbackPort();
  WriteConfig(1, "second.yaml", second_admin);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  second_pid_ = Spawn("second.yaml");
  // Freeze the owner past its lease: the second instance takes the partition over.
  ::kill(pid_, SIGSTOP);
  int old_port = admin_port_;
  admin_port_ = second_admin;
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; },
                      std::chrono::seconds(10)));
  admin_port_ = old_port;
  const int kCustomers = 500;
  for (int i = 0; i < kCustomers; ++i) {
    Publish({"type", "signup", "customer_id", "s" + std::to_string(i), "profile", kAnna});
  }
  // The stale owner wakes up with a batch possibly in hand: its commit must be refused.
  ::kill(pid_, SIGCONT);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers;
      },
      std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ExpectOneMailPerCustomer(kCustomers);
}

TEST_F(Daemon, PurchaseOnDay100StopsWinbackBeforeMailOneAndOnDay195AfterIt) {
  const double kScale = 864000;  // ten days per second
  WriteConfig(kScale);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  // Virtual time as the daemon sees it (its anchor is in Redis).
  auto virtual_now = [&] { return VirtualNow(kScale); };
  auto sleep_until_virtual = [&](int64_t t) {
    while (virtual_now() < t) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  };
  const int64_t day = 86'400'000;
  int64_t t0 = virtual_now();
  Publish({"type", "purchase", "customer_id", "early", "event_id", "e1", "profile", kAnna});
  Publish({"type", "purchase", "customer_id", "late", "event_id", "l1", "profile", kAnna});
  sleep_until_virtual(t0 + 100 * day);
  Publish({"type", "purchase", "customer_id", "early", "event_id", "e2"});
  sleep_until_virtual(t0 + 195 * day);
  Publish({"type", "purchase", "customer_id", "late", "event_id", "l2"});
  sleep_until_virtual(t0 + 300 * day);  // past mail 5's day (268)
  std::map<std::string, std::set<std::string>> winback;
  Reply out = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
  for (const Reply& e : out.elements) {
    auto f = JobFields(e);
    if (f["flow"] == "winback") winback[f["customer_id"]].insert(f["step"]);
  }
  EXPECT_TRUE(winback["early"].empty());
  EXPECT_EQ(winback["late"], (std::set<std::string>{"mail1"}));
}

TEST_F(Daemon, JourneyctlPublishesAndInspects) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  std::string ctl =
      std::string(JOURNEYD_BINARY_DIR) + "/src/journeyctl -c " + (dir_ / "journeyd.yaml").string();
  std::string out = (dir_ / "ctl.out").string();
  ASSERT_EQ(std::system((ctl +
                         " publish --type signup --customer p1 --profile "
                         "'{\"email\":\"p@example.com\",\"email_opt_in\":true}' > " +
                         out)
                            .c_str()),
            0);
  EXPECT_EQ(Read(out).rfind("journeyd:{0}:events ", 0), 0u) << Read(out);
  // A bad event is refused before it reaches Redis, naming the field.
  EXPECT_NE(std::system((ctl +
                         " publish --type signup --customer p2 --profile "
                         "'{\"email\":42}' 2> " +
                         out)
                            .c_str()),
            0);
  EXPECT_NE(Read(out).find("profile.email"), std::string::npos) << Read(out);
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 1; }));
  ASSERT_EQ(std::system((ctl + " inspect p1 > " + out).c_str()), 0);
  std::string state = Read(out);
  EXPECT_NE(state.find("\"flow\": \"welcome\""), std::string::npos) << state;
  EXPECT_NE(state.find("\"next_wake\""), std::string::npos) << state;
  EXPECT_NE(state.find("p@example.com"), std::string::npos) << state;
}

// Four partitions on four worker threads, their outbox senders on the main thread: every
// customer's mail once, while reloads swap the flow set and /metrics is read.
TEST_F(Daemon, FourPartitionsOnTheirThreadsSendEveryMailOnce) {
  partitions_ = 4;
  worker_threads_ = 4;
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  constexpr int kCustomers = 200;
  for (int i = 0; i < kCustomers; ++i) {
    const std::string id = "t" + std::to_string(i);
    Publish({"type", "signup", "customer_id", id, "profile",
             R"({"email":")" + id + R"(@example.com","email_opt_in":true})"});
    if (i % 40 == 0) {
      ::kill(pid_, SIGHUP);
      EXPECT_NE(HttpGet("/metrics").find("journeyd_build_info"), std::string::npos);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= kCustomers; }, std::chrono::seconds(60)))
      << Mails().size() << "\n"
      << Read(dir_ / "journeyd.log");
  std::set<std::string> jobs, customers;
  for (int p = 0; p < partitions_; ++p) {
    Reply out = Cmd({"XRANGE", store::Keys("journeyd", p).outbox(), "-", "+"});
    EXPECT_GT(out.elements.size(), 0u) << "partition " << p;
    for (const Reply& e : out.elements) {
      auto f = Fields(e);
      EXPECT_TRUE(jobs.insert(f["job_id"]).second) << "job twice: " << f["job_id"];
      customers.insert(f["customer_id"]);
    }
  }
  EXPECT_EQ(jobs.size(), static_cast<size_t>(kCustomers));
  EXPECT_EQ(customers.size(), static_cast<size_t>(kCustomers));
  EXPECT_NE(
      HttpGet("/metrics").find(R"(journeyd_events_total{type="signup",outcome="processed"} 200)"),
      std::string::npos)
      << HttpGet("/metrics");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Mails().size(), static_cast<size_t>(kCustomers));
  EXPECT_EQ(Stop(SIGTERM), 0);
}

// A thread's nice value, from /proc/<pid>/task/<tid>/stat (its 19th field).
std::optional<int> NiceOf(pid_t pid, const std::string& tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 19 && rest >> field; ++i) {
    if (i == 19) return std::atoi(field.c_str());
  }
  return std::nullopt;
}

// The main thread (outbox senders, admin) runs below the partition workers, which keep the
// priority journeyd was started with.
TEST_F(Daemon, MailDeliveryRunsBelowThePartitionWorkers) {
  partitions_ = 2;
  worker_threads_ = 2;
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  errno = 0;
  const int started = ::getpriority(PRIO_PROCESS, 0);  // the daemon inherits ours
  ASSERT_EQ(errno, 0);
  if (started >= 19) GTEST_SKIP() << "already at the lowest priority";
  std::map<std::string, int> nice;  // tid → nice
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task")) {
    const std::string tid = t.path().filename().string();
    if (auto n = NiceOf(pid_, tid)) nice[tid] = *n;
  }
  ASSERT_TRUE(nice.count(std::to_string(pid_)));
  EXPECT_EQ(nice[std::to_string(pid_)], std::min(19, started + 10));
  int at_start = 0;
  for (const auto& [tid, n] : nice) at_start += n == started ? 1 : 0;
  // The workers: one thread per partition here (redis.worker_threads: 2).
  EXPECT_GE(at_start, 2) << "threads at nice " << started << ": " << at_start;
  EXPECT_EQ(Stop(SIGTERM), 0);
}

// A send job in the outbox holds the template's values, not the mail: the sender renders it.
TEST_F(Daemon, SendJobsCarryTheirValuesAndTheSenderRendersThem) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  Publish({"type", "signup", "customer_id", "r1", "profile",
           R"({"email":"r@example.com","first_name":"Zoë \"Z\" <b>","email_opt_in":true})"});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 1; })) << Read(dir_ / "journeyd.log");
  Reply out = Cmd({"XRANGE", "journeyd:{0}:outbox", "-", "+"});
  ASSERT_EQ(out.elements.size(), 1u);
  auto f = Fields(out.elements[0]);
  EXPECT_EQ(f.size(), 6u);  // job_id, customer_id, flow, to, vars, job (store/outbox.h)
  EXPECT_EQ(f["customer_id"], "r1");
  EXPECT_EQ(f["to"], "r@example.com");
  EXPECT_NE(f["job"].find(R"("step":"thanks","run":1,)"), std::string::npos) << f["job"];
  EXPECT_NE(f["job"].find(R"("template":"welcome_thanks")"), std::string::npos) << f["job"];
  EXPECT_NE(f["vars"].find(R"("customer.first_name":"Zoë \"Z\" <b>")"), std::string::npos)
      << f["vars"];
  EXPECT_EQ(f.count("text"), 0u);
  EXPECT_EQ(f.count("html"), 0u);
  size_t bytes = 0;
  for (const auto& [k, v] : f) bytes += k.size() + v.size();
  EXPECT_LT(bytes, 600u);  // a few hundred bytes, where the mail is several kB
  std::string mail = Read(Mails()[0]);
  EXPECT_EQ(Header(mail, "X-Journeyd-Step"), "thanks");
  // The name in the text part (quoted-printable: ë is =C3=AB).
  EXPECT_NE(mail.find(R"(Hi Zo=C3=AB "Z" <b>,)"), std::string::npos) << mail;
  EXPECT_GT(mail.size(), 2000u);
}

// An entry that carries its mail (as earlier versions wrote them) is sent as it is; one whose
// template is no longer loaded goes to the dead stream with the reason. Both have the fields
// of the versions before the `job` field.
TEST_F(Daemon, OutboxEntriesWithTheirMailOrAGoneTemplate) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  auto add_job = [&](const std::string& n, const std::string& tmpl,
                     const std::vector<std::string>& mail) {
    std::vector<std::string> cmd = {"XADD",
                                    "journeyd:{0}:outbox",
                                    "*",
                                    "job_id",
                                    "00000000000000000000000000000a0" + n,
                                    "customer_id",
                                    "o" + n,
                                    "flow",
                                    "welcome",
                                    "step",
                                    "thanks",
                                    "run",
                                    "1",
                                    "marketing",
                                    "0",
                                    "template",
                                    tmpl,
                                    "to",
                                    "o" + n + "@example.com",
                                    "unsubscribe_url",
                                    "",
                                    "at",
                                    "2026-01-01T10:00:00Z"};
    cmd.insert(cmd.end(), mail.begin(), mail.end());
    Cmd(cmd);
  };
  add_job("1", "welcome_thanks",
          {"subject", "Kept as written", "text", "The body written before.", "html", ""});
  add_job("2", "no_such_template", {"locale", "", "vars", "{}"});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 1; })) << Read(dir_ / "journeyd.log");
  std::string mail = Read(Mails()[0]);
  EXPECT_EQ(Header(mail, "Subject"), "Kept as written");
  EXPECT_NE(mail.find("The body written before."), std::string::npos) << mail;
  ASSERT_TRUE(WaitFor([&] { return Cmd({"XLEN", "journeyd:{0}:dead"}).integer >= 1; }));
  Reply dead = Cmd({"XRANGE", "journeyd:{0}:dead", "-", "+"});
  auto f = Fields(dead.elements[0]);
  EXPECT_EQ(f["customer_id"], "o2");
  EXPECT_NE(f["error"].find("template 'no_such_template' is not loaded"), std::string::npos)
      << f["error"];
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Mails().size(), 1u);
}

// An entry of the six fields whose `job` field cannot be read goes to the dead stream with
// the reason, and the next one is sent.
TEST_F(Daemon, AnOutboxEntryWithABadJobFieldIsDeadLettered) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  auto add_job = [&](const std::string& n, const std::string& job) {
    Cmd({"XADD", "journeyd:{0}:outbox", "*", "job_id", "00000000000000000000000000000b0" + n,
         "customer_id", "j" + n, "flow", "welcome", "to", "j" + n + "@example.com", "vars",
         R"({"customer.first_name":"Jo"})", "job", job});
  };
  add_job("1", R"({"step":"thanks","run":1,"marketing":false,"template":"welcome_thanks"})");
  add_job("2", R"({"step":"thanks","run":1,"marketing":false,"template":"welcome_thanks",)"
               R"("at":"2026-01-01T10:00:00Z"})");
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 1; })) << Read(dir_ / "journeyd.log");
  EXPECT_NE(Read(Mails()[0]).find("Hi Jo,"), std::string::npos) << Read(Mails()[0]);
  ASSERT_TRUE(WaitFor([&] { return Cmd({"XLEN", "journeyd:{0}:dead"}).integer >= 1; }));
  auto f = Fields(Cmd({"XRANGE", "journeyd:{0}:dead", "-", "+"}).elements[0]);
  EXPECT_EQ(f["customer_id"], "j1");
  EXPECT_NE(f["error"].find("the job field has no at"), std::string::npos) << f["error"];
  EXPECT_NE(f["job"].find("welcome_thanks"), std::string::npos) << f["job"];
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Mails().size(), 1u);
}

// A marketing job is sent with an unsubscribe link signed when it goes out; one that an earlier
// version queued with its link keeps that link.
TEST_F(Daemon, TheSenderSignsTheUnsubscribeLinkUnlessTheJobCarriesOne) {
  WriteConfig(1);
  Start();
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const std::string job =
      R"({"step":"thanks","run":1,"marketing":true,"template":"welcome_thanks",)"
      R"("at":"2026-01-01T10:00:00Z")";
  Cmd({"XADD", "journeyd:{0}:outbox", "*", "job_id", "00000000000000000000000000000c01",
       "customer_id", "u1", "flow", "welcome", "to", "u1@example.com", "vars", "{}", "job",
       job + "}"});
  Cmd({"XADD", "journeyd:{0}:outbox", "*", "job_id", "00000000000000000000000000000c02",
       "customer_id", "u2", "flow", "welcome", "to", "u2@example.com", "vars", "{}", "job",
       job + R"(,"unsubscribe_url":"https://shop.example/u?token=kept"})"});
  ASSERT_TRUE(WaitFor([&] { return Mails().size() >= 2; })) << Read(dir_ / "journeyd.log");
  std::map<std::string, std::string> links;  // To → List-Unsubscribe
  for (const auto& m : Mails()) {
    const std::string mail = Read(m);
    links[Header(mail, "To")] = Header(mail, "List-Unsubscribe");
  }
  // base64url("u1") and base64url("welcome"), then the MAC.
  EXPECT_NE(links["u1@example.com"].find("/unsubscribe?token=dTE.d2VsY29tZQ."), std::string::npos)
      << links["u1@example.com"];
  EXPECT_EQ(links["u2@example.com"], "<https://shop.example/u?token=kept>");
}

}  // namespace
}  // namespace journeyd
