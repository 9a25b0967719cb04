// RedisConnection commands as C++20 coroutines on Boost.Asio.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journeyd/store/redis.h"
#include "journeyd/store/resp.h"

namespace journeyd::store {

// Builds a command's arguments. (Braced lists of string literals inside coroutines trip GCC 12.)
template <typename... A>
std::vector<std::string> Cmd(A&&... a) {
  return {std::string(std::forward<A>(a))...};
}

// Waits `d` on the calling coroutine's executor.
boost::asio::awaitable<void> Sleep(Duration d);

// Connects `c` unless it is connected; "" or the reason it could not.
boost::asio::awaitable<std::string> Connect(RedisConnection& c);

// Runs a script by its SHA, loading it again when Redis lost it (a restart, SCRIPT FLUSH).
// `sha` may start empty; it holds the SHA1 afterwards.
boost::asio::awaitable<Result> Script(RedisConnection& conn, std::string& sha,
                                      std::string_view body, std::vector<std::string> args);

inline boost::asio::awaitable<Result> Call(RedisConnection& c, std::vector<std::string> args,
                                           std::optional<Duration> timeout = std::nullopt) {
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(Result)>(
      [&c, timeout](auto handler, std::vector<std::string> a) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        c.AsyncCommand(
            std::move(a),
            [h](Reply r, const std::string& e) {
              std::move (*h)(Result{std::move(r), e});
            },
            timeout);
      },
      boost::asio::use_awaitable, std::move(args));
}

// A command already in wire form. `command` must outlive the co_await (it is read at once,
// before the first suspension, but a pointer keeps the caller's ownership plain).
inline boost::asio::awaitable<Result> Call(RedisConnection& c, const RespCommand* command,
                                           std::optional<Duration> timeout = std::nullopt) {
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(Result)>(
      [&c, timeout, command](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        c.AsyncWire(
            command->wire(),
            [h](Reply r, const std::string& e) {
              std::move (*h)(Result{std::move(r), e});
            },
            timeout);
      },
      boost::asio::use_awaitable);
}

// Commands in wire form sent back to back (one round trip); their results in order. Used for
// MULTI ... EXEC, where every queued command has a reply of its own.
inline boost::asio::awaitable<std::vector<Result>> CallAll(
    RedisConnection& c, std::span<const RespCommand> commands,
    std::optional<Duration> timeout = std::nullopt) {
  if (commands.empty()) co_return std::vector<Result>{};
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(std::vector<Result>)>(
      [&c, timeout, commands](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        c.AsyncBatch(
            commands, [h](std::vector<Result> results) { std::move (*h)(std::move(results)); },
            timeout);
      },
      boost::asio::use_awaitable);
}

}  // namespace journeyd::store
