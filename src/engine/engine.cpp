// The journey engine. See engine.h; the rules it implements are SPEC §5.
#include "journeyd/engine/engine.h"
#include "journeyd/engine/rfm.h"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>

#include "journeyd/common/hash.h"
#include "journeyd/engine/calendar.h"
#include "journeyd/engine/json.h"
#include "journeyd/engine/render.h"

namespace journeyd::engine {
namespace {

using flow::Flow;
using flow::Path;
using flow::Root;
using flow::Step;
using flow::StepKind;
using flow::Value;

constexpr int kMaxStepsPerAdvance = 10000;
constexpr size_t kMaxRecentSends = 64;
// A journey's waits count from when its trigger event happened when the daemon reads it at
// most this late; an older event (a backfill, a long outage) starts the journey's clock when
// it is read, so that it does not send its overdue mails all at once.
constexpr Duration kJourneyCatchUp = std::chrono::hours(1);

Value WalkJson(const nlohmann::json& root, const std::vector<std::string>& segs, size_t from,
               std::deque<std::vector<Value>>& lists) {
  const nlohmann::json* cur = &root;
  for (size_t i = from; i < segs.size(); ++i) {
    if (cur->is_array()) {
      // items.name: that field of every element, as a list ("Teapot, Oak tray" in a mail).
      auto& items = lists.emplace_back();  // a deque: stays put while the elements are walked
      for (const auto& e : *cur) {
        Value v = WalkJson(e, segs, i, lists);
        if (v.type() != flow::ValueType::kNull && v.type() != flow::ValueType::kList) {
          items.push_back(v);
        }
      }
      return Value::List(items);
    }
    if (!cur->is_object()) return Value::Null();
    auto it = cur->find(segs[i]);
    if (it == cur->end()) return Value::Null();
    cur = &*it;
  }
  return JsonToValue(*cur, lists);
}

// What expressions and templates see while the engine works on one customer.
class EngineScope final : public flow::Scope {
 public:
  EngineScope(const CustomerState& state, TimePoint now, const RfmThresholds& rfm)
      : state_(state), now_(now), rfm_(rfm) {}

  void set_event(const Event* e) { event_ = e; }
  void set_journey(const Journey* j) { journey_ = j; }
  void set_step(const Step* s, std::string_view unsubscribe_url, std::string_view flow_id) {
    step_ = s;
    unsubscribe_url_ = unsubscribe_url;
    flow_id_ = flow_id;
  }

  TimePoint Now() const override { return now_; }

  Value Lookup(const Path& p) const override {
    switch (p.root) {
      case Root::kNow:
        return Value::Time(now_);
      case Root::kCustomer:
        return Customer(p);
      case Root::kEvent:
        if (!event_ || p.segments.empty()) return Value::Null();
        return EventField(p.segments, event_->type, event_->customer_id, event_->event_id,
                          event_->ts, &event_->data, &event_->profile);
      case Root::kTrigger:
        if (!journey_ || p.segments.empty() || journey_->trigger_type.empty()) {
          return Value::Null();
        }
        return EventField(p.segments, journey_->trigger_type, state_.id, journey_->trigger_event_id,
                          journey_->trigger_ts, TriggerData(), nullptr);
      case Root::kVar: {
        if (p.segments.empty()) return Value::Null();
        const std::string_view name = p.segments[0];
        if (name == "unsubscribe_url") return Value::String(unsubscribe_url_);
        if (name == "flow_id") return Value::String(flow_id_);
        if (name == "step_id") return step_ ? Value::String(step_->id) : Value::Null();
        if (!step_) return Value::Null();
        auto it = std::lower_bound(step_->vars.begin(), step_->vars.end(), name,
                                   [](const auto& kv, std::string_view n) { return kv.first < n; });
        if (it == step_->vars.end() || it->first != name) return Value::Null();
        return it->second.AsValue();
      }
    }
    return Value::Null();
  }

 private:
  Value Customer(const Path& p) const {
    if (p.segments.size() == 2 && p.segments[0] == "rfm") return RfmField(p.segments[1]);
    if (p.segments.size() != 1) return Value::Null();
    const std::string_view a = p.segments[0];
    if (a == "orders") return Value::Number(static_cast<double>(state_.orders));
    if (a == "revenue") return Value::Number(state_.revenue);
    if (a == "first_purchase_at") {
      return state_.first_purchase_at ? Value::Time(*state_.first_purchase_at) : Value::Null();
    }
    if (a == "last_purchase_at") {
      return state_.last_purchase_at ? Value::Time(*state_.last_purchase_at) : Value::Null();
    }
    if (a == "id") return Value::String(state_.id);
    if (a == "unsubscribed") return Value::Bool(state_.unsubscribed);
    if (a == "bouncing") return Value::Bool(state_.bouncing);
    const Attr* v = state_.Find(a);
    return v ? v->AsValue() : Value::Null();
  }

  // customer.rfm.r, .f, .m and .segment, scored now.
  Value RfmField(std::string_view field) const {
    const Rfm rfm = ScoreRfm(state_.orders, state_.revenue, state_.last_purchase_at, now_, rfm_);
    if (field == "segment") return Value::String(rfm.segment);
    const int score = field == "r" ? rfm.r : field == "f" ? rfm.f : field == "m" ? rfm.m : 0;
    return score == 0 ? Value::Null() : Value::Number(score);
  }

