// A batch commit of plain commands, fenced without a script.
//
// Scripts pay for every argument that crosses into Lua; a fresh batch's commit is hundreds of
// plain XACK/MSET/ZADD/XADD arguments that need no logic, only the fence. So the fence is
// optimistic: WATCH the lease and `wheel_moved`, read both in the same round trip as the
// customers' states, go on only while they hold this instance's token and the value it placed
// the batch's wakes by, then send the effects in MULTI ... EXEC. Redis refuses the EXEC (a
// nil reply) when either key changed after the WATCH, so a stale owner's effects never land,
// all or nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "journeyd/store/await.h"
#include "journeyd/store/resp.h"

namespace journeyd::store {

struct Fence {
  std::string lease_key;        // journeyd:{N}:lease
  std::string token;            // this instance's fencing token
  std::string wheel_moved_key;  // journeyd:{N}:wheel_moved
  int64_t wheel_moved = 0;      // the value this instance placed the batch's wakes by
};

// WATCH both keys, then GET each: three commands, to send ahead of the reads the commit
// depends on, in the same round trip.
std::vector<RespCommand> FenceWatch(const Fence& f);

// "" when the replies to FenceWatch show the fence holds; otherwise why not, starting with
// "STALE" (the lease is not ours) or "WHEEL" (the timing wheel moved without us). After a
// refusal, send UNWATCH.
std::string FenceCheck(const Fence& f, std::span<const Result> replies);

// MULTI, the commands, EXEC.
std::vector<RespCommand> InTransaction(std::vector<RespCommand> body);

// The outcome of InTransaction's replies: "" when EXEC ran every command (`*exec` then points
// at its array of replies); "STALE ..." when Redis refused the EXEC because a watched key
// changed; otherwise the first error.
std::string TransactionError(std::span<const Result> replies, const Reply** exec);

}  // namespace journeyd::store
