// See outbox_queue.h.
#include "journeyd/store/outbox_queue.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "journeyd/store/await.h"
#include "journeyd/store/entries.h"

namespace journeyd::store {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

// Settles a batch of send jobs after delivery. KEYS: outbox, retry, dead, events. ARGV: the
// outbox group, then operations, each starting with its letter and the job's outbox entry id:
//   a <id>                                   delivered: acknowledge
//   r <id> <due ms> <fields as JSON array>   retry later: into the retry set
//   d <id> <n> <n fields>                    given up: into the dead stream
//   b <id> <n> <n fields> <m> <m fields>     bounced: dead stream plus a `bounce` event
// Each applies only when its XACK does now, so a job settled by another instance (after a
// claim) is not settled twice; deliveries are acknowledged together, in one XACK per few
// thousand. Returns the number applied.
constexpr std::string_view kSettleScript = R"lua(
local group = ARGV[1]
local i = 2
local applied = 0
local delivered = {}
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  i = i + 2
  if op == 'a' then
    delivered[#delivered + 1] = id
  end
  local ok = op ~= 'a' and redis.call('XACK', KEYS[1], group, id) == 1
  if ok then applied = applied + 1 end
  if op == 'r' then
    if ok then redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
    i = i + 2
  elseif op == 'd' or op == 'b' then
    local n = tonumber(ARGV[i]); i = i + 1
    if ok then redis.call('XADD', KEYS[3], '*', unpack(ARGV, i, i + n - 1)) end
    i = i + n
    if op == 'b' then
      local m = tonumber(ARGV[i]); i = i + 1
      if ok then redis.call('XADD', KEYS[4], '*', unpack(ARGV, i, i + m - 1)) end
      i = i + m
    end
  end
end
for from = 1, #delivered, 4000 do
  applied = applied + redis.call('XACK', KEYS[1], group,
                                 unpack(delivered, from, math.min(from + 3999, #delivered)))
end
return applied
)lua";

// Moves send jobs whose retry is due back into the outbox. KEYS: retry, outbox. ARGV: now in
// ms, the most to move. Returns the number moved.
constexpr std::string_view kPromoteScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(m)))
end
return #due
)lua";

// A read's deadline: the longest block (200 ms) and five seconds.
constexpr Duration kReadDeadline{5200};

// The entry's fields with some replaced or added (the order kept, so dead entries read well);
// an earlier `source_id` goes.
std::vector<std::string> FieldsWith(
    const OutboxEntry& e,
    std::initializer_list<std::pair<std::string_view, std::string_view>> set) {
  std::vector<std::string> out;
  out.reserve(2 * (e.fields.size() + set.size()));
  for (const auto& [k, v] : e.fields) {
    bool replaced = false;
    for (const auto& s : set) replaced = replaced || s.first == k;
    if (replaced || k == "source_id") continue;
    out.push_back(k);
    out.push_back(v);
  }
  for (const auto& [k, v] : set) {
    out.emplace_back(k);
    out.emplace_back(v);
  }
  return out;
}

// Stream entries ([id, [field, value, ...]] each) moved out of a reply.
std::vector<OutboxEntry> TakeEntries(Reply& entries) {
  std::vector<OutboxEntry> out;
  out.reserve(entries.elements.size());
  for (Reply& e : entries.elements) {
    if (e.elements.size() < 2) continue;
    OutboxEntry& o = out.emplace_back();
    o.id = std::move(e.elements[0].str);
    auto& f = e.elements[1].elements;
    o.fields.reserve(f.size() / 2);
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      o.fields.emplace_back(std::move(f[i].str), std::move(f[i + 1].str));
    }
  }
  return out;
}

OutboxCount CountOf(const Result& r) {
  if (!r.ok()) return {0, r.what()};
  return {r.reply.integer, ""};
}

}  // namespace

const std::string& OutboxEntry::Field(std::string_view name) const {
  static const std::string kNone;
  for (const auto& [k, v] : fields) {
    if (k == name) return v;
  }
  return kNone;
}

int OutboxEntry::Attempt() const { return std::max(1, std::atoi(Field("attempt").c_str())); }

int64_t OutboxEntry::QueuedMs() const {
  const int64_t queued = std::atoll(Field("queued_at").c_str());
  if (queued > 0) return queued;
  return std::atoll(id.c_str());  // the entry id's milliseconds
}

