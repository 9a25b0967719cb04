#include "journeyd/engine/state.h"

#include <fmt/format.h>

#include "journeyd/common/utf8.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <forward_list>
#include <limits>
#include <memory>
#include <utility>

namespace journeyd::engine {

// ---- CustomerState ---------------------------------------------------------------------

const Attr* CustomerState::Find(std::string_view name) const {
  // Names are unique: in a short profile an equality scan (lengths first) finds the same entry
  // as the binary search, with fewer string comparisons.
  if (profile.size() <= 8) {
    for (const auto& kv : profile) {
      if (kv.first == name) return &kv.second;
    }
    return nullptr;
  }
  auto it = std::lower_bound(profile.begin(), profile.end(), name,
                             [](const auto& kv, std::string_view n) { return kv.first < n; });
  return it != profile.end() && it->first == name ? &it->second : nullptr;
}

void CustomerState::Set(std::string_view name, Attr value) {
  auto it = std::lower_bound(profile.begin(), profile.end(), name,
                             [](const auto& kv, std::string_view n) { return kv.first < n; });
  if (it != profile.end() && it->first == name) {
    it->second = std::move(value);
  } else {
    if (profile.capacity() == 0) {
      profile.reserve(4);  // a few attributes arrive together: grow once, not three times
      it = profile.end();
    }
    profile.emplace(it, std::string(name), std::move(value));
  }
}

void CustomerState::Erase(std::string_view name) {
  auto it = std::lower_bound(profile.begin(), profile.end(), name,
                             [](const auto& kv, std::string_view n) { return kv.first < n; });
  if (it != profile.end() && it->first == name) profile.erase(it);
}

FlowMemo& CustomerState::Memo(std::string_view flow) {
  for (auto& m : memos) {
    if (m.flow == flow) return m;
  }
  if (memos.capacity() == 0) memos.reserve(4);  // most customers meet a few flows
  FlowMemo& m = memos.emplace_back();
  m.flow = std::string(flow);
  return m;
}

const FlowMemo* CustomerState::FindMemo(std::string_view flow) const {
  for (const auto& m : memos) {
    if (m.flow == flow) return &m;
  }
  return nullptr;
}

Journey* CustomerState::FindJourney(std::string_view flow) {
  for (auto& j : journeys) {
    if (j.flow == flow && !j.step.empty()) return &j;
  }
  return nullptr;
}

bool CustomerState::empty() const {
  return profile.empty() && orders == 0 && revenue == 0 && !first_purchase_at &&
         !last_purchase_at && !unsubscribed && !bouncing && journeys.empty() && memos.empty() &&
         recent_event_ids.empty() && recent_marketing_sends.empty() && history.empty();
}

void CustomerState::Clear() {
  id.clear();
  profile.clear();
  orders = 0;
  revenue = 0;
  first_purchase_at.reset();
  last_purchase_at.reset();
  unsubscribed = false;
  bouncing = false;
  journeys.clear();
  memos.clear();
  recent_event_ids.clear();
  recent_marketing_sends.clear();
  history.clear();
  wake.reset();
}

// ---- History ---------------------------------------------------------------------------

namespace {

uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

HistoryEntry History::Read(const char* at) {
  HistoryEntry e;
  int64_t ms;
  std::memcpy(&ms, at, 8);
  e.at = FromUnixMillis(ms);
  const char* text = at + kHeader;
  std::string_view* fields[] = {&e.kind, &e.flow, &e.step, &e.detail};
  for (int i = 0; i < 4; ++i) {
    const uint32_t n = Load32(at + 8 + 4 * i);
    *fields[i] = std::string_view(text, n);
    text += n;
  }
  return e;
}

size_t History::SizeAt(const char* at) {
  size_t n = kHeader;
  for (int i = 0; i < 4; ++i) n += Load32(at + 8 + 4 * i);
  return n;
}

History::History(const History& o)
    : size_(o.size_), capacity_(o.size_), last_(o.last_), count_(o.count_) {
  if (size_ != 0) {
    data_ = std::make_unique_for_overwrite<char[]>(size_);
    std::memcpy(data_.get(), o.data_.get(), size_);
  }
}

History& History::operator=(const History& o) {
  if (this != &o) *this = History(o);
  return *this;
}

History::History(History&& o) noexcept
    : data_(std::move(o.data_)),
      size_(std::exchange(o.size_, 0)),
      capacity_(std::exchange(o.capacity_, 0)),
      last_(std::exchange(o.last_, 0)),
      count_(std::exchange(o.count_, 0)) {}

History& History::operator=(History&& o) noexcept {
  if (this != &o) {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    last_ = std::exchange(o.last_, 0);
    count_ = std::exchange(o.count_, 0);
  }
  return *this;
}

HistoryEntry History::operator[](size_t i) const {
  const char* at = data_.get();
  for (; i > 0; --i) at += SizeAt(at);
  return Read(at);
}

void History::Reserve(size_t need) {
  if (need <= capacity_) return;
  const size_t cap = std::max({need, capacity_ * 2, size_t{256}});
  auto grown = std::make_unique_for_overwrite<char[]>(cap);
  if (size_ != 0) std::memcpy(grown.get(), data_.get(), size_);
  data_ = std::move(grown);
  capacity_ = cap;
}

void History::push_back(const HistoryEntry& e) {
  std::string_view texts[] = {e.kind, e.flow, e.step, e.detail};
  for (auto& t : texts) t = t.substr(0, std::numeric_limits<uint32_t>::max());  // 4-byte lengths
  const char* lo = data_.get();
  const char* hi = lo + size_;
  size_t total = kHeader;
  for (std::string_view t : texts) {
    if (!t.empty() && t.data() >= lo && t.data() < hi) {
      // A view into this buffer, which growing it may move: copied first.
      const std::string kind(e.kind), flow(e.flow), step(e.step), detail(e.detail);
      push_back(HistoryEntry{e.at, kind, flow, step, detail});
      return;
    }
    total += t.size();
  }
  Reserve(size_ + total);
  char* p = data_.get() + size_;
  const int64_t ms = ToUnixMillis(e.at);
  std::memcpy(p, &ms, 8);
  char* text = p + kHeader;
  for (int i = 0; i < 4; ++i) {
    const auto n = static_cast<uint32_t>(texts[i].size());
    std::memcpy(p + 8 + 4 * i, &n, 4);
    if (n) std::memcpy(text, texts[i].data(), n);
    text += n;
  }
  last_ = size_;
  size_ += total;
  ++count_;
}

void History::pop_front() {
  if (count_ == 0) return;
  const size_t n = SizeAt(data_.get());
  size_ -= n;
  std::memmove(data_.get(), data_.get() + n, size_);
  last_ = count_ == 1 ? 0 : last_ - n;
  --count_;
}

void History::clear() {
  size_ = 0;
  last_ = 0;
  count_ = 0;
}

nlohmann::json StateToJson(const CustomerState& s) {
  using nlohmann::json;
  json profile = json::object();
  for (const auto& [k, v] : s.profile) {
    switch (v.kind) {
      case Attr::Kind::kNull:
        profile[k] = nullptr;
        break;
      case Attr::Kind::kBool:
        profile[k] = v.b;
        break;
      case Attr::Kind::kNumber:
        // Whole numbers (points) print as 120, not 120.0.
        if (std::abs(v.number) < 9e15 && v.number == std::trunc(v.number)) {
          profile[k] = static_cast<int64_t>(v.number);
        } else {
          profile[k] = v.number;
        }
        break;
      case Attr::Kind::kString:
        profile[k] = v.str;
        break;
    }
  }
  auto opt_time = [](const std::optional<TimePoint>& t) -> json {
    return t ? json(FormatRfc3339(*t)) : json(nullptr);
  };
  json j = {{"customer_id", s.id},
            {"profile", profile},
            {"orders", s.orders},
            {"revenue", s.revenue},
            {"first_purchase_at", opt_time(s.first_purchase_at)},
            {"last_purchase_at", opt_time(s.last_purchase_at)},
            {"unsubscribed", s.unsubscribed},
            {"bouncing", s.bouncing},
            {"next_wake", opt_time(s.wake)}};
  json journeys = json::array();
  for (const auto& x : s.journeys) {
    const char* wait = x.wait == Journey::Wait::kNone    ? "none"
                       : x.wait == Journey::Wait::kTimer ? "timer"
                                                         : "event";
    json o = {{"flow", x.flow},
              {"run", x.run},
              {"step", x.step},
              {"waiting", wait},
              {"entered_at", FormatRfc3339(x.entered_at)}};
    if (x.wait != Journey::Wait::kNone) o["wake_at"] = FormatRfc3339(x.wake);
    if (!x.trigger_type.empty()) o["trigger"] = x.trigger_type;
    journeys.push_back(std::move(o));
  }
  j["journeys"] = std::move(journeys);
  json memos = json::array();
  for (const auto& m : s.memos) {
    json o = {{"flow", m.flow}, {"runs", m.runs}};
    if (m.runs) o["last_entry"] = FormatRfc3339(m.last_entry);
    if (!m.last_send_step.empty()) {
      o["last_send"] = FormatRfc3339(m.last_send);
      o["last_send_step"] = m.last_send_step;
    }
    if (m.date_next) o["date_trigger_next"] = FormatRfc3339(*m.date_next);
    memos.push_back(std::move(o));
  }
  j["flows"] = std::move(memos);
  json history = json::array();
  for (const HistoryEntry h : s.history) {
    json o = {{"at", FormatRfc3339(h.at)}, {"kind", h.kind}};
    if (!h.flow.empty()) o["flow"] = h.flow;
    if (!h.step.empty()) o["step"] = h.step;
    if (!h.detail.empty()) o["detail"] = h.detail;
    history.push_back(std::move(o));
  }
  j["history"] = std::move(history);
  return j;
}

}  // namespace journeyd::engine
