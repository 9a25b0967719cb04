// The wire form of commands built with RespArgs / RespCommand (RESP arrays of bulk strings).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "journeyd/store/resp.h"

namespace journeyd::store {
namespace {

TEST(Resp, OneCommandIsAnArrayOfBulkStrings) {
  RespArgs a;
  a.Arg("SET").Arg(std::string("k")).Arg(int64_t{-42});
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(RespCommand::Of(a).wire(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-42\r\n");
}

TEST(Resp, EmptyAndBinaryArgumentsKeepTheirBytes) {
  RespArgs a;
  a.Arg("").Arg(std::string_view("a\r\n\0b", 5));
  EXPECT_EQ(RespCommand::Of(a).wire(), std::string("*2\r\n$0\r\n\r\n$5\r\na\r\n\0b\r\n", 21));
}

TEST(Resp, PartsJoinInTheOrderGivenUnderOneHeader) {
  RespArgs head, keys, argv;
  head.Arg("EVALSHA");
  keys.Arg("k1").Arg("k2");
  argv.Arg(int64_t{7});
  head.Arg(static_cast<int64_t>(keys.count()));
  RespCommand c = RespCommand::Join(head, keys, argv);
  EXPECT_EQ(c.wire(), "*5\r\n$7\r\nEVALSHA\r\n$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n$1\r\n7\r\n");
  RespArgs more;
  more.Append(keys).Append(argv);
  EXPECT_EQ(more.count(), 3u);
  EXPECT_EQ(more.body(), "$2\r\nk1\r\n$2\r\nk2\r\n$1\r\n7\r\n");
}

TEST(Resp, ALargeCountHasAllItsDigits) {
  RespArgs a;
  for (int i = 0; i < 12345; ++i) a.Arg("x");
  const RespCommand c = RespCommand::Of(a);
  std::string_view wire = c.wire();
  EXPECT_EQ(wire.substr(0, 8), "*12345\r\n");
  EXPECT_EQ(wire.size(), 8 + 12345 * 7u);
}

TEST(Resp, ACommandBuiltInPlaceFramesLikeOneJoined) {
  RespArgs a;
  auto built = RespCommand::Build(8);  // smaller than the command: the buffer grows
  for (std::string_view x : {"XADD", "outbox", "*", "job_id", "", "vars", "{\"a\":1}"}) {
    a.Arg(x);
    built.Arg(x);
  }
  const RespCommand c = std::move(built).Done();
  EXPECT_EQ(c.wire(), RespCommand::Of(a).wire());
  EXPECT_EQ(c.wire().substr(0, 4), "*7\r\n");
  // Moved and copied, it keeps its bytes.
  RespCommand moved = c;
  EXPECT_EQ(moved.wire(), RespCommand::Of(a).wire());
  auto many = RespCommand::Build(0);
  for (int i = 0; i < 12345; ++i) many.Arg("x");
  const RespCommand m = std::move(many).Done();
  EXPECT_EQ(m.wire().substr(0, 8), "*12345\r\n");
  EXPECT_EQ(m.wire().size(), 8 + 12345 * 7u);
}

// hiredis reads a command's head with strchr: every wire form ends in a NUL past its bytes,
// however it was built and after every growth.
TEST(Resp, EveryWireFormIsFollowedByANul) {
  auto built = RespCommand::Build(0);
  RespArgs a;
  for (int i = 0; i < 300; ++i) {
    const std::string x(static_cast<size_t>(i % 37), 'x');
    built.Arg(x);
    a.Arg(x);
    ASSERT_EQ(a.body().data()[a.body().size()], '\0') << i;
  }
  const RespCommand b = std::move(built).Done();
  const RespCommand copy = b;
  for (const RespCommand* c : {&b, &copy}) {
    EXPECT_EQ(c->wire().data()[c->wire().size()], '\0');
  }
  RespArgs head;
  head.Arg("SET");
  for (const RespCommand& c :
       {RespCommand::Of(a), RespCommand::Join(head, a), RespCommand::Of({"GET", "k"})}) {
    EXPECT_EQ(c.wire().data()[c.wire().size()], '\0');
    EXPECT_EQ(std::strlen(c.wire().data()), c.wire().size());
  }
}

}  // namespace
}  // namespace journeyd::store
