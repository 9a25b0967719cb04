// The outbox queue (store/outbox_queue.h) against a real redis-server: reading new jobs and this
// consumer's pending ones, claiming a dead consumer's, settling a batch (acknowledged, retry
// set, dead stream, bounce event) exactly once, promoting due retries, and the retry schedule.
#include "journeyd/store/outbox_queue.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "store_fixture.h"

namespace journeyd::store {
namespace {

namespace asio = boost::asio;

std::map<std::string, std::string> AsMap(const OutboxEntry& e) {
  return {e.fields.begin(), e.fields.end()};
}

class OutboxQueueTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Cmd({"XGROUP", "CREATE", keys_.outbox(), std::string(kOutboxGroup), "0", "MKSTREAM"});
  }

  // A job in the outbox: its entry id.
  std::string Add(const std::string& n, std::vector<std::string> more = {}) {
    std::vector<std::string> cmd = {
        "XADD",  keys_.outbox(), "*",       "job_id", "0a" + n,          "customer_id",
        "c" + n, "flow",         "welcome", "to",     n + "@example.com"};
    cmd.insert(cmd.end(), more.begin(), more.end());
    return Cmd(cmd).str;
  }

  OutboxJobs Read(OutboxFrom from, int count = 10, bool wait = false) {
    return Await(queue_.Read(*conn_, from, count, wait));
  }

  // Every entry of a stream, fields as a map.
  std::vector<std::map<std::string, std::string>> Stream(const std::string& key) {
    std::vector<std::map<std::string, std::string>> out;
    for (const Reply& e : Cmd({"XRANGE", key, "-", "+"}).elements) {
      std::map<std::string, std::string> m;
      for (size_t i = 0; i + 1 < e.elements[1].elements.size(); i += 2) {
        m[e.elements[1].elements[i].str] = e.elements[1].elements[i + 1].str;
      }
      out.push_back(std::move(m));
    }
    return out;
  }

  int64_t Pending() {
    return Cmd({"XPENDING", keys_.outbox(), std::string(kOutboxGroup)}).elements[0].integer;
  }

  OutboxQueue queue_{keys_, "me"};
};

TEST_F(OutboxQueueTest, ReadsNewJobsInOrderThenItsOwnPendingOnesAgain) {
  const std::string a = Add("1", {"vars", "{}"});
  const std::string b = Add("2");
  const std::string c = Add("3");
  OutboxJobs first = Read(OutboxFrom::kNew, 2);
  ASSERT_TRUE(first.ok()) << first.error;
  ASSERT_EQ(first.entries.size(), 2u);
  EXPECT_EQ(first.entries[0].id, a);
  EXPECT_EQ(first.entries[0].fields,
            (std::vector<std::pair<std::string, std::string>>{{"job_id", "0a1"},
                                                              {"customer_id", "c1"},
                                                              {"flow", "welcome"},
                                                              {"to", "1@example.com"},
                                                              {"vars", "{}"}}));
  EXPECT_EQ(first.entries[1].id, b);
  ASSERT_EQ(Read(OutboxFrom::kNew).entries.size(), 1u);
  EXPECT_TRUE(Read(OutboxFrom::kNew).entries.empty());
  // Waiting for new jobs ends after about 200 ms with none.
  const auto start = std::chrono::steady_clock::now();
  OutboxJobs none = Read(OutboxFrom::kNew, 10, true);
  EXPECT_TRUE(none.ok()) << none.error;
  EXPECT_TRUE(none.entries.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));

  OutboxJobs again = Read(OutboxFrom::kOwnPending);
  ASSERT_EQ(again.entries.size(), 3u);
  EXPECT_EQ(again.entries[0].id, a);
  EXPECT_EQ(again.entries[2].id, c);
  EXPECT_EQ(again.entries[2].Field("customer_id"), "c3");
  EXPECT_EQ(again.entries[2].Field("vars"), "");
  EXPECT_EQ(Pending(), 3);
}

TEST_F(OutboxQueueTest, AReadWithoutTheGroupFails) {
  Cmd({"DEL", keys_.outbox()});
  OutboxJobs r = Read(OutboxFrom::kNew);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("NOGROUP"), std::string::npos) << r.error;
}