  Value EventField(const std::vector<std::string>& segs, const std::string& type,
                   const std::string& customer_id, const std::string& event_id, TimePoint ts,
                   const nlohmann::json* data, const FlatObject* profile) const {
    const std::string_view f = segs[0];
    if (segs.size() == 1) {
      if (f == "type") return Value::String(type);
      if (f == "customer_id") return Value::String(customer_id);
      if (f == "event_id") return event_id.empty() ? Value::Null() : Value::String(event_id);
      if (f == "ts") return Value::Time(ts);
    }
    if (f == "data" && data) return WalkJson(*data, segs, 1, Lists());
    if (f == "profile" && profile && segs.size() == 2) {  // profile values are scalars
      auto it = std::lower_bound(profile->begin(), profile->end(), segs[1],
                                 [](const auto& kv, const std::string& n) { return kv.first < n; });
      if (it != profile->end() && it->first == segs[1]) return it->second.AsValue();
    }
    return Value::Null();
  }

  const CustomerState& state_;
  TimePoint now_;
  const RfmThresholds& rfm_;
  const Event* event_ = nullptr;
  const Journey* journey_ = nullptr;
  const Step* step_ = nullptr;
  std::string_view unsubscribe_url_;
  std::string_view flow_id_;
  // The journey's trigger data, unpacked on first use, and again when the scope moves on to
  // a journey with other data.
  const nlohmann::json* TriggerData() const {
    if (!trigger_unpacked_ || trigger_packed_ != journey_->trigger_data) {
      trigger_packed_ = journey_->trigger_data;
      trigger_data_ = UnpackTriggerData(trigger_packed_);
      trigger_unpacked_ = true;
    }
    return &trigger_data_;
  }
  mutable bool trigger_unpacked_ = false;
  mutable std::string trigger_packed_;
  mutable nlohmann::json trigger_data_;
  // Made on first use: a std::deque allocates as soon as it is constructed, and most scopes
  // never hold a list.
  std::deque<std::vector<Value>>& Lists() const {
    if (!lists_) lists_.emplace();
    return *lists_;
  }
  mutable std::optional<std::deque<std::vector<Value>>> lists_;
};

// Fills a string just constructed (empty): most record fields are empty or short,
// and assigning nothing to nothing still goes through std::string's general replace.
void SetFresh(std::string& dst, std::string_view src) {
  if (!src.empty()) dst.append(src.data(), src.size());
}

bool SameAttr(const Attr* a, const Attr& b) {
  if (!a) return b.kind == Attr::Kind::kNull;
  if (a->kind != b.kind) return false;
  switch (a->kind) {
    case Attr::Kind::kNull:
      return true;
    case Attr::Kind::kBool:
      return a->b == b.b;
    case Attr::Kind::kNumber:
      return a->number == b.number;
    case Attr::Kind::kString:
      return a->str == b.str;
  }
  return false;
}

bool NumberOf(const nlohmann::json& v, double* out) {
  if (v.is_number()) {
    *out = v.get<double>();
    return std::isfinite(*out);
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size() && std::isfinite(*out);
  }
  return false;
}

// The customer's `locale` attribute ("" when none).
std::string_view CustomerLocale(const CustomerState& state) {
  const Attr* locale = state.Find("locale");
  return locale && locale->kind == Attr::Kind::kString ? std::string_view(locale->str) : "";
}

// The job send step `s` of flow `f` makes for `state` in its journey `j` at `now`: the template
// in `locale` (or its default), the values it reads snapshotted, and rendered from that snapshot
// as the sender will when the policy asks (what simulate shows is what goes out). `state` has
// an email address.
SendJob MakeSendJob(const flow::FlowSet& flows, const Policy& policy, const CustomerState& state,
                    const Flow& f, const Step& s, const Journey& j, std::string_view locale,
                    TimePoint now) {
  const bool marketing = f.category == flow::Category::kMarketing;
  const flow::Template* t = flows.templates().Find(s.template_name, locale);
  SendJob job;
  job.job_id = JobId(state.id, f.id, j.run, s.id);
  job.customer_id = state.id;
  job.flow = f.id;
  job.step = s.id;
  job.run = j.run;
  job.marketing = marketing;
  job.template_name = s.template_name;
  job.to = OneLine(state.Find("email")->str);
  job.at = now;
  if (marketing && policy.unsubscribe_url) {
    job.unsubscribe_url = policy.unsubscribe_url(state.id, f.id, job.job_id);
  }
  if (t) {
    job.locale = t->locale;
    EngineScope scope(state, now, policy.rfm);
    scope.set_journey(&j);
    scope.set_step(&s, job.unsubscribe_url, f.id);
    job.vars = SnapshotVars(*t, scope);
    if (policy.render_mail) RenderSendJob(*t, job, nullptr);
  }
  return job;
}

class Engine {
 public:
  Engine(const flow::FlowSet& flows, const Policy& policy, CustomerState& state, TimePoint now,
         Decisions& out)
      : flows_(flows), policy_(policy), state_(state), now_(now), out_(out) {}

