// Timer firing against the real daemon: more customers due at the same moment than one batch
// holds are all fired without waiting for another event to wake the partition.
#include "daemon_fixture.h"

namespace journeyd {
namespace {

using testing::Daemon;
namespace fs = std::filesystem;

class Timers : public Daemon {
 protected:
  // Customers with a wake time: in the timers set or in a timing-wheel bucket.
  int64_t Waiting() {
    int64_t n = Cmd({"ZCARD", "journeyd:{0}:timers"}).integer;
    for (const auto& b : Cmd({"ZRANGE", "journeyd:{0}:wheel", "0", "-1"}).elements) {
      n += Cmd({"LLEN", "journeyd:{0}:wheel:" + b.str}).integer;
    }
    return n;
  }
  // The events group's last delivered entry and how many of its entries wait for their commit.
  std::pair<std::string, int64_t> Delivered() {
    for (const auto& g : Cmd({"XINFO", "GROUPS", "journeyd:{0}:events"}).elements) {
      std::string last;
      int64_t pending = -1;
      for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
        if (g.elements[i].str == "last-delivered-id") last = g.elements[i + 1].str;
        if (g.elements[i].str == "pending") pending = g.elements[i + 1].integer;
      }
      return {last, pending};
    }
    return {"", -1};
  }
  // A flow a tick starts and a purchase ends, with `steps`; by default a 2 s wait, then a mail.
  fs::path TickFlow(const std::string& steps = "  - wait: 2s\n  - send: note\n") {
    fs::path flows = dir_ / "flows";
    fs::create_directories(flows / "templates");
    std::ofstream(flows / "tick.yaml") << "flow: tick\nname: Tick\ncategory: transactional\n"
                                          "trigger: { event: tick }\nexit_on:\n"
                                          "  - event: purchase\nsteps:\n"
                                       << steps;
    std::ofstream(flows / "templates" / "note.yaml") << "subject: Note\ntext: hello\n";
    return flows;
  }
  static std::string MillisAgo(int64_t ms) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return std::to_string(now.count() - ms);
  }
  // Starts the daemon on `flows`, mail to files; `more`: further configuration.
  void StartWith(const fs::path& flows, const std::string& more = "") {
    std::ofstream(dir_ / "journeyd.yaml")
        << "redis: { port: " << redis_.port() << " }\n"
        << "flows: { dir: " << flows.string() << " }\n"
        << "smtp: { mode: file, dir: " << (dir_ / "mail").string() << " }\n"
        << "admin: { listen: \"127.0.0.1:" << admin_port_ << "\" }\n"
        << more << "log: { level: warn }\n";
    Start();
  }
  // Starts the daemon at clock.scale 1000 on a flow whose first wait is an hour, has the
  // customers t0 ... t<n-1> tick, and stops it once every wake waits in a timing-wheel
  // bucket's list; returns the buckets' starts.
  std::vector<std::string> WakesInTheWheel(int customers) {
    StartWith(TickFlow("  - wait: 1h\n  - send: note\n  - wait: 30d\n  - send: note\n"),
              "clock: { scale: 1000 }\n");
    EXPECT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
    EXPECT_TRUE(TickAll(customers));
    EXPECT_TRUE(WaitFor([&] { return Waiting() == customers; }));
    EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:timers"}).integer, 0) << "an hour on: in the wheel";
    EXPECT_EQ(Stop(SIGTERM), 0);
    std::vector<std::string> buckets;
    for (const auto& b : Cmd({"ZRANGE", "journeyd:{0}:wheel", "0", "-1"}).elements) {
      buckets.push_back(b.str);
    }
    return buckets;
  }
  // A tick from each of the customers t0 ... t<n-1>, with an address.
  bool TickAll(int customers) {
    std::vector<std::vector<std::string>> cmds;
    for (int i = 0; i < customers; ++i) {
      cmds.push_back({"XADD", "journeyd:{0}:events", "*", "type", "tick", "customer_id",
                      "t" + std::to_string(i), "profile", R"({"email":"t@example.com"})"});
    }
    std::string err;
    const bool ok = client_->Pipeline(cmds, &err).has_value();
    EXPECT_TRUE(ok) << err;
    return ok;
  }
};

