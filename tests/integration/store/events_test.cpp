// A partition's event stream (store/events.h) and the stream housekeeping beside it
// (store/streams.h) against a real redis-server: the consumer group, new entries (waiting for
// them or not), a consumer's own pending entries, entries taken over from a dead consumer, and
// trimming what every reader has acknowledged.
#include "journeyd/store/events.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "journeyd/store/streams.h"
#include "store_fixture.h"

namespace journeyd::store {
namespace {

class EventStreamTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_EQ(Await(me_.EnsureGroup(*conn_)), "");
  }

  struct Entry {
    std::string id;
    std::vector<std::pair<std::string, std::string>> fields;
  };
  // The entries of an XREADGROUP or XAUTOCLAIM array, as ForEachEntry hands them out.
  static std::vector<Entry> EntriesOf(const Reply* entries) {
    std::vector<Entry> out;
    if (!entries) return out;
    ForEachEntry(*entries, [&](std::string_view id, const auto& fields) {
      Entry& e = out.emplace_back();
      e.id = id;
      for (const auto& [k, v] : fields) e.fields.emplace_back(k, v);
    });
    return out;
  }
  static std::vector<std::string> Ids(const std::vector<Entry>& entries) {
    std::vector<std::string> ids;
    for (const auto& e : entries) ids.push_back(e.id);
    return ids;
  }
  std::vector<std::string> PublishSignups(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(Publish({"type", "signup", "customer_id", "c" + std::to_string(i)}));
    }
    return ids;
  }
  // Reads new entries as `stream`'s consumer: their ids.
  std::vector<std::string> ReadNewIds(const EventStream& stream, int count) {
    Result r = Await(stream.ReadNew(*conn_, count));
    EXPECT_TRUE(r.ok()) << r.what();
    return Ids(EntriesOf(StreamEntries(r.reply)));
  }
  void Ack(const std::vector<std::string>& ids) {
    std::vector<std::string> ack = {"XACK", keys_.events(), std::string(kEventsGroup)};
    ack.insert(ack.end(), ids.begin(), ids.end());
    Cmd(ack);
  }

  const EventStream me_{keys_, "me"};
};

TEST_F(EventStreamTest, EnsuringTheGroupTwiceIsFine) {
  EXPECT_EQ(Await(me_.EnsureGroup(*conn_)), "");
  const Reply groups = Cmd({"XINFO", "GROUPS", keys_.events()});
  ASSERT_EQ(groups.elements.size(), 1u);
  EXPECT_EQ(FieldMap(groups.elements[0])["name"], "journeyd");
  EXPECT_EQ(Await(StreamLength(*conn_, keys_.events())), 0) << "made with the group";
  EXPECT_EQ(me_.key(), keys_.events());
  // Anything else that goes wrong is said.
  Cmd({"SET", keys_.outbox(), "not a stream"});
  EXPECT_NE(Await(EnsureGroup(*conn_, keys_.outbox(), kOutboxGroup)), "");
}

TEST_F(EventStreamTest, ReadsNewEntriesWithTheirFields) {
  const std::string a = Publish({"type", "signup", "customer_id", "c1"});
  const std::string b = Publish({"type", "purchase", "customer_id", "c2", "data", "{}"});
  const std::string c = Publish({"type", "signup", "customer_id", "c3"});
  Result r = Await(me_.ReadNew(*conn_, 2));
  ASSERT_TRUE(r.ok()) << r.what();
  EXPECT_EQ(EntryCount(r.reply), 2u);
  std::vector<Entry> got = EntriesOf(StreamEntries(r.reply));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, a);
  EXPECT_EQ(got[1].id, b);
  using Fields = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(got[1].fields, (Fields{{"type", "purchase"}, {"customer_id", "c2"}, {"data", "{}"}}));
  // Then the rest, then nothing.
  EXPECT_EQ(ReadNewIds(me_, 10), std::vector<std::string>{c});
  r = Await(me_.ReadNew(*conn_, 10));
  ASSERT_TRUE(r.ok()) << r.what();
  EXPECT_TRUE(r.reply.is_nil());
  EXPECT_EQ(StreamEntries(r.reply), nullptr);
  EXPECT_EQ(EntryCount(r.reply), 0u);
  EXPECT_EQ(PendingCount("me"), 3);
}

