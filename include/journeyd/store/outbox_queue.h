// The outbox as a queue of send jobs (SPEC §4), for a partition's sender: reading the jobs handed
// to this consumer, claiming those a dead consumer left, settling a batch's outcomes
// (acknowledged, into the retry set `{N}:retry`, into the dead stream `{N}:dead`, a `bounce`
// event into `{N}:events`), moving due retries back into the outbox, and the retry schedule.
// Each operation with a script has it beside it (outbox_queue.cpp).
//
// A job waiting for its retry is a member of `{N}:retry` scored by its due time (ms), the
// member being the entry's fields as a JSON array of strings (name, value, name, ...), with
// `attempt` (the attempt that comes next, from 2), `queued_at` (ms, when the job was first
// queued) and `last_error` set. Promoted, it is a new outbox entry with those fields.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"

namespace journeyd::store {

// One outbox entry: its id and its fields in order.
struct OutboxEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;

  // The field's value, "" when it has none.
  const std::string& Field(std::string_view name) const;
  // The attempt this delivery is (1 unless the entry came back from the retry set).
  int Attempt() const;
  // When the job was first queued (ms): `queued_at`, else the entry id's time.
  int64_t QueuedMs() const;
};

// Jobs read or claimed, in the outbox's order, or why not.
struct OutboxJobs {
  std::vector<OutboxEntry> entries;
  std::string error;
  bool ok() const { return error.empty(); }
};

// A count from a script (jobs settled, retries moved), or why not.
struct OutboxCount {
  int64_t n = 0;
  std::string error;
  bool ok() const { return error.empty(); }
};

// Which jobs a read asks for: this consumer's pending ones (read but never settled: after a
// restart, or a settle that failed), or new ones.
enum class OutboxFrom { kOwnPending, kNew };

// When a job that failed for a passing reason is tried again (smtp.retry_delay,
// smtp.max_attempts, smtp.max_age).
struct RetrySchedule {
  Duration first_delay = kMinute;
  int max_attempts = 8;
  Duration max_age = 24 * kHour;

  // Whether a job first queued at `queued_ms` is too old to be tried again at `now_ms`.
  bool Expired(int64_t queued_ms, int64_t now_ms) const {
    return now_ms - queued_ms >= max_age.count();
  }
  // Whether attempt `attempt` (1-based) that failed for a passing reason gets another.
  bool Retries(int attempt, bool expired) const { return attempt < max_attempts && !expired; }
  // The wait after attempt `attempt`: exponential backoff with jitter, in [d/2, d] where d
  // doubles from first_delay with each attempt up to an hour (or first_delay when longer).
  // `random` picks the point in that range.
  int64_t DelayMs(int attempt, uint64_t random) const;
};

// A batch's outcomes, written straight into the settle script's arguments.
class OutboxSettlement {
 public:
  // Delivered: acknowledged.
  void Delivered(const OutboxEntry& e);
  // To be tried again at `due_ms` as attempt `next_attempt`, into the retry set.
  void Retry(const OutboxEntry& e, int64_t due_ms, int next_attempt, int64_t queued_ms,
             std::string_view last_error);
  // Given up: into the dead stream with its fields, `error` and `source_id`.
  void Dead(const OutboxEntry& e, std::string_view error);
  // The recipient bounced: into the dead stream as Dead() does, and a `bounce` event for the
  // customer with the address, the server's reply and the job id.
  void Bounced(const OutboxEntry& e, std::string_view error, std::string_view reply);

  bool empty() const { return args_.size() == header_; }

 private:
  friend class OutboxQueue;
  explicit OutboxSettlement(std::vector<std::string> header)
      : args_(std::move(header)), header_(args_.size()) {}
  void AddFields(std::vector<std::string> fields);

  std::vector<std::string> args_;
  size_t header_;
};

// A partition's outbox for one consumer (the daemon's instance name) of the group
// kOutboxGroup. Holds the scripts' SHAs; not shared between connections' coroutines on
// different threads.
class OutboxQueue {
 public:
  OutboxQueue(const Keys& keys, std::string consumer);

  // XREADGROUP of up to `count` jobs. With `wait`, new jobs are waited for up to 200 ms.
  // Deleted entries among the pending ones come with no fields.
  boost::asio::awaitable<OutboxJobs> Read(RedisConnection& c, OutboxFrom from, int count,
                                          bool wait);
  // XAUTOCLAIM of up to `count` jobs idle for `min_idle` (a dead consumer's, or this one's that
  // were never settled), from the start of the outbox.
  boost::asio::awaitable<OutboxJobs> ClaimAbandoned(RedisConnection& c, Duration min_idle,
                                                    int count);

  // An empty settlement for this outbox.
  OutboxSettlement Settlement() const;
  // Applies a batch's outcomes in one script call. Each applies only when its XACK does now, so
  // a job settled by another consumer after a claim is not settled twice. The count applied.
  boost::asio::awaitable<OutboxCount> Settle(RedisConnection& c, OutboxSettlement settlement);

  // Moves up to `most` jobs whose retry is due at `now_ms` back into the outbox, as new
  // entries. The count moved.
  boost::asio::awaitable<OutboxCount> PromoteDueRetries(RedisConnection& c, int64_t now_ms,
                                                        int most);

 private:
  std::string outbox_, retry_, dead_, events_;
  std::string consumer_;
  std::string settle_sha_, promote_sha_;
};

}  // namespace journeyd::store
