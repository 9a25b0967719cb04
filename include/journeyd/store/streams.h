// Consumer-group housekeeping for any of a partition's streams (events, outbox): the group
// made sure of, the stream's length, and trimming what every reader has acknowledged.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "journeyd/store/redis.h"

namespace journeyd::store {

// Creates the consumer group `group` on `stream` (and the stream) unless it exists.
// "" or why not.
boost::asio::awaitable<std::string> EnsureGroup(RedisConnection& conn, const std::string& stream,
                                                std::string_view group);

// The number of entries in `stream`, or -1 when Redis could not say.
boost::asio::awaitable<int64_t> StreamLength(RedisConnection& conn, const std::string& stream);

// Removes the entries below both the oldest entry pending in `group` and the last one
// delivered to it: what no reader of the group can still need. Trimming is approximate (MINID
// ~): Redis drops whole stream nodes only, so a few acknowledged entries may stay. "" or why not.
boost::asio::awaitable<std::string> TrimAcknowledged(RedisConnection& conn,
                                                     const std::string& stream,
                                                     std::string_view group);

}  // namespace journeyd::store
