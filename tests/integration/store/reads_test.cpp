// The typed operations of the admin API, `journeyctl` and the daemon's clock anchor
// (store/partition_info.h, customers.h, stats.h, publish.h, clock_anchor.h) against a real
// redis-server, on the async connection and on the blocking client alike.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>

#include <map>

#include "journeyd/store/clock_anchor.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/partition_info.h"
#include "journeyd/store/publish.h"
#include "journeyd/store/stats.h"
#include "redis_pair.h"

namespace journeyd::store {
namespace {

namespace asio = boost::asio;

class Reads : public RedisPair {
 protected:
  // The operation on the async connection.
  template <typename T>
  Got<T> Async(Op<T> op) {
    std::optional<Got<T>> out;
    asio::co_spawn(io_, store::Run(*conn_, std::move(op)),
                   [&](std::exception_ptr, Got<T> g) { out = std::move(g); });
    Run([&] { return out.has_value(); });
    return out.value_or(Got<T>{});
  }
  // The operation on the blocking client.
  template <typename T>
  Got<T> Sync(const Op<T>& op) {
    return store::Run(*other_, op);
  }

  Reply Do(const std::vector<std::string>& cmd) {
    std::string err;
    auto r = other_->Command(cmd, &err);
    EXPECT_TRUE(r && !r->is_error()) << err << (r ? r->str : "");
    return r.value_or(Reply{});
  }