  void Run(const Input& input) {
    Reconcile();
    if (const auto* ev = std::get_if<EventInput>(&input)) {
      if (!OnEvent(ev->event)) return;  // a duplicate: nothing changes
    } else if (const auto* b = std::get_if<BounceInput>(&input)) {
      const Attr* email = state_.Find("email");
      if (b->email.empty() || (email && email->str == b->email)) {
        if (!state_.bouncing) {
          state_.bouncing = true;
          out_.changed = true;
          AddHistory("event", "", "", "bounce");
        }
      }
    }
    UpdateDateTriggers();
    FireDateTriggers();
    RunReady();
    Cleanup();
    ComputeWake();
  }

 private:
  // ---- helpers ------------------------------------------------------------------------

  const Zone& CustomerZone() {
    if (zone_) return *zone_;
    const Attr* tz = state_.Find("timezone");
    if (tz && tz->kind == Attr::Kind::kString && !tz->str.empty()) {
      zone_ = policy_.zones->Find(tz->str);
      if (!zone_) {
        out_.warnings.push_back(fmt::format("customer {}: unknown time zone '{}', using {}",
                                            state_.id, OneLine(tz->str), policy_.timezone));
      }
    }
    if (!zone_) zone_ = policy_.zones->Find(policy_.timezone);
    if (!zone_) zone_ = Zone::Utc();
    return *zone_;
  }

  void AddHistory(std::string_view kind, std::string_view flow, std::string_view step,
                  std::string_view detail) {
    auto& h = state_.history;
    while (h.size() >= CustomerState::kHistory) h.pop_front();
    h.push_back(HistoryEntry{now_, kind, flow, step, detail});
  }

  // Appends a record (built in place: no temporaries to move) and its history entry. The
  // reason is `reason_a` followed by `reason_b`.
  void Emit(Record::Kind kind, std::string_view flow, std::string_view step, uint32_t run,
            std::string_view template_name, std::string_view reason_a,
            std::string_view reason_b = {}, std::string_view subject = {}) {
    auto& records = out_.records;
    if (records.capacity() == 0) records.reserve(4);
    Record& r = records.emplace_back();
    r.kind = kind;
    r.at = now_;
    r.customer_id = state_.id;
    SetFresh(r.flow, flow);
    SetFresh(r.step, step);
    r.run = run;
    SetFresh(r.template_name, template_name);
    SetFresh(r.subject, subject);
    if (reason_b.empty()) {
      SetFresh(r.reason, reason_a);
    } else {
      r.reason.reserve(reason_a.size() + reason_b.size());
      r.reason.append(reason_a).append(reason_b);
    }
    out_.changed = true;
    AddHistory(RecordKindName(kind), r.flow, r.step,
               kind == Record::Kind::kSend ? r.template_name : r.reason);
  }

  bool Alive(const Journey& j) const { return !j.step.empty(); }

  Journey* ActiveJourney(std::string_view flow) {
    for (auto& j : state_.journeys) {
      if (j.flow == flow && Alive(j)) return &j;
    }
    return nullptr;
  }

  void Exit(Journey& j, std::string_view reason_a, std::string_view reason_b = {}) {
    Emit(Record::Kind::kExit, j.flow, j.step, j.run, {}, reason_a, reason_b);
    j.step.clear();  // removed in Cleanup()
    j.wait = Journey::Wait::kNone;
  }

  void Cleanup() {
    auto& js = state_.journeys;
    js.erase(std::remove_if(js.begin(), js.end(), [](const Journey& j) { return j.step.empty(); }),
             js.end());
  }

  // ---- reload: journeys at steps that no longer exist leave ----------------------------

  void Reconcile() {
    for (auto& j : state_.journeys) {
      if (!Alive(j)) continue;
      const Flow* f = flows_.Find(j.flow);
      if (!f) {
        Exit(j, "flow_removed");
        continue;
      }
      int32_t idx = f->FindStep(j.step);
      if (idx == flow::kEnd) {
        Exit(j, "flow_changed");
        continue;
      }
      const Step& s = f->steps[idx];
      bool waits_event = s.kind == StepKind::kWaitFor;
      if (j.wait == Journey::Wait::kEvent && !waits_event) j.wait = Journey::Wait::kNone;
    }
    for (auto& m : state_.memos) {
      if (!m.date_next) continue;
      const Flow* f = flows_.Find(m.flow);
      if (!f || f->trigger.kind != flow::Trigger::Kind::kDate) {
        m.date_next.reset();
        out_.changed = true;
      }
    }
  }

  // ---- events --------------------------------------------------------------------------

