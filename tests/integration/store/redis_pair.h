// A fixture for store tests against a real redis-server: the async connection under test and a
// second, blocking client (to set things up and look at them), both connected in SetUp.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "../redis_server.h"
#include "journeyd/store/redis.h"
#include "journeyd/store/sync.h"

namespace journeyd::store {

class RedisPair : public ::testing::Test {
 protected:
  void SetUp() override {
    RedisOptions o;
    o.port = server_.port();
    conn_ = RedisConnection::Create(io_, o);
    std::string error = "pending";
    conn_->AsyncConnect([&](const std::string& e) { error = e; });
    Run([&] { return error != "pending"; });
    ASSERT_EQ(error, "");
    other_ = SyncRedis::Connect(o, &error);
    ASSERT_TRUE(other_) << error;
  }

  // Runs the io_context until `done()`, for 10 s at most.
  template <typename Pred>
  void Run(Pred done) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.run_for(std::chrono::milliseconds(5));
      io_.restart();
    }
    ASSERT_TRUE(done()) << "timed out";
  }

  testing::RedisServer server_;
  boost::asio::io_context io_;
  std::shared_ptr<RedisConnection> conn_;
  std::unique_ptr<SyncRedis> other_;
};

}  // namespace journeyd::store
