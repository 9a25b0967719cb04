// The batch commit script against a real redis-server: journey counts are added exactly once,
// in the same script as the effects they describe.
#include <gtest/gtest.h>

#include <map>

#include "../redis_server.h"
#include "journeyd/store/commit.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/sync.h"
#include "journeyd/store/wheel.h"

namespace journeyd::store {
namespace {

class CommitScript : public ::testing::Test {
 protected:
  testing::RedisServer server_;
  std::unique_ptr<SyncRedis> redis_;
  Keys keys_{"journeyd", 0};

  void SetUp() override {
    RedisOptions o;
    o.port = server_.port();
    std::string err;
    redis_ = SyncRedis::Connect(o, &err);
    ASSERT_TRUE(redis_) << err;
    Cmd({"XGROUP", "CREATE", keys_.events(), "journeyd", "0", "MKSTREAM"});
    Cmd({"SET", keys_.lease(), "7"});
  }

  Reply Cmd(const std::vector<std::string>& args) {
    std::string err;
    auto r = redis_->Command(args, &err);
    EXPECT_TRUE(r) << err;
    return r.value_or(Reply{});
  }

  // Publishes an event for `customer` and delivers it to the group: its entry id.
  std::string Pending(const std::string& customer) {
    std::string id =
        Cmd({"XADD", keys_.events(), "*", "type", "signup", "customer_id", customer}).str;
    Cmd({"XREADGROUP", "GROUP", "journeyd", "me", "COUNT", "100", "STREAMS", keys_.events(), ">"});
    return id;
  }

  struct Customer {
    std::string id, entry;
    std::vector<std::pair<int, int>> refs;  // 1-based stat field index, count
    std::string state = "state-" + id;      // "" deletes, "=" keeps
    std::string wake = "=";                 // "" removes, "=" keeps, "~<ms>" re-asserts
  };

  // Runs the script with the given batch counts and customers (one entry each, no jobs).
  // Mode "r" checks each customer's entries for a replay; "f" acknowledges the batch at once.
  Reply Commit(const std::string& token, const std::vector<std::pair<std::string, int>>& stats,
               const std::vector<Customer>& customers, const std::string& mode = "r") {
    std::vector<std::string> keys = {keys_.events(), keys_.outbox(),     keys_.dead(),
                                     keys_.timers(), keys_.lease(),      keys_.stats(),
                                     keys_.wheel(),  keys_.wheel_moved()};
    std::vector<std::string> argv = {token, "journeyd", mode, std::to_string(stats.size())};
    for (const auto& [field, n] : stats) {
      argv.push_back(field);
      argv.push_back(std::to_string(n));
    }
    argv.push_back(std::to_string(customers.size()));
    for (const auto& c : customers) {
      keys.push_back(keys_.customer(c.id));
      for (std::string a : {std::string("1"), c.entry, c.state, c.wake, c.id, std::string("0"),
                            std::to_string(c.refs.size())}) {
        argv.push_back(a);
      }
      for (auto [index, n] : c.refs) {
        argv.push_back(std::to_string(index));
        argv.push_back(std::to_string(n));
      }
    }
    argv.push_back("0");
    std::vector<std::string> cmd = {"EVAL", std::string(kCommitScript),
                                    std::to_string(keys.size())};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    return Cmd(cmd);
  }

