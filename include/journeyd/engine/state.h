// Everything journeyd knows about one customer; its compact binary codec is in
// state_codec.h (included here).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/time.h"
#include "journeyd/engine/state_codec.h"
#include "journeyd/flow/flow.h"

namespace journeyd::engine {

// A profile attribute value: text, number, true/false or null.
using Attr = flow::Literal;

// One active run of a flow.
struct Journey {
  enum class Wait : uint8_t {
    kNone,   // ready to run its step now
    kTimer,  // a wait / wait_until / deferred send: resumes at `wake`
    kEvent,  // a wait_for: resumes on the event or at the timeout `wake`
  };
  std::string flow;
  uint32_t run = 0;  // 1 for the customer's first run of this flow, then 2, ...
  std::string step;  // id of the current step
  Wait wait = Wait::kNone;
  TimePoint wake{};  // when kTimer / kEvent
  TimePoint entered_at{};
  // The event that started the run (trigger.*); type empty for date triggers.
  std::string trigger_type;
  std::string trigger_event_id;
  TimePoint trigger_ts{};
  // The trigger event's data object as MessagePack (PackTriggerData; empty: none). It stays
  // packed from state to state, and is parsed only when a condition or template reads
  // trigger.data: most journeys never do, and a parsed object costs a map node per field.
  std::string trigger_data;
};

// An event's data object packed for Journey::trigger_data; empty when it is not an object, or
// when it would not read back (nested deeper than a state allows).
std::string PackTriggerData(const nlohmann::json& data);
// The object back; null when `packed` is empty or not a packed object.
nlohmann::json UnpackTriggerData(std::string_view packed);

// What the customer did with a flow before: for reentry rules, date triggers and goals.
struct FlowMemo {
  std::string flow;
  uint32_t runs = 0;  // runs started so far
  TimePoint last_entry{};
  TimePoint last_send{};  // last mail of this flow (goal window starts here)
  std::string last_send_step;
  uint32_t converted_run = 0;          // the run a goal was last counted for
  std::optional<TimePoint> date_next;  // date trigger: the next moment it fires
  int64_t date_fired_key = 0;  // one-off date triggers: the date already fired (days since epoch)
};

// One entry of a customer's history, as History hands it out: the texts are views into the
// history's own buffer, valid until the history next changes.
struct HistoryEntry {
  TimePoint at{};
  std::string_view kind;  // enter, send, suppress, exit, convert, event
  std::string_view flow;
  std::string_view step;
  std::string_view detail;  // template, reason, event type
};

// The customer's recent history, oldest first. Every entry lives in one buffer (its time, the
// lengths of its four texts, then the texts): a state read back holds one allocation for its
// whole history and none per text.
class History {
 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = HistoryEntry;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = HistoryEntry;

    const_iterator() = default;
    HistoryEntry operator*() const { return History::Read(at_); }
    const_iterator& operator++() {
      at_ += History::SizeAt(at_);
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const const_iterator& o) const { return at_ == o.at_; }

   private:
    friend class History;
    explicit const_iterator(const char* at) : at_(at) {}
    const char* at_ = nullptr;
  };

  History() = default;
  History(const History& o);
  History& operator=(const History& o);
  History(History&& o) noexcept;
  History& operator=(History&& o) noexcept;
  ~History() = default;

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const_iterator begin() const { return const_iterator(data_.get()); }
  const_iterator end() const { return const_iterator(data_.get() + size_); }
  HistoryEntry front() const { return Read(data_.get()); }  // !empty()
  HistoryEntry back() const { return Read(data_.get() + last_); }
  HistoryEntry operator[](size_t i) const;  // walks from the oldest: i < size()

  // The texts are copied; they may point into this history itself.
  void push_back(const HistoryEntry& e);
  void pop_front();
  void clear();

 private:
  // An entry: 8 bytes of milliseconds since the epoch, four 4-byte text lengths, the texts.
  // The buffer is not a std::string: growing one fills the new bytes before they are written.
  static constexpr size_t kHeader = 8 + 4 * 4;
  static HistoryEntry Read(const char* at);
  static size_t SizeAt(const char* at);
  void Reserve(size_t need);

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t last_ = 0;  // offset of the newest entry
  size_t count_ = 0;
};

struct CustomerState {
  static constexpr uint8_t kCodecVersion = 1;
  static constexpr size_t kRecentEventIds = 32;
  static constexpr size_t kHistory = 20;

  std::string id;
  std::vector<std::pair<std::string, Attr>> profile;  // sorted by name
  // Derived from purchase events (RFM).
  int64_t orders = 0;
  double revenue = 0;
  std::optional<TimePoint> first_purchase_at;
  std::optional<TimePoint> last_purchase_at;
  // Consent beyond the email_opt_in attribute.
  bool unsubscribed = false;
  bool bouncing = false;

  std::vector<Journey> journeys;
  std::vector<FlowMemo> memos;
  std::vector<std::string> recent_event_ids;      // oldest first, at most kRecentEventIds
  std::vector<TimePoint> recent_marketing_sends;  // for the frequency cap, oldest first
  History history;                                // newest last, at most kHistory
  std::optional<TimePoint> wake;                  // earliest moment anything is due

  const Attr* Find(std::string_view name) const;
  void Set(std::string_view name, Attr value);
  void Erase(std::string_view name);
  FlowMemo& Memo(std::string_view flow);
  const FlowMemo* FindMemo(std::string_view flow) const;
  Journey* FindJourney(std::string_view flow);
  bool empty() const;  // nothing known: no need to store
  // Back to a default-constructed state, keeping what the containers have allocated: a
  // worker reuses one state per customer of its batch.
  void Clear();
};

// The customer as JSON (for inspect and the admin API).
nlohmann::json StateToJson(const CustomerState& state);

}  // namespace journeyd::engine
