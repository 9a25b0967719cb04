// The commands of a batch commit (store/commit.h), read back from their wire form: a bulk
// commit is MULTI, one command per kind of effect, EXEC; each wake goes to the timers set or to
// its wheel bucket by where the wheel stands. The script commit's keys and arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "journeyd/engine/batch.h"
#include "journeyd/store/commit.h"
#include "journeyd/store/keys.h"

namespace journeyd::store {
namespace {

using Args = std::vector<std::string>;
using engine::WakeOp;

constexpr int64_t kMoved = 1800000000000;  // wheel_moved: buckets up to this one are in the set

// A RESP array of bulk strings back into its arguments.
Args Parse(std::string_view wire) {
  Args out;
  auto number = [&wire](size_t* at) {
    const size_t end = wire.find("\r\n", *at);
    const size_t n = std::stoul(std::string(wire.substr(*at, end - *at)));
    *at = end + 2;
    return n;
  };
  EXPECT_EQ(wire.substr(0, 1), "*");
  size_t at = 1;
  const size_t count = number(&at);
  for (size_t i = 0; i < count; ++i) {
    EXPECT_EQ(wire.substr(at, 1), "$");
    ++at;
    const size_t len = number(&at);
    out.emplace_back(wire.substr(at, len));
    at += len + 2;
  }
  EXPECT_EQ(at, wire.size()) << "one command";
  return out;
}

std::vector<Args> Parse(const std::vector<RespCommand>& commands) {
  std::vector<Args> out;
  for (const auto& c : commands) out.push_back(Parse(c.wire()));
  return out;
}

class CommitBuilder : public ::testing::Test {
 protected:
  // A customer's entry: its batch customer, planned by hand as PlanBatch would.
  engine::BatchCustomer& Customer(const std::string& id, const std::string& entry) {
    const std::vector<engine::FieldView> fields = {{"type", "signup"}, {"customer_id", id}};
    EXPECT_TRUE(batch_.AddEntry(entry, fields, FromUnixMillis(kMoved)));
    return Find(id);
  }
  engine::BatchCustomer& Find(const std::string& id) {
    auto customers = batch_.customers();
    auto it =
        std::find_if(customers.begin(), customers.end(), [&](const auto& c) { return c.id == id; });
    EXPECT_NE(it, customers.end()) << id;
    return *it;
  }
  static void Plan(engine::BatchCustomer& c, WakeOp op, std::optional<int64_t> wake,
                   std::string state = "") {
    c.wake_op = op;
    if (wake) c.wake = FromUnixMillis(*wake);
    c.write_state = !state.empty();
    c.state = std::move(state);
  }
  // The commands whose first arguments are `head`.
  static std::vector<Args> Starting(const std::vector<Args>& commands, const Args& head) {
    std::vector<Args> out;
    for (const auto& c : commands) {
      if (c.size() >= head.size() && std::equal(head.begin(), head.end(), c.begin())) {
        out.push_back(c);
      }
    }
    return out;
  }
  std::vector<Args> Bulk(const WheelTake* take = nullptr) {
    return Parse(BulkCommit(keys_, batch_, kMoved, take));
  }