  std::map<std::string, std::string> Stats() {
    std::map<std::string, std::string> m;
    Reply r = Cmd({"HGETALL", keys_.stats()});
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
      m[r.elements[i].str] = r.elements[i + 1].str;
    return m;
  }
};

const std::string kEnter = "welcome\tthanks\tenter\tevent:signup";
const std::string kSend = "welcome\tthanks\tsend\t";

TEST_F(CommitScript, CountsOnceAndAReplayAddsNothing) {
  std::vector<Customer> batch = {{"c1", Pending("c1"), {{1, 1}, {2, 1}}},
                                 {"c2", Pending("c2"), {{1, 1}}}};
  Reply r = Commit("7", {{kEnter, 2}, {kSend, 1}}, batch);
  ASSERT_EQ(r.elements.size(), 4u) << r.str;
  EXPECT_EQ(r.elements[0].integer, 2);
  EXPECT_TRUE(r.elements[2].elements.empty());
  auto expected = std::map<std::string, std::string>{{kEnter, "2"}, {kSend, "1"}};
  EXPECT_EQ(Stats(), expected);
  EXPECT_EQ(Cmd({"GET", keys_.customer("c1")}).str, "state-c1");

  // The same batch again (a worker that crashed after the commit): nothing changes.
  r = Commit("7", {{kEnter, 2}, {kSend, 1}}, batch);
  EXPECT_EQ(r.elements[0].integer, 0);
  ASSERT_EQ(r.elements[2].elements.size(), 2u);
  EXPECT_EQ(r.elements[2].elements[0].integer, 0);
  EXPECT_EQ(r.elements[2].elements[1].integer, 1);
  EXPECT_EQ(Stats(), expected);
}

TEST_F(CommitScript, AMixedBatchCountsOnlyTheCustomersThatApply) {
  std::string e1 = Pending("c1");
  Commit("7", {{kEnter, 1}, {kSend, 1}}, {{"c1", e1, {{1, 1}, {2, 1}}}});
  // c1's entry again (already acknowledged) with a new one for c3: only c3's share counts.
  Reply r = Commit("7", {{kEnter, 2}, {kSend, 1}},
                   {{"c1", e1, {{1, 1}, {2, 1}}}, {"c3", Pending("c3"), {{1, 1}}}});
  EXPECT_EQ(r.elements[0].integer, 1);
  ASSERT_EQ(r.elements[2].elements.size(), 1u);
  EXPECT_EQ(r.elements[2].elements[0].integer, 0);
  EXPECT_EQ(Stats(), (std::map<std::string, std::string>{{kEnter, "2"}, {kSend, "1"}}));
}

TEST_F(CommitScript, AStaleOwnerCountsNothing) {
  Reply r = Commit("6", {{kEnter, 1}}, {{"c1", Pending("c1"), {{1, 1}}}});
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.str.rfind("STALE", 0), 0u) << r.str;
  EXPECT_TRUE(Stats().empty());
}

TEST_F(CommitScript, AFreshBatchAppliesEveryCustomerWithOneCallPerCommand) {
  // More customers than one slice of a bulk call (4000 arguments) holds.
  const int n = 4500;
  std::vector<std::vector<std::string>> adds;
  for (int i = 0; i < n; ++i) {
    adds.push_back(
        {"XADD", keys_.events(), "*", "type", "signup", "customer_id", "c" + std::to_string(i)});
  }
  std::string err;
  auto ids = redis_->Pipeline(adds, &err);
  ASSERT_TRUE(ids) << err;
  Cmd({"XREADGROUP", "GROUP", "journeyd", "me", "COUNT", "10000", "STREAMS", keys_.events(), ">"});
  // Customers that had a timer and a state before: some lose both, some get new ones.
  Cmd({"ZADD", keys_.timers(), "5", "c0", "5", "c1"});
  Cmd({"SET", keys_.customer("c0"), "old"});
  std::vector<Customer> batch;
  for (int i = 0; i < n; ++i) {
    Customer c{"c" + std::to_string(i), (*ids)[static_cast<size_t>(i)].str, {{1, 1}}};
    c.wake = std::to_string(1000 + i);
    if (i == 0) c.state = c.wake = "";
    if (i == 1) c.wake = "";
    if (i == 2) c.state = "=";
    batch.push_back(c);
  }
  Reply r = Commit("7", {{kEnter, n}}, batch, "f");
  ASSERT_EQ(r.elements.size(), 4u) << r.str;
  EXPECT_EQ(r.elements[0].integer, n);
  EXPECT_TRUE(r.elements[2].elements.empty());
  EXPECT_EQ(r.elements[3].integer, 0);
  EXPECT_EQ(Cmd({"XPENDING", keys_.events(), "journeyd"}).elements[0].integer, 0);
  EXPECT_EQ(Cmd({"ZCARD", keys_.timers()}).integer, n - 2);
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "c4499"}).str, "5499");
  EXPECT_TRUE(Cmd({"GET", keys_.customer("c0")}).is_nil());
  EXPECT_TRUE(Cmd({"GET", keys_.customer("c2")}).is_nil());
  EXPECT_EQ(Cmd({"GET", keys_.customer("c4499")}).str, "state-c4499");
  EXPECT_EQ(Cmd({"DBSIZE"}).integer, 4 + n - 2);  // events, timers, lease, stats + states
  EXPECT_EQ(Stats(), (std::map<std::string, std::string>{{kEnter, std::to_string(n)}}));

  // A fresh batch whose entry something else acknowledged says so (the daemon logs it).
  std::string id = Pending("late");
  Cmd({"XACK", keys_.events(), "journeyd", id});
  r = Commit("7", {}, {{"late", id, {}}}, "f");
  ASSERT_EQ(r.elements.size(), 4u) << r.str;
  EXPECT_EQ(r.elements[3].integer, 1);
}