  bool OnEvent(const Event& ev) {
    if (!ev.event_id.empty()) {
      auto& ids = state_.recent_event_ids;
      if (std::find(ids.begin(), ids.end(), ev.event_id) != ids.end()) {
        out_.duplicate = true;
        return false;
      }
      if (ids.size() >= CustomerState::kRecentEventIds) ids.erase(ids.begin());
      ids.push_back(ev.event_id);
    }
    out_.changed = true;
    if (state_.id.empty()) state_.id = ev.customer_id;
    AddHistory("event", "", "", ev.type);
    MergeProfile(ev);
    ApplyDerived(ev);

    EngineScope scope(state_, now_, policy_.rfm);
    scope.set_event(&ev);

    // exit_on: halts a run whatever step it is in. Runs this event starts come later, so an
    // event never halts the run it started.
    for (auto& j : state_.journeys) {
      if (!Alive(j)) continue;
      const Flow* f = flows_.Find(j.flow);
      if (!f) continue;
      scope.set_journey(&j);
      for (const auto& m : f->exit_on) {
        if (m.event == ev.type && m.when.Test(scope)) {
          Exit(j, "exit_on:", ev.type);
          break;
        }
      }
    }
    // Goals: a conversion when the event comes within the window after the flow's last mail.
    for (const Flow& f : flows_.flows()) {
      if (!f.goal || f.goal->event != ev.type) continue;
      FlowMemo* m = MemoIfAny(f.id);
      if (!m || m->runs == 0 || m->last_send_step.empty() || m->converted_run == m->runs) continue;
      if (now_ - m->last_send > f.goal->within || now_ < m->last_send) continue;
      scope.set_journey(ActiveJourney(f.id));
      if (!f.goal->when.Test(scope)) continue;
      m->converted_run = m->runs;
      Emit(Record::Kind::kConvert, f.id, m->last_send_step, m->runs, {}, "goal:", ev.type);
    }
    // wait_for: the awaited event continues the run on its on_event branch.
    for (auto& j : state_.journeys) {
      if (!Alive(j) || j.wait != Journey::Wait::kEvent) continue;
      const Flow* f = flows_.Find(j.flow);
      int32_t idx = f ? f->FindStep(j.step) : flow::kEnd;
      if (idx == flow::kEnd) continue;
      const Step& s = f->steps[idx];
      if (s.kind != StepKind::kWaitFor || s.wait_event.event != ev.type) continue;
      scope.set_journey(&j);
      if (!s.wait_event.when.Test(scope)) continue;
      Goto(*f, j, s.on_event);
    }
    // Triggers.
    for (int fi : flows_.TriggeredBy(ev.type)) {
      const Flow& f = flows_.flows()[fi];
      scope.set_journey(nullptr);
      if (!f.trigger.when.Test(scope)) continue;
      TryEnter(f, &ev);
    }
    return true;
  }

  void MergeProfile(const Event& ev) {
    dirty_attrs_.reserve(dirty_attrs_.size() + ev.profile.size());  // grown once, not per key
    for (const auto& [name, v] : ev.profile) {
      const std::string_view key = name;
      // A shop importing history may set the derived attributes once.
      if (key == "orders" || key == "revenue") {
        const double n = v.number;
        if (v.kind == Attr::Kind::kNumber && std::isfinite(n) && n >= 0) {
          if (key == "orders") {
            state_.orders = static_cast<int64_t>(n);
          } else {
            state_.revenue = n;
          }
        }
        continue;
      }
      if (key == "first_purchase_at" || key == "last_purchase_at") {
        if (v.kind == Attr::Kind::kString) {
          if (auto t = ParseTimestamp(v.str)) {
            (key == "first_purchase_at" ? state_.first_purchase_at : state_.last_purchase_at) = *t;
          }
        }
        continue;
      }
      const Attr* old = state_.Find(key);
      if (SameAttr(old, v)) continue;
      if (key == "timezone") {
        dates_dirty_all_ = true;
        zone_.reset();
      }
      if (key == "email") state_.bouncing = false;  // a new address has not bounced
      dirty_attrs_.emplace_back(key);
      if (v.kind == Attr::Kind::kNull) {
        state_.Erase(key);
      } else {
        state_.Set(key, v);
      }
    }
  }

  void ApplyDerived(const Event& ev) {
    if (ev.type == "purchase") {
      state_.orders += 1;
      double total = 0;
      if (ev.data.is_object()) {
        auto it = ev.data.find("total");
        if (it != ev.data.end() && NumberOf(*it, &total)) state_.revenue += total;
      }
      if (!state_.first_purchase_at || ev.ts < *state_.first_purchase_at) {
        state_.first_purchase_at = ev.ts;
      }
      if (!state_.last_purchase_at || ev.ts > *state_.last_purchase_at) {
        state_.last_purchase_at = ev.ts;
      }
    } else if (ev.type == "bounce") {
      // Recorded by the sender when the relay refused the recipient with a 5xx. It concerns
      // the address it names: a customer who has changed address since is not bouncing.
      const Attr* email = state_.Find("email");
      std::string bounced;
      if (ev.data.is_object()) {
        auto it = ev.data.find("email");
        if (it != ev.data.end() && it->is_string()) bounced = it->get<std::string>();
      }
      if (bounced.empty() ||
          (email && email->kind == Attr::Kind::kString && email->str == bounced)) {
        state_.bouncing = true;
      }
    } else if (ev.type == "unsubscribe") {
      state_.unsubscribed = true;
    } else if (ev.type == "subscribe") {
      state_.unsubscribed = false;
      Attr yes;
      yes.kind = Attr::Kind::kBool;
      yes.b = true;
      state_.Set("email_opt_in", yes);
    }
  }

  FlowMemo* MemoIfAny(std::string_view flow) {
    for (auto& m : state_.memos) {
      if (m.flow == flow) return &m;
    }
    return nullptr;
  }

