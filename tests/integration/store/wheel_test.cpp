// The timer wheel (store/wheel.h) against a real redis-server: due members of the timers set
// taken into a batch, the next wake learnt, a bucket's wakes moved into the set when its time
// comes, a past bucket's entries fired from its list, and the move fenced by the lease.
// Every time is virtual, relative to a bucket start; nothing waits on the wall clock.
#include "journeyd/store/wheel.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "store_fixture.h"

namespace journeyd::store {
namespace {

constexpr int64_t kT0 = 1800000000000;  // a bucket start (ms)
static_assert(WheelBucket(kT0) == kT0);
constexpr int64_t kB = kWheelBucketMs;

TimePoint At(int64_t ms) { return FromUnixMillis(ms); }

class TimerWheelTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Cmd({"SET", keys_.lease(), kToken});
  }

  // One TakeDue at `now` into a fresh batch: its customers as (id, due ms).
  std::vector<std::pair<std::string, int64_t>> Take(TimerWheel& wheel, int64_t now,
                                                    DueTimers* due = nullptr,
                                                    const std::string& token = kToken) {
    DueTimers local;
    if (!due) due = &local;
    batch_.Clear();
    error_ = Await(wheel.TakeDue(*conn_, token, At(now), &batch_, due));
    EXPECT_EQ(due->count, batch_.customers().size());
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& c : batch_.customers()) {
      EXPECT_TRUE(c.fired) << c.id;
      out.emplace_back(c.id, ToUnixMillis(c.due));
    }
    return out;
  }
  // A wake waiting in its wheel bucket's list, as a commit places it.
  void InBucket(const std::string& customer, int64_t wake_ms) {
    const std::string bucket = std::to_string(WheelBucket(wake_ms));
    Cmd({"RPUSH", keys_.wheel_bucket(bucket), std::to_string(wake_ms) + ":" + customer});
    Cmd({"ZADD", keys_.wheel(), "NX", bucket, bucket});
  }
  void InTimers(const std::string& customer, int64_t wake_ms) {
    Cmd({"ZADD", keys_.timers(), std::to_string(wake_ms), customer});
  }
  std::string Score(const std::string& customer) {
    return Cmd({"ZSCORE", keys_.timers(), customer}).str;
  }
  std::optional<int64_t> NextWake(const TimerWheel& wheel) {
    if (!wheel.next_wake()) return std::nullopt;
    return ToUnixMillis(*wheel.next_wake());
  }

  using Due = std::vector<std::pair<std::string, int64_t>>;
  static constexpr const char* kToken = "7";
  // No timer tick between looks at the set: TakeDue then depends on virtual time only.
  const WheelLimits limits_{.take = 500, .move = 2000, .tick_ms = 0};
  engine::Batch batch_;
  std::string error_;
};

TEST_F(TimerWheelTest, TakesTheDueMembersOfTheTimersAndLearnsTheNextWake) {
  TimerWheel wheel(keys_, limits_);
  const int64_t now = kT0 + 100000;
  InTimers("a", now - 2000);
  InTimers("b", now - 500);
  InTimers("c", now);
  InTimers("later", now + 30000);
  InTimers("last", now + 60000);
  DueTimers due;
  EXPECT_EQ(Take(wheel, now, &due), (Due{{"a", now - 2000}, {"b", now - 500}, {"c", now}}));
  EXPECT_EQ(error_, "");
  EXPECT_EQ(due.count, 3u);
  EXPECT_EQ(due.lateness, (std::vector<double>{2.0, 0.5, 0.0}));
  EXPECT_FALSE(due.take);
  EXPECT_EQ(NextWake(wheel), now + 30000);
  // It moved the wheel first: this bucket and the next are in the set now.
  EXPECT_EQ(wheel.wheel_moved(), kT0 + kB);
  EXPECT_EQ(Cmd({"GET", keys_.wheel_moved()}).str, std::to_string(kT0 + kB));

  // Their commit took them out of the set. Before the next wake nothing is looked at (what a
  // commit adds it learns by NoteWake).
  Cmd({"ZREM", keys_.timers(), "a", "b", "c"});
  InTimers("noted", now + 10000);
  EXPECT_EQ(Take(wheel, now + 9000), Due{});
  wheel.NoteWake(At(now + 10000));
  EXPECT_EQ(NextWake(wheel), now + 10000);
  wheel.NoteWake(At(now + 20000));
  EXPECT_EQ(NextWake(wheel), now + 10000) << "a later wake changes nothing";
  EXPECT_EQ(Take(wheel, now + 10000), (Due{{"noted", now + 10000}}));
  EXPECT_EQ(NextWake(wheel), now + 30000);
}

TEST_F(TimerWheelTest, WithNothingLaterTheNextWakeIsTheWheelsNextMove) {
  TimerWheel wheel(keys_, limits_);
  InTimers("a", kT0 + 1000);
  EXPECT_EQ(Take(wheel, kT0 + 5000), (Due{{"a", kT0 + 1000}}));
  EXPECT_EQ(NextWake(wheel), kT0 + kB);
}

TEST_F(TimerWheelTest, AFullTakeSaysMoreMayBeDue) {
  TimerWheel wheel(keys_, WheelLimits{.take = 2, .move = 2000, .tick_ms = 0});
  for (int i = 0; i < 5; ++i) InTimers("c" + std::to_string(i), kT0 + i);
  DueTimers due;
  EXPECT_EQ(Take(wheel, kT0 + 1000, &due).size(), 2u);
  EXPECT_EQ(NextWake(wheel), kT0 + 1000) << "due again at once";
}

