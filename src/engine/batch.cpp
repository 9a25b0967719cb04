#include "journeyd/engine/batch.h"

#include <algorithm>
#include <charconv>

namespace journeyd::engine {

void Batch::Clear() {
  used_ = 0;
  customer_index_.clear();
  dead_.clear();
  events_ = 0;
  counts_.clear();
  count_index_.clear();
  counted_.clear();
  warnings_.clear();
  records_.clear();
  mails_ = 0;
  earliest_wake_.reset();
}

void Batch::Reserve(size_t n) {
  if (used_ + n <= customers_.capacity()) return;
  customers_.reserve(used_ + n);
  customer_index_.clear();
  for (size_t i = 0; i < used_; ++i) customer_index_.emplace(customers_[i].id, i);
  customer_index_.reserve(used_ + n);
}

BatchCustomer& Batch::CustomerFor(std::string_view id) {
  if (auto it = customer_index_.find(id); it != customer_index_.end()) {
    return customers_[it->second];
  }
  if (used_ == customers_.size()) {
    Reserve(std::max<size_t>(1, used_));  // the index follows if the customers move
    customers_.emplace_back();
  }
  // A customer kept from an earlier batch is reused for the room its lists hold.
  BatchCustomer& c = customers_[used_];
  c.id.assign(id);
  c.sources.clear();
  c.inputs.clear();
  c.fired = false;
  c.due = {};
  c.existed = false;
  c.old_wake.reset();
  c.write_state = false;
  c.wake_op = WakeOp::kSet;
  c.wake.reset();
  c.jobs.clear();
  c.counts.clear();
  c.fired_late = -1;
  customer_index_.emplace(c.id, used_);
  ++used_;
  return c;
}

void Batch::AddTimer(std::string_view customer, TimePoint due) {
  BatchCustomer& c = CustomerFor(customer);
  c.fired = true;
  c.due = due;
}

bool Batch::AddEntry(std::string_view id, std::span<const FieldView> fields, TimePoint now) {
  int64_t id_ms = 0;  // the entry id's milliseconds, before its '-'
  std::from_chars(id.data(), id.data() + id.size(), id_ms);
  EventError err;
  std::optional<Event> ev = EventFromFields(fields, FromUnixMillis(id_ms), now, &err);
  if (!ev) {
    DeadLetter& d = dead_.emplace_back();
    d.source.assign(id);
    for (const auto& [k, v] : fields) {
      if (k == "type") d.type.assign(v);
      if (k == "error" || k == "source_id") continue;
      d.fields.emplace_back(k);
      d.fields.emplace_back(v);
    }
    if (!ValidEventType(d.type)) d.type = "invalid";
    d.error_field = err.field;
    d.error = err.ToString();
    d.fields.emplace_back("error");
    d.fields.push_back(d.error);
    d.fields.emplace_back("source_id");
    d.fields.emplace_back(id);
    return false;
  }
  BatchCustomer& c = CustomerFor(ev->customer_id);
  c.sources.emplace_back(id);
  c.inputs.emplace_back(EventInput{std::move(*ev)});
  ++events_;
  return true;
}

bool Batch::SetState(size_t i, std::optional<std::string_view> stored, std::string* error) {
  if (states_.size() < used_) states_.resize(used_);
  BatchCustomer& c = customers_[i];
  CustomerState& st = states_[i];
  if (stored) {
    if (!DecodeState(*stored, &st, error)) return false;
    c.existed = true;
    c.old_wake = st.wake;
  } else {
    st.Clear();
  }
  if (st.id.empty()) st.id = c.id;
  return true;
}

// One input through the engine: its jobs, counts and warnings join the customer's and the
// batch's.
void Batch::Apply(const flow::FlowSet& flows, const Policy& policy, TimePoint now,
                  bool keep_records, size_t i, const Input& in, bool* changed) {
  BatchCustomer& c = customers_[i];
  Decisions d = Step(flows, policy, states_[i], in, now);
  *changed = *changed || d.changed;
  if (const auto* ev = std::get_if<EventInput>(&in)) {
    counted_.push_back({i, ev->event.type, d.duplicate});
  }
  for (auto& w : d.warnings) warnings_.push_back(std::move(w));
  for (auto& rec : d.records) {
    field_.clear();
    field_.append(rec.flow).append(1, '\t').append(rec.step).append(1, '\t');
    field_.append(RecordKindName(rec.kind)).append(1, '\t').append(rec.reason);
    auto [it, fresh] = count_index_.try_emplace(field_, counts_.size());
    if (fresh) counts_.emplace_back(field_, 0);
    ++counts_[it->second].second;
    // A copy of the index, not the binding: clang 14 (the fuzz build) cannot capture one.
    const auto index = it->second;
    auto m = std::find_if(c.counts.begin(), c.counts.end(),
                          [&](const auto& p) { return p.first == index; });
    if (m == c.counts.end()) {
      c.counts.emplace_back(index, 1);
    } else {
      ++m->second;
    }
    if (keep_records) records_.push_back(std::move(rec));
  }
  for (auto& j : d.sends) c.jobs.push_back(std::move(j));
}

void Batch::PlanCustomer(const flow::FlowSet& flows, const Policy& policy, TimePoint now,
                         const PlanOptions& options, size_t i) {
  BatchCustomer& c = customers_[i];
  CustomerState& st = states_[i];
  bool changed = false;
  auto apply = [&](const Input& in) {
    Apply(flows, policy, now, options.keep_records, i, in, &changed);
  };
  if (c.fired) {
    // The events that happened by the time the timer was due go first. That time is the
    // state's wake when it is due: an entry's own can be an old one, left behind when the
    // wake changed. When the state's wake is not due, the entry's time orders as before: the
    // timer fires nothing, and a wake the later events arm in the past fires only as over
    // wakes do (below).
    const TimePoint due = st.wake && *st.wake <= now ? *st.wake : c.due;
    auto by_due = [&](const Input& in) { return std::get<EventInput>(in).event.ts <= due; };
    for (const auto& in : c.inputs) {
      if (by_due(in)) apply(in);
    }
    apply(TimerInput{});
    for (const auto& in : c.inputs) {
      if (!by_due(in)) apply(in);
    }
  } else {
    for (const auto& in : c.inputs) apply(in);
  }
  // A wake that is over once the customer's events are in (a trigger read after its first
  // wait ended) fires in this commit, after those events, when the read left no entries
  // behind; else it goes through the timers, and fires with the next read, after that read's
  // events that happened by then.
  if (options.fire_over_wakes && st.wake && *st.wake <= now) {
    c.fired_late = std::chrono::duration<double>(now - *st.wake).count();
    apply(TimerInput{});
  }
  // What to write: the state (unless unchanged), and what the timers must do.
  c.write_state = changed || !c.existed;
  if (c.write_state) EncodeState(st, &c.state);
  c.wake = st.wake;
  if (st.wake == c.old_wake && c.existed) {
    // A fired entry may be an old one from the wheel, earlier than the state's wake: put the
    // state's wake back in its place.
    c.wake_op = !c.fired ? WakeOp::kKeep : st.wake ? WakeOp::kReassert : WakeOp::kRemove;
  } else {
    c.wake_op = st.wake ? WakeOp::kSet : WakeOp::kRemove;
  }
  mails_ += c.jobs.size();
  if (st.wake && (!earliest_wake_ || *st.wake < *earliest_wake_)) earliest_wake_ = st.wake;
}

void PlanBatch(const flow::FlowSet& flows, const Policy& policy, TimePoint now,
               const PlanOptions& options, Batch* batch) {
  if (batch->states_.size() < batch->used_) batch->states_.resize(batch->used_);
  batch->counted_.reserve(batch->events_);
  for (size_t i = 0; i < batch->used_; ++i) batch->PlanCustomer(flows, policy, now, options, i);
}

}  // namespace journeyd::engine
