// A partition's event stream (`journeyd:{N}:events`) as its worker reads it, in the consumer
// group `journeyd`: new entries, its own pending entries again after a restart, and entries
// a dead owner left pending.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"

namespace journeyd::store {

class EventStream {
 public:
  EventStream(const Keys& keys, std::string consumer)
      : stream_(keys.events()), consumer_(std::move(consumer)) {}

  // Creates the consumer group unless it exists. "" or why not.
  boost::asio::awaitable<std::string> EnsureGroup(RedisConnection& conn) const;

  // Up to `count` new entries, waiting up to `block_ms` for one (0: not at all). The reply
  // as XREADGROUP gives it (StreamEntries in entries.h finds the entries).
  boost::asio::awaitable<Result> ReadNew(RedisConnection& conn, int count,
                                         int64_t block_ms = 0) const;

  // Up to `count` of this consumer's own pending entries (read before, never committed).
  boost::asio::awaitable<Result> ReadPending(RedisConnection& conn, int count) const;

  // Up to `count` entries pending for longer than `min_idle_ms` with any consumer, taken
  // over by this one, from `*cursor` on; `*cursor` becomes where the next call goes on
  // ("0-0" once the scan is over). `*entries` points into the result (null: none).
  boost::asio::awaitable<std::string> ClaimAbandoned(RedisConnection& conn, int64_t min_idle_ms,
                                                     int count, std::string* cursor, Result* result,
                                                     const Reply** entries) const;

  // Drops the entries every reader has acknowledged. "" or why not.
  boost::asio::awaitable<std::string> Trim(RedisConnection& conn) const;

  const std::string& key() const { return stream_; }

 private:
  std::string stream_;
  std::string consumer_;
};

}  // namespace journeyd::store
