#include "journeyd/store/commit.h"

#include <charconv>
#include <map>

#include "journeyd/store/await.h"
#include "journeyd/store/outbox.h"

namespace journeyd::store {

namespace asio = boost::asio;
using engine::Batch;
using engine::BatchCustomer;
using engine::WakeOp;

namespace {

// Whether the customer can be in the timers set: its old wake is in a moved bucket (or it
// fired from there). An old entry we do not know of fires early, and its commit (fired) sets
// the set right.
bool InTimers(const BatchCustomer& c, int64_t wheel_moved) {
  return c.fired || (c.old_wake && WheelBucket(ToUnixMillis(*c.old_wake)) <= wheel_moved);
}

// One kind of effect per command, filled customer by customer.
struct BulkEffects {
  RespArgs acks, mset, zadd, zrem;
  std::map<int64_t, RespArgs> buckets;  // wheel bucket → its new entries
  std::vector<RespCommand> jobs;        // one XADD each
};

void AddWake(const BatchCustomer& c, int64_t wheel_moved, BulkEffects* f) {
  const bool in_timers = InTimers(c, wheel_moved);
  if (c.wake_op == WakeOp::kRemove) {
    if (in_timers) f->zrem.Arg(c.id);
    return;
  }
  if (c.wake_op != WakeOp::kSet && c.wake_op != WakeOp::kReassert) return;
  const int64_t wake_ms = c.wake ? ToUnixMillis(*c.wake) : 0;
  const int64_t bucket = WheelBucket(wake_ms);
  if (bucket <= wheel_moved) {
    f->zadd.Arg(wake_ms).Arg(c.id);
    return;
  }
  if (in_timers) f->zrem.Arg(c.id);
  if (c.wake_op == WakeOp::kSet) {
    char entry[24];
    auto end = std::to_chars(entry, entry + sizeof entry, wake_ms).ptr;
    *end++ = ':';
    f->buckets[bucket].Arg(std::string(entry, end) + c.id);
  }
}

void AddCustomer(const BatchCustomer& c, std::string_view customer_prefix, std::string_view outbox,
                 int64_t wheel_moved, BulkEffects* f) {
  for (const auto& src : c.sources) f->acks.Arg(src);
  if (c.write_state) f->mset.Arg(customer_prefix, c.id).Arg(c.state);
  AddWake(c, wheel_moved, f);
  for (const auto& j : c.jobs) {
    auto xadd = RespCommand::Build(512);
    xadd.Arg("XADD").Arg(outbox).Arg("*");
    ForEachOutboxField(j, [&xadd](std::string_view k, std::string_view v) { xadd.Arg(k).Arg(v); });
    f->jobs.push_back(std::move(xadd).Done());
  }
}

// The per-customer part of kCommitScript's ARGV.
void AddScriptCustomer(const BatchCustomer& c, RespArgs* cust) {
  cust->Arg(static_cast<int64_t>(c.sources.size()));
  for (const auto& src : c.sources) cust->Arg(src);
  cust->Arg(c.write_state ? std::string_view(c.state) : std::string_view("="));
  const int64_t wake_ms = c.wake ? ToUnixMillis(*c.wake) : 0;
  switch (c.wake_op) {
    case WakeOp::kKeep:
      cust->Arg("=");
      break;
    case WakeOp::kRemove:
      cust->Arg("");
      break;
    case WakeOp::kSet:
      cust->Arg(wake_ms);
      break;
    case WakeOp::kReassert:
      cust->Arg("~" + std::to_string(wake_ms));
      break;
  }
  cust->Arg(c.id);
  cust->Arg(static_cast<int64_t>(c.jobs.size()));
  for (const auto& j : c.jobs) {
    std::vector<std::string> fields = OutboxFields(j);
    cust->Arg(static_cast<int64_t>(fields.size()));
    for (const auto& x : fields) cust->Arg(x);
  }
  cust->Arg(static_cast<int64_t>(c.counts.size()));
  for (const auto& [index, count] : c.counts) {
    cust->Arg(static_cast<int64_t>(index + 1));
    cust->Arg(count);
  }
}

}  // namespace

std::vector<RespCommand> BulkCommit(const Keys& keys, const Batch& batch, int64_t wheel_moved,
                                    const WheelTake* take) {
  const std::string customer_prefix = keys.customer_prefix();
  const std::string outbox = keys.outbox();
  BulkEffects f;
  f.mset.Reserve(batch.customers().size() * 256);
  for (const BatchCustomer& c : batch.customers()) {
    AddCustomer(c, customer_prefix, outbox, wheel_moved, &f);
  }
  // Nothing in a fresh batch can have been committed before (we hold the lease): every
  // customer applies, one command per kind of effect.
  std::vector<RespCommand> body;
  for (const auto& [name, count] : batch.counts()) {
    body.push_back(RespCommand::Of({"HINCRBY", keys.stats(), name, std::to_string(count)}));
  }
  for (const auto& d : batch.dead()) f.acks.Arg(d.source);
  if (f.acks.count() > 0) {
    body.push_back(RespCommand::Join({"XACK", keys.events(), kEventsGroup}, f.acks));
  }
  if (f.mset.count() > 0) body.push_back(RespCommand::Join({"MSET"}, f.mset));
  if (f.zadd.count() > 0) body.push_back(RespCommand::Join({"ZADD", keys.timers()}, f.zadd));
  if (f.zrem.count() > 0) body.push_back(RespCommand::Join({"ZREM", keys.timers()}, f.zrem));
  for (const auto& [bucket, entries] : f.buckets) {
    const std::string start = std::to_string(bucket);
    body.push_back(RespCommand::Join({"RPUSH", keys.wheel_bucket(start)}, entries));
    body.push_back(RespCommand::Of({"ZADD", keys.wheel(), "NX", start, start}));
  }
  for (auto& j : f.jobs) body.push_back(std::move(j));
  if (take) {
    body.push_back(RespCommand::Of(
        {"LTRIM", keys.wheel_bucket(take->bucket), std::to_string(take->entries), "-1"}));
  }
  for (const auto& d : batch.dead()) {
    RespArgs df;
    for (const auto& x : d.fields) df.Arg(x);
    body.push_back(RespCommand::Join({"XADD", keys.dead(), "*"}, df));
  }
  return InTransaction(std::move(body));
}

RespCommand ScriptCommit(const Keys& keys, std::string_view sha, const CommitContext& context,
                         const Batch& batch) {
  RespArgs keys_args;  // the fixed eight, then every customer's key
  keys_args.Arg(keys.events()).Arg(keys.outbox()).Arg(keys.dead());
  keys_args.Arg(keys.timers()).Arg(keys.lease()).Arg(keys.stats());
  keys_args.Arg(keys.wheel()).Arg(keys.wheel_moved());
  const std::string customer_prefix = keys.customer_prefix();
  for (const BatchCustomer& c : batch.customers()) keys_args.Arg(customer_prefix, c.id);
  RespArgs cust;
  cust.Reserve(batch.customers().size() * 256);
  for (const BatchCustomer& c : batch.customers()) AddScriptCustomer(c, &cust);
  RespArgs tail;
  tail.Arg(static_cast<int64_t>(batch.dead().size()));
  for (const auto& d : batch.dead()) {
    tail.Arg(d.source).Arg(static_cast<int64_t>(d.fields.size()));
    for (const auto& x : d.fields) tail.Arg(x);
  }
  RespArgs head;  // EVALSHA, the SHA1, the key count
  RespArgs argv;  // token, group, mode, then the batch's counts
  head.Arg("EVALSHA").Arg(sha).Arg(static_cast<int64_t>(keys_args.count()));
  argv.Arg(context.token).Arg(kEventsGroup).Arg(context.mode == CommitMode::kFresh ? "f" : "r");
  argv.Arg(static_cast<int64_t>(batch.counts().size()));
  for (const auto& [name, count] : batch.counts()) argv.Arg(name).Arg(count);
  argv.Arg(static_cast<int64_t>(batch.customers().size()));
  return RespCommand::Join(head, keys_args, argv, cust, tail);
}

BatchCommitter::BatchCommitter(Keys keys)
    : keys_(std::move(keys)), customer_prefix_(keys_.customer_prefix()) {}

Fence BatchCommitter::FenceOf(const CommitContext& context) const {
  return Fence{keys_.lease(), context.token, keys_.wheel_moved(), context.wheel_moved.value_or(0)};
}

asio::awaitable<std::string> BatchCommitter::LoadScript(RedisConnection& conn) {
  Result sha = co_await Call(conn, Cmd("SCRIPT", "LOAD", kCommitScript));
  if (!sha.ok()) co_return "cannot load the commit script: " + sha.what();
  sha_ = sha.reply.str;
  co_return "";
}

asio::awaitable<std::string> BatchCommitter::ReadStates(RedisConnection& conn,
                                                        const CommitContext& context, Batch& batch,
                                                        bool* stale) {
  *stale = false;
  const bool bulk = context.bulk();
  const std::span<const BatchCustomer> customers = batch.customers();
  const Fence fence = FenceOf(context);
  std::vector<RespCommand> reads;
  if (bulk) reads = FenceWatch(fence);
  if (!customers.empty()) {
    RespArgs names;
    names.Reserve(customers.size() * 40);
    for (const auto& c : customers) names.Arg(customer_prefix_, c.id);
    RespArgs mget;
    mget.Arg("MGET");
    reads.push_back(RespCommand::Join(mget, names));
  }
  std::vector<Result> read = co_await CallAll(conn, reads);
  auto refuse = [&](std::string why) -> asio::awaitable<std::string> {
    if (bulk) co_await Call(conn, Cmd("UNWATCH"));  // the next transaction starts clean
    co_return why;
  };
  if (bulk) {
    std::string why = FenceCheck(fence, read);
    if (!why.empty()) {
      *stale = why.rfind("STALE", 0) == 0;
      co_return co_await refuse("commit refused: " + why);
    }
  }
  if (customers.empty()) co_return "";
  const Result& r = read.back();
  if (!r.ok()) co_return co_await refuse("MGET: " + r.what());
  for (size_t i = 0; i < customers.size(); ++i) {
    const bool stored =
        i < r.reply.elements.size() && r.reply.elements[i].type == Reply::Type::kString;
    std::string err;
    if (!batch.SetState(
            i, stored ? std::optional<std::string_view>(r.reply.elements[i].str) : std::nullopt,
            &err)) {
      // Never lose the customer's events for a state we cannot read: stop and say so.
      co_return co_await refuse("customer " + customers[i].id + ": " + err);
    }
  }
  co_return "";
}

asio::awaitable<CommitOutcome> BatchCommitter::Write(RedisConnection& conn,
                                                     const CommitContext& context,
                                                     const Batch& batch, const WheelTake* take) {
  if (context.bulk()) co_return co_await WriteBulk(conn, context, batch, take);
  if (take) {
    CommitOutcome refused;
    refused.error = "entries fired from a wheel bucket outside a bulk commit";
    co_return refused;
  }
  co_return co_await WriteScript(conn, context, batch);
}

asio::awaitable<CommitOutcome> BatchCommitter::WriteBulk(RedisConnection& conn,
                                                         const CommitContext& context,
                                                         const Batch& batch,
                                                         const WheelTake* take) {
  CommitOutcome out;
  out.skipped.assign(batch.customers().size(), false);
  size_t nacks = batch.dead().size();
  for (const auto& c : batch.customers()) nacks += c.sources.size();
  std::vector<Result> replies =
      co_await CallAll(conn, BulkCommit(keys_, batch, *context.wheel_moved, take));
  const Reply* exec = nullptr;
  std::string why = TransactionError(replies, &exec);
  if (!why.empty()) {
    out.stale = why.rfind("STALE", 0) == 0;
    out.error = (out.stale ? "commit refused: " : "commit: ") + why;
    co_return out;
  }
  const size_t xack_at = batch.counts().size();  // the XACK's place among EXEC's replies
  if (nacks > 0 && xack_at < exec->elements.size() &&
      exec->elements[xack_at].integer < static_cast<long long>(nacks)) {
    out.already_acked = static_cast<int64_t>(nacks) - exec->elements[xack_at].integer;
  }
  co_return out;
}

asio::awaitable<CommitOutcome> BatchCommitter::WriteScript(RedisConnection& conn,
                                                           const CommitContext& context,
                                                           const Batch& batch) {
  CommitOutcome out;
  out.skipped.assign(batch.customers().size(), false);
  const RespCommand command = ScriptCommit(keys_, sha_, context, batch);
  Result r = co_await Call(conn, &command);
  if (r.reply.is_error() && r.reply.str.rfind("NOSCRIPT", 0) == 0) {
    // Redis lost its scripts (a restart or SCRIPT FLUSH): load it again; same SHA1.
    const std::string before = sha_;
    out.error = co_await LoadScript(conn);
    if (!out.error.empty()) co_return out;
    if (sha_ != before) {
      out.error = "the commit script's SHA1 changed on reload";
      co_return out;
    }
    r = co_await Call(conn, &command);
  }
  if (!r.error.empty()) {
    out.error = "commit: " + r.error;
    co_return out;
  }
  if (r.reply.is_error()) {
    out.stale = r.reply.str.rfind("STALE", 0) == 0;
    out.error = "commit refused: " + r.reply.str;
    co_return out;
  }
  if (r.reply.elements.size() >= 4 && r.reply.elements[3].integer > 0) {
    out.already_acked = r.reply.elements[3].integer;
  }
  if (r.reply.elements.size() >= 3) {
    for (const Reply& x : r.reply.elements[2].elements) {
      if (x.integer >= 0 && static_cast<size_t>(x.integer) < out.skipped.size()) {
        out.skipped[static_cast<size_t>(x.integer)] = true;
      }
    }
  }
  co_return out;
}

}  // namespace journeyd::store