TEST_F(EventStreamTest, ABlockingReadEndsWithNothingAfterItsBlockTime) {
  const auto start = std::chrono::steady_clock::now();
  Result r = Await(me_.ReadNew(*conn_, 10, 400));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.what();
  EXPECT_TRUE(r.reply.is_nil());
  EXPECT_GE(took, std::chrono::milliseconds(350));
  EXPECT_LT(took, std::chrono::milliseconds(4400)) << "well within the block time plus margin";
  EXPECT_TRUE(conn_->connected()) << "the block time is not taken for a missed deadline";
}

TEST_F(EventStreamTest, ABlockingReadReturnsAnEntryThatComesWhileItWaits) {
  struct State {
    bool done = false;
    Result result;
  };
  auto s = std::make_shared<State>();
  boost::asio::co_spawn(io_, me_.ReadNew(*conn_, 10, 20000), [s](std::exception_ptr, Result r) {
    s->done = true;
    s->result = std::move(r);
  });
  Pass(Duration{100});
  EXPECT_FALSE(s->done);
  const auto published = std::chrono::steady_clock::now();
  const std::string id = Publish({"type", "signup", "customer_id", "c1"});
  ASSERT_TRUE(RunUntil([&] { return s->done; }));
  EXPECT_LT(std::chrono::steady_clock::now() - published, std::chrono::seconds(10));
  ASSERT_TRUE(s->result.ok()) << s->result.what();
  EXPECT_EQ(Ids(EntriesOf(StreamEntries(s->result.reply))), std::vector<std::string>{id});
}

TEST_F(EventStreamTest, ReadsItsOwnPendingEntriesAgain) {
  const std::vector<std::string> ids = PublishSignups(3);
  ASSERT_EQ(ReadNewIds(me_, 10), ids);
  Result r = Await(me_.ReadPending(*conn_, 10));
  ASSERT_TRUE(r.ok()) << r.what();
  std::vector<Entry> pending = EntriesOf(StreamEntries(r.reply));
  EXPECT_EQ(Ids(pending), ids);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[2].fields[1].second, "c2");
  // Acknowledged entries are not pending any more; `count` limits the read.
  Ack({ids[0]});
  r = Await(me_.ReadPending(*conn_, 1));
  EXPECT_EQ(Ids(EntriesOf(StreamEntries(r.reply))), std::vector<std::string>{ids[1]});
  // Another consumer has none of its own, and reading them again delivers nothing new.
  const EventStream other(keys_, "other");
  r = Await(other.ReadPending(*conn_, 10));
  ASSERT_TRUE(r.ok()) << r.what();
  EXPECT_EQ(EntryCount(r.reply), 0u);
  EXPECT_TRUE(ReadNewIds(other, 10).empty());
  EXPECT_EQ(PendingCount("me"), 2);
}

TEST_F(EventStreamTest, ClaimsEntriesADeadConsumerLeftIdle) {
  const EventStream dead(keys_, "dead");
  const std::vector<std::string> ids = PublishSignups(3);
  ASSERT_EQ(ReadNewIds(dead, 10), ids);
  Result result;
  const Reply* entries = nullptr;
  std::string cursor = "0-0";
  // Not idle for long enough yet: nothing moves.
  EXPECT_EQ(Await(me_.ClaimAbandoned(*conn_, 600000, 10, &cursor, &result, &entries)), "");
  EXPECT_EQ(entries, nullptr);
  EXPECT_EQ(cursor, "0-0");
  EXPECT_EQ(PendingCount("dead"), 3);

  Pass(Duration{250});
  std::vector<std::string> claimed;
  EXPECT_EQ(Await(me_.ClaimAbandoned(*conn_, 100, 2, &cursor, &result, &entries)), "");
  ASSERT_NE(entries, nullptr);
  std::vector<Entry> first = EntriesOf(entries);
  EXPECT_EQ(Ids(first), (std::vector<std::string>{ids[0], ids[1]}));
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].fields[0], (std::pair<std::string, std::string>{"type", "signup"}));
  EXPECT_NE(cursor, "0-0") << "the scan goes on";
  EXPECT_EQ(Await(me_.ClaimAbandoned(*conn_, 100, 2, &cursor, &result, &entries)), "");
  EXPECT_EQ(Ids(EntriesOf(entries)), std::vector<std::string>{ids[2]});
  EXPECT_EQ(cursor, "0-0") << "the scan is over";
  EXPECT_EQ(PendingCount("dead"), 0);
  EXPECT_EQ(PendingCount("me"), 3);
  // Ours now: they come back with our own pending entries.
  Result mine = Await(me_.ReadPending(*conn_, 10));
  EXPECT_EQ(Ids(EntriesOf(StreamEntries(mine.reply))), ids);
}