TEST_F(Timers, MoreDueAtOnceThanOneBatchAllFire) {
  fs::path flows = dir_ / "flows";
  fs::create_directories(flows / "templates");
  std::ofstream(flows / "tick.yaml") << "flow: tick\nname: Tick\ncategory: transactional\n"
                                        "trigger: { event: tick }\nsteps:\n  - wait: 3s\n"
                                        "  - send: note\n  - wait: 30d\n  - send: note\n";
  std::ofstream(flows / "templates" / "note.yaml") << "subject: Note\ntext: hello\n";
  StartWith(flows);
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const int kCustomers = 1300;  // batches hold 500
  ASSERT_TRUE(TickAll(kCustomers));
  // Everyone waiting; the daemon stops before they are due and starts again after, so it
  // finds them all due at once (as after downtime). Each then waits a month, so a fired batch
  // moves its wake times far ahead of the ones still due.
  ASSERT_TRUE(WaitFor([&] { return Waiting() == kCustomers; }));
  EXPECT_EQ(Stop(SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  Start();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers;
      },
      std::chrono::seconds(30)))
      << Cmd({"XLEN", "journeyd:{0}:outbox"}).integer << " of " << kCustomers << " mails queued";
  // Each is waiting for its second mail, a month on: in the timing wheel, not the timers set.
  EXPECT_EQ(Waiting(), kCustomers);
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:timers"}).integer, 0);
  ExpectOneMailPerCustomer(kCustomers);
}