  const Keys keys_{"journeyd", 0};
  engine::Batch batch_;
};

TEST_F(CommitBuilder, ABulkCommitIsOneTransactionAcknowledgingEveryEntry) {
  Plan(Customer("a", "1800000000000-0"), WakeOp::kKeep, std::nullopt, "state-a");
  Customer("b", "1800000000000-1");
  Plan(Customer("a", "1800000000001-0"), WakeOp::kKeep, std::nullopt, "state-a");
  Plan(Find("b"), WakeOp::kKeep, std::nullopt);  // unchanged: no state written
  const std::vector<engine::FieldView> bad = {{"type", "signup"}};
  EXPECT_FALSE(batch_.AddEntry("1800000000002-0", bad, FromUnixMillis(kMoved)));
  const std::vector<Args> c = Bulk();
  ASSERT_GE(c.size(), 2u);
  EXPECT_EQ(c.front(), Args{"MULTI"});
  EXPECT_EQ(c.back(), Args{"EXEC"});
  EXPECT_EQ(Starting(c, {"MULTI"}).size(), 1u);
  EXPECT_EQ(Starting(c, {"EXEC"}).size(), 1u);
  const auto xack = Starting(c, {"XACK"});
  ASSERT_EQ(xack.size(), 1u) << "one XACK for the batch";
  EXPECT_EQ(xack[0], (Args{"XACK", keys_.events(), "journeyd", "1800000000000-0", "1800000000001-0",
                           "1800000000000-1", "1800000000002-0"}));
  EXPECT_EQ(c[1], xack[0]) << "first, with no journey counts";
  EXPECT_EQ(Starting(c, {"MSET"}), (std::vector<Args>{{"MSET", keys_.customer("a"), "state-a"}}));
  EXPECT_TRUE(Starting(c, {"ZADD"}).empty());
  EXPECT_TRUE(Starting(c, {"ZREM"}).empty());
  EXPECT_TRUE(Starting(c, {"RPUSH"}).empty());
  // The dead letter: its fields, `error` and `source_id`.
  const auto dead = Starting(c, {"XADD", keys_.dead(), "*"});
  ASSERT_EQ(dead.size(), 1u);
  const Args& d = dead[0];
  EXPECT_EQ(Args(d.begin() + 3, d.begin() + 5), (Args{"type", "signup"}));
  ASSERT_GE(d.size(), 9u);
  EXPECT_EQ(d[5], "error");
  EXPECT_NE(d[6].find("customer_id"), std::string::npos) << d[6];
  EXPECT_EQ(Args(d.end() - 2, d.end()), (Args{"source_id", "1800000000002-0"}));
}

TEST_F(CommitBuilder, AWakeGoesToTheTimersOrToItsWheelBucketByWhereTheWheelStands) {
  const int64_t soon = kMoved + 500;                      // in the last bucket moved
  const int64_t later = kMoved + 2 * kWheelBucketMs + 7;  // two buckets on
  const int64_t later2 = kMoved + 2 * kWheelBucketMs + 9;
  const std::string later_bucket = std::to_string(kMoved + 2 * kWheelBucketMs);
  Plan(Customer("soon", "1-0"), WakeOp::kSet, soon, "s");
  Plan(Customer("new", "2-0"), WakeOp::kSet, later, "s");   // never in the set
  engine::BatchCustomer& moved = Customer("moved", "3-0");  // its old wake is in the set
  moved.old_wake = FromUnixMillis(kMoved - 10);
  moved.existed = true;
  Plan(moved, WakeOp::kSet, later2, "s");
  engine::BatchCustomer& gone = Customer("gone", "4-0");
  gone.old_wake = FromUnixMillis(kMoved + 1);
  gone.existed = true;
  Plan(gone, WakeOp::kRemove, std::nullopt, "s");
  engine::BatchCustomer& waits = Customer("waits", "5-0");  // its wake is in a bucket
  waits.old_wake = FromUnixMillis(later);
  waits.existed = true;
  Plan(waits, WakeOp::kRemove, std::nullopt, "s");
  batch_.AddTimer("fired", FromUnixMillis(kMoved - 1));  // fired, same wake back
  Plan(Find("fired"), WakeOp::kReassert, later, "");

  const std::vector<Args> c = Bulk();
  EXPECT_EQ(c.front(), Args{"MULTI"});
  EXPECT_EQ(c.back(), Args{"EXEC"});
  EXPECT_EQ(Starting(c, {"ZADD", keys_.timers()}),
            (std::vector<Args>{{"ZADD", keys_.timers(), std::to_string(soon), "soon"}}));
  EXPECT_EQ(Starting(c, {"ZREM", keys_.timers()}),
            (std::vector<Args>{{"ZREM", keys_.timers(), "moved", "gone", "fired"}}));
  EXPECT_EQ(Starting(c, {"RPUSH"}), (std::vector<Args>{{"RPUSH", keys_.wheel_bucket(later_bucket),
                                                        std::to_string(later) + ":new",
                                                        std::to_string(later2) + ":moved"}}))
      << "one RPUSH per bucket; a reasserted wake is in its bucket already";
  EXPECT_EQ(Starting(c, {"ZADD", keys_.wheel()}),
            (std::vector<Args>{{"ZADD", keys_.wheel(), "NX", later_bucket, later_bucket}}));
  // The timer entry fired has no source id to acknowledge.
  const auto xack = Starting(c, {"XACK"});
  ASSERT_EQ(xack.size(), 1u);
  EXPECT_EQ(xack[0].size(), 3u + 5u);
}

TEST_F(CommitBuilder, AWheelTakeIsTrimmedAndMailsGoToTheOutbox) {
  engine::BatchCustomer& a = Customer("a", "1-0");
  Plan(a, WakeOp::kKeep, std::nullopt, "s");
  engine::SendJob job;
  job.job_id = "j1";
  job.customer_id = "a";
  job.flow = "welcome";
  job.to = "anna@example.com";
  job.vars = "{}";
  a.jobs.push_back(job);
  job.job_id = "j2";
  a.jobs.push_back(job);
  const WheelTake take{"1797000000000", 42};
  const std::vector<Args> c = Bulk(&take);
  EXPECT_EQ(Starting(c, {"LTRIM"}),
            (std::vector<Args>{{"LTRIM", keys_.wheel_bucket("1797000000000"), "42", "-1"}}));
  const auto mails = Starting(c, {"XADD", keys_.outbox(), "*"});
  ASSERT_EQ(mails.size(), 2u) << "one XADD per mail";
  EXPECT_EQ(Args(mails[0].begin() + 3, mails[0].begin() + 7),
            (Args{"job_id", "j1", "customer_id", "a"}));
  EXPECT_EQ(mails[1][4], "j2");
  EXPECT_TRUE(Starting(Bulk(), {"LTRIM"}).empty()) << "no take, no trim";
}

TEST_F(CommitBuilder, TheScriptCommitCarriesEveryCustomersKey) {
  Plan(Customer("a", "1-0"), WakeOp::kSet, kMoved + 5, "state-a");
  Plan(Customer("b", "2-0"), WakeOp::kRemove, std::nullopt, "");
  const CommitContext replay{CommitMode::kReplay, "7", std::nullopt};
  const Args s = Parse(ScriptCommit(keys_, "sha1", replay, batch_).wire());
  ASSERT_EQ(s.size(), 33u);
  EXPECT_EQ(Args(s.begin(), s.begin() + 3), (Args{"EVALSHA", "sha1", "10"}));
  EXPECT_EQ(s[3], keys_.events());
  EXPECT_EQ(s[7], keys_.lease());
  EXPECT_EQ(Args(s.begin() + 11, s.begin() + 13), (Args{keys_.customer("a"), keys_.customer("b")}));
  EXPECT_EQ(Args(s.begin() + 13, s.begin() + 17), (Args{"7", "journeyd", "r", "0"}));
  // a: one source, its state, its wake; b: unchanged state, no wake.
  EXPECT_EQ(Args(s.begin() + 17, s.begin() + 23),
            (Args{"2", "1", "1-0", "state-a", std::to_string(kMoved + 5), "a"}));
  EXPECT_EQ(Args(s.begin() + 25, s.begin() + 31), (Args{"1", "2-0", "=", "", "b", "0"}));
  EXPECT_EQ(s.back(), "0") << "no dead letters";
  const CommitContext fresh{CommitMode::kFresh, "7", std::nullopt};
  EXPECT_EQ(Parse(ScriptCommit(keys_, "sha1", fresh, batch_).wire())[15], "f");
}

}  // namespace
}  // namespace journeyd::store