class TimingWheel : public CommitScript {
 protected:
  // Commits one fresh entry per customer with the given wake arguments.
  void Wakes(const std::vector<std::pair<std::string, std::string>>& wakes) {
    std::vector<Customer> batch;
    for (const auto& [id, wake] : wakes) {
      Customer c{id, Pending(id), {}};
      c.wake = wake;
      batch.push_back(c);
    }
    Reply r = Commit("7", {}, batch, "f");
    ASSERT_EQ(r.elements.size(), 4u) << r.str;
  }
  Reply Move(const std::string& token, int64_t target, int budget, std::string from = "-inf") {
    return Cmd({"EVAL", std::string(kWheelScript), "4", keys_.lease(), keys_.timers(),
                keys_.wheel(), keys_.wheel_moved(), token, std::to_string(target),
                std::to_string(budget), from});
  }
  std::vector<std::string> Strings(const Reply& r) {
    std::vector<std::string> out;
    for (const auto& e : r.elements) out.push_back(e.str);
    return out;
  }
  using V = std::vector<std::string>;
};

TEST_F(TimingWheel, LaterWakesWaitInBucketsUntilMovedIntoTheTimers) {
  EXPECT_EQ(WheelBucket(3456789), 3000000);
  Cmd({"SET", keys_.wheel_moved(), "2000000"});  // buckets up to 2,000,000 are moved
  Cmd({"ZADD", keys_.timers(), "100", "d"});
  Wakes({{"a", "2500000"}, {"b", "3500000"}, {"c", "3700000"}, {"d", "9000001"}});
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "a"}).str, "2500000");
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "b"}).is_nil());
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "d"}).is_nil()) << "a later wake leaves the set";
  EXPECT_EQ(Strings(Cmd({"LRANGE", keys_.wheel_bucket("3000000"), "0", "-1"})),
            (V{"3500000:b", "3700000:c"}));
  EXPECT_EQ(Strings(Cmd({"LRANGE", keys_.wheel_bucket("9000000"), "0", "-1"})), (V{"9000001:d"}));
  EXPECT_EQ(Strings(Cmd({"ZRANGE", keys_.wheel(), "0", "-1"})), (V{"3000000", "9000000"}));

  // c's wake moved earlier in the meantime: the old entry must not push it back.
  Cmd({"ZADD", keys_.timers(), "3100000", "c"});
  EXPECT_EQ(Move("6", 3000000, 100).str.rfind("STALE", 0), 0u) << "fenced";
  Reply m = Move("7", 3000000, 100);
  ASSERT_EQ(m.elements.size(), 2u) << m.str;
  EXPECT_EQ(m.elements[0].integer, 2);
  EXPECT_EQ(m.elements[1].integer, 0);
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "b"}).str, "3500000");
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "c"}).str, "3100000");
  EXPECT_EQ(Cmd({"EXISTS", keys_.wheel_bucket("3000000")}).integer, 0);
  EXPECT_EQ(Strings(Cmd({"ZRANGE", keys_.wheel(), "0", "-1"})), (V{"9000000"}));
  EXPECT_EQ(Cmd({"GET", keys_.wheel_moved()}).str, "3000000");

  // Now bucket 3,000,000 is moved: a wake in it goes straight to the timers set.
  Wakes({{"e", "3900000"}});
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "e"}).str, "3900000");
}

