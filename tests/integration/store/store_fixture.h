// The fixture of the store operation tests (lease, event stream, timer wheel, batch commit): a
// private redis-server, an io_context with a RedisConnection that the operations run on as
// coroutines, and a blocking client (SyncRedis) to set Redis up and look at what they did.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../redis_server.h"
#include "journeyd/store/entries.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/redis.h"
#include "journeyd/store/sync.h"

namespace journeyd::store {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    redis_ = SyncRedis::Connect(Options(), &err);
    ASSERT_TRUE(redis_) << err;
    conn_ = Connect();
    ASSERT_TRUE(conn_->connected());
  }

  RedisOptions Options() const {
    RedisOptions o;
    o.port = server_.port();
    return o;
  }

  // Another connection on the io_context (another instance, or a blocking reader).
  std::shared_ptr<RedisConnection> Connect() {
    auto c = RedisConnection::Create(io_, Options());
    auto error = std::make_shared<std::optional<std::string>>();
    c->AsyncConnect([error](const std::string& e) { *error = e; });
    RunUntil([&] { return error->has_value(); });
    EXPECT_EQ(error->value_or("timed out"), "");
    return c;
  }

  // Runs the io_context until `done()` or the limit (a failure).
  template <typename Pred>
  bool RunUntil(Pred done, Duration limit = Duration{20000}) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.run_for(std::chrono::milliseconds(5));
      io_.restart();
    }
    EXPECT_TRUE(done()) << "timed out";
    return done();
  }

  // Runs a store operation to its end. The state is shared with the completion handler, so a
  // coroutine that outlives a timed-out wait writes nothing on this stack later.
  template <typename T>
  T Await(boost::asio::awaitable<T> op) {
    struct State {
      bool done = false;
      std::exception_ptr error;
      std::optional<T> value;
    };
    auto s = std::make_shared<State>();
    boost::asio::co_spawn(io_, std::move(op), [s](std::exception_ptr e, T v) {
      s->done = true;
      s->error = e;
      if (!e) s->value = std::move(v);
    });
    RunUntil([&] { return s->done; });
    if (s->error) std::rethrow_exception(s->error);
    return s->value ? std::move(*s->value) : T{};
  }
  void Await(boost::asio::awaitable<void> op) {
    auto done = std::make_shared<bool>(false);
    boost::asio::co_spawn(io_, std::move(op), [done](std::exception_ptr) { *done = true; });
    RunUntil([&] { return *done; });
  }

  // Real time passes with the io_context running (connections stay served).
  void Pass(Duration d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      io_.run_for(std::chrono::milliseconds(5));
      io_.restart();
    }
  }

  // A command on the blocking client.
  Reply Cmd(const std::vector<std::string>& args) {
    std::string err;
    auto r = redis_->Command(args, &err);
    EXPECT_TRUE(r) << err;
    return r.value_or(Reply{});
  }
  static std::vector<std::string> Strings(const Reply& r) {
    std::vector<std::string> out;
    for (const auto& e : r.elements) out.push_back(e.str);
    return out;
  }
  // XADD to the events stream: the entry's id.
  std::string Publish(const std::vector<std::string>& fields) {
    std::vector<std::string> add = {"XADD", keys_.events(), "*"};
    add.insert(add.end(), fields.begin(), fields.end());
    return Cmd(add).str;
  }
  // The entries of a stream from XRANGE: id → fields.
  std::map<std::string, std::map<std::string, std::string>> Range(const std::string& stream) {
    std::map<std::string, std::map<std::string, std::string>> out;
    for (const Reply& e : Cmd({"XRANGE", stream, "-", "+"}).elements) {
      if (e.elements.size() == 2) out[e.elements[0].str] = FieldMap(e.elements[1]);
    }
    return out;
  }
  // Entries pending in the events group (for one consumer when given).
  int64_t PendingCount(const std::string& consumer = "") {
    if (consumer.empty()) {
      return Cmd({"XPENDING", keys_.events(), std::string(kEventsGroup)}).elements.at(0).integer;
    }
    return static_cast<int64_t>(
        Cmd({"XPENDING", keys_.events(), std::string(kEventsGroup), "-", "+", "1000", consumer})
            .elements.size());
  }

  ::journeyd::testing::RedisServer server_;
  boost::asio::io_context io_;
  std::unique_ptr<SyncRedis> redis_;
  std::shared_ptr<RedisConnection> conn_;
  const Keys keys_{"journeyd", 0};
};

}  // namespace journeyd::store
