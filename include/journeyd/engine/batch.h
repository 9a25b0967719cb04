// A batch commit as a pure plan. The partition worker reads a batch of stream entries and due
// timers, reads the customers' states, then asks PlanBatch what the batch does: each
// customer's new state and wake, the mails to queue, the entries that go to the dead stream
// and the journey counts. The store writes that plan in one atomic commit (store/commit.h).
// Nothing here does I/O or reads a clock: the time comes in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/engine/engine.h"
#include "journeyd/engine/event.h"
#include "journeyd/engine/state.h"
#include "journeyd/flow/flow.h"

namespace journeyd::engine {

// What the commit does with the customer's entry in the timers.
enum class WakeOp : uint8_t {
  kKeep,      // the wake did not move: leave the timers alone
  kSet,       // a new wake: place it
  kReassert,  // unchanged, but a fired entry may be an old one: put the state's wake back
  kRemove,    // no wake any more
};

// One customer of the batch: what was read for them, then (PlanBatch) what to write.
struct BatchCustomer {
  std::string id;
  std::vector<std::string> sources;  // their stream entries' ids, in stream order
  std::vector<Input> inputs;         // their events, in stream order
  // Taken from the timers: the timer fires in this commit, among the events by when it was
  // due, and the timers must then follow the state.
  bool fired = false;
  TimePoint due{};  // fired: the entry's wake time

  // Read (the caller fills these before PlanBatch).
  bool existed = false;               // a state was stored
  std::optional<TimePoint> old_wake;  // the stored state's wake

  // Planned.
  bool write_state = false;
  std::string state;  // write_state: the new state, encoded
  WakeOp wake_op = WakeOp::kSet;
  std::optional<TimePoint> wake;
  std::vector<SendJob> jobs;
  // The customer's share of the batch's journey counts: index into Batch::counts → count.
  std::vector<std::pair<size_t, int64_t>> counts;
  double fired_late = -1;  // a wake over once the events were in, fired here: how late (s)
};

// A stream entry that cannot become an event: it goes to the dead stream with its fields,
// `error` naming the field, and `source_id`.
struct DeadLetter {
  std::string source;               // the entry's id
  std::vector<std::string> fields;  // field, value, ...: as the dead stream gets them
  std::string type;                 // the entry's `type` when valid, else "invalid"
  std::string error_field;          // the field the error names
  std::string error;                // the error, as text
};

// An event of the batch, for the metrics once the commit is in.
struct CountedEvent {
  size_t customer;        // index into Batch::customers
  std::string_view type;  // into the customer's inputs
  bool duplicate;
};

struct PlanOptions {
  // The read left no entries behind: wakes that are over once a customer's events are in
  // fire in this commit (else they go through the timers and fire with the next read).
  bool fire_over_wakes = false;
  // Keep the engine's journey records (Batch::records), for a debug log.
  bool keep_records = false;
};

// A batch: filled by the reader, planned by PlanBatch. Kept from batch to batch: Clear keeps
// the room its lists and the customers' states hold.
class Batch {
 public:
  void Clear();

  // A customer whose timer is due: fires in the commit.
  void AddTimer(std::string_view customer, TimePoint due);
  // A stream entry: its event joins its customer's inputs, or it becomes a dead letter.
  // `id` is the entry's id ("<ms>-<seq>", the ms its default time), `now` the time the
  // event takes when the entry's id has no time. Returns false for a dead letter.
  bool AddEntry(std::string_view id, std::span<const FieldView> fields, TimePoint now);
  // Room for `n` more customers (entries or timers), so that the index never rehashes.
  void Reserve(size_t n);

  bool empty() const { return used_ == 0 && dead_.empty(); }
  std::span<BatchCustomer> customers() { return {customers_.data(), used_}; }
  std::span<const BatchCustomer> customers() const { return {customers_.data(), used_}; }
  // Customer `i`'s stored state as read (nullopt: none stored): decoded into its state (or a
  // new state for a new customer), for PlanBatch to step on. False, with the reason in
  // `*error`, for a state that cannot be read: the batch must not be committed.
  bool SetState(size_t i, std::optional<std::string_view> stored, std::string* error);
  std::span<const CustomerState> states() const { return {states_.data(), used_}; }
  const std::vector<DeadLetter>& dead() const { return dead_; }
  size_t events() const { return events_; }

  // Planned: the journey counts of the batch, one field "<flow>\t<step>\t<kind>\t<reason>"
  // per distinct record with its total; each customer's share is in BatchCustomer::counts.
  const std::vector<std::pair<std::string, int64_t>>& counts() const { return counts_; }
  const std::vector<CountedEvent>& counted_events() const { return counted_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::vector<Record>& records() const { return records_; }
  size_t mails() const { return mails_; }
  // The earliest wake of the batch's customers after it.
  std::optional<TimePoint> earliest_wake() const { return earliest_wake_; }

 private:
  friend void PlanBatch(const flow::FlowSet&, const Policy&, TimePoint, const PlanOptions&, Batch*);
  BatchCustomer& CustomerFor(std::string_view id);
  void PlanCustomer(const flow::FlowSet& flows, const Policy& policy, TimePoint now,
                    const PlanOptions& options, size_t i);
  void Apply(const flow::FlowSet& flows, const Policy& policy, TimePoint now, bool keep_records,
             size_t i, const Input& in, bool* changed);

  std::vector<BatchCustomer> customers_;
  size_t used_ = 0;  // customers_ beyond this are kept for their room
  std::vector<CustomerState> states_;
  std::vector<DeadLetter> dead_;
  size_t events_ = 0;
  std::vector<std::pair<std::string, int64_t>> counts_;
  std::vector<CountedEvent> counted_;
  std::vector<std::string> warnings_;
  std::vector<Record> records_;
  size_t mails_ = 0;
  std::optional<TimePoint> earliest_wake_;
  std::string field_;  // a count's field, being built
  // Customer id → place in customers_ (views of their ids: rebuilt when customers_ moves).
  std::unordered_map<std::string_view, size_t> customer_index_;
  std::unordered_map<std::string, size_t> count_index_;  // count field → place in counts_
};

// Steps every customer of the batch through the engine, in stream order, a fired timer among
// the events by when it was due; then decides what to write for each: the state (unless
// unchanged), the wake operation, the jobs, the counts.
void PlanBatch(const flow::FlowSet& flows, const Policy& policy, TimePoint now,
               const PlanOptions& options, Batch* batch);

}  // namespace journeyd::engine
