// A stale owner's commit, decided from Redis's replies alone: the fence read before the plan
// (FenceCheck) and the transaction's outcome (TransactionError).
#include <gtest/gtest.h>

#include <vector>

#include "journeyd/store/fence.h"

namespace journeyd::store {
namespace {

Result Str(std::string s) {
  Result r;
  r.reply.type = Reply::Type::kString;
  r.reply.str = std::move(s);
  return r;
}
Result Status() {
  Result r;
  r.reply.type = Reply::Type::kStatus;
  r.reply.str = "OK";
  return r;
}
Result Nil() { return Result{}; }

const Fence kFence{"journeyd:{0}:lease", "7", "journeyd:{0}:wheel_moved", 3000000};

TEST(FenceCheck, HoldsWhileTheLeaseHasOurTokenAndTheWheelStandsWhereWePlacedWakes) {
  std::vector<Result> replies = {Status(), Str("7"), Str("3000000"), Str("state bytes")};
  EXPECT_EQ(FenceCheck(kFence, replies), "");
}

TEST(FenceCheck, AStaleOwnerIsRefused) {
  // Another instance took the lease (a newer token), or it expired (nil).
  std::vector<Result> newer = {Status(), Str("8"), Str("3000000")};
  EXPECT_EQ(FenceCheck(kFence, newer).rfind("STALE", 0), 0u);
  std::vector<Result> expired = {Status(), Nil(), Str("3000000")};
  EXPECT_EQ(FenceCheck(kFence, expired).rfind("STALE", 0), 0u);
}

TEST(FenceCheck, AWheelMovedByAnotherInstanceIsRefused) {
  std::vector<Result> replies = {Status(), Str("7"), Str("4000000")};
  EXPECT_EQ(FenceCheck(kFence, replies).rfind("WHEEL", 0), 0u);
  // Never moved reads as 0, which is not where this instance placed the batch's wakes.
  std::vector<Result> never = {Status(), Str("7"), Nil()};
  EXPECT_EQ(FenceCheck(kFence, never).rfind("WHEEL", 0), 0u);
}

TEST(FenceCheck, AConnectionErrorIsNotMistakenForAFence) {
  std::vector<Result> replies = {Status(), Str("7"), Str("3000000")};
  replies[1].error = "connection lost";
  EXPECT_EQ(FenceCheck(kFence, replies), "fence: connection lost");
  EXPECT_EQ(FenceCheck(kFence, std::vector<Result>{Status()}), "fence: missing replies");
}

TEST(TransactionError, ANilExecIsAStaleOwnerWhoseEffectsDidNotLand) {
  std::vector<Result> replies = {Status(), Str("QUEUED"), Nil()};
  const Reply* exec = nullptr;
  EXPECT_EQ(TransactionError(replies, &exec).rfind("STALE", 0), 0u);
  EXPECT_EQ(exec, nullptr);
}

TEST(TransactionError, AnExecWithRepliesIsCommitted) {
  Result exec_reply;
  exec_reply.reply.type = Reply::Type::kArray;
  exec_reply.reply.elements.resize(1);
  exec_reply.reply.elements[0].type = Reply::Type::kInteger;
  exec_reply.reply.elements[0].integer = 3;
  std::vector<Result> replies = {Status(), Str("QUEUED"), exec_reply};
  const Reply* exec = nullptr;
  EXPECT_EQ(TransactionError(replies, &exec), "");
  ASSERT_NE(exec, nullptr);
  EXPECT_EQ(exec->elements[0].integer, 3);
}

}  // namespace
}  // namespace journeyd::store
