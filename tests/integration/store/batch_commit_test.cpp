// The batch commit (store/commit.h) end to end against a real redis-server, as the partition
// worker runs it: entries read from the event stream into an engine::Batch, the states read
// behind the fence, the plan of the shipped flows (engine::PlanBatch), the write; then what
// landed in Redis. Fresh batches once the wheel moved go in bulk (MULTI/EXEC), replays through
// the commit script; a replay changes nothing twice, a stale owner changes nothing at all.
#include "journeyd/store/commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "journeyd/engine/batch.h"
#include "journeyd/engine/state.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/store/events.h"
#include "journeyd/store/lease.h"
#include "journeyd/store/wheel.h"
#include "store_fixture.h"

namespace journeyd::store {
namespace {

using engine::Batch;

const std::string kProfile =
    R"({"email":"anna@example.com","first_name":"Anna","email_opt_in":true})";

std::shared_ptr<const flow::FlowSet> ShippedFlows() {
  static const std::shared_ptr<const flow::FlowSet> flows = [] {
    auto r = host::LoadFlowDirectory(std::string(JOURNEYD_SOURCE_DIR) + "/flows");
    for (const auto& d : r.diagnostics.all()) ADD_FAILURE() << d.ToString();
    return r.flows;
  }();
  return flows;
}

// The ms of a stream entry's id.
int64_t IdMillis(const std::string& id) { return std::stoll(id.substr(0, id.find('-'))); }

class BatchCommitTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    flows_ = ShippedFlows();
    ASSERT_TRUE(flows_);
    bool taken = false;
    ASSERT_EQ(Await(lease_.TryTake(*conn_, &taken)), "");
    ASSERT_TRUE(taken);
    ASSERT_EQ(Await(events_.EnsureGroup(*conn_)), "");
    ASSERT_EQ(Await(committer_.LoadScript(*conn_)), "");
    policy_.render_mail = false;  // as the daemon: the outbox sender renders
  }

  static TimePoint RealNow() {
    return std::chrono::floor<Duration>(std::chrono::system_clock::now());
  }
  std::string Signup(const std::string& customer) {
    return Publish({"type", "signup", "customer_id", customer, "profile", kProfile});
  }

  // A bulk commit's context: the wheel moved at `now` under our lease.
  CommitContext Bulk(TimePoint now) {
    TimerWheel wheel(keys_);
    Batch scratch;
    DueTimers due;
    EXPECT_EQ(Await(wheel.TakeDue(*conn_, lease_.token(), now, &scratch, &due)), "");
    return CommitContext{CommitMode::kFresh, lease_.token(), wheel.wheel_moved()};
  }
  CommitContext Replay() const { return CommitContext{CommitMode::kReplay, lease_.token(), {}}; }

  using Fields = std::vector<std::pair<std::string, std::string>>;
  using Read = std::vector<std::pair<std::string, Fields>>;  // entries as read: id, fields

  // Reads the new entries into the batch (as a fresh read would); the entries read.
  Read ReadNew(TimePoint now) {
    Result r = Await(events_.ReadNew(*conn_, 100));
    EXPECT_TRUE(r.ok()) << r.what();
    Read read;
    if (const Reply* entries = StreamEntries(r.reply)) {
      ForEachEntry(*entries, [&](std::string_view id, const auto& fields) {
        batch_.AddEntry(id, fields, now);
        read.emplace_back(std::string(id), Fields(fields.begin(), fields.end()));
      });
    }
    return read;
  }
  // Adds entries read before to the batch again (a replay, or a batch built anew).
  void AddAgain(const Read& read, TimePoint now) {
    for (const auto& [id, fields] : read) {
      std::vector<engine::FieldView> views(fields.begin(), fields.end());
      batch_.AddEntry(id, views, now);
    }
  }
  void Refill(const Read& read, TimePoint now) {
    batch_.Clear();
    AddAgain(read, now);
  }

