#include "journeyd/store/events.h"

#include "journeyd/store/await.h"
#include "journeyd/store/streams.h"

namespace journeyd::store {

namespace asio = boost::asio;

asio::awaitable<std::string> EventStream::EnsureGroup(RedisConnection& conn) const {
  co_return co_await store::EnsureGroup(conn, stream_, kEventsGroup);
}

asio::awaitable<Result> EventStream::ReadNew(RedisConnection& conn, int count,
                                             int64_t block_ms) const {
  std::vector<std::string> read =
      Cmd("XREADGROUP", "GROUP", kEventsGroup, consumer_, "COUNT", std::to_string(count));
  std::optional<Duration> timeout;
  if (block_ms > 0) {
    read.emplace_back("BLOCK");
    read.push_back(std::to_string(block_ms));
    timeout = Duration{block_ms + 5000};
  }
  read.emplace_back("STREAMS");
  read.push_back(stream_);
  read.emplace_back(">");
  co_return co_await Call(conn, std::move(read), timeout);
}

asio::awaitable<Result> EventStream::ReadPending(RedisConnection& conn, int count) const {
  co_return co_await Call(conn, Cmd("XREADGROUP", "GROUP", kEventsGroup, consumer_, "COUNT",
                                    std::to_string(count), "STREAMS", stream_, "0"));
}

asio::awaitable<std::string> EventStream::ClaimAbandoned(RedisConnection& conn, int64_t min_idle_ms,
                                                         int count, std::string* cursor,
                                                         Result* result,
                                                         const Reply** entries) const {
  *entries = nullptr;
  *result = co_await Call(
      conn, Cmd("XAUTOCLAIM", stream_, kEventsGroup, consumer_, std::to_string(min_idle_ms),
                *cursor, "COUNT", std::to_string(count)));
  if (!result->ok()) co_return "XAUTOCLAIM: " + result->what();
  if (result->reply.elements.size() < 2) {
    *cursor = "0-0";
    co_return "";
  }
  *cursor = result->reply.elements[0].str;
  if (!result->reply.elements[1].elements.empty()) *entries = &result->reply.elements[1];
  co_return "";
}

asio::awaitable<std::string> EventStream::Trim(RedisConnection& conn) const {
  co_return co_await TrimAcknowledged(conn, stream_, kEventsGroup);
}

}  // namespace journeyd::store