int64_t RetrySchedule::DelayMs(int attempt, uint64_t random) const {
  int64_t d = first_delay.count();
  for (int i = 1; i < attempt && d < kHour.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, std::max(kHour.count(), first_delay.count()));
  return d / 2 + static_cast<int64_t>(random % static_cast<uint64_t>(d / 2 + 1));
}

void OutboxSettlement::AddFields(std::vector<std::string> fields) {
  args_.push_back(std::to_string(fields.size()));
  for (auto& f : fields) args_.push_back(std::move(f));
}

void OutboxSettlement::Delivered(const OutboxEntry& e) {
  args_.emplace_back("a");
  args_.push_back(e.id);
}

void OutboxSettlement::Retry(const OutboxEntry& e, int64_t due_ms, int next_attempt,
                             int64_t queued_ms, std::string_view last_error) {
  const std::string attempt = std::to_string(next_attempt);
  const std::string queued = std::to_string(queued_ms);
  auto f = FieldsWith(e, {{"attempt", attempt}, {"queued_at", queued}, {"last_error", last_error}});
  args_.emplace_back("r");
  args_.push_back(e.id);
  args_.push_back(std::to_string(due_ms));
  args_.push_back(nlohmann::json(f).dump());
}

void OutboxSettlement::Dead(const OutboxEntry& e, std::string_view error) {
  args_.emplace_back("d");
  args_.push_back(e.id);
  AddFields(FieldsWith(e, {{"error", error}, {"source_id", e.id}}));
}

void OutboxSettlement::Bounced(const OutboxEntry& e, std::string_view error,
                               std::string_view reply) {
  args_.emplace_back("b");
  args_.push_back(e.id);
  AddFields(FieldsWith(e, {{"error", error}, {"source_id", e.id}}));
  nlohmann::json data = {
      {"email", e.Field("to")}, {"reply", std::string(reply)}, {"job_id", e.Field("job_id")}};
  AddFields({"type", "bounce", "customer_id", e.Field("customer_id"), "data", data.dump()});
}

OutboxQueue::OutboxQueue(const Keys& keys, std::string consumer)
    : outbox_(keys.outbox()),
      retry_(keys.retry()),
      dead_(keys.dead()),
      events_(keys.events()),
      consumer_(std::move(consumer)) {}

awaitable<OutboxJobs> OutboxQueue::Read(RedisConnection& c, OutboxFrom from, int count, bool wait) {
  std::vector<std::string> read = Cmd("XREADGROUP", "GROUP", std::string(kOutboxGroup), consumer_,
                                      "COUNT", std::to_string(count));
  if (wait) {
    read.emplace_back("BLOCK");
    read.emplace_back("200");
  }
  read.emplace_back("STREAMS");
  read.push_back(outbox_);
  read.emplace_back(from == OutboxFrom::kOwnPending ? "0" : ">");
  Result r = co_await Call(c, std::move(read), kReadDeadline);
  OutboxJobs jobs;
  if (!r.ok()) {
    jobs.error = r.what();
    co_return jobs;
  }
  if (EntryCount(r.reply) > 0) jobs.entries = TakeEntries(r.reply.elements[0].elements[1]);
  co_return jobs;
}

awaitable<OutboxJobs> OutboxQueue::ClaimAbandoned(RedisConnection& c, Duration min_idle,
                                                  int count) {
  Result r = co_await Call(
      c, Cmd("XAUTOCLAIM", outbox_, std::string(kOutboxGroup), consumer_,
             std::to_string(min_idle.count()), "0-0", "COUNT", std::to_string(count)));
  OutboxJobs jobs;
  if (!r.ok()) {
    jobs.error = r.what();
  } else if (r.reply.elements.size() >= 2) {
    jobs.entries = TakeEntries(r.reply.elements[1]);
  }
  co_return jobs;
}

OutboxSettlement OutboxQueue::Settlement() const {
  return OutboxSettlement(Cmd("4", outbox_, retry_, dead_, events_, kOutboxGroup));
}

awaitable<OutboxCount> OutboxQueue::Settle(RedisConnection& c, OutboxSettlement settlement) {
  if (settlement.empty()) co_return OutboxCount{};
  co_return CountOf(co_await Script(c, settle_sha_, kSettleScript, std::move(settlement.args_)));
}

awaitable<OutboxCount> OutboxQueue::PromoteDueRetries(RedisConnection& c, int64_t now_ms,
                                                      int most) {
  co_return CountOf(
      co_await Script(c, promote_sha_, kPromoteScript,
                      Cmd("2", retry_, outbox_, std::to_string(now_ms), std::to_string(most))));
}

}  // namespace journeyd::store