  // Read states → plan → write, as the worker commits the batch.
  CommitOutcome Commit(const CommitContext& context, TimePoint now,
                       const WheelTake* take = nullptr) {
    bool stale = false;
    read_error_ = Await(committer_.ReadStates(*conn_, context, batch_, &stale));
    read_stale_ = stale;
    if (!read_error_.empty()) return CommitOutcome{read_error_, stale, {}, 0};
    engine::PlanBatch(*flows_, policy_, now, engine::PlanOptions{}, &batch_);
    return Await(committer_.Write(*conn_, context, batch_, take));
  }

  // `customer` signed up and committed in bulk: the wake of the welcome series' first wait.
  int64_t SignedUp(const std::string& customer) {
    const std::string entry = Signup(customer);
    const TimePoint now = RealNow();
    ReadNew(now);
    EXPECT_EQ(Commit(Bulk(now), now).error, "");
    return IdMillis(entry) + 3 * kDay.count();
  }
  // The timers due at `now` into a fresh batch.
  std::string TakeDue(TimerWheel& wheel, TimePoint now, DueTimers* due) {
    batch_.Clear();
    return Await(wheel.TakeDue(*conn_, lease_.token(), now, &batch_, due));
  }

  engine::CustomerState State(const std::string& customer) {
    engine::CustomerState st;
    const Reply r = Cmd({"GET", keys_.customer(customer)});
    std::string err;
    EXPECT_FALSE(r.is_nil()) << customer << " has no state";
    if (!r.is_nil()) {
      EXPECT_TRUE(engine::DecodeState(r.str, &st, &err)) << err;
    }
    return st;
  }
  std::map<std::string, int64_t> Stats() {
    std::map<std::string, int64_t> m;
    const Reply r = Cmd({"HGETALL", keys_.stats()});
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
      m[r.elements[i].str] = std::stoll(r.elements[i + 1].str);
    }
    return m;
  }
  // The batch's planned counts of the customers not skipped.
  std::map<std::string, int64_t> PlannedCounts(const std::vector<bool>& skipped) {
    std::map<std::string, int64_t> m;
    const auto customers = batch_.customers();
    for (size_t i = 0; i < customers.size(); ++i) {
      if (i < skipped.size() && skipped[i]) continue;
      for (const auto& [index, n] : customers[i].counts) m[batch_.counts()[index].first] += n;
    }
    return m;
  }
  static std::map<std::string, int64_t> Plus(std::map<std::string, int64_t> a,
                                             const std::map<std::string, int64_t>& b) {
    for (const auto& [k, v] : b) a[k] += v;
    return a;
  }
  std::vector<std::string> BucketOf(int64_t wake_ms) {
    return Strings(
        Cmd({"LRANGE", keys_.wheel_bucket(std::to_string(WheelBucket(wake_ms))), "0", "-1"}));
  }
  std::string Entry(const std::string& customer, int64_t wake_ms) {
    return std::to_string(wake_ms) + ":" + customer;
  }
  // Everything a commit can write, to compare before and after.
  std::vector<std::string> Snapshot() {
    std::vector<std::string> keys = Strings(Cmd({"KEYS", "*"}));
    std::sort(keys.begin(), keys.end());
    std::vector<std::string> out;
    for (const auto& k : keys) {
      if (k == keys_.fence()) continue;
      out.push_back(k + "=" + Cmd({"DUMP", k}).str);
    }
    out.push_back("pending=" + std::to_string(PendingCount()));
    return out;
  }

  std::shared_ptr<const flow::FlowSet> flows_;
  engine::Policy policy_;
  Lease lease_{keys_, 60000};
  const EventStream events_{keys_, "me"};
  BatchCommitter committer_{keys_};
  Batch batch_;
  std::string read_error_;
  bool read_stale_ = false;
};

