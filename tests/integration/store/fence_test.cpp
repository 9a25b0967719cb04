// The WATCH fence of the bulk commit (store/fence.h) against a real redis-server: a commit goes
// through while the lease and wheel_moved hold; it is refused, and nothing of it lands, when
// either is not this instance's or changes between the check and EXEC.
#include "journeyd/store/fence.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>

#include "redis_pair.h"

namespace journeyd::store {
namespace {

namespace asio = boost::asio;

class FenceTest : public RedisPair {
 protected:
  void SetUp() override {
    RedisPair::SetUp();
    if (HasFatalFailure()) return;
    Set("journeyd:{0}:lease", "token-1");
    Set("journeyd:{0}:wheel_moved", "5000000");
  }

  std::vector<Result> All(std::vector<RespCommand> commands) {
    std::optional<std::vector<Result>> out;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<std::vector<Result>> {
          co_return co_await CallAll(*conn_, commands);
        },
        [&](std::exception_ptr, std::vector<Result> r) { out = std::move(r); });
    Run([&] { return out.has_value(); });
    return out.value_or(std::vector<Result>{});
  }

  Reply Do(const std::vector<std::string>& cmd) {
    std::string err;
    auto r = other_->Command(cmd, &err);
    EXPECT_TRUE(r) << err;
    return r.value_or(Reply{});
  }
  void Set(const std::string& k, const std::string& v) { Do({"SET", k, v}); }
  std::string Get(const std::string& k) { return Do({"GET", k}).str; }

  // Check, then commit SET effect=<value>: the error, or "" when EXEC ran it.
  std::string Commit(const Fence& f, const std::string& value,
                     const std::function<void()>& between = {}) {
    std::string why = FenceCheck(f, All(FenceWatch(f)));
    if (!why.empty()) {
      std::vector<RespCommand> unwatch;
      unwatch.push_back(RespCommand::Of({"UNWATCH"}));
      All(std::move(unwatch));
      return why;
    }
    if (between) between();
    std::vector<RespCommand> body;
    body.push_back(RespCommand::Of({"SET", "effect", value}));
    body.push_back(RespCommand::Of({"XADD", "journeyd:{0}:outbox", "*", "job_id", value}));
    const Reply* exec = nullptr;
    const std::vector<Result> replies = All(InTransaction(std::move(body)));  // exec points in
    why = TransactionError(replies, &exec);
    if (why.empty()) {
      EXPECT_EQ(exec->elements.size(), 2u);
    }
    return why;
  }

  const Fence fence_{"journeyd:{0}:lease", "token-1", "journeyd:{0}:wheel_moved", 5000000};
};

TEST_F(FenceTest, CommitsWhileTheLeaseAndTheWheelHold) {
  EXPECT_EQ(Commit(fence_, "a"), "");
  EXPECT_EQ(Get("effect"), "a");
  EXPECT_EQ(Commit(fence_, "b"), "");  // and again: the WATCH ended with the EXEC
  EXPECT_EQ(Get("effect"), "b");
}

TEST_F(FenceTest, RefusesAnotherOwnersLeaseOrAMovedWheel) {
  Fence stale = fence_;
  stale.token = "token-0";
  EXPECT_EQ(Commit(stale, "a").rfind("STALE", 0), 0u);
  Fence behind = fence_;
  behind.wheel_moved = 4000000;
  EXPECT_EQ(Commit(behind, "a").rfind("WHEEL", 0), 0u);
  Set("journeyd:{0}:wheel_moved", "");
  Do({"DEL", "journeyd:{0}:lease"});
  EXPECT_EQ(Commit(fence_, "a").rfind("STALE", 0), 0u);
  EXPECT_EQ(Get("effect"), "");
  // After a refusal (and its UNWATCH) the connection commits normally again.
  Set("journeyd:{0}:lease", "token-1");
  Set("journeyd:{0}:wheel_moved", "5000000");
  EXPECT_EQ(Commit(fence_, "c"), "");
  EXPECT_EQ(Get("effect"), "c");
}

TEST_F(FenceTest, ALeaseTakenBetweenTheCheckAndExecLandsNothing) {
  std::string why = Commit(fence_, "a", [&] { Set("journeyd:{0}:lease", "token-2"); });
  EXPECT_EQ(why.rfind("STALE", 0), 0u) << why;
  EXPECT_EQ(Get("effect"), "");
  EXPECT_EQ(Do({"XLEN", "journeyd:{0}:outbox"}).integer, 0);
  // Even the same value written again counts as a change.
  Set("journeyd:{0}:lease", "token-1");
  why = Commit(fence_, "b", [&] { Set("journeyd:{0}:wheel_moved", "5000000"); });
  EXPECT_EQ(why.rfind("STALE", 0), 0u) << why;
  EXPECT_EQ(Get("effect"), "");
}

TEST_F(FenceTest, AnErrorInTheTransactionIsReported) {
  Do({"RPUSH", "effect", "a-list"});
  std::vector<RespCommand> body;
  body.push_back(RespCommand::Of({"INCR", "effect"}));  // WRONGTYPE at EXEC time
  const Reply* exec = nullptr;
  ASSERT_EQ(FenceCheck(fence_, All(FenceWatch(fence_))), "");
  std::string why = TransactionError(All(InTransaction(std::move(body))), &exec);
  EXPECT_NE(why.find("WRONGTYPE"), std::string::npos) << why;
  body.clear();
  body.push_back(RespCommand::Of({"NOSUCHCOMMAND"}));  // refused while queuing: nothing runs
  why = TransactionError(All(InTransaction(std::move(body))), &exec);
  EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace journeyd::store
