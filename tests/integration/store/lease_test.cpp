// A partition's lease (store/lease.h) against a real redis-server: one owner at a time, a new
// and higher fencing token for each owner, renewal and release only while the lease is ours.
#include "journeyd/store/lease.h"

#include <gtest/gtest.h>

#include <string>

#include "store_fixture.h"

namespace journeyd::store {
namespace {

class LeaseTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    other_conn_ = Connect();
  }

  // One attempt to take `lease` for an instance on `conn`: whether it was taken.
  bool Take(Lease& lease, RedisConnection& conn) {
    bool taken = false;
    EXPECT_EQ(Await(lease.TryTake(conn, &taken)), "");
    return taken;
  }
  // Tries until the lease is taken, at most `limit` long.
  bool TakeWithin(Lease& lease, RedisConnection& conn, Duration limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (Take(lease, conn)) return true;
      Pass(Duration{20});
    }
    return false;
  }
  std::string Holder() { return Cmd({"GET", keys_.lease()}).str; }
  int64_t Ttl() { return Cmd({"PTTL", keys_.lease()}).integer; }

  std::shared_ptr<RedisConnection> other_conn_;  // the other instance's
};

TEST_F(LeaseTest, AFreeLeaseIsTakenWithATokenAndExpires) {
  Lease mine(keys_, 300);
  EXPECT_EQ(mine.token(), "");
  ASSERT_TRUE(Take(mine, *conn_));
  EXPECT_FALSE(mine.token().empty());
  EXPECT_EQ(Holder(), mine.token());
  EXPECT_EQ(Cmd({"GET", keys_.fence()}).str, mine.token()) << "the token is the fence's INCR";
  const int64_t ttl = Ttl();
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 300);
}

TEST_F(LeaseTest, AnotherInstanceGetsItOnlyOnceItExpiredWithAHigherToken) {
  Lease mine(keys_, 300);
  Lease theirs(keys_, 300);
  ASSERT_TRUE(Take(mine, *conn_));
  const std::string first = mine.token();
  EXPECT_FALSE(Take(theirs, *other_conn_)) << "held";
  EXPECT_EQ(theirs.token(), "");
  EXPECT_EQ(Holder(), first);
  ASSERT_TRUE(TakeWithin(theirs, *other_conn_, Duration{10000})) << "never expired";
  EXPECT_GT(std::stoll(theirs.token()), std::stoll(first));
  EXPECT_EQ(Holder(), theirs.token());
  EXPECT_FALSE(Take(mine, *conn_)) << "now theirs";
  EXPECT_EQ(mine.token(), first) << "a failed take keeps the last token";
}

TEST_F(LeaseTest, RenewingKeepsItPastItsFirstExpiry) {
  Lease mine(keys_, 2000);
  Lease theirs(keys_, 2000);
  ASSERT_TRUE(Take(mine, *conn_));
  // Renewal sets the whole length again.
  Cmd({"PEXPIRE", keys_.lease(), "100"});
  EXPECT_EQ(Await(mine.Renew(*conn_)), "");
  EXPECT_GT(Ttl(), 1000);
  // Renewed every 200 ms for longer than the lease: it never lapses.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2600);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(Await(mine.Renew(*conn_)), "");
    Pass(Duration{200});
  }
  EXPECT_EQ(Holder(), mine.token());
  EXPECT_FALSE(Take(theirs, *other_conn_));
}

TEST_F(LeaseTest, RenewingALeaseAnotherInstanceTookSaysLost) {
  Lease mine(keys_, 300);
  Lease theirs(keys_, 60000);
  ASSERT_TRUE(Take(mine, *conn_));
  ASSERT_TRUE(TakeWithin(theirs, *other_conn_, Duration{10000}));
  EXPECT_EQ(Await(mine.Renew(*conn_)), "lost the lease to another instance");
  EXPECT_EQ(Holder(), theirs.token());
  EXPECT_GT(Ttl(), 1000) << "their lease's length, not ours";
  // And once nobody holds it, a renewal does not bring it back either.
  Cmd({"DEL", keys_.lease()});
  EXPECT_EQ(Await(mine.Renew(*conn_)), "lost the lease to another instance");
  EXPECT_EQ(Cmd({"EXISTS", keys_.lease()}).integer, 0);
}

TEST_F(LeaseTest, ReleaseDropsOnlyOurOwnLease) {
  Lease mine(keys_, 300);
  Lease theirs(keys_, 60000);
  Await(mine.Release(*conn_));  // never taken: nothing to do
  ASSERT_TRUE(Take(mine, *conn_));
  Await(mine.Release(*conn_));
  EXPECT_EQ(Cmd({"EXISTS", keys_.lease()}).integer, 0);
  EXPECT_TRUE(Take(theirs, *other_conn_)) << "free at once, without waiting for the expiry";

  // A stale owner's release leaves the new owner's lease.
  Cmd({"DEL", keys_.lease()});
  ASSERT_TRUE(Take(mine, *conn_));
  ASSERT_TRUE(TakeWithin(theirs, *other_conn_, Duration{10000}));
  Await(mine.Release(*conn_));
  EXPECT_EQ(Holder(), theirs.token());
  EXPECT_GT(Ttl(), 1000);
}

}  // namespace
}  // namespace journeyd::store