TEST_F(BatchCommitTest, AFreshBatchCommitsInBulk) {
  const std::string e1 = Signup("c1");
  const std::string e2 = Signup("c2");
  const std::string no_customer = Publish({"type", "signup", "profile", kProfile});
  const std::string bad_data = Publish({"type", "purchase", "customer_id", "c1", "data", "[1]"});
  const TimePoint now = RealNow();
  const CommitContext context = Bulk(now);
  ASSERT_TRUE(context.bulk());
  ASSERT_EQ(ReadNew(now).size(), 4u);
  ASSERT_EQ(batch_.customers().size(), 2u);
  ASSERT_EQ(batch_.dead().size(), 2u);
  const CommitOutcome out = Commit(context, now);
  ASSERT_EQ(out.error, "");
  EXPECT_FALSE(out.stale);
  EXPECT_EQ(out.skipped, (std::vector<bool>{false, false}));
  EXPECT_EQ(out.already_acked, 0);

  EXPECT_EQ(PendingCount(), 0) << "every entry acknowledged, the dead ones too";
  // The customers' states: in the welcome series, waiting three days from their signup.
  for (const auto& [customer, entry] : {std::pair{"c1", e1}, std::pair{"c2", e2}}) {
    const engine::CustomerState st = State(customer);
    ASSERT_EQ(st.journeys.size(), 1u) << customer;
    EXPECT_EQ(st.journeys[0].flow, "welcome");
    ASSERT_TRUE(st.wake) << customer;
    const int64_t wake = ToUnixMillis(*st.wake);
    EXPECT_EQ(wake, IdMillis(entry) + 3 * kDay.count());
    // Far beyond the buckets moved: in its wheel bucket, not in the timers set.
    EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), customer}).is_nil());
    const std::vector<std::string> bucket = BucketOf(wake);
    EXPECT_EQ(std::count(bucket.begin(), bucket.end(), Entry(customer, wake)), 1) << customer;
    EXPECT_FALSE(Cmd({"ZSCORE", keys_.wheel(), std::to_string(WheelBucket(wake))}).is_nil());
  }
  // One thank-you mail each.
  const auto outbox = Range(keys_.outbox());
  ASSERT_EQ(outbox.size(), 2u);
  std::vector<std::string> to;
  for (const auto& [id, f] : outbox) {
    to.push_back(f.at("customer_id"));
    EXPECT_EQ(f.at("flow"), "welcome");
    EXPECT_EQ(f.at("to"), "anna@example.com");
    EXPECT_NE(f.at("job").find(R"("template":"welcome_thanks")"), std::string::npos) << f.at("job");
  }
  EXPECT_EQ(to, (std::vector<std::string>{"c1", "c2"}));
  // The dead letters, with their fields, `error` and `source_id`.
  std::map<std::string, std::map<std::string, std::string>> dead;
  for (const auto& [id, f] : Range(keys_.dead())) dead[f.at("source_id")] = f;
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[no_customer]["type"], "signup");
  EXPECT_EQ(dead[no_customer]["profile"], kProfile);
  EXPECT_NE(dead[no_customer]["error"].find("customer_id"), std::string::npos)
      << dead[no_customer]["error"];
  EXPECT_EQ(dead[bad_data]["data"], "[1]");
  EXPECT_NE(dead[bad_data]["error"].find("data"), std::string::npos) << dead[bad_data]["error"];
  // The journey counts, once.
  EXPECT_FALSE(batch_.counts().empty());
  EXPECT_EQ(Stats(), PlannedCounts({}));
}

