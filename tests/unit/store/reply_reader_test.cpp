// Replies read from RESP bytes as a connection reads them (ReplyReader): whole or in pieces,
// and hostile headers.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "journeyd/store/redis.h"

namespace journeyd::store {
namespace {

using Status = ReplyReader::Status;

TEST(ReplyReader, ANestedReplyReadsTheSameInPieces) {
  const std::string_view wire = "*2\r\n$3\r\nfoo\r\n*2\r\n:-7\r\n$-1\r\n+OK\r\n";
  ReplyReader reader;
  Reply r;
  std::string error;
  for (char c : wire.substr(0, wire.size() - 5)) {
    EXPECT_EQ(reader.Next(&r, &error), Status::kMore);
    reader.Feed(std::string_view(&c, 1));
  }
  ASSERT_EQ(reader.Next(&r, &error), Status::kReply) << error;
  ASSERT_EQ(r.type, Reply::Type::kArray);
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].str, "foo");
  ASSERT_EQ(r.elements[1].elements.size(), 2u);
  EXPECT_EQ(r.elements[1].elements[0].integer, -7);
  EXPECT_TRUE(r.elements[1].elements[1].is_nil());
  reader.Feed(wire.substr(wire.size() - 5));
  ASSERT_EQ(reader.Next(&r, &error), Status::kReply);
  EXPECT_EQ(r.type, Reply::Type::kStatus);
  EXPECT_EQ(r.str, "OK");
}

// Found by tests/fuzz (resp): an array header of 2^31-1 elements (and one nested inside an
// array) made the reader allocate room for all of them before any arrived, 150 GB.
TEST(ReplyReader, AnArrayLongerThanAnyReplyIsAProtocolError) {
  for (std::string_view wire : {"*2147483647\r\n", "*1\r\n*100000000\r\n:1\r\n"}) {
    ReplyReader reader;
    reader.Feed(wire);
    Reply r;
    std::string error;
    EXPECT_EQ(reader.Next(&r, &error), Status::kError) << wire;
    EXPECT_FALSE(error.empty());
  }
  ReplyReader reader;
  reader.Feed("*1048576\r\n");
  Reply r;
  std::string error;
  EXPECT_EQ(reader.Next(&r, &error), Status::kMore) << error;  // long, but allowed
}

}  // namespace
}  // namespace journeyd::store
