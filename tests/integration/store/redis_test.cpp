// RedisConnection against a real redis-server over loopback.
#include "journeyd/store/redis.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <set>
#include <vector>

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

// The helper every integration test takes its servers' ports from: while a port it handed out
// waits for its server, no other socket is given it (the ports parallel tests draw cannot
// collide), and a server that sets SO_REUSEADDR still binds it, as redis-server does.
TEST(FreeLoopbackPort, NoOtherSocketIsHandedThePortButItsServerBindsIt) {
  std::set<int> handed;
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(handed.insert(testing::FreeLoopbackPort()).second) << "a port handed out twice";
  }
  auto bind_to = [](int port, bool reuse, int* fd) {
    *fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    if (reuse) ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    socklen_t len = sizeof addr;
    const bool ok = ::bind(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ok ? ntohs(addr.sin_port) : -1;
  };
  // Hundreds of sockets asking for any port, with SO_REUSEADDR and without, held open so that
  // the kernel has to go on to other ports: none is handed one of ours.
  std::vector<int> fds;
  for (int i = 0; i < 800; ++i) {
    int fd = -1;
    const int got = bind_to(0, i % 2 == 1, &fd);
    fds.push_back(fd);
    EXPECT_EQ(handed.count(got), 0u) << "bind(port 0) was handed " << got;
  }
  for (int fd : fds) ::close(fd);
  // A plain bind is refused; the server's kind of socket gets it, and can listen on it.
  const int port = *handed.begin();
  int plain = -1, server = -1;
  EXPECT_EQ(bind_to(port, false, &plain), -1);
  EXPECT_EQ(bind_to(port, true, &server), port);
  EXPECT_EQ(::listen(server, 1), 0);
  EXPECT_TRUE(testing::PortAcceptsConnections(port));
  ::close(plain);
  ::close(server);
}

}  // namespace
}  // namespace journeyd::store