TEST_F(BatchCommitTest, AReplaySkipsWhatWasCommittedAndWritesNothingTwice) {
  Signup("c1");
  const std::string bad = Publish({"type", "signup"});
  TimePoint now = RealNow();
  const auto first = ReadNew(now);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(Commit(Bulk(now), now).error, "");
  const std::string c1_state = Cmd({"GET", keys_.customer("c1")}).str;
  const std::map<std::string, int64_t> stats = Stats();
  const int64_t c1_wake = ToUnixMillis(*State("c1").wake);

  // A worker that crashed after the commit reads its entries again, with one never committed.
  Signup("c2");
  now = RealNow();
  batch_.Clear();
  const Read second = ReadNew(now);  // c2's: pending, not committed
  ASSERT_EQ(second.size(), 1u);
  Refill(first, now);
  AddAgain(second, now);
  ASSERT_EQ(batch_.customers().size(), 2u);
  CommitOutcome out = Commit(Replay(), now);
  ASSERT_EQ(out.error, "");
  EXPECT_EQ(out.skipped, (std::vector<bool>{true, false})) << "c1 committed before, c2 not";
  EXPECT_EQ(PendingCount(), 0);
  EXPECT_EQ(Cmd({"GET", keys_.customer("c1")}).str, c1_state);
  EXPECT_EQ(State("c2").journeys.size(), 1u);
  const auto outbox = Range(keys_.outbox());
  ASSERT_EQ(outbox.size(), 2u) << "c1's mail once, c2's";
  EXPECT_EQ(outbox.rbegin()->second.at("customer_id"), "c2");
  EXPECT_EQ(Range(keys_.dead()).size(), 1u) << "the dead letter once";
  EXPECT_EQ(Range(keys_.dead()).begin()->second.at("source_id"), bad);
  const std::vector<std::string> bucket = BucketOf(c1_wake);
  EXPECT_EQ(std::count(bucket.begin(), bucket.end(), Entry("c1", c1_wake)), 1);
  EXPECT_EQ(Stats(), Plus(stats, PlannedCounts(out.skipped))) << "only c2's counts added";

  // All of it once more: every customer skipped, nothing changes at all.
  const std::vector<std::string> before = Snapshot();
  Refill(first, now);
  AddAgain(second, now);
  out = Commit(Replay(), now);
  ASSERT_EQ(out.error, "");
  EXPECT_EQ(out.skipped, (std::vector<bool>{true, true}));
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(BatchCommitTest, AStaleOwnerWritesNothingInBulk) {
  Signup("c1");
  Publish({"type", "signup"});
  const TimePoint now = RealNow();
  const CommitContext context = Bulk(now);
  const Read read = ReadNew(now);
  const std::vector<std::string> before = Snapshot();

  // Another instance took the partition before the states were read: refused there.
  Cmd({"SET", keys_.lease(), "999"});
  CommitOutcome out = Commit(context, now);
  EXPECT_TRUE(read_stale_);
  EXPECT_EQ(read_error_.rfind("commit refused: STALE", 0), 0u) << read_error_;
  Cmd({"SET", keys_.lease(), lease_.token()});
  EXPECT_EQ(Snapshot(), before);

  // Or between the read and the write: EXEC refuses the whole transaction.
  Refill(read, now);
  bool stale = false;
  ASSERT_EQ(Await(committer_.ReadStates(*conn_, context, batch_, &stale)), "");
  engine::PlanBatch(*flows_, policy_, now, engine::PlanOptions{}, &batch_);
  Cmd({"SET", keys_.lease(), "999"});
  out = Await(committer_.Write(*conn_, context, batch_, nullptr));
  EXPECT_TRUE(out.stale);
  EXPECT_EQ(out.error.rfind("commit refused: STALE", 0), 0u) << out.error;
  Cmd({"SET", keys_.lease(), lease_.token()});
  EXPECT_EQ(Snapshot(), before);

  // A wheel moved without us is refused too, though the lease is ours.
  Refill(read, now);
  Cmd({"SET", keys_.wheel_moved(), std::to_string(*context.wheel_moved + kWheelBucketMs)});
  out = Commit(context, now);
  EXPECT_FALSE(read_stale_);
  EXPECT_EQ(read_error_.rfind("commit refused: WHEEL", 0), 0u) << read_error_;
  Cmd({"SET", keys_.wheel_moved(), std::to_string(*context.wheel_moved)});
  EXPECT_EQ(Snapshot(), before);

  // The connection commits normally afterwards.
  Refill(read, now);
  EXPECT_EQ(Commit(context, now).error, "");
  EXPECT_EQ(PendingCount(), 0);
  EXPECT_EQ(Range(keys_.outbox()).size(), 1u);
}

TEST_F(BatchCommitTest, AStaleOwnerWritesNothingThroughTheScript) {
  Signup("c1");
  Publish({"type", "signup"});
  const TimePoint now = RealNow();
  const Read read = ReadNew(now);
  Cmd({"SET", keys_.lease(), "999"});
  const std::vector<std::string> before = Snapshot();
  for (CommitMode mode : {CommitMode::kFresh, CommitMode::kReplay}) {
    Refill(read, now);
    const CommitContext context{mode, lease_.token(), {}};
    ASSERT_FALSE(context.bulk());
    const CommitOutcome out = Commit(context, now);
    EXPECT_EQ(read_error_, "") << "not fenced before the script";
    EXPECT_TRUE(out.stale);
    EXPECT_EQ(out.error.rfind("commit refused: STALE", 0), 0u) << out.error;
    EXPECT_EQ(Snapshot(), before);
  }
}

TEST_F(BatchCommitTest, ATimerMovedIntoTheSetFiresTheNextStep) {
  const int64_t wake = SignedUp("c1");
  // Three days later the wheel moves the wake into the timers set, and it is due.
  const TimePoint now = FromUnixMillis(wake);
  TimerWheel wheel(keys_);
  DueTimers due;
  ASSERT_EQ(TakeDue(wheel, now, &due), "");
  ASSERT_EQ(due.count, 1u);
  EXPECT_FALSE(due.take);
  const CommitContext context{CommitMode::kFresh, lease_.token(), wheel.wheel_moved()};
  ASSERT_EQ(Commit(context, now).error, "");
  // The tips mail, and the next wait (four days) in its bucket; out of the set.
  const auto outbox = Range(keys_.outbox());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_NE(outbox.rbegin()->second.at("job").find(R"("template":"welcome_tips")"),
            std::string::npos);
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.timers(), "c1"}).is_nil());
  const int64_t next = ToUnixMillis(*State("c1").wake);
  EXPECT_EQ(next, wake + 4 * kDay.count());
  EXPECT_EQ(BucketOf(next), std::vector<std::string>{Entry("c1", next)});
}

