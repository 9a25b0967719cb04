#include <gtest/gtest.h>

#include "journeyd/app/daemon.h"

namespace journeyd::app {
namespace {

TEST(WorkerThreads, OnePerCoreUpToThePartitions) {
  EXPECT_EQ(WorkerThreads(0, 2, 4), 2);
  EXPECT_EQ(WorkerThreads(0, 8, 16), 8);
  EXPECT_EQ(WorkerThreads(0, 8, 3), 3);
  EXPECT_EQ(WorkerThreads(0, 8, 1), 1);
}

TEST(WorkerThreads, TheConfiguredNumberWinsUpToThePartitions) {
  EXPECT_EQ(WorkerThreads(1, 2, 4), 1);
  EXPECT_EQ(WorkerThreads(3, 8, 16), 3);
  EXPECT_EQ(WorkerThreads(4, 2, 4), 4);  // more threads than cores, if asked for
  EXPECT_EQ(WorkerThreads(16, 2, 4), 4);
}

TEST(WorkerThreads, NeverFewerThanOne) {
  EXPECT_EQ(WorkerThreads(0, 0, 4), 1);  // the core count unknown
  EXPECT_EQ(WorkerThreads(0, 4, 0), 1);
}

}  // namespace
}  // namespace journeyd::app