TEST_F(OutboxQueueTest, ClaimsWhatAnotherConsumerLeftOnceIdleLongEnough) {
  const std::string a = Add("1");
  Add("2");
  Cmd({"XREADGROUP", "GROUP", std::string(kOutboxGroup), "dead", "COUNT", "10", "STREAMS",
       keys_.outbox(), ">"});
  EXPECT_TRUE(Await(queue_.ClaimAbandoned(*conn_, Duration{60000}, 10)).entries.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  OutboxJobs claimed = Await(queue_.ClaimAbandoned(*conn_, Duration{20}, 10));
  ASSERT_TRUE(claimed.ok()) << claimed.error;
  ASSERT_EQ(claimed.entries.size(), 2u);
  EXPECT_EQ(claimed.entries[0].id, a);
  EXPECT_EQ(claimed.entries[0].Field("to"), "1@example.com");
  // Now ours.
  EXPECT_EQ(Read(OutboxFrom::kOwnPending).entries.size(), 2u);
}

TEST_F(OutboxQueueTest, SettlesEachOutcomeOnceEvenWhenSettledAgain) {
  Add("1");
  Add("2", {"attempt", "2", "queued_at", "1700000000000"});
  const std::string dead = Add("3", {"source_id", "1-1", "error", "an older one"});
  const std::string bounced = Add("4");
  OutboxJobs jobs = Read(OutboxFrom::kNew);
  ASSERT_EQ(jobs.entries.size(), 4u);
  auto settle = [&] {
    OutboxSettlement s = queue_.Settlement();
    EXPECT_TRUE(s.empty());
    s.Delivered(jobs.entries[0]);
    s.Retry(jobs.entries[1], 1800000000000, 3, 1700000000000, "DATA: 451 4.3.0 later");
    s.Dead(jobs.entries[2], "DATA: 554 no");
    s.Bounced(jobs.entries[3], "RCPT TO: 550 5.1.1 unknown", "550 5.1.1 unknown");
    EXPECT_FALSE(s.empty());
    return Await(queue_.Settle(*conn_, std::move(s)));
  };
  OutboxCount first = settle();
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.n, 4);
  EXPECT_EQ(Pending(), 0);

  Reply retry = Cmd({"ZRANGE", keys_.retry(), "0", "-1", "WITHSCORES"});
  ASSERT_EQ(retry.elements.size(), 2u);
  EXPECT_EQ(retry.elements[1].str, "1800000000000");
  EXPECT_EQ(nlohmann::json::parse(retry.elements[0].str),
            nlohmann::json({"job_id", "0a2", "customer_id", "c2", "flow", "welcome", "to",
                            "2@example.com", "attempt", "3", "queued_at", "1700000000000",
                            "last_error", "DATA: 451 4.3.0 later"}));

  auto dead_entries = Stream(keys_.dead());
  ASSERT_EQ(dead_entries.size(), 2u);
  EXPECT_EQ(dead_entries[0]["error"], "DATA: 554 no");
  EXPECT_EQ(dead_entries[0]["source_id"], dead);
  EXPECT_EQ(dead_entries[0]["customer_id"], "c3");
  EXPECT_EQ(dead_entries[1]["error"], "RCPT TO: 550 5.1.1 unknown");
  EXPECT_EQ(dead_entries[1]["source_id"], bounced);
  // The fields keep their order; an earlier source_id and error are replaced.
  Reply raw = Cmd({"XRANGE", keys_.dead(), "-", "+"});
  std::vector<std::string> names;
  for (size_t i = 0; i < raw.elements[0].elements[1].elements.size(); i += 2) {
    names.push_back(raw.elements[0].elements[1].elements[i].str);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"job_id", "customer_id", "flow", "to", "error",
                                             "source_id"}));

  auto events = Stream(keys_.events());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "bounce");
  EXPECT_EQ(events[0]["customer_id"], "c4");
  EXPECT_EQ(events[0]["data"],
            R"({"email":"4@example.com","job_id":"0a4","reply":"550 5.1.1 unknown"})");

  // Settled again (another consumer after a claim, say): nothing applies, nothing doubles.
  OutboxCount second = settle();
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.n, 0);
  EXPECT_EQ(Cmd({"ZCARD", keys_.retry()}).integer, 1);
  EXPECT_EQ(Stream(keys_.dead()).size(), 2u);
  EXPECT_EQ(Stream(keys_.events()).size(), 1u);
}

// Redis out of memory (maxmemory with noeviction) refuses a script only at its first write, and
// each of ours writes first what frees memory (an XACK, a ZREM): a settlement and a promotion
// are applied whole, so delivered mails are not sent again and no retry is lost on its way.
TEST_F(OutboxQueueTest, OutOfMemoryASettlementAndAPromotionApplyWhole) {
  Add("1");
  Add("2");
  OutboxJobs jobs = Read(OutboxFrom::kNew);
  ASSERT_EQ(jobs.entries.size(), 2u);
  Cmd({"ZADD", keys_.retry(), "1000",
       nlohmann::json(std::vector<std::string>{"job_id", "0a9", "attempt", "2"}).dump()});
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).str, "OK");
  ASSERT_EQ(Cmd({"CONFIG", "SET", "maxmemory", "1"}).str, "OK");
  // Redis is out of memory indeed: a plain write is refused.
  EXPECT_NE(Cmd({"SET", "probe", "x"}).str.find("OOM"), std::string::npos);
  OutboxSettlement s = queue_.Settlement();
  s.Delivered(jobs.entries[0]);
  s.Retry(jobs.entries[1], 1800000000000, 2, 1700000000000, "DATA: 451 4.3.0 later");
  OutboxCount r = Await(queue_.Settle(*conn_, std::move(s)));
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(Cmd({"ZCARD", keys_.retry()}).integer, 2);
  OutboxCount moved = Await(queue_.PromoteDueRetries(*conn_, 2000, 10));
  EXPECT_TRUE(moved.ok()) << moved.error;
  EXPECT_EQ(moved.n, 1);
  EXPECT_EQ(Cmd({"ZCARD", keys_.retry()}).integer, 1);
  EXPECT_EQ(Cmd({"XLEN", keys_.outbox()}).integer, 3);
}

