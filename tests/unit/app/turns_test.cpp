#include "journeyd/app/turns.h"

#include <gtest/gtest.h>

namespace journeyd::app {
namespace {

using Clock = DeliveryTurns::Clock;
using std::chrono::milliseconds;

TEST(DeliveryTurns, TheSenderNeverWaitsForAWorkerThatIsNotBehind) {
  DeliveryTurns turns(milliseconds(1000));
  const Clock::time_point t0{};
  for (int ms = 0; ms < 5000; ms += 10) EXPECT_FALSE(turns.Yield(false, t0 + milliseconds(ms)));
}

TEST(DeliveryTurns, ABacklogIsWorkedFirstForATurnThenTheyAlternate) {
  DeliveryTurns turns(milliseconds(1000));
  const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  EXPECT_TRUE(turns.Yield(true, at(0)));
  EXPECT_TRUE(turns.Yield(true, at(999)));
  EXPECT_FALSE(turns.Yield(true, at(1000)));  // a turn of waiting is over: delivery's turn
  EXPECT_FALSE(turns.Yield(true, at(1500)));
  EXPECT_FALSE(turns.Yield(true, at(1999)));
  EXPECT_TRUE(turns.Yield(true, at(2000)));  // the backlog's turn again
  EXPECT_TRUE(turns.Yield(true, at(2999)));
  EXPECT_FALSE(turns.Yield(true, at(3000)));
}

TEST(DeliveryTurns, AWaitEndsWithTheBacklogAndTheNextStartsAfresh) {
  DeliveryTurns turns(milliseconds(1000));
  const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  EXPECT_TRUE(turns.Yield(true, at(0)));
  EXPECT_TRUE(turns.Yield(true, at(800)));
  EXPECT_FALSE(turns.Yield(false, at(900)));  // caught up
  EXPECT_TRUE(turns.Yield(true, at(1000)));   // a new backlog: a whole turn of its own
  EXPECT_TRUE(turns.Yield(true, at(1900)));
  EXPECT_FALSE(turns.Yield(true, at(2000)));
}

}  // namespace
}  // namespace journeyd::app
