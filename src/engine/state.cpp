#include "journeyd/engine/state.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace journeyd::engine {

// ---- CustomerState ---------------------------------------------------------------------

const Attr* CustomerState::Find(std::string_view name) const {
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
  memos.emplace_back();
  memos.back().flow = std::string(flow);
  return memos.back();
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

// ---- codec -----------------------------------------------------------------------------

namespace {

constexpr size_t kMaxString = 1 << 20;
constexpr uint64_t kMaxItems = 100000;

constexpr std::string_view kHistoryKinds[] = {"event",    "enter", "send",
                                              "suppress", "exit",  "convert"};

enum Flags : uint8_t {
  kUnsubscribed = 1,
  kBouncing = 2,
  kFirstPurchase = 4,
  kLastPurchase = 8,
  kWake = 16,
  kRevenue = 32,
};

class Writer {
 public:
  void Byte(uint8_t b) { out_ += static_cast<char>(b); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<uint8_t>(v));
  }
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Time(TimePoint t) { Signed(ToUnixMillis(t)); }
  void Double(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(bits >> (8 * i)));
  }
  void Str(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  const std::string& error() const { return error_; }

  void Fail(std::string why) {
    if (ok_) error_ = fmt::format("customer state is corrupt at byte {}: {}", pos_, why);
    ok_ = false;
  }
  uint8_t Byte() {
    if (!ok_ || pos_ >= in_.size()) {
      Fail("truncated");
      return 0;
    }
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = Byte();
      if (!ok_) return 0;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    Fail("varint too long");
    return 0;
  }
  int64_t Signed() {
    uint64_t v = Varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  TimePoint Time() { return FromUnixMillis(Signed()); }
  double Double() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(Byte()) << (8 * i);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string Str() {
    uint64_t n = Varint();
    if (!ok_) return {};
    if (n > kMaxString || n > in_.size() - pos_) {
      Fail("string length out of range");
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  uint64_t Count() {
    uint64_t n = Varint();
    if (n > kMaxItems || n > in_.size() - pos_) {
      Fail("item count out of range");
      return 0;
    }
    return n;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

void WriteAttr(Writer& w, const Attr& a) {
  w.Byte(static_cast<uint8_t>(a.kind));
  switch (a.kind) {
    case Attr::Kind::kNull:
      break;
    case Attr::Kind::kBool:
      w.Byte(a.b ? 1 : 0);
      break;
    case Attr::Kind::kNumber: {
      // Whole numbers (points, totals in cents) as varints; others as 8 bytes.
      double d = a.number;
      if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -1e15 && d < 1e15) {
        w.Byte(0);
        w.Signed(static_cast<int64_t>(d));
      } else {
        w.Byte(1);
        w.Double(d);
      }
      break;
    }
    case Attr::Kind::kString:
      w.Str(a.str);
      break;
  }
}

bool ReadAttr(Reader& r, Attr* a) {
  uint8_t kind = r.Byte();
  if (kind > static_cast<uint8_t>(Attr::Kind::kString)) {
    r.Fail("unknown attribute kind");
    return false;
  }
  a->kind = static_cast<Attr::Kind>(kind);
  switch (a->kind) {
    case Attr::Kind::kNull:
      break;
    case Attr::Kind::kBool:
      a->b = r.Byte() != 0;
      break;
    case Attr::Kind::kNumber: {
      uint8_t form = r.Byte();
      if (form == 0) {
        a->number = static_cast<double>(r.Signed());
      } else if (form == 1) {
        a->number = r.Double();
      } else {
        r.Fail("unknown number form");
      }
      break;
    }
    case Attr::Kind::kString:
      a->str = r.Str();
      break;
  }
  return r.ok();
}

}  // namespace

std::string EncodeState(const CustomerState& s) {
  Writer w;
  w.Byte(CustomerState::kCodecVersion);
  w.Str(s.id);
  uint8_t flags = (s.unsubscribed ? kUnsubscribed : 0) | (s.bouncing ? kBouncing : 0) |
                  (s.first_purchase_at ? kFirstPurchase : 0) |
                  (s.last_purchase_at ? kLastPurchase : 0) | (s.wake ? kWake : 0) |
                  (s.revenue != 0 ? kRevenue : 0);
  w.Byte(flags);
  w.Signed(s.orders);
  if (flags & kRevenue) w.Double(s.revenue);
  if (s.first_purchase_at) w.Time(*s.first_purchase_at);
  if (s.last_purchase_at) w.Time(*s.last_purchase_at);
  if (s.wake) w.Time(*s.wake);
  w.Varint(s.profile.size());
  for (const auto& [k, v] : s.profile) {
    w.Str(k);
    WriteAttr(w, v);
  }
  w.Varint(s.journeys.size());
  for (const Journey& j : s.journeys) {
    w.Str(j.flow);
    w.Varint(j.run);
    w.Str(j.step);
    w.Byte(static_cast<uint8_t>(j.wait));
    if (j.wait != Journey::Wait::kNone) w.Time(j.wake);
    w.Time(j.entered_at);
    w.Str(j.trigger_type);
    if (!j.trigger_type.empty()) {
      w.Str(j.trigger_event_id);
      w.Time(j.trigger_ts);
      if (j.trigger_data.is_object() && !j.trigger_data.empty()) {
        std::vector<uint8_t> packed = nlohmann::json::to_msgpack(j.trigger_data);
        w.Str(std::string_view(reinterpret_cast<const char*>(packed.data()), packed.size()));
      } else {
        w.Str("");
      }
    }
  }
  w.Varint(s.memos.size());
  for (const FlowMemo& m : s.memos) {
    w.Str(m.flow);
    w.Varint(m.runs);
    w.Time(m.last_entry);
    w.Str(m.last_send_step);
    if (!m.last_send_step.empty()) w.Time(m.last_send);
    w.Varint(m.converted_run);
    w.Byte(m.date_next ? 1 : 0);
    if (m.date_next) w.Time(*m.date_next);
    w.Signed(m.date_fired_key);
  }
  w.Varint(s.recent_event_ids.size());
  for (const auto& id : s.recent_event_ids) w.Str(id);
  w.Varint(s.recent_marketing_sends.size());
  for (TimePoint t : s.recent_marketing_sends) w.Time(t);
  w.Varint(s.history.size());
  for (const HistoryEntry& h : s.history) {
    w.Time(h.at);
    uint8_t kind = 0xff;
    for (size_t i = 0; i < std::size(kHistoryKinds); ++i) {
      if (kHistoryKinds[i] == h.kind) kind = static_cast<uint8_t>(i);
    }
    w.Byte(kind);
    if (kind == 0xff) w.Str(h.kind);
    w.Str(h.flow);
    w.Str(h.step);
    w.Str(h.detail);
  }
  return w.Take();
}

bool DecodeState(std::string_view bytes, CustomerState* out, std::string* error) {
  if (bytes.empty()) {
    *error = "customer state is empty";
    return false;
  }
  uint8_t version = static_cast<uint8_t>(bytes[0]);
  if (version == 0 || version > CustomerState::kCodecVersion) {
    *error = fmt::format("customer state version {} is newer than this journeyd ({})", version,
                         CustomerState::kCodecVersion);
    return false;
  }
  Reader r(bytes.substr(1));
  CustomerState s;
  s.id = r.Str();
  uint8_t flags = r.Byte();
  s.unsubscribed = flags & kUnsubscribed;
  s.bouncing = flags & kBouncing;
  s.orders = r.Signed();
  if (flags & kRevenue) s.revenue = r.Double();
  if (flags & kFirstPurchase) s.first_purchase_at = r.Time();
  if (flags & kLastPurchase) s.last_purchase_at = r.Time();
  if (flags & kWake) s.wake = r.Time();
  uint64_t n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.Str();
    Attr a;
    if (!ReadAttr(r, &a)) break;
    if (!s.profile.empty() && s.profile.back().first >= k) {
      r.Fail("profile attributes out of order");
      break;
    }
    s.profile.emplace_back(std::move(k), std::move(a));
  }
  n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Journey j;
    j.flow = r.Str();
    uint64_t run = r.Varint();
    if (run > UINT32_MAX) r.Fail("run number out of range");
    j.run = static_cast<uint32_t>(run);
    j.step = r.Str();
    uint8_t wait = r.Byte();
    if (wait > static_cast<uint8_t>(Journey::Wait::kEvent)) r.Fail("unknown wait kind");
    j.wait = static_cast<Journey::Wait>(wait);
    if (j.wait != Journey::Wait::kNone) j.wake = r.Time();
    j.entered_at = r.Time();
    j.trigger_type = r.Str();
    if (!j.trigger_type.empty()) {
      j.trigger_event_id = r.Str();
      j.trigger_ts = r.Time();
      std::string packed = r.Str();
      if (!packed.empty()) {
        j.trigger_data = nlohmann::json::from_msgpack(packed, true, false);
        if (j.trigger_data.is_discarded() || !j.trigger_data.is_object()) {
          r.Fail("trigger data is not an object");
        }
      }
    }
    s.journeys.push_back(std::move(j));
  }
  n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    FlowMemo m;
    m.flow = r.Str();
    uint64_t runs = r.Varint();
    if (runs > UINT32_MAX) r.Fail("run count out of range");
    m.runs = static_cast<uint32_t>(runs);
    m.last_entry = r.Time();
    m.last_send_step = r.Str();
    if (!m.last_send_step.empty()) m.last_send = r.Time();
    uint64_t conv = r.Varint();
    if (conv > UINT32_MAX) r.Fail("run number out of range");
    m.converted_run = static_cast<uint32_t>(conv);
    if (r.Byte()) m.date_next = r.Time();
    m.date_fired_key = r.Signed();
    s.memos.push_back(std::move(m));
  }
  n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) s.recent_event_ids.push_back(r.Str());
  n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) s.recent_marketing_sends.push_back(r.Time());
  n = r.Count();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    HistoryEntry h;
    h.at = r.Time();
    uint8_t kind = r.Byte();
    if (kind < std::size(kHistoryKinds)) {
      h.kind = std::string(kHistoryKinds[kind]);
    } else if (kind == 0xff) {
      h.kind = r.Str();
    } else {
      r.Fail("unknown history kind");
    }
    h.flow = r.Str();
    h.step = r.Str();
    h.detail = r.Str();
    s.history.push_back(std::move(h));
  }
  if (r.ok() && !r.done()) r.Fail("trailing bytes");
  if (!r.ok()) {
    *error = r.error();
    return false;
  }
  *out = std::move(s);
  return true;
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
        profile[k] = v.number;
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
  for (const auto& h : s.history) {
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
