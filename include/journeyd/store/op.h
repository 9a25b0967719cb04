// A typed Redis operation: the command, built from the key names, and how its reply reads as a
// value. The operation itself is pure (store/customers.h, stats.h, ... build them), so the
// command and the reading are tested without a server; the same operation runs on the daemon's
// async connection (co_await Run(conn, op)) and on journeyctl's blocking one (Run(sync, op)).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "journeyd/store/await.h"
#include "journeyd/store/redis.h"
#include "journeyd/store/sync.h"

namespace journeyd::store {

template <typename T>
struct Op {
  std::vector<std::string> args;
  // Reads a reply that is not an error reply.
  std::function<T(const Reply&)> read;
};

// An operation's outcome: the value when Redis answered, otherwise why not.
template <typename T>
struct Got {
  std::optional<T> value;
  std::string error;  // Redis's error reply, or the connection's failure
  bool lost = false;  // the connection failed (no reply at all), rather than an error reply
  bool ok() const { return value.has_value(); }
};

template <typename T>
Got<T> Read(const Op<T>& op, const Result& r) {
  Got<T> got;
  if (!r.error.empty()) {
    got.error = r.error;
    got.lost = true;
  } else if (r.reply.is_error()) {
    got.error = r.reply.str;
  } else {
    got.value = op.read(r.reply);
  }
  return got;
}

template <typename T>
boost::asio::awaitable<Got<T>> Run(RedisConnection& c, Op<T> op) {
  Result r = co_await Call(c, std::move(op.args));
  co_return Read(op, r);
}

template <typename T>
Got<T> Run(SyncRedis& c, const Op<T>& op) {
  std::string error;
  std::optional<Reply> reply = c.Command(op.args, &error);
  if (!reply) return Read(op, Result{Reply{}, error.empty() ? "Redis: no reply" : error});
  return Read(op, Result{std::move(*reply), ""});
}

}  // namespace journeyd::store