TEST_F(OutboxQueueTest, ScriptsAreLoadedAgainAfterAFlush) {
  Add("1");
  Add("2");
  OutboxJobs jobs = Read(OutboxFrom::kNew);
  ASSERT_EQ(jobs.entries.size(), 2u);
  OutboxSettlement s = queue_.Settlement();
  s.Delivered(jobs.entries[0]);
  EXPECT_EQ(Await(queue_.Settle(*conn_, std::move(s))).n, 1);
  Cmd({"SCRIPT", "FLUSH"});
  OutboxSettlement t = queue_.Settlement();
  t.Delivered(jobs.entries[1]);
  OutboxCount r = Await(queue_.Settle(*conn_, std::move(t)));
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.n, 1);
}

TEST_F(OutboxQueueTest, PromotesDueRetriesOnlyAsNewOutboxEntries) {
  Add("1", {"vars", "{}"});
  Add("2");
  OutboxJobs jobs = Read(OutboxFrom::kNew);
  ASSERT_EQ(jobs.entries.size(), 2u);
  const OutboxEntry& first = jobs.entries[0];
  EXPECT_EQ(first.Attempt(), 1);
  EXPECT_EQ(first.QueuedMs(), std::atoll(first.id.c_str()));
  OutboxSettlement s = queue_.Settlement();
  s.Retry(first, 5000, 2, first.QueuedMs(), "MAIL FROM: 421 busy");
  s.Retry(jobs.entries[1], 9000, 2, 1234, "MAIL FROM: 421 busy");
  EXPECT_EQ(Await(queue_.Settle(*conn_, std::move(s))).n, 2);

  OutboxCount early = Await(queue_.PromoteDueRetries(*conn_, 4999, 100));
  ASSERT_TRUE(early.ok()) << early.error;
  EXPECT_EQ(early.n, 0);
  OutboxCount due = Await(queue_.PromoteDueRetries(*conn_, 5000, 100));
  EXPECT_EQ(due.n, 1);
  EXPECT_EQ(Cmd({"ZCARD", keys_.retry()}).integer, 1);
  OutboxJobs back = Read(OutboxFrom::kNew);
  ASSERT_EQ(back.entries.size(), 1u);
  const OutboxEntry& again = back.entries[0];
  EXPECT_NE(again.id, first.id);
  EXPECT_EQ(again.Field("job_id"), "0a1");
  EXPECT_EQ(again.Field("vars"), "{}");
  EXPECT_EQ(again.Field("last_error"), "MAIL FROM: 421 busy");
  EXPECT_EQ(again.Attempt(), 2);
  EXPECT_EQ(again.QueuedMs(), first.QueuedMs());
  // At most `most` at a time.
  Cmd({"ZADD", keys_.retry(), "1", R"(["job_id","0a9"])"});
  EXPECT_EQ(Await(queue_.PromoteDueRetries(*conn_, 10000, 1)).n, 1);
  EXPECT_EQ(Await(queue_.PromoteDueRetries(*conn_, 10000, 1)).n, 1);
  EXPECT_EQ(Await(queue_.PromoteDueRetries(*conn_, 10000, 1)).n, 0);
  EXPECT_EQ(AsMap(Read(OutboxFrom::kNew).entries.at(0)).at("job_id"), "0a9");
}

TEST(RetrySchedule, BacksOffExponentiallyWithJitterUpToAnHour) {
  RetrySchedule r{kMinute, 4, 24 * kHour};
  EXPECT_EQ(r.DelayMs(1, 0), 30000);
  EXPECT_EQ(r.DelayMs(1, 30000), 60000);
  EXPECT_EQ(r.DelayMs(1, 30001), 30000);
  EXPECT_EQ(r.DelayMs(3, 0), 120000);
  EXPECT_EQ(r.DelayMs(3, 120000), 240000);
  EXPECT_EQ(r.DelayMs(20, 0), 1800000);
  EXPECT_EQ(r.DelayMs(20, 1800000), 3600000);
  RetrySchedule slow{2 * kHour, 4, 24 * kHour};
  EXPECT_EQ(slow.DelayMs(5, 3600000), 7200000);
  EXPECT_TRUE(r.Retries(3, false));
  EXPECT_FALSE(r.Retries(4, false));
  EXPECT_FALSE(r.Retries(1, true));
  EXPECT_FALSE(r.Expired(0, 24 * 3600 * 1000 - 1));
  EXPECT_TRUE(r.Expired(0, 24 * 3600 * 1000));
}

}  // namespace
}  // namespace journeyd::store