TEST_F(EventStreamTest, AClaimSkipsPendingEntriesDeletedFromTheStream) {
  const EventStream dead(keys_, "dead");
  const std::vector<std::string> ids = PublishSignups(3);
  ASSERT_EQ(ReadNewIds(dead, 10), ids);
  Cmd({"XDEL", keys_.events(), ids[1]});
  Result result;
  const Reply* entries = nullptr;
  std::string cursor = "0-0";
  EXPECT_EQ(Await(me_.ClaimAbandoned(*conn_, 0, 10, &cursor, &result, &entries)), "");
  EXPECT_EQ(Ids(EntriesOf(entries)), (std::vector<std::string>{ids[0], ids[2]}));
  EXPECT_EQ(cursor, "0-0");
  EXPECT_EQ(PendingCount(), 2) << "the deleted one left the pending list";
}

TEST_F(EventStreamTest, TrimDropsOnlyWhatEveryReaderAcknowledged) {
  // Never delivered: the group may still need every entry.
  std::vector<std::string> ids = PublishSignups(250);
  EXPECT_EQ(Await(me_.Trim(*conn_)), "");
  EXPECT_EQ(Await(StreamLength(*conn_, keys_.events())), 250);

  // Delivered, the first 200 acknowledged. The trim is approximate (whole stream nodes), so
  // it may leave some acknowledged entries; it never drops one still pending.
  ASSERT_EQ(ReadNewIds(me_, 250).size(), 250u);
  Ack(std::vector<std::string>(ids.begin(), ids.begin() + 200));
  EXPECT_EQ(Await(me_.Trim(*conn_)), "");
  const int64_t left = Await(StreamLength(*conn_, keys_.events()));
  EXPECT_LT(left, 250) << "nothing trimmed";
  EXPECT_GE(left, 50);
  EXPECT_EQ(Cmd({"XRANGE", keys_.events(), ids[200], ids[249]}).elements.size(), 50u);
  EXPECT_EQ(PendingCount(), 50);

  // Everything acknowledged: trimmed up to the last entry delivered.
  Ack(std::vector<std::string>(ids.begin() + 200, ids.end()));
  const std::string later = Publish({"type", "signup", "customer_id", "later"});
  EXPECT_EQ(Await(me_.Trim(*conn_)), "");
  const int64_t after = Await(StreamLength(*conn_, keys_.events()));
  EXPECT_LE(after, left + 1) << "no more than the entry added since";
  EXPECT_EQ(Cmd({"XRANGE", keys_.events(), later, later}).elements.size(), 1u)
      << "an entry not delivered yet stays";
  EXPECT_EQ(ReadNewIds(me_, 10), std::vector<std::string>{later});
}

TEST_F(EventStreamTest, StreamLengthOfAMissingStreamIsZeroAndOfAnythingElseUnknown) {
  EXPECT_EQ(Await(StreamLength(*conn_, keys_.outbox())), 0);
  PublishSignups(2);
  EXPECT_EQ(Await(StreamLength(*conn_, keys_.events())), 2);
  Cmd({"SET", keys_.outbox(), "a string"});
  EXPECT_EQ(Await(StreamLength(*conn_, keys_.outbox())), -1);
  EXPECT_NE(Await(TrimAcknowledged(*conn_, keys_.outbox(), kOutboxGroup)), "");
}

}  // namespace
}  // namespace journeyd::store
