// The typed operations' commands and how their replies read (store/op.h and the operations of
// partition_info.h, customers.h, stats.h, publish.h, clock_anchor.h), without a server.
#include <gtest/gtest.h>

#include "journeyd/store/clock_anchor.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/partition_info.h"
#include "journeyd/store/publish.h"
#include "journeyd/store/stats.h"

namespace journeyd::store {
namespace {

using Args = std::vector<std::string>;

Reply Str(std::string s, Reply::Type t = Reply::Type::kString) {
  Reply r;
  r.type = t;
  r.str = std::move(s);
  return r;
}
Reply Int(long long v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}
Reply Array(std::vector<Reply> elements) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(elements);
  return r;
}
Reply Group(std::string name, Reply lag, long long pending) {
  return Array({Str("name"), Str(std::move(name)), Str("consumers"), Int(1), Str("pending"),
                Int(pending), Str("last-delivered-id"), Str("2-0"), Str("entries-read"), Int(2),
                Str("lag"), std::move(lag)});
}

const Keys kKeys("journeyd", 3);

TEST(Ops, CommandsComeFromTheKeys) {
  EXPECT_EQ(LeaseHeld(kKeys).args, (Args{"EXISTS", "journeyd:{3}:lease"}));
  EXPECT_EQ(EventsGroup(kKeys).args, (Args{"XINFO", "GROUPS", "journeyd:{3}:events"}));
  EXPECT_EQ(OutboxGroup(kKeys).args, (Args{"XINFO", "GROUPS", "journeyd:{3}:outbox"}));
  EXPECT_EQ(CustomerState(kKeys, "c 1").args, (Args{"GET", "journeyd:{3}:c:c 1"}));
  EXPECT_EQ(JourneyCounts(kKeys).args, (Args{"HGETALL", "journeyd:{3}:stats"}));
  const std::vector<EventField> fields = {{"type", "signup"}, {"customer_id", "c1"}};
  EXPECT_EQ(PublishEvent(kKeys, fields).args,
            (Args{"XADD", "journeyd:{3}:events", "*", "type", "signup", "customer_id", "c1"}));
  EXPECT_EQ(OfferClockAnchor("p", 42).args, (Args{"SET", "p:clock_anchor", "42", "NX"}));
  EXPECT_EQ(ClockAnchor("p").args, (Args{"GET", "p:clock_anchor"}));
}

TEST(Ops, GroupInfoReadsTheNamedGroupAndKeepsANilLagUnknown) {
  const Reply groups = Array(
      {Group("other", Int(9), 9), Group("journeyd", Int(4), 2), Group("senders", Reply{}, 7)});
  GroupInfo ev = EventsGroup(kKeys).read(groups);
  EXPECT_TRUE(ev.found);
  EXPECT_EQ(ev.lag, std::optional<int64_t>(4));
  EXPECT_EQ(ev.pending, 2);
  GroupInfo out = OutboxGroup(kKeys).read(groups);
  EXPECT_TRUE(out.found);
  EXPECT_EQ(out.lag, std::nullopt);
  EXPECT_EQ(out.pending, 7);
  GroupInfo none = ReadGroupInfo(groups, "absent");
  EXPECT_FALSE(none.found);
  EXPECT_EQ(none.lag, std::nullopt);
  EXPECT_FALSE(ReadGroupInfo(Array({}), "journeyd").found);
}

TEST(Ops, RepliesReadAsValues) {
  EXPECT_TRUE(LeaseHeld(kKeys).read(Int(1)));
  EXPECT_FALSE(LeaseHeld(kKeys).read(Int(0)));
  EXPECT_EQ(CustomerState(kKeys, "c").read(Str("blob")), std::optional<std::string>("blob"));
  EXPECT_EQ(CustomerState(kKeys, "c").read(Reply{}), std::nullopt);
  std::vector<StatsEntry> counts =
      JourneyCounts(kKeys).read(Array({Str("a\tb\tsend\t"), Str("12"), Str("x"), Str("-3")}));
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].field, "a\tb\tsend\t");
  EXPECT_EQ(counts[0].count, 12);
  EXPECT_EQ(counts[1].count, -3);
  EXPECT_EQ(PublishEvent(kKeys, {}).read(Str("1-0")), "1-0");
  EXPECT_TRUE(OfferClockAnchor("p", 1).read(Str("OK", Reply::Type::kStatus)));
  EXPECT_FALSE(OfferClockAnchor("p", 1).read(Reply{}));
  EXPECT_EQ(ClockAnchor("p").read(Str("1700000000123")), std::optional<int64_t>(1700000000123));
  EXPECT_EQ(ClockAnchor("p").read(Reply{}), std::nullopt);
}

TEST(Ops, AnErrorReplyAndALostConnectionAreNoValue) {
  const Op<bool> op = LeaseHeld(kKeys);
  Got<bool> ok = Read(op, Result{Int(1), ""});
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(*ok.value);
  Got<bool> refused = Read(op, Result{Str("NOAUTH needed", Reply::Type::kError), ""});
  EXPECT_FALSE(refused.ok());
  EXPECT_FALSE(refused.lost);
  EXPECT_EQ(refused.error, "NOAUTH needed");
  Got<bool> lost = Read(op, Result{Reply{}, "connection lost"});
  EXPECT_FALSE(lost.ok());
  EXPECT_TRUE(lost.lost);
  EXPECT_EQ(lost.error, "connection lost");
}

}  // namespace
}  // namespace journeyd::store