TEST_F(BatchCommitTest, ATimerFiredFromAPastBucketIsTrimmedByItsCommit) {
  const int64_t wake = SignedUp("c1");
  const std::string bucket = std::to_string(WheelBucket(wake));
  // The next owner comes when the bucket is over: it fires from the list.
  const TimePoint now = FromUnixMillis(wake + 2 * kWheelBucketMs);
  TimerWheel wheel(keys_);
  DueTimers due;
  ASSERT_EQ(TakeDue(wheel, now, &due), "");
  ASSERT_TRUE(due.take);
  EXPECT_EQ(due.take->bucket, bucket);
  ASSERT_EQ(due.count, 1u);
  const CommitContext context{CommitMode::kFresh, lease_.token(), wheel.wheel_moved()};
  // Only a bulk commit can trim a take.
  const CommitContext script{CommitMode::kReplay, lease_.token(), {}};
  EXPECT_NE(Await(committer_.Write(*conn_, script, batch_, &*due.take)).error, "");
  ASSERT_EQ(Commit(context, now, &*due.take).error, "");
  EXPECT_EQ(Cmd({"LLEN", keys_.wheel_bucket(bucket)}).integer, 0);
  EXPECT_EQ(Range(keys_.outbox()).size(), 2u) << "the tips mail";
  // The emptied bucket leaves the wheel with the next take; nothing fires twice.
  due = {};
  ASSERT_EQ(TakeDue(wheel, now, &due), "");
  EXPECT_EQ(due.count, 0u);
  EXPECT_TRUE(Cmd({"ZSCORE", keys_.wheel(), bucket}).is_nil());
}

}  // namespace
}  // namespace journeyd::store