  // Starts a run when the entry rules allow it. `ev` is the triggering event (null for date
  // triggers).
  void TryEnter(const Flow& f, const Event* ev) {
    FlowMemo* memo = MemoIfAny(f.id);
    if (Journey* active = ActiveJourney(f.id)) {
      if (f.reentry != flow::Reentry::kRestart) return;  // one run at a time
      Exit(*active, "restarted");
    } else if (memo && memo->runs > 0) {
      if (f.reentry == flow::Reentry::kNever) return;
      if (f.reentry == flow::Reentry::kAfter && now_ < memo->last_entry + f.reentry_after) return;
    }
    FlowMemo& m = memo ? *memo : state_.Memo(f.id);  // Exit() above leaves the memos alone
    m.runs += 1;
    m.last_entry = now_;
    // Built in place at the end of the journeys (no reference into them is held here).
    auto& journeys = state_.journeys;
    if (journeys.capacity() == 0) journeys.reserve(4);
    Journey& j = journeys.emplace_back();
    j.flow = f.id;
    j.run = m.runs;
    j.step = f.steps.front().id;
    j.entered_at = now_;
    if (ev && ev->ts < now_ && ev->ts >= now_ - kJourneyCatchUp) {
      // The run's clock starts when its event happened: read late, it still waits as long
      // from then as the flow says.
      entry_base_.emplace_back(journeys.size() - 1, ev->ts);
    }
    if (ev) {
      j.trigger_type = ev->type;
      j.trigger_event_id = ev->event_id;
      j.trigger_ts = ev->ts;
      j.trigger_data = PackTriggerData(ev->data);
    }
    if (ev) {
      Emit(Record::Kind::kEnter, f.id, j.step, j.run, {}, "event:", ev->type);
    } else {
      Emit(Record::Kind::kEnter, f.id, j.step, j.run, {}, "date:", f.trigger.date_attribute);
    }
  }

  // ---- date triggers -------------------------------------------------------------------

  bool DateInputsChanged(const Flow& f) const {
    if (dates_dirty_all_) return true;
    return std::find(dirty_attrs_.begin(), dirty_attrs_.end(), f.trigger.date_attribute) !=
           dirty_attrs_.end();
  }

  // The next moment the flow's date trigger fires for this customer, if any.
  std::optional<TimePoint> NextDate(const Flow& f, int64_t* key) {
    const auto& t = f.trigger;
    std::optional<CivilDate> base;
    const std::string& attr = t.date_attribute;
    // The customer's zone only once there is a date to read in it.
    if (attr == "first_purchase_at" || attr == "last_purchase_at") {
      const auto& v =
          attr == "first_purchase_at" ? state_.first_purchase_at : state_.last_purchase_at;
      if (v) base = CustomerZone().DateOf(*v);
    } else if (const Attr* a = state_.Find(attr); a && a->kind == Attr::Kind::kString) {
      base = ParseProfileDate(a->str, CustomerZone());
    }
    if (!base) return std::nullopt;
    const Zone& zone = CustomerZone();
    const int offset_days = static_cast<int>(t.offset / kDay);
    const Duration offset_rest = t.offset - offset_days * kDay;
    if (t.yearly) {
      int year = zone.DateOf(now_).year;
      for (int y = year - 1; y <= year + 2; ++y) {
        CivilDate d{y, base->month, base->day};
        if (d.month == 2 && d.day == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
          d.day = 28;  // 29 February is celebrated on 28 February in other years
        }
        TimePoint at = zone.At(AddDays(d, offset_days), t.at_minutes) + offset_rest;
        if (at > now_) return at;
      }
      return std::nullopt;
    }
    // One date: fire once for it. When its offset moment has passed but the date itself has
    // not (points set to expire in 5 days with a 14-day warning), fire now.
    *key = (std::chrono::sys_days{std::chrono::year{base->year} /
                                  std::chrono::month{static_cast<unsigned>(base->month)} /
                                  std::chrono::day{static_cast<unsigned>(base->day)}})
               .time_since_epoch()
               .count() +
           1;
    const FlowMemo* m = MemoIfAny(f.id);
    if (m && m->date_fired_key == *key) return std::nullopt;
    TimePoint at = zone.At(AddDays(*base, offset_days), t.at_minutes) + offset_rest;
    if (at > now_) return at;
    if (zone.At(*base, t.at_minutes) > now_) return now_;
    return std::nullopt;
  }

  void UpdateDateTriggers() {
    for (int fi : flows_.DateTriggered()) {
      const Flow& f = flows_.flows()[fi];
      FlowMemo* m = MemoIfAny(f.id);
      if (m && !DateInputsChanged(f)) continue;
      int64_t key = 0;
      auto next = NextDate(f, &key);
      if (!m && !next) continue;
      FlowMemo& memo = m ? *m : state_.Memo(f.id);
      if (memo.date_next != next) {
        memo.date_next = next;
        out_.changed = true;
      }
    }
  }

  void FireDateTriggers() {
    for (int fi : flows_.DateTriggered()) {
      const Flow& f = flows_.flows()[fi];
      FlowMemo* m = MemoIfAny(f.id);
      if (!m || !m->date_next || *m->date_next > now_) continue;
      out_.changed = true;
      int64_t key = 0;
      NextDate(f, &key);  // the key of the date being fired
      m->date_next.reset();
      if (!f.trigger.yearly) m->date_fired_key = key;
      EngineScope scope(state_, now_, policy_.rfm);
      if (f.trigger.when.Test(scope)) TryEnter(f, nullptr);
      m = MemoIfAny(f.id);
      if (f.trigger.yearly) {
        int64_t k2 = 0;
        m->date_next = NextDate(f, &k2);
      }
    }
  }

  // ---- running journeys ----------------------------------------------------------------

