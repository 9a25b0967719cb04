// RedisConnection against a real redis-server over loopback.
#include "journeyd/store/redis.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "../redis_server.h"

namespace journeyd::store {
namespace {

namespace asio = boost::asio;

class RedisTest : public ::testing::Test {
 protected:
  testing::RedisServer server_;
  asio::io_context io_;

  std::shared_ptr<RedisConnection> Connect(Duration command_timeout = Duration{5000}) {
    RedisOptions o;
    o.port = server_.port();
    o.command_timeout = command_timeout;
    auto c = RedisConnection::Create(io_, o);
    std::string error = "pending";
    c->AsyncConnect([&](const std::string& e) { error = e; });
    RunUntil([&] { return error != "pending"; });
    EXPECT_EQ(error, "");
    return c;
  }

  template <typename Pred>
  void RunUntil(Pred done, Duration limit = Duration{10000}) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io_.run_for(std::chrono::milliseconds(10));
      io_.restart();
    }
    ASSERT_TRUE(done()) << "timed out";
  }
};

TEST_F(RedisTest, PipelinesCommandsInOrder) {
  auto c = Connect();
  std::vector<std::string> got;
  for (int i = 0; i < 1000; ++i) {
    c->AsyncCommand({"SET", "k" + std::to_string(i), std::to_string(i)},
                    [](Reply r, const std::string& e) {
                      EXPECT_EQ(e, "");
                      EXPECT_EQ(r.str, "OK");
                    });
    c->AsyncCommand({"GET", "k" + std::to_string(i)}, [&](Reply r, const std::string& e) {
      EXPECT_EQ(e, "");
      got.push_back(r.str);
    });
  }
  RunUntil([&] { return got.size() == 1000; });
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], std::to_string(i));
  EXPECT_EQ(c->pending(), 0u);
}

TEST_F(RedisTest, BinarySafeValuesAndArrays) {
  auto c = Connect();
  std::string value("a\0b\r\nc", 6);
  bool done = false;
  c->AsyncCommand({"RPUSH", "list", value, "x"}, [](Reply, const std::string&) {});
  c->AsyncCommand({"LRANGE", "list", "0", "-1"}, [&](Reply r, const std::string& e) {
    EXPECT_EQ(e, "");
    ASSERT_EQ(r.type, Reply::Type::kArray);
    ASSERT_EQ(r.elements.size(), 2u);
    EXPECT_EQ(r.elements[0].str, value);
    done = true;
  });
  RunUntil([&] { return done; });
}

TEST_F(RedisTest, ErrorRepliesAreRepliesNotFailures) {
  auto c = Connect();
  bool done = false;
  c->AsyncCommand({"INCR"}, [&](Reply r, const std::string& e) {
    EXPECT_EQ(e, "");
    EXPECT_TRUE(r.is_error());
    EXPECT_NE(r.str.find("wrong number of arguments"), std::string::npos) << r.str;
    done = true;
  });
  RunUntil([&] { return done; });
  EXPECT_TRUE(c->connected());
}

TEST_F(RedisTest, ACommandPastItsDeadlineFailsAndDropsTheConnection) {
  auto c = Connect(Duration{300});
  std::string error;
  bool done = false;
  c->AsyncCommand({"BLPOP", "never", "2"}, [&](Reply, const std::string& e) {
    error = e;
    done = true;
  });
  RunUntil([&] { return done; });
  EXPECT_EQ(error, "Redis did not answer in time");
  EXPECT_FALSE(c->connected());
}

TEST_F(RedisTest, ServerGoingAwayFailsPendingCommandsAndReconnectWorks) {
  auto c = Connect();
  std::string error;
  bool done = false;
  c->AsyncCommand(
      {"BLPOP", "nothing", "5"},
      [&](Reply, const std::string& e) {
        error = e;
        done = true;
      },
      Duration{10000});
  io_.run_for(std::chrono::milliseconds(50));
  io_.restart();
  server_.Stop(SIGKILL);
  RunUntil([&] { return done; });
  EXPECT_EQ(error, "connection to Redis lost");
  EXPECT_FALSE(c->connected());

  // Not connected: commands fail at once instead of hanging.
  bool failed_fast = false;
  c->AsyncCommand({"PING"}, [&](Reply, const std::string& e) {
    EXPECT_EQ(e, "not connected to Redis");
    failed_fast = true;
  });
  RunUntil([&] { return failed_fast; });

  server_.Start();
  std::string reconnect = "pending";
  c->AsyncConnect([&](const std::string& e) { reconnect = e; });
  RunUntil([&] { return reconnect != "pending"; });
  EXPECT_EQ(reconnect, "");
  bool pong = false;
  c->AsyncCommand({"PING"}, [&](Reply r, const std::string& e) {
    EXPECT_EQ(e, "");
    EXPECT_EQ(r.str, "PONG");
    pong = true;
  });
  RunUntil([&] { return pong; });
}

TEST_F(RedisTest, ConnectingToNothingFailsWithAReason) {
  RedisOptions o;
  o.port = testing::FreeLoopbackPort();
  auto c = RedisConnection::Create(io_, o);
  std::string error = "pending";
  c->AsyncConnect([&](const std::string& e) { error = e; });
  RunUntil([&] { return error != "pending"; });
  EXPECT_NE(error.find("cannot connect to Redis at 127.0.0.1:"), std::string::npos) << error;
}

}  // namespace
}  // namespace journeyd::store