TEST_F(TimerWheelTest, AWakeTwoBucketsAheadMovesIntoTheTimersWhenItsBucketComes) {
  TimerWheel wheel(keys_, limits_);
  const int64_t wake = kT0 + 2 * kB + 5000;
  InBucket("w", wake);
  InBucket("far", kT0 + 5 * kB);
  // Now: this bucket and the next move, the one after waits in its list.
  EXPECT_EQ(Take(wheel, kT0 + 100000), Due{});
  EXPECT_EQ(error_, "");
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "w"}).is_nil());
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket(std::to_string(kT0 + 2 * kB))}).integer, 1);
  EXPECT_EQ(NextWake(wheel), kT0 + kB) << "the next move";
  EXPECT_EQ(wheel.wheel_moved(), kT0 + kB);

  // The next bucket comes: the one after it moves into the set, its list goes.
  EXPECT_EQ(Take(wheel, kT0 + kB + 10), Due{});
  EXPECT_EQ(Score("w"), std::to_string(wake));
  EXPECT_EQ(Cmd({"EXISTS", keys_.wheel_bucket(std::to_string(kT0 + 2 * kB))}).integer, 0);
  EXPECT_EQ(Strings(Cmd({"ZRANGE", keys_.wheel(), "0", "-1"})),
            std::vector<std::string>{std::to_string(kT0 + 5 * kB)});
  EXPECT_EQ(wheel.wheel_moved(), kT0 + 2 * kB);
  EXPECT_EQ(Cmd({"GET", keys_.wheel_moved()}).str, std::to_string(kT0 + 2 * kB));
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "far"}).is_nil());

  // And it fires when it is due.
  DueTimers due;
  EXPECT_EQ(Take(wheel, wake + 250, &due), (Due{{"w", wake}}));
  EXPECT_EQ(due.lateness, std::vector<double>{0.25});
  EXPECT_FALSE(due.take) << "from the set, not a list";
}

TEST_F(TimerWheelTest, APastBucketsEntriesFireFromItsListOncePerCustomer) {
  TimerWheel wheel(keys_, limits_);
  const int64_t past = kT0 - 3 * kB;
  InBucket("p", past + 1000);
  InBucket("q", past + 2000);
  InBucket("p", past + 3000);  // an old entry of a wake that changed
  InTimers("s", kT0 + 50);     // due in the set too
  const int64_t now = kT0 + 100000;
  DueTimers due;
  EXPECT_EQ(Take(wheel, now, &due), (Due{{"p", past + 1000}, {"q", past + 2000}}));
  EXPECT_EQ(error_, "");
  ASSERT_TRUE(due.take);
  EXPECT_EQ(due.take->bucket, std::to_string(past));
  EXPECT_EQ(due.take->entries, 3u) << "the commit trims every entry it looked at";
  EXPECT_EQ(due.lateness,
            (std::vector<double>{(now - past - 1000) / 1000.0, (now - past - 2000) / 1000.0}));
  EXPECT_EQ(NextWake(wheel), now) << "more may be due";
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "p"}).is_nil()) << "not moved into the set";
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket(std::to_string(past))}).integer, 3)
      << "left for the commit";

  // Once the commit trimmed them, the bucket leaves the wheel and the set's due member fires.
  Cmd({"LTRIM", keys_.wheel_bucket(std::to_string(past)), "3", "-1"});
  due = {};
  EXPECT_EQ(Take(wheel, now, &due), (Due{{"s", kT0 + 50}}));
  EXPECT_FALSE(due.take);
  EXPECT_EQ(Cmd({"ZCARD", keys_.wheel()}).integer, 0);
}

TEST_F(TimerWheelTest, APastBucketIsFiredInSlicesOfATake) {
  TimerWheel wheel(keys_, WheelLimits{.take = 2, .move = 2000, .tick_ms = 0});
  const int64_t past = kT0 - kB;
  for (int i = 0; i < 3; ++i) InBucket("c" + std::to_string(i), past + i);
  DueTimers due;
  EXPECT_EQ(Take(wheel, kT0 + 10, &due).size(), 2u);
  ASSERT_TRUE(due.take);
  EXPECT_EQ(due.take->entries, 2u);
  Cmd({"LTRIM", keys_.wheel_bucket(std::to_string(past)), "2", "-1"});
  due = {};
  EXPECT_EQ(Take(wheel, kT0 + 10, &due), (Due{{"c2", past + 2}}));
  ASSERT_TRUE(due.take);
  EXPECT_EQ(due.take->entries, 1u);
}

TEST_F(TimerWheelTest, AStaleTokenRefusesTheMove) {
  TimerWheel wheel(keys_, limits_);
  InBucket("w", kT0 + kB + 5);
  InTimers("a", kT0 + 1);
  EXPECT_EQ(Take(wheel, kT0 + 100, nullptr, "6"), Due{});
  EXPECT_NE(error_.find("STALE"), std::string::npos) << error_;
  EXPECT_FALSE(wheel.wheel_moved());
  EXPECT_TRUE(Cmd({"GET", keys_.wheel_moved()}).is_nil());
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket(std::to_string(kT0 + kB))}).integer, 1);
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "w"}).is_nil());

  // With the lease's token it moves; after Reset it moves again before it takes.
  EXPECT_EQ(Take(wheel, kT0 + 100), (Due{{"a", kT0 + 1}}));
  EXPECT_EQ(Score("w"), std::to_string(kT0 + kB + 5));
  wheel.Reset();
  EXPECT_FALSE(wheel.wheel_moved());
  Cmd({"SET", keys_.lease(), "8"});
  EXPECT_EQ(Take(wheel, kT0 + 100), Due{});
  EXPECT_NE(error_.find("STALE"), std::string::npos) << "a Reset wheel moves first: " << error_;
}

}  // namespace
}  // namespace journeyd::store
