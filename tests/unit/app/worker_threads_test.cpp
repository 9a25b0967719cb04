#include <gtest/gtest.h>

#include "journeyd/app/daemon.h"

namespace journeyd::app {
namespace {

TEST(WorkerThreads, ARemoteRedisLeavesEveryCoreToTheWorkers) {
  EXPECT_EQ(WorkerThreads(0, 8, 16, "10.0.0.5"), 8);
  EXPECT_EQ(WorkerThreads(0, 2, 4, "redis.internal"), 2);
  EXPECT_EQ(WorkerThreads(0, 2, 4, "2001:db8::1"), 2);
}

TEST(WorkerThreads, ALocalRedisKeepsACoreOfItsOwn) {
  EXPECT_EQ(WorkerThreads(0, 2, 4, "127.0.0.1"), 1);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "127.0.0.1"), 7);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "127.3.2.1"), 7);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "localhost"), 7);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "LocalHost"), 7);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "::1"), 7);
  EXPECT_EQ(WorkerThreads(0, 8, 16, "[::1]"), 7);
}

TEST(WorkerThreads, NeverMoreThreadsThanPartitionsNorFewerThanOne) {
  EXPECT_EQ(WorkerThreads(0, 8, 1, "10.0.0.5"), 1);
  EXPECT_EQ(WorkerThreads(0, 8, 3, "127.0.0.1"), 3);
  EXPECT_EQ(WorkerThreads(0, 1, 4, "127.0.0.1"), 1);
  EXPECT_EQ(WorkerThreads(0, 0, 4, "10.0.0.5"), 1);  // the core count unknown
  EXPECT_EQ(WorkerThreads(0, 4, 0, "10.0.0.5"), 1);
}

TEST(WorkerThreads, TheConfiguredNumberWinsUpToThePartitions) {
  EXPECT_EQ(WorkerThreads(2, 2, 4, "127.0.0.1"), 2);
  EXPECT_EQ(WorkerThreads(3, 8, 16, "10.0.0.5"), 3);
  EXPECT_EQ(WorkerThreads(16, 2, 4, "10.0.0.5"), 4);
}

}  // namespace
}  // namespace journeyd::app