  void RunReady() {
    // Indices, not references: entering a flow can append to the vector.
    for (size_t i = 0; i < state_.journeys.size(); ++i) {
      Journey& j = state_.journeys[i];
      if (!Alive(j)) continue;
      if (j.wait != Journey::Wait::kNone && j.wake > now_) continue;
      Advance(i);
    }
  }

  // Moves the run to step index `target` (or ends it).
  void Goto(const Flow& f, Journey& j, int32_t target) {
    j.wait = Journey::Wait::kNone;
    if (target == flow::kEnd || target < 0 || target >= static_cast<int32_t>(f.steps.size())) {
      Exit(j, "completed");
      return;
    }
    j.step = f.steps[target].id;
    out_.changed = true;
  }

  // When a run's current moment was due, carried from step to step within one Advance.
  struct RunClock {
    TimePoint base;
    bool late_entry = false;
  };

  // Entered just now by an event that happened earlier: its first wait counts from then,
  // and if that wait is over already the run still arms it (a wake in the past), so that
  // the customer's later events (a purchase read in the same batch) come first; the
  // daemon fires such a wake after them (app/partition.cpp, Commit).
  RunClock EntryClock(size_t ji) const {
    RunClock clock{now_, false};
    for (const auto& [index, at] : entry_base_) {
      if (index == ji) {
        clock.base = at;
        clock.late_entry = true;
      }
    }
    return clock;
  }

  void Advance(size_t ji) {
    RunClock clock = EntryClock(ji);
    for (int guard = 0; guard < kMaxStepsPerAdvance; ++guard) {
      Journey& j = state_.journeys[ji];
      if (!Alive(j)) return;
      const Flow* f = flows_.Find(j.flow);
      int32_t idx = f ? f->FindStep(j.step) : flow::kEnd;
      if (idx == flow::kEnd) {
        Exit(j, f ? "flow_changed" : "flow_removed");
        return;
      }
      if (!RunStep(*f, f->steps[idx], ji, clock)) return;
    }
    Exit(state_.journeys[ji], "step_limit");
  }

  // Runs step `s` of journey `ji`: true when the run moved on, false when it stops here
  // (waiting, deferred or ended).
  bool RunStep(const Flow& f, const Step& s, size_t ji, RunClock& clock) {
    Journey& j = state_.journeys[ji];
    const bool woken = j.wait != Journey::Wait::kNone && j.wake <= now_;
    switch (s.kind) {
      case StepKind::kWait:
      case StepKind::kWaitUntil:
        return RunTimer(f, s, j, woken, clock);
      case StepKind::kWaitFor:
        return RunWaitFor(f, s, j, woken, clock);
      case StepKind::kSend:
        if (woken) clock.base = j.wake;
        if (!Send(f, s, ji)) return false;  // deferred
        Goto(f, state_.journeys[ji], s.next);
        return true;
      case StepKind::kIf: {
        EngineScope scope(state_, now_, policy_.rfm);
        scope.set_journey(&j);
        Goto(f, j, s.condition.Test(scope) ? s.then_first : s.else_first);
        return true;
      }
      case StepKind::kSplit:
        return RunSplit(f, s, j);
      case StepKind::kSet:
        ApplyAssignments(s);
        Goto(f, j, s.next);
        return true;
      case StepKind::kExit:
        Exit(j, s.exit_reason.empty() ? "exit" : s.exit_reason);
        return false;
    }
    return true;
  }

  // A wait or a wait_until: moves on when woken or already due, else arms its timer.
  bool RunTimer(const Flow& f, const Step& s, Journey& j, bool woken, RunClock& clock) {
    if (woken) {
      clock.base = j.wake;
      Goto(f, j, s.next);
      return true;
    }
    TimePoint target;
    bool due;
    if (s.kind == StepKind::kWait) {
      // Waits chain from when the previous one was due, not from when it was noticed,
      // so a late timer never pushes the rest of the journey later.
      target = clock.base + s.wait;
      due = target <= now_ && !clock.late_entry;
      if (due) clock.base = target;
    } else {
      target = WaitUntilTarget(s, j);
      due = target <= now_;
    }
    if (due) {
      Goto(f, j, s.next);
      return true;
    }
    Arm(j, Journey::Wait::kTimer, target);
    return false;
  }

  bool RunWaitFor(const Flow& f, const Step& s, Journey& j, bool woken, RunClock& clock) {
    if (j.wait == Journey::Wait::kEvent && woken) {
      clock.base = j.wake;
      Goto(f, j, s.on_timeout);
      return true;
    }
    if (j.wait == Journey::Wait::kEvent) return false;
    Arm(j, Journey::Wait::kEvent, (clock.late_entry ? clock.base : now_) + s.timeout);
    return false;
  }

  // Picks a branch by a stable hash of customer, flow, run and step; a holdout ends the run.
  bool RunSplit(const Flow& f, const Step& s, Journey& j) {
    int total = 0;
    for (const auto& b : s.branches) total += b.weight;
    if (total <= 0) {
      Goto(f, j, s.next);
      return true;
    }
    uint64_t h =
        StableHash64(fmt::format("{}\x1f{}\x1f{}\x1f{}", state_.id, f.id, j.run, s.id), 0x5eed);
    int pick = static_cast<int>(h % static_cast<uint64_t>(total));
    const flow::SplitBranch* chosen = &s.branches.back();
    for (const auto& b : s.branches) {
      if (pick < b.weight) {
        chosen = &b;
        break;
      }
      pick -= b.weight;
    }
    if (chosen->holdout) {
      Emit(Record::Kind::kSuppress, f.id, s.id, j.run, {}, "holdout");
      Exit(j, "holdout");
      return false;
    }
    Goto(f, j, chosen->first);
    return true;
  }

