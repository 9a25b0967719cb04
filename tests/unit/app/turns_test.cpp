#include "journeyd/app/turns.h"

#include <gtest/gtest.h>

namespace journeyd::app {
namespace {

using Clock = DeliveryTurns::Clock;
using std::chrono::milliseconds;

// `ms` milliseconds into a steady clock well past its epoch.
Clock::time_point At(int ms) {
  return Clock::time_point{} + std::chrono::hours(1) + milliseconds(ms);
}

TEST(DeliveryTurns, TheSenderNeverWaitsForAWorkerThatIsNotBehind) {
  DeliveryTurns turns(milliseconds(1000));
  for (int ms = 0; ms < 5000; ms += 10) EXPECT_FALSE(turns.Yield(false, At(ms)));
}

TEST(DeliveryTurns, ABacklogIsWorkedFirstForATurnThenTheyAlternate) {
  DeliveryTurns turns(milliseconds(1000));
  EXPECT_TRUE(turns.Yield(true, At(0)));
  EXPECT_TRUE(turns.Yield(true, At(999)));
  EXPECT_FALSE(turns.Yield(true, At(1000)));  // a turn of waiting is over: delivery's turn
  EXPECT_FALSE(turns.Yield(true, At(1500)));
  EXPECT_FALSE(turns.Yield(true, At(1999)));
  EXPECT_TRUE(turns.Yield(true, At(2000)));  // the backlog's turn again
  EXPECT_TRUE(turns.Yield(true, At(2999)));
  EXPECT_FALSE(turns.Yield(true, At(3000)));
}

TEST(DeliveryTurns, AWaitEndsWithTheBacklogAndTheNextStartsAfresh) {
  DeliveryTurns turns(milliseconds(1000));
  EXPECT_TRUE(turns.Yield(true, At(0)));
  EXPECT_TRUE(turns.Yield(true, At(800)));
  EXPECT_FALSE(turns.Yield(false, At(900)));  // caught up
  EXPECT_TRUE(turns.Yield(true, At(1000)));   // a new backlog: a whole turn of its own
  EXPECT_TRUE(turns.Yield(true, At(1900)));
  EXPECT_FALSE(turns.Yield(true, At(2000)));
}

}  // namespace
}  // namespace journeyd::app
