// Redis replies (RESP) as the daemon reads them: hiredis's reader building store::Reply
// values (store/redis.h ReplyReader, the connection's own reply builders), fed in pieces
// as a socket delivers them, then every reader of replies the store has: the typed
// operations, stream entries into events (engine/event.h), outbox jobs, transactions.
// Invariants: the same bytes parse to the same replies however they are cut; nothing throws.
//
// Input: one byte whose value is the size of the pieces (0: all at once), then the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/engine/event.h"
#include "journeyd/store/clock_anchor.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/entries.h"
#include "journeyd/store/fence.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"
#include "journeyd/store/partition_info.h"
#include "journeyd/store/publish.h"
#include "journeyd/store/redis.h"
#include "journeyd/store/stats.h"

using namespace journeyd;
using store::Reply;

namespace {

std::vector<Reply> ReadAll(std::string_view bytes, size_t piece, bool* failed) {
  store::ReplyReader reader;
  std::vector<Reply> out;
  std::string error;
  *failed = false;
  while (!bytes.empty()) {
    const size_t n = piece == 0 ? bytes.size() : std::min(piece, bytes.size());
    reader.Feed(bytes.substr(0, n));
    bytes.remove_prefix(n);
    for (;;) {
      Reply r;
      const auto status = reader.Next(&r, &error);
      if (status == store::ReplyReader::Status::kError) {
        if (error.empty()) std::abort();
        *failed = true;
        return out;
      }
      if (status == store::ReplyReader::Status::kMore) break;
      out.push_back(std::move(r));
      if (out.size() == 1000) return out;  // enough for one input, however it was cut
    }
  }
  return out;
}

bool Same(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

template <typename T>
void ReadAs(const store::Op<T>& op, const Reply& r) {
  store::Result result;
  result.reply = r;
  (void)store::Read(op, result);
}

void ReadStore(const Reply& r) {
  const store::Keys keys("journeyd", 0);
  ReadAs(store::LeaseHeld(keys), r);
  ReadAs(store::EventsGroup(keys), r);
  ReadAs(store::OutboxGroup(keys), r);
  ReadAs(store::CustomerState(keys, "c1"), r);
  ReadAs(store::ClockAnchor("journeyd"), r);
  ReadAs(store::OfferClockAnchor("journeyd", 1779278400000), r);
  ReadAs(store::JourneyCounts(keys), r);
  const store::EventField fields[] = {{"type", "x"}, {"customer_id", "c1"}};
  ReadAs(store::PublishEvent(keys, fields), r);
  (void)store::ReadGroupInfo(r, "journeyd");
  (void)store::EntryCount(r);
  (void)store::FieldMap(r);
  if (const Reply* entries = store::StreamEntries(r)) {
    const TimePoint now = FromUnixMillis(1779278400000);
    store::ForEachEntry(*entries, [&](std::string_view, const auto& f) {
      engine::EventError error;
      (void)engine::EventFromFields(f, now, now, &error);
      for (const auto& [name, value] : f) {
        engine::SendJob job;
        std::string why;
        if (name == "job") (void)store::ReadOutboxJob(value, &job, &why);
      }
    });
  }
  if (r.type == Reply::Type::kString) {
    engine::SendJob job;
    std::string why;
    (void)store::ReadOutboxJob(r.str, &job, &why);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool failed_whole = false, failed_pieces = false;
  const std::vector<Reply> whole = ReadAll(bytes, 0, &failed_whole);
  const std::vector<Reply> pieces = ReadAll(bytes, piece, &failed_pieces);
  if (failed_whole != failed_pieces || whole.size() != pieces.size()) std::abort();
  for (size_t i = 0; i < whole.size(); ++i) {
    if (!Same(whole[i], pieces[i])) std::abort();
  }
  std::vector<store::Result> results;
  for (const Reply& r : whole) {
    ReadStore(r);
    results.push_back({r, ""});
  }
  const Reply* exec = nullptr;
  (void)store::TransactionError(results, &exec);
  return 0;
}