  // A set step's assignments; a changed timezone moves every date trigger.
  void ApplyAssignments(const Step& s) {
    for (const auto& [attr, value] : s.assignments) {
      const Attr* old = state_.Find(attr);
      if (SameAttr(old, value)) continue;
      if (attr == "timezone") {
        dates_dirty_all_ = true;
        zone_.reset();
      }
      dirty_attrs_.push_back(attr);
      if (value.kind == Attr::Kind::kNull) {
        state_.Erase(attr);
      } else {
        state_.Set(attr, value);
      }
    }
  }

  void Arm(Journey& j, Journey::Wait kind, TimePoint wake) {
    j.wait = kind;
    j.wake = wake;
    out_.changed = true;
  }

  TimePoint WaitUntilTarget(const Step& s, const Journey& j) {
    const Zone& zone = CustomerZone();
    TimePoint t = now_;
    if (!s.until_date.empty()) {
      EngineScope scope(state_, now_, policy_.rfm);
      scope.set_journey(&j);
      Value v = s.until_date.Eval(scope);
      std::optional<CivilDate> date;
      if (v.type() == flow::ValueType::kString) {
        date = ParseProfileDate(v.as_string(), zone);
      } else if (v.type() == flow::ValueType::kTime) {
        date = zone.DateOf(v.as_time());
      }
      if (!date) return now_;  // no date known: do not hold the customer forever
      t = zone.At(*date, s.at_minutes.value_or(0));
      if (t <= now_) return now_;  // the date is past: go on at once
    } else if (s.at_minutes) {
      CivilDate today = zone.DateOf(now_);
      t = zone.At(today, *s.at_minutes);
      if (t <= now_) t = zone.At(AddDays(today, 1), *s.at_minutes);
    }
    // Allowed weekdays: move day by day, keeping the time of day when one is given.
    for (int i = 0; i < 7 && !(s.weekdays & (1u << zone.Weekday(t))); ++i) {
      CivilDate next = AddDays(zone.DateOf(t), 1);
      t = zone.At(next, s.at_minutes.value_or(0));
    }
    return t;
  }

  // Sends (or suppresses) the step's mail. Returns false when the send is deferred by the
  // frequency cap or quiet hours: the run stays at this step until then.
  bool Send(const Flow& f, const Step& s, size_t ji) {
    Journey& j = state_.journeys[ji];
    const bool marketing = f.category == flow::Category::kMarketing;
    const Attr* email = state_.Find("email");
    std::string_view reason;
    if (!email || email->kind != Attr::Kind::kString || email->str.empty()) {
      reason = "no_email";
    } else if (marketing) {
      const Attr* opt_in = state_.Find("email_opt_in");
      if (state_.unsubscribed) {
        reason = "unsubscribed";
      } else if (state_.bouncing) {
        reason = "bouncing";
      } else if (!opt_in || opt_in->kind != Attr::Kind::kBool || !opt_in->b) {
        reason = "no_opt_in";
      }
    }
    if (!reason.empty()) {
      Emit(Record::Kind::kSuppress, f.id, s.id, j.run, s.template_name, reason);
      return true;
    }
    if (marketing) {
      TimePoint allowed = AllowedSendTime();
      if (allowed > now_) {
        Arm(j, Journey::Wait::kTimer, allowed);
        return false;
      }
    }
    SendJob job = MakeSendJob(flows_, policy_, state_, f, s, j, CustomerLocale(state_), now_);
    if (marketing) {
      auto& sends = state_.recent_marketing_sends;
      sends.push_back(now_);
      if (sends.size() > kMaxRecentSends) sends.erase(sends.begin());
    }
    FlowMemo& m = state_.Memo(f.id);
    m.last_send = now_;
    m.last_send_step = s.id;
    Emit(Record::Kind::kSend, f.id, s.id, state_.journeys[ji].run, s.template_name, {}, {},
         job.subject);
    out_.sends.push_back(std::move(job));
    return true;
  }

  // The first moment at or after now a marketing mail may go: the frequency cap and quiet
  // hours both allow it.
  TimePoint AllowedSendTime() {
    auto& sends = state_.recent_marketing_sends;
    if (policy_.cap_window.count() > 0) {
      // Forget sends that no longer count.
      auto keep = std::find_if(sends.begin(), sends.end(),
                               [&](TimePoint t) { return t > now_ - policy_.cap_window; });
      if (keep != sends.begin()) {
        sends.erase(sends.begin(), keep);
        out_.changed = true;
      }
    }
    TimePoint t = now_;
    for (int round = 0; round < 8; ++round) {
      TimePoint before = t;
      if (policy_.cap_count > 0 && policy_.cap_window.count() > 0) {
        std::vector<TimePoint> in_window;
        for (TimePoint s : sends) {
          if (s > t - policy_.cap_window && s <= t) in_window.push_back(s);
        }
        if (static_cast<int>(in_window.size()) >= policy_.cap_count) {
          t = in_window[in_window.size() - policy_.cap_count] + policy_.cap_window;
        }
      }
      if (policy_.quiet_start != policy_.quiet_end) {
        t = AfterQuietHours(t, policy_.quiet_start, policy_.quiet_end, CustomerZone());
      }
      if (t == before) break;
    }
    return t;
  }