// The daemon was down when a wait_for's timeout came due; the awaited purchase had happened
// before that and is read together with the due timer: the purchase wins, no timeout mail.
TEST_F(Timers, AnEventThatHappenedBeforeTheDueTimerIsAppliedFirst) {
  fs::path flows = dir_ / "flows";
  fs::create_directories(flows / "templates");
  std::ofstream(flows / "nudge.yaml")
      << "flow: nudge\nname: Nudge\ncategory: transactional\ntrigger: { event: tick }\n"
         "steps:\n  - wait_for:\n      event: purchase\n      timeout: 2s\n"
         "    on_event: []\n    on_timeout:\n      - send: note\n";
  std::ofstream(flows / "templates" / "note.yaml") << "subject: Note\ntext: hello\n";
  StartWith(flows);
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const std::string id = Cmd({"XADD", "journeyd:{0}:events", "*", "type", "tick", "customer_id",
                              "c1", "profile", R"({"email":"c1@example.com"})"})
                             .str;
  ASSERT_TRUE(WaitFor([&] { return Waiting() == 1; }));
  EXPECT_EQ(Stop(SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the timeout is due meanwhile
  const std::string bought = std::to_string(std::atoll(id.c_str()) + 1000);  // before it
  Cmd({"XADD", "journeyd:{0}:events", "*", "type", "purchase", "customer_id", "c1", "ts", bought,
       "data", R"({"total":10})"});
  Start();
  ASSERT_TRUE(WaitFor([&] {
    return Waiting() == 0 &&
           Cmd({"XPENDING", "journeyd:{0}:events", "journeyd"}).elements.at(0).integer == 0;
  }));
  EXPECT_EQ(Cmd({"XLEN", "journeyd:{0}:outbox"}).integer, 0);
}

// A trigger read 5 s after it happened: its 2 s wait is over, so its mail is queued in the
// commit that takes the event in, not a timer round trip later.
TEST_F(Timers, ATriggerReadAfterItsWaitEndedIsMailedInTheCommitThatTakesItIn) {
  StartWith(TickFlow());
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  const std::string id =
      Cmd({"XADD", "journeyd:{0}:events", "*", "type", "tick", "customer_id", "c1", "ts",
           MillisAgo(5000), "profile", R"({"email":"c1@example.com"})"})
          .str;
  // Polled as fast as Redis answers: the first moment the event is seen committed, its mail
  // must be in the outbox already.
  int64_t mails_at_commit = -1;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    auto [last, pending] = Delivered();
    if (last == id && pending == 0) {
      mails_at_commit = Cmd({"XLEN", "journeyd:{0}:outbox"}).integer;
      break;
    }
  }
  EXPECT_EQ(mails_at_commit, 1);
  EXPECT_EQ(Waiting(), 0);
  // Counted as a timer, about 3 s late (5 s ago, a 2 s wait).
  const std::string metrics = HttpGet("/metrics");
  auto value = [&](const std::string& name) {
    auto at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::atof(metrics.c_str() + at + name.size() + 2);
  };
  EXPECT_EQ(value("journeyd_timer_lateness_seconds_count"), 1.0) << metrics;
  EXPECT_GT(value("journeyd_timer_lateness_seconds_sum"), 2.5);
  EXPECT_LT(value("journeyd_timer_lateness_seconds_sum"), 10.0);
}

// The daemon was down while a trigger's wait ran out and the customer then bought: both are
// read in one batch, the purchase ends the journey before the over wait can send.
TEST_F(Timers, ALateTriggerAndThePurchaseAfterItInOneBatchSendNothing) {
  StartWith(TickFlow());
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  EXPECT_EQ(Stop(SIGTERM), 0);
  Cmd({"XADD", "journeyd:{0}:events", "*", "type", "tick", "customer_id", "c1", "ts",
       MillisAgo(5000), "profile", R"({"email":"c1@example.com"})"});
  const std::string bought =
      Cmd({"XADD", "journeyd:{0}:events", "*", "type", "purchase", "customer_id", "c1", "ts",
           MillisAgo(4000), "data", R"({"total":10})"})
          .str;
  Start();
  ASSERT_TRUE(WaitFor([&] { return Delivered() == std::make_pair(bought, int64_t{0}); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a wrongly armed timer fires
  EXPECT_EQ(Cmd({"XLEN", "journeyd:{0}:outbox"}).integer, 0);
  EXPECT_EQ(Waiting(), 0);
  const std::string state = HttpGet("/v1/customers/c1");
  EXPECT_NE(state.find("exit_on:purchase"), std::string::npos) << state;
}

// Behind a backlog the look-ahead holds across batches: the late trigger is entry 450 of 600
// waiting and the purchase that ends its journey entry 520, so they are read in different
// batches; the over wait fires only with the read that brings the purchase, after it.
TEST_F(Timers, ALateTriggerWhosePurchaseIsInTheNextBatchSendsNothing) {
  StartWith(TickFlow());
  ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }));
  EXPECT_EQ(Stop(SIGTERM), 0);
  std::vector<std::vector<std::string>> cmds;
  auto filler = [&](int n) {
    for (int i = 0; i < n; ++i) {
      std::string id = std::to_string(cmds.size());
      id.insert(0, 1, 'f');
      cmds.push_back({"XADD", "journeyd:{0}:events", "*", "type", "page_view", "customer_id", id});
    }
  };
  filler(449);
  cmds.push_back({"XADD", "journeyd:{0}:events", "*", "type", "tick", "customer_id", "c1", "ts",
                  MillisAgo(5000), "profile", R"({"email":"c1@example.com"})"});
  filler(69);
  cmds.push_back({"XADD", "journeyd:{0}:events", "*", "type", "purchase", "customer_id", "c1", "ts",
                  MillisAgo(4000), "data", R"({"total":10})"});
  filler(80);
  std::string err;
  auto ids = client_->Pipeline(cmds, &err);
  ASSERT_TRUE(ids) << err;
  ASSERT_EQ(ids->size(), 600u);
  const std::string last = ids->back().str;
  Start();
  ASSERT_TRUE(WaitFor([&] { return Delivered() == std::make_pair(last, int64_t{0}); }));
  ASSERT_TRUE(WaitFor([&] { return Waiting() == 0; }));
  EXPECT_EQ(Cmd({"XLEN", "journeyd:{0}:outbox"}).integer, 0);
  const std::string state = HttpGet("/v1/customers/c1");
  EXPECT_NE(state.find("exit_on:purchase"), std::string::npos) << state;
}

// The daemon was down past the end of a timing-wheel bucket (100 min of virtual time at
// clock.scale 1000), so every wake in it is due when it starts: they fire straight from the
// bucket's list, in slices of a batch, each customer once (even one listed twice there), and
// the bucket leaves the wheel. A purchase made before its wake, read with the fire, wins.
TEST_F(Timers, WakesInABucketThatEndedWhileTheDaemonWasDownFireFromItsList) {
  const int kCustomers = 1300;  // three slices of a batch (500)
  const std::vector<std::string> buckets = WakesInTheWheel(kCustomers);
  ASSERT_FALSE(buckets.empty());
  // t5 is listed twice in the first slice (as when a wake changed).
  const std::string list = "journeyd:{0}:wheel:" + buckets.front();
  const store::Reply head = Cmd({"LRANGE", list, "0", "0"});
  ASSERT_EQ(head.elements.size(), 1u);
  const std::string wake = head.elements[0].str.substr(0, head.elements[0].str.find(':'));
  Cmd({"LPUSH", list, wake + ":t5"});
  // t0 bought half an hour (virtual) after its trigger: before its wake.
  const int64_t bought = std::atoll(wake.c_str()) - 1800 * 1000;
  Cmd({"XADD", "journeyd:{0}:events", "*", "type", "purchase", "customer_id", "t0", "ts",
       std::to_string(bought), "data", R"({"total":10})"});
  std::this_thread::sleep_for(std::chrono::seconds(6));  // 100 min of virtual time
  Start();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= kCustomers - 1;
      },
      std::chrono::seconds(30)))
      << Cmd({"XLEN", "journeyd:{0}:outbox"}).integer << " of " << kCustomers - 1 << " queued";
  ASSERT_TRUE(WaitFor([&] { return Waiting() == kCustomers - 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a second fire would show
  EXPECT_EQ(Cmd({"XLEN", "journeyd:{0}:outbox"}).integer, kCustomers - 1);
  ExpectOneMailPerCustomer(kCustomers - 1);
  for (const auto& b : buckets) {
    EXPECT_EQ(Cmd({"EXISTS", "journeyd:{0}:wheel:" + b}).integer, 0) << b;
    EXPECT_TRUE(Cmd({"ZSCORE", "journeyd:{0}:wheel", b}).is_nil()) << b;
  }
  EXPECT_EQ(Cmd({"ZCARD", "journeyd:{0}:timers"}).integer, 0) << "a month on: in the wheel";
  const std::string state = HttpGet("/v1/customers/t0");
  EXPECT_NE(state.find("exit_on:purchase"), std::string::npos) << state;
}

// An older bucket whose slice holds no entry the daemon can read (written by hand, say) is
// trimmed all the same, with no event to commit along: the wakes after it still fire.
TEST_F(Timers, APastBucketOfUnreadableEntriesIsTrimmedAndTheWakesAfterItFire) {
  const std::vector<std::string> buckets = WakesInTheWheel(3);
  ASSERT_FALSE(buckets.empty());
  const std::string older = std::to_string(std::atoll(buckets.front().c_str()) - 1000000);
  Cmd({"RPUSH", "journeyd:{0}:wheel:" + older, "not an entry", "nor this"});
  Cmd({"ZADD", "journeyd:{0}:wheel", older, older});
  std::this_thread::sleep_for(std::chrono::seconds(6));  // 100 min of virtual time
  Start();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Cmd({"XLEN", "journeyd:{0}:outbox"}).integer >= 3;
      },
      std::chrono::seconds(20)))
      << Cmd({"XLEN", "journeyd:{0}:outbox"}).integer << " of 3 queued";
  EXPECT_TRUE(WaitFor([&] { return Cmd({"EXISTS", "journeyd:{0}:wheel:" + older}).integer == 0; }));
  EXPECT_TRUE(WaitFor([&] { return Cmd({"ZSCORE", "journeyd:{0}:wheel", older}).is_nil(); }));
  ExpectOneMailPerCustomer(3);
}

}  // namespace
}  // namespace journeyd