TEST_F(TimingWheel, AFiredTimerPutsTheStatesWakeBackWithoutASecondEntry) {
  Cmd({"SET", keys_.wheel_moved(), "5000000"});
  // b fired from an old, earlier entry; its state still says 3,500,000 (moved) or 9,000,001
  // (still in the wheel, whose entry is there already).
  Cmd({"ZADD", keys_.timers(), "1000", "b", "1000", "d"});
  Cmd({"RPUSH", keys_.wheel_bucket("9000000"), "9000001:d"});
  Cmd({"ZADD", keys_.wheel(), "9000000", "9000000"});
  Wakes({{"b", "~3500000"}, {"d", "~9000001"}, {"x", ""}});
  EXPECT_EQ(Cmd({"ZSCORE", keys_.timers(), "b"}).str, "3500000");
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "d"}).is_nil());
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket("9000000")}).integer, 1);
}

TEST_F(TimingWheel, MovesInSlicesAndSaysWhenMoreRemain) {
  std::vector<std::pair<std::string, std::string>> wakes;
  for (int i = 0; i < 5; ++i)
    wakes.emplace_back("k" + std::to_string(i), std::to_string(4000000 + i));
  wakes.emplace_back("late", "7000000");
  Wakes(wakes);
  Reply m = Move("7", 5000000, 3);
  EXPECT_EQ(m.elements[0].integer, 3);
  EXPECT_EQ(m.elements[1].integer, 1);
  EXPECT_TRUE(Cmd({"GET", keys_.wheel_moved()}).is_nil()) << "not moved until every bucket is";
  m = Move("7", 5000000, 3);
  EXPECT_EQ(m.elements[0].integer, 2);
  EXPECT_EQ(m.elements[1].integer, 0);
  EXPECT_EQ(Cmd({"ZCARD", keys_.timers()}).integer, 5);
  EXPECT_EQ(Cmd({"GET", keys_.wheel_moved()}).str, "5000000");
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket("7000000")}).integer, 1);
}

// Buckets before `from` had ended when the wheel moved: they stay, for the daemon to fire
// from their lists; the ones from there up to the target move.
TEST_F(TimingWheel, BucketsBeforeTheFirstToMoveStayInTheirLists) {
  Wakes({{"old", "2100000"}, {"now", "4200000"}, {"next", "5300000"}, {"later", "6400000"}});
  Reply m = Move("7", 5000000, 100, "4000000");
  ASSERT_EQ(m.elements.size(), 2u) << m.str;
  EXPECT_EQ(m.elements[0].integer, 2);
  EXPECT_EQ(m.elements[1].integer, 0);
  EXPECT_EQ(Strings(Cmd({"ZRANGE", keys_.timers(), "0", "-1"})), (V{"now", "next"}));
  EXPECT_EQ(Strings(Cmd({"LRANGE", keys_.wheel_bucket("2000000"), "0", "-1"})), (V{"2100000:old"}));
  EXPECT_EQ(Strings(Cmd({"ZRANGE", keys_.wheel(), "0", "-1"})), (V{"2000000", "6000000"}));
  EXPECT_EQ(Cmd({"GET", keys_.wheel_moved()}).str, "5000000");
}

}  // namespace
}  // namespace journeyd::store