  void ComputeWake() {
    std::optional<TimePoint> wake;
    auto consider = [&](TimePoint t) {
      if (!wake || t < *wake) wake = t;
    };
    for (const auto& j : state_.journeys) {
      if (j.wait != Journey::Wait::kNone) consider(j.wake);
    }
    for (const auto& m : state_.memos) {
      if (m.date_next) consider(*m.date_next);
    }
    if (wake != state_.wake) {
      state_.wake = wake;
      out_.changed = true;
    }
  }

  const flow::FlowSet& flows_;
  const Policy& policy_;
  CustomerState& state_;
  TimePoint now_;
  Decisions& out_;
  // Journeys entered in this step by an event that happened before now (journey index, when).
  std::vector<std::pair<size_t, TimePoint>> entry_base_;
  std::optional<Zone> zone_;
  // Views into the event's profile keys and the flows' assignments, both alive for the step.
  std::vector<std::string_view> dirty_attrs_;
  bool dates_dirty_all_ = false;
};

}  // namespace

std::string_view RecordKindName(Record::Kind k) {
  switch (k) {
    case Record::Kind::kEnter:
      return "enter";
    case Record::Kind::kSend:
      return "send";
    case Record::Kind::kSuppress:
      return "suppress";
    case Record::Kind::kExit:
      return "exit";
    case Record::Kind::kConvert:
      return "convert";
  }
  return "?";
}

std::string JobId(std::string_view customer_id, std::string_view flow, uint32_t run,
                  std::string_view step) {
  // The key and the digits are built by hand: this runs for every mail (fmt's parsing of
  // the format strings showed in the profile).
  // The key goes in a buffer on the stack when it fits (it nearly always does).
  char digits[12];
  const auto end = std::to_chars(digits, digits + sizeof digits, run).ptr;
  const size_t ndigits = static_cast<size_t>(end - digits);
  const size_t size = customer_id.size() + flow.size() + step.size() + ndigits + 3;
  char small[256];
  std::string large;
  char* key = small;
  if (size > sizeof small) {
    large.resize(size);
    key = large.data();
  }
  char* p = key;
  auto put = [&p](std::string_view s) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put(customer_id);
  *p++ = '\x1f';
  put(flow);
  *p++ = '\x1f';
  put(std::string_view(digits, ndigits));
  *p++ = '\x1f';
  put(step);
  const std::string_view k(key, size);
  std::string id(32, '0');
  const uint64_t halves[2] = {StableHash64(k, 1), StableHash64(k, 2)};
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 16; ++i) {
      id[static_cast<size_t>(h * 16 + i)] = "0123456789abcdef"[(halves[h] >> (60 - 4 * i)) & 0xf];
    }
  }
  return id;
}

std::optional<SendJob> PreviewSend(const flow::FlowSet& flows, const Policy& policy,
                                   const CustomerState& state, std::string_view flow_id,
                                   std::string_view step_id, std::string_view locale,
                                   const nlohmann::json* trigger_data, TimePoint now,
                                   std::string* error) {
  auto fail = [&](std::string why) {
    *error = std::move(why);
    return std::nullopt;
  };
  const Flow* f = flows.Find(flow_id);
  if (!f) return fail(fmt::format("no flow '{}' is loaded", flow_id));
  const int32_t at = f->FindStep(step_id);
  if (at == flow::kEnd) return fail(fmt::format("flow '{}' has no step '{}'", flow_id, step_id));
  const flow::Step& s = f->steps[static_cast<size_t>(at)];
  if (s.kind != flow::StepKind::kSend) {
    return fail(fmt::format("step '{}' of flow '{}' sends no mail", step_id, flow_id));
  }
  if (!flows.templates().Find(s.template_name, locale)) {
    return fail(fmt::format("template '{}' is not loaded", s.template_name));
  }
  const Attr* email = state.Find("email");
  if (!email || email->kind != Attr::Kind::kString || email->str.empty()) {
    return fail("the customer has no email address");
  }
  const Journey* in = nullptr;
  for (const Journey& x : state.journeys) in = x.flow == flow_id ? &x : in;
  Journey j;
  if (in) {
    j = *in;
  } else {
    const FlowMemo* memo = state.FindMemo(flow_id);
    j.flow = f->id;
    j.run = memo ? memo->runs + 1 : 1;
    j.entered_at = now;
    if (f->trigger.kind == flow::Trigger::Kind::kEvent) {
      j.trigger_type = f->trigger.event;
      j.trigger_ts = now;
    }
  }
  j.step = s.id;
  if (trigger_data) j.trigger_data = PackTriggerData(*trigger_data);
  return MakeSendJob(flows, policy, state, *f, s, j,
                     locale.empty() ? CustomerLocale(state) : locale, now);
}

Decisions Step(const flow::FlowSet& flows, const Policy& policy, CustomerState& state,
               const Input& input, TimePoint now) {
  Decisions out;
  Engine engine(flows, policy, state, now, out);
  engine.Run(input);
  return out;
}

}  // namespace journeyd::engine
