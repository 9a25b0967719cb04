// The batch commit script against a real redis-server: journey counts are added exactly once,
// in the same script as the effects they describe.
#include <gtest/gtest.h>

#include <map>

#include "../redis_server.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/sync.h"

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
  };

  // Runs the script with the given batch counts and customers (one entry each, no jobs).
  Reply Commit(const std::string& token, const std::vector<std::pair<std::string, int>>& stats,
               const std::vector<Customer>& customers) {
    std::vector<std::string> keys = {keys_.events(), keys_.outbox(), keys_.dead(),
                                     keys_.timers(), keys_.lease(),  keys_.stats()};
    std::vector<std::string> argv = {token, "journeyd", std::to_string(stats.size())};
    for (const auto& [field, n] : stats) {
      argv.push_back(field);
      argv.push_back(std::to_string(n));
    }
    argv.push_back(std::to_string(customers.size()));
    for (const auto& c : customers) {
      keys.push_back(keys_.customer(c.id));
      for (std::string a : {std::string("1"), c.entry, "state-" + c.id, std::string("="), c.id,
                            std::string("0"), std::to_string(c.refs.size())}) {
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
  ASSERT_EQ(r.elements.size(), 3u) << r.str;
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

}  // namespace
}  // namespace journeyd::store