  const Keys keys_{"journeyd", 0};
};

TEST_F(Reads, LeaseHeldTellsAnOwnedPartitionFromAnUnownedOne) {
  Do({"SET", Keys("journeyd", 1).lease(), "7", "PX", "60000"});
  for (Got<bool> g : {Async(LeaseHeld(keys_)), Sync(LeaseHeld(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_FALSE(*g.value);
  }
  for (Got<bool> g :
       {Async(LeaseHeld(Keys("journeyd", 1))), Sync(LeaseHeld(Keys("journeyd", 1)))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_TRUE(*g.value);
  }
}

TEST_F(Reads, GroupInfoCountsLagAndPendingAfterAddsAndARead) {
  Do({"XGROUP", "CREATE", keys_.events(), std::string(kEventsGroup), "0", "MKSTREAM"});
  for (int i = 0; i < 5; ++i) Do({"XADD", keys_.events(), "*", "type", "signup"});
  for (const Got<GroupInfo>& g : {Async(EventsGroup(keys_)), Sync(EventsGroup(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_TRUE(g.value->found);
    EXPECT_EQ(g.value->lag, std::optional<int64_t>(5));
    EXPECT_EQ(g.value->pending, 0);
  }
  Reply read = Do({"XREADGROUP", "GROUP", std::string(kEventsGroup), "w", "COUNT", "3", "STREAMS",
                   keys_.events(), ">"});
  const std::string first = read.elements.at(0).elements.at(1).elements.at(0).elements.at(0).str;
  Do({"XACK", keys_.events(), std::string(kEventsGroup), first});
  for (const Got<GroupInfo>& g : {Async(EventsGroup(keys_)), Sync(EventsGroup(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_EQ(g.value->lag, std::optional<int64_t>(2));
    EXPECT_EQ(g.value->pending, 2);
  }
}

TEST_F(Reads, ANilLagStaysUnknownAndAStreamWithoutTheGroupHasNone) {
  // Entries deleted between the group's position and the end: Redis cannot count the lag.
  Do({"XGROUP", "CREATE", keys_.outbox(), std::string(kOutboxGroup), "0", "MKSTREAM"});
  for (int i = 1; i <= 5; ++i) Do({"XADD", keys_.outbox(), std::to_string(i) + "-0", "f", "v"});
  Do({"XREADGROUP", "GROUP", std::string(kOutboxGroup), "s", "COUNT", "2", "STREAMS",
      keys_.outbox(), ">"});
  Do({"XDEL", keys_.outbox(), "4-0"});
  for (const Got<GroupInfo>& g : {Async(OutboxGroup(keys_)), Sync(OutboxGroup(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_TRUE(g.value->found);
    EXPECT_EQ(g.value->lag, std::nullopt);
    EXPECT_EQ(g.value->pending, 2);
  }
  // The events stream has another group only.
  Do({"XGROUP", "CREATE", keys_.events(), "others", "0", "MKSTREAM"});
  for (const Got<GroupInfo>& g : {Async(EventsGroup(keys_)), Sync(EventsGroup(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_FALSE(g.value->found);
    EXPECT_EQ(g.value->lag, std::nullopt);
  }
  // No stream at all: an error reply, not a lost connection.
  const Keys other("journeyd", 3);
  for (const Got<GroupInfo>& g : {Async(EventsGroup(other)), Sync(EventsGroup(other))}) {
    EXPECT_FALSE(g.ok());
    EXPECT_FALSE(g.lost);
    EXPECT_NE(g.error.find("no such key"), std::string::npos) << g.error;
  }
}

TEST_F(Reads, CustomerStateOfOneThatExistsAndOneThatDoesNot) {
  const std::string blob("\x01\x00state\xff", 8);
  Do({"SET", keys_.customer("c42"), blob});
  for (const auto& g : {Async(CustomerState(keys_, "c42")), Sync(CustomerState(keys_, "c42"))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_EQ(*g.value, std::optional<std::string>(blob));
  }
  for (const auto& g :
       {Async(CustomerState(keys_, "nobody")), Sync(CustomerState(keys_, "nobody"))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_EQ(*g.value, std::nullopt);
  }
  Do({"RPUSH", keys_.customer("odd"), "x"});
  for (const auto& g : {Async(CustomerState(keys_, "odd")), Sync(CustomerState(keys_, "odd"))}) {
    EXPECT_FALSE(g.ok());
    EXPECT_FALSE(g.lost);
    EXPECT_EQ(g.error.rfind("WRONGTYPE", 0), 0u) << g.error;
  }
}

TEST_F(Reads, JourneyCountsOfAStatsHashWithValues) {
  Do({"HSET", keys_.stats(), "welcome\twelcome_mail\tsend\t", "12", "welcome\t\texit\tunsubscribe",
      "3"});
  Do({"HINCRBY", keys_.stats(), "welcome\twelcome_mail\tsend\t", "-2"});
  const std::map<std::string, int64_t> want = {{"welcome\twelcome_mail\tsend\t", 10},
                                               {"welcome\t\texit\tunsubscribe", 3}};
  for (const auto& g : {Async(JourneyCounts(keys_)), Sync(JourneyCounts(keys_))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    std::map<std::string, int64_t> got;
    for (const StatsEntry& e : *g.value) got[e.field] = e.count;
    EXPECT_EQ(got, want);
    EXPECT_EQ(g.value->size(), 2u);
  }
  const Keys empty("journeyd", 2);
  for (const auto& g : {Async(JourneyCounts(empty)), Sync(JourneyCounts(empty))}) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_TRUE(g.value->empty());
  }
}

TEST_F(Reads, PublishEventAddsTheFieldsInOrderAndGivesTheEntryId) {
  const std::vector<EventField> fields = {
      {"type", "unsubscribe"}, {"customer_id", "c42"}, {"data", R"({"flow":"welcome"})"}};
  Got<std::string> a = Async(PublishEvent(keys_, fields));
  Got<std::string> s = Sync(PublishEvent(keys_, fields));
  ASSERT_TRUE(a.ok()) << a.error;
  ASSERT_TRUE(s.ok()) << s.error;
  Reply entries = Do({"XRANGE", keys_.events(), "-", "+"});
  ASSERT_EQ(entries.elements.size(), 2u);
  EXPECT_EQ(entries.elements[0].elements[0].str, *a.value);
  EXPECT_EQ(entries.elements[1].elements[0].str, *s.value);
  for (const Reply& e : entries.elements) {
    const std::vector<Reply>& f = e.elements[1].elements;
    ASSERT_EQ(f.size(), 6u);
    for (size_t i = 0; i < fields.size(); ++i) {
      EXPECT_EQ(f[2 * i].str, fields[i].first);
      EXPECT_EQ(f[2 * i + 1].str, fields[i].second);
    }
  }
}

TEST_F(Reads, TheFirstClockAnchorWins) {
  EXPECT_EQ(ClockAnchorKey("journeyd"), "journeyd:clock_anchor");
  Got<std::optional<int64_t>> none = Sync(ClockAnchor("journeyd"));
  ASSERT_TRUE(none.ok()) << none.error;
  EXPECT_EQ(*none.value, std::nullopt);
  std::string error;
  EXPECT_EQ(AgreeClockAnchor(*other_, "journeyd", 1700000000123, &error),
            std::optional<int64_t>(1700000000123));
  EXPECT_EQ(AgreeClockAnchor(*other_, "journeyd", 1800000000000, &error),
            std::optional<int64_t>(1700000000123));
  EXPECT_EQ(Do({"GET", "journeyd:clock_anchor"}).str, "1700000000123");
  Got<bool> again = Sync(OfferClockAnchor("journeyd", 5));
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_FALSE(*again.value);
  Got<bool> other = Sync(OfferClockAnchor("shop2", 5));
  ASSERT_TRUE(other.ok()) << other.error;
  EXPECT_TRUE(*other.value);
  EXPECT_EQ(error, "");
}

TEST_F(Reads, ALostConnectionIsToldApartFromAnErrorReply) {
  server_.Stop();
  Got<bool> a = Async(LeaseHeld(keys_));
  Got<bool> s = Sync(LeaseHeld(keys_));
  for (const Got<bool>& g : {a, s}) {
    EXPECT_FALSE(g.ok());
    EXPECT_TRUE(g.lost);
    EXPECT_FALSE(g.error.empty());
  }
  std::string error;
  EXPECT_EQ(AgreeClockAnchor(*other_, "journeyd", 1, &error), std::nullopt);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace journeyd::store
