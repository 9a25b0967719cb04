// The customer state's codec: the compact binary form it is stored in (layout in
// state_codec.cpp); the trigger data's MessagePack (PackTriggerData) is encoded there too.
#include "journeyd/engine/state_codec.h"

#include <fmt/format.h>

#include "journeyd/common/utf8.h"
#include "journeyd/engine/state.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <forward_list>
#include <limits>
#include <memory>
#include <utility>

namespace journeyd::engine {
// ---- codec -----------------------------------------------------------------------------
//
// Layout (version 1):
//
//   version  id  flags  orders  [revenue] [first_purchase_at] [last_purchase_at] [wake]
//   profile:  count, (name, attr)*
//   memos:    count, (flow, runs, mflags, [last_entry] [last_send] [last_send_step]
//                     [converted_run] [date_next] [date_fired_key])*
//   journeys: count, (flow, run, step, jflags, entered_at, [wake] [trigger_type]
//                     [trigger_event_id] [trigger_ts] [trigger_data])*
//   history:  count, (at, kind, [kind text], flow, step, detail)*
//   recent event ids: count, text*      recent marketing sends: count, time*
//
// - Integers are LEB128 varints, signed ones zigzagged; doubles 8 bytes little-endian.
// - Optional fields are bits of the flags byte before them; unknown bits are an error.
// - Times: a delta, zigzag(seconds) << 1 when whole seconds, zigzag(ms) << 1 | 1 otherwise.
//   The delta is from the previous time written (the first from 2024-01-01), except that a
//   journey's wake and trigger_ts count from its entered_at: "three days later" is 3 bytes.
// - Text: a varint v; odd v: v >> 1 bytes of UTF-8 follow, even v: the (v >> 1)-th non-empty
//   text written before, of the first kMaxSeen (flow, step and template names repeat; a
//   recent event id repeats a trigger's). Decoding checks every reference and all UTF-8.
// - Profile names: 0 and a string, or 1 + the index of a well-known attribute; values a tag
//   (null, false, true, integer varint, double, string) and the value.
// - trigger_data: MessagePack of the object (null when the flag is clear), kept as these
//   bytes in Journey::trigger_data: decoding checks them (CheckMsgpack) but does not parse.

namespace {

constexpr size_t kMaxString = 1 << 20;
constexpr uint64_t kMaxItems = 100000;
constexpr size_t kMaxMsgpackDepth = 64;
constexpr size_t kMaxSeen = 64;                 // texts a later one may refer to
constexpr int64_t kBaseMillis = 1704067200000;  // 2024-01-01: the first time's reference
// Times are kept within 0001-01-01 .. 9999-12-31 so that every decoded time can be printed.
constexpr int64_t kMinMillis = -62135596800000;
constexpr int64_t kMaxMillis = 253402300799999;

constexpr std::string_view kHistoryKinds[] = {"event",    "enter", "send",
                                              "suppress", "exit",  "convert"};
constexpr uint8_t kHistoryKindOther = 0xff;  // the kind's text follows
constexpr std::string_view kKnownAttrs[] = {
    "birthday", "email",  "email_opt_in",     "first_name", "last_name",
    "locale",   "points", "points_expire_at", "timezone",
};

enum StateFlags : uint8_t {
  kUnsubscribed = 1,
  kBouncing = 2,
  kFirstPurchase = 4,
  kLastPurchase = 8,
  kWake = 16,
  kRevenue = 32,
  kStateFlagsAll = 63,
};

enum MemoFlags : uint8_t {
  kMemoLastEntry = 1,
  kMemoLastSend = 2,
  kMemoLastSendStep = 4,
  kMemoConverted = 8,
  kMemoDateNext = 16,
  kMemoDateFired = 32,
  kMemoFlagsAll = 63,
};

enum JourneyFlags : uint8_t {
  kJourneyWaitMask = 3,  // Journey::Wait
  kJourneyWake = 4,
  kJourneyTriggerType = 8,
  kJourneyTriggerId = 16,
  kJourneyTriggerTs = 32,
  kJourneyTriggerData = 64,
  kJourneyFlagsAll = 127,
};

enum AttrTag : uint8_t { kTagNull, kTagFalse, kTagTrue, kTagInteger, kTagDouble, kTagString };

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

// Invalid UTF-8 never comes from a checked event; should some slip in anyway, it is written
// as U+FFFD rather than making the customer's state unreadable.
std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  size_t bad = 0;
  while (!journeyd::ValidUtf8(s, &bad)) {
    out.append(s.substr(0, bad));
    out.append("\xEF\xBF\xBD");
    s.remove_prefix(bad + 1);
  }
  out.append(s);
  return out;
}

// Reading MessagePack for CheckMsgpack: what is left, and big-endian lengths and counts.
struct MsgpackCursor {
  std::string_view in;
  size_t pos = 0;

  size_t left() const { return in.size() - pos; }
  bool BigEndian(size_t n, uint64_t* v) {
    if (left() < n) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<uint8_t>(in[pos++]);
    return true;
  }
};

// What follows a MessagePack type byte: `skip` bytes of a scalar, a string of `str` bytes, or
// `items` nested values (a map's keys and values counted apart).
struct MsgpackHead {
  uint64_t skip = 0, str = 0, items = 0;
  bool is_str = false;
};

bool IsMsgpackString(uint8_t t) { return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb); }
bool IsMsgpackMap(uint8_t t) { return (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf; }

// The head of the sized forms (0xc0 on), reading their lengths and counts from `c`; false for
// what a state does not keep (0xc1, never used; bin; ext) or a truncated length.
bool ReadSizedHead(uint8_t t, MsgpackCursor& c, MsgpackHead* h) {
  switch (t) {
    case 0xc0:  // nil
    case 0xc2:  // false
    case 0xc3:  // true
      return true;
    case 0xcc:
    case 0xd0:
      h->skip = 1;
      return true;
    case 0xcd:
    case 0xd1:
      h->skip = 2;
      return true;
    case 0xca:
    case 0xce:
    case 0xd2:
      h->skip = 4;
      return true;
    case 0xcb:
    case 0xcf:
    case 0xd3:
      h->skip = 8;
      return true;
    case 0xd9:
    case 0xda:
    case 0xdb:
      h->is_str = true;
      return c.BigEndian(size_t{1} << (t - 0xd9), &h->str);
    case 0xdc:
    case 0xdd:
      return c.BigEndian(t == 0xdc ? 2 : 4, &h->items);
    case 0xde:
    case 0xdf:
      if (!c.BigEndian(t == 0xde ? 2 : 4, &h->items)) return false;
      h->items *= 2;
      return true;
    default:  // 0xc1 (never used), bin, ext
      return false;
  }
}

// The head of type byte `t`: the fix forms here, the sized ones by ReadSizedHead.
bool ReadMsgpackHead(uint8_t t, MsgpackCursor& c, MsgpackHead* h) {
  if (t <= 0x7f || t >= 0xe0) {
    // fixint
  } else if (t <= 0x8f) {
    h->items = 2 * uint64_t{t & 0x0fu};
  } else if (t <= 0x9f) {
    h->items = t & 0x0fu;
  } else if (t <= 0xbf) {
    h->is_str = true;
    h->str = t & 0x1fu;
  } else {
    return ReadSizedHead(t, c, h);
  }
  return true;
}

// True when `in` is exactly one MessagePack value made of JSON types (no bin/ext, text map
// keys), nested at most kMaxMsgpackDepth deep, with valid UTF-8 strings. Iterative: it runs
// before nlohmann::json::from_msgpack, whose recursion a deeply nested input would overflow.
bool CheckMsgpack(std::string_view in) {
  MsgpackCursor c{in, 0};
  // Per open level: the values still to read, and whether it is a map (keys and values by
  // turns). Fixed: no allocation per check.
  std::array<uint64_t, kMaxMsgpackDepth + 1> open;
  std::array<bool, kMaxMsgpackDepth + 1> map;
  size_t depth = 1;
  open[0] = 1;
  map[0] = false;
  while (depth > 0) {
    if (open[depth - 1] == 0) {
      --depth;
      continue;
    }
    const bool key = map[depth - 1] && open[depth - 1] % 2 == 0;
    --open[depth - 1];
    if (c.left() == 0) return false;
    const auto t = static_cast<uint8_t>(in[c.pos++]);
    if (key && !IsMsgpackString(t)) return false;
    MsgpackHead h;
    if (!ReadMsgpackHead(t, c, &h)) return false;
    if (h.is_str) {
      if (h.str > c.left() || !journeyd::ValidUtf8(in.substr(c.pos, h.str))) return false;
      c.pos += h.str;
    } else if (h.skip > 0) {
      if (h.skip > c.left()) return false;
      c.pos += h.skip;
    } else if (h.items > 0) {
      if (h.items > c.left() || depth > kMaxMsgpackDepth) return false;
      open[depth] = h.items;
      map[depth] = IsMsgpackMap(t);
      ++depth;
    }
  }
  return c.pos == in.size();
}

// Whether MessagePack `in` starts as a map (fixmap, map 16, map 32): the one kind of value
// trigger data holds.
bool IsPackedObject(std::string_view in) {
  if (in.empty()) return false;
  return IsMsgpackMap(static_cast<uint8_t>(in[0]));
}

// A type byte and `x` in its low `bytes` bytes, big-endian.
void PackBigEndian(std::string& out, uint8_t type, uint64_t x, int bytes) {
  out.push_back(static_cast<char>(type));
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(x >> (8 * i)));
}

void PackUnsigned(std::string& out, uint64_t x) {
  if (x <= 0x7f) {
    out.push_back(static_cast<char>(x));
  } else if (x <= UINT8_MAX) {
    PackBigEndian(out, 0xcc, x, 1);
  } else if (x <= UINT16_MAX) {
    PackBigEndian(out, 0xcd, x, 2);
  } else if (x <= UINT32_MAX) {
    PackBigEndian(out, 0xce, x, 4);
  } else {
    PackBigEndian(out, 0xcf, x, 8);
  }
}

void PackInteger(std::string& out, int64_t x) {
  if (x >= 0) {
    PackUnsigned(out, static_cast<uint64_t>(x));
  } else if (x >= -32) {
    out.push_back(static_cast<char>(x));
  } else if (x >= INT8_MIN) {
    PackBigEndian(out, 0xd0, static_cast<uint64_t>(x), 1);
  } else if (x >= INT16_MIN) {
    PackBigEndian(out, 0xd1, static_cast<uint64_t>(x), 2);
  } else if (x >= INT32_MIN) {
    PackBigEndian(out, 0xd2, static_cast<uint64_t>(x), 4);
  } else {
    PackBigEndian(out, 0xd3, static_cast<uint64_t>(x), 8);
  }
}

// 32 bits when they hold the value exactly (42.5, 0.25): 4 bytes less in the state.
void PackFloat(std::string& out, double d) {
  const bool narrow = std::isinf(d) || (std::abs(d) <= std::numeric_limits<float>::max() &&
                                        static_cast<double>(static_cast<float>(d)) == d);
  if (narrow) {
    const auto f = static_cast<float>(d);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    PackBigEndian(out, 0xca, bits, 4);
  } else {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    PackBigEndian(out, 0xcb, bits, 8);
  }
}

// A string's, an array's or a map's header: the fix form up to `fix_max`, then 8 (strings
// only), 16 and 32 bits.
void PackHeader(std::string& out, size_t n, uint8_t fix, size_t fix_max, int first_sized,
                uint8_t sized) {
  if (n <= fix_max) {
    out.push_back(static_cast<char>(fix | n));
    return;
  }
  int form = 0;  // 0: 8 bits, 1: 16, 2: 32
  while ((form < 2 && n > (uint64_t{1} << (8 << form)) - 1) || form < first_sized) ++form;
  PackBigEndian(out, static_cast<uint8_t>(sized + form - first_sized), n, 1 << form);
}

bool PackText(std::string& out, const std::string& s) {
  if (!journeyd::ValidUtf8(s)) return false;
  PackHeader(out, s.size(), 0xa0, 31, 0, 0xd9);
  out.append(s);
  return true;
}

// Appends `v` as MessagePack, as CheckMsgpack accepts it and nlohmann::json::from_msgpack
// reads it back; false when it holds what a state does not keep (binary data, invalid UTF-8,
// containers nested deeper than kMaxMsgpackDepth). `depth`: v's, the outermost being 1.
bool PackJson(const nlohmann::json& v, size_t depth, std::string& out) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::null:
      out.push_back(static_cast<char>(0xc0));
      return true;
    case T::boolean:
      out.push_back(static_cast<char>(v.get<bool>() ? 0xc3 : 0xc2));
      return true;
    case T::number_unsigned:
      PackUnsigned(out, v.get<uint64_t>());
      return true;
    case T::number_integer:
      PackInteger(out, v.get<int64_t>());
      return true;
    case T::number_float:
      PackFloat(out, v.get<double>());
      return true;
    case T::string:
      return PackText(out, v.get_ref<const std::string&>());
    case T::array:
      if (!v.empty() && depth > kMaxMsgpackDepth) return false;
      PackHeader(out, v.size(), 0x90, 15, 1, 0xdc);
      for (const auto& x : v.get_ref<const nlohmann::json::array_t&>()) {
        if (!PackJson(x, depth + 1, out)) return false;
      }
      return true;
    case T::object:
      if (!v.empty() && depth > kMaxMsgpackDepth) return false;
      PackHeader(out, v.size(), 0x80, 15, 1, 0xde);
      // The map itself: nlohmann's items() builds a string per entry.
      for (const auto& [k, x] : v.get_ref<const nlohmann::json::object_t&>()) {
        if (!PackText(out, k) || !PackJson(x, depth + 1, out)) return false;
      }
      return true;
    default:  // binary, discarded
      return false;
  }
}

class Writer {
 public:
  // Written through a pointer into a buffer sized ahead: a state takes about fifty varints
  // and texts, and std::string's append and push_back checked and grew the string at each.
  Writer() { Grow(256); }  // most states fit: no regrowth while writing
  // Writes into `room`'s bytes (what it holds is overwritten; Take() hands it back).
  explicit Writer(std::string&& room) : out_(std::move(room)) {
    out_.resize(std::max<size_t>(out_.capacity(), 256));
    p_ = out_.data();
    end_ = out_.data() + out_.size();
  }
  Writer(const Writer&) = delete;  // p_ and end_ point into out_
  Writer& operator=(const Writer&) = delete;
  void Byte(uint8_t b) {
    Room(1);
    *p_++ = static_cast<char>(b);
  }
  void Varint(uint64_t v) {
    Room(10);
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Signed(int64_t v) { Varint(ZigZag(v)); }
  // A time as a delta from the previous one; returns it as written (clamped to the range).
  int64_t Time(TimePoint t) {
    last_ms_ = TimeFrom(t, last_ms_);
    return last_ms_;
  }
  // A time as a delta from `base_ms`, leaving the running time alone.
  int64_t TimeFrom(TimePoint t, int64_t base_ms) {
    const int64_t ms = std::clamp(ToUnixMillis(t), kMinMillis, kMaxMillis);
    const int64_t d = ms - base_ms;
    if (d % 1000 == 0) {
      Varint(ZigZag(d / 1000) << 1);
    } else {
      Varint(ZigZag(d) << 1 | 1);
    }
    return ms;
  }
  void Double(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    Room(8);
    for (int i = 0; i < 8; ++i) *p_++ = static_cast<char>(bits >> (8 * i));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    Append(s);
  }
  void Str(std::string_view s) {
    if (journeyd::ValidUtf8(s)) {
      Bytes(s);
    } else {
      Bytes(SanitizeUtf8(s));
    }
  }
  // Text that may repeat: a reference to an earlier equal text, or the text itself.
  // `remember`: later texts may refer to this one.
  void Text(std::string_view s, bool remember = true) {
    if (!s.empty()) {
      for (size_t i = 0; i < seen_count_; ++i) {
        if (seen_[i] == s) {
          Varint(2 * uint64_t{i});
          return;
        }
      }
    }
    if (!journeyd::ValidUtf8(s)) s = repaired_.emplace_front(SanitizeUtf8(s));
    Varint(2 * uint64_t{s.size()} + 1);
    Append(s);
    if (remember && !s.empty() && seen_count_ < kMaxSeen) seen_[seen_count_++] = s;
  }
  std::string Take() {
    out_.resize(static_cast<size_t>(p_ - out_.data()));
    return std::move(out_);
  }

 private:
  void Append(std::string_view s) {
    if (s.empty()) return;
    Room(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void Room(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Grow(n);
  }
  // At least `n` more bytes of room after what is written.
  void Grow(size_t n) {
    const size_t used = p_ ? static_cast<size_t>(p_ - out_.data()) : 0;
    out_.resize(std::max(out_.size() * 2, used + n));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string out_;  // out_.data() up to p_: written; from p_ to end_: room
  char* p_ = nullptr;
  char* end_ = nullptr;
  int64_t last_ms_ = kBaseMillis;
  // Into the state being encoded, or repaired_. Fixed: no allocation per state.
  std::array<std::string_view, kMaxSeen> seen_;
  size_t seen_count_ = 0;
  std::forward_list<std::string> repaired_;  // stable addresses; nothing allocated unless used
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  const std::string& error() const { return error_; }

  void Fail(std::string_view why) {
    // +1: offsets count the version byte, which the caller has already read.
    if (ok_) error_ = fmt::format("customer state is corrupt at byte {}: {}", pos_ + 1, why);
    ok_ = false;
  }
  uint8_t Byte() {
    if (!ok_) return 0;
    if (pos_ >= in_.size()) {
      Fail("truncated");
      return 0;
    }
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = Byte();
      if (!ok_) return 0;
      if (shift == 63 && b > 1) break;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    Fail("varint too long");
    return 0;
  }
  uint32_t Varint32(std::string_view what) {
    const uint64_t v = Varint();
    if (v > UINT32_MAX) {
      Fail(fmt::format("{} out of range", what));
      return 0;
    }
    return static_cast<uint32_t>(v);
  }
  int64_t Signed() { return UnZigZag(Varint()); }
  TimePoint Time() {
    last_ms_ = TimeFrom(last_ms_);
    return FromUnixMillis(last_ms_);
  }
  // Returns Unix ms; `base_ms` is within range.
  int64_t TimeFrom(int64_t base_ms) {
    const uint64_t raw = Varint();
    if (!ok_) return base_ms;
    int64_t d = UnZigZag(raw >> 1);
    constexpr int64_t kSpan = kMaxMillis - kMinMillis;
    if ((raw & 1) == 0) {
      if (d > kSpan / 1000 || d < -kSpan / 1000) {
        Fail("time out of range");
        return base_ms;
      }
      d *= 1000;
    }
    if (d > kSpan || d < -kSpan || base_ms + d < kMinMillis || base_ms + d > kMaxMillis) {
      Fail("time out of range");
      return base_ms;
    }
    return base_ms + d;
  }
  double Double() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(Byte()) << (8 * i);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string_view Bytes() { return Take(Varint()); }
  std::string_view StrView() { return Utf8(Bytes()); }
  // A view into the bytes being read.
  std::string_view TextView(bool remember = true) {
    const uint64_t v = Varint();
    if (!ok_) return {};
    if ((v & 1) == 0) {
      if ((v >> 1) >= seen_count_) {
        Fail("text reference out of range");
        return {};
      }
      return seen_[v >> 1];
    }
    std::string_view s = Utf8(Take(v >> 1));
    if (ok_ && remember && !s.empty() && seen_count_ < kMaxSeen) seen_[seen_count_++] = s;
    return s;
  }
  uint64_t Count() {
    const uint64_t n = Varint();
    // Every item takes at least one byte: a count beyond what is left is corrupt.
    if (n > kMaxItems || n > in_.size() - pos_) {
      Fail("item count out of range");
      return 0;
    }
    return n;
  }
  uint8_t Flags(uint8_t allowed, std::string_view what) {
    const uint8_t f = Byte();
    if (f & ~allowed) Fail(fmt::format("unknown {} flags", what));
    return f;
  }

 private:
  std::string_view Take(uint64_t n) {
    if (!ok_) return {};
    if (n > kMaxString || n > in_.size() - pos_) {
      Fail("string length out of range");
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view Utf8(std::string_view s) {
    if (!journeyd::ValidUtf8(s)) {
      Fail("text is not valid UTF-8");
      return {};
    }
    return s;
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
  int64_t last_ms_ = kBaseMillis;
  std::array<std::string_view, kMaxSeen> seen_;  // into in_
  size_t seen_count_ = 0;
};

void WriteAttr(Writer& w, const Attr& a) {
  switch (a.kind) {
    case Attr::Kind::kNull:
      w.Byte(kTagNull);
      break;
    case Attr::Kind::kBool:
      w.Byte(a.b ? kTagTrue : kTagFalse);
      break;
    case Attr::Kind::kNumber: {
      // Whole numbers (points, counts) as varints; others as 8 bytes.
      const double d = a.number;
      if (d > -1e15 && d < 1e15 && d == static_cast<double>(static_cast<int64_t>(d)) &&
          !(d == 0 && std::signbit(d))) {
        w.Byte(kTagInteger);
        w.Signed(static_cast<int64_t>(d));
      } else {
        w.Byte(kTagDouble);
        w.Double(d);
      }
      break;
    }
    case Attr::Kind::kString:
      w.Byte(kTagString);
      w.Str(a.str);
      break;
  }
}

// Into `a`, which may hold an earlier value: its string keeps its room.
void ReadAttr(Reader& r, Attr& a) {
  a.kind = Attr::Kind::kNull;
  a.b = false;
  a.number = 0;
  a.str.clear();
  switch (r.Byte()) {
    case kTagNull:
      break;
    case kTagFalse:
      a.kind = Attr::Kind::kBool;
      break;
    case kTagTrue:
      a.kind = Attr::Kind::kBool;
      a.b = true;
      break;
    case kTagInteger:
      a.kind = Attr::Kind::kNumber;
      a.number = static_cast<double>(r.Signed());
      break;
    case kTagDouble:
      a.kind = Attr::Kind::kNumber;
      a.number = r.Double();
      break;
    case kTagString:
      a.kind = Attr::Kind::kString;
      a.str.assign(r.StrView());
      break;
    default:
      r.Fail("unknown attribute kind");
      break;
  }
}

void WriteName(Writer& w, std::string_view name) {
  for (size_t i = 0; i < std::size(kKnownAttrs); ++i) {
    if (kKnownAttrs[i] == name) {
      w.Varint(i + 1);
      return;
    }
  }
  w.Varint(0);
  w.Str(name);
}

void ReadName(Reader& r, std::string& name) {
  const uint64_t ref = r.Varint();
  if (ref == 0) {
    name.assign(r.StrView());
  } else if (ref > std::size(kKnownAttrs)) {
    r.Fail("attribute reference out of range");
    name.clear();
  } else {
    name.assign(kKnownAttrs[ref - 1]);
  }
}

}  // namespace

std::string PackTriggerData(const nlohmann::json& data) {
  if (!data.is_object()) return {};
  // Packed into a buffer kept for the thread, then copied at its size: a journey keeps the
  // bytes for as long as it runs, and most trigger data is a few fields (an empty object is
  // one byte, held in place).
  thread_local std::string scratch;
  scratch.clear();
  std::string packed;
  if (PackJson(data, 1, scratch)) packed = scratch;
  if (scratch.capacity() > (size_t{1} << 16)) std::string().swap(scratch);
  return packed;
}

nlohmann::json UnpackTriggerData(std::string_view packed) {
  if (!IsPackedObject(packed) || !CheckMsgpack(packed)) return nullptr;
  return nlohmann::json::from_msgpack(packed, true, false);
}

std::string EncodeState(const CustomerState& s) {
  std::string out;
  EncodeState(s, &out);
  return out;
}

namespace {

// version, id, flags, orders and the optional revenue and times.
void WriteHead(Writer& w, const CustomerState& s) {
  w.Byte(CustomerState::kCodecVersion);
  w.Str(s.id);
  const uint8_t flags = (s.unsubscribed ? kUnsubscribed : 0) | (s.bouncing ? kBouncing : 0) |
                        (s.first_purchase_at ? kFirstPurchase : 0) |
                        (s.last_purchase_at ? kLastPurchase : 0) | (s.wake ? kWake : 0) |
                        (s.revenue != 0 || std::signbit(s.revenue) ? kRevenue : 0);
  w.Byte(flags);
  w.Signed(s.orders);
  if (flags & kRevenue) w.Double(s.revenue);
  if (s.first_purchase_at) w.Time(*s.first_purchase_at);
  if (s.last_purchase_at) w.Time(*s.last_purchase_at);
  if (s.wake) w.Time(*s.wake);
}

void WriteMemo(Writer& w, const FlowMemo& m) {
  w.Text(m.flow);
  w.Varint(m.runs);
  const uint8_t mf = (m.last_entry != TimePoint{} ? kMemoLastEntry : 0) |
                     (m.last_send != TimePoint{} ? kMemoLastSend : 0) |
                     (!m.last_send_step.empty() ? kMemoLastSendStep : 0) |
                     (m.converted_run != 0 ? kMemoConverted : 0) |
                     (m.date_next ? kMemoDateNext : 0) |
                     (m.date_fired_key != 0 ? kMemoDateFired : 0);
  w.Byte(mf);
  if (mf & kMemoLastEntry) w.Time(m.last_entry);
  if (mf & kMemoLastSend) w.Time(m.last_send);
  if (mf & kMemoLastSendStep) w.Text(m.last_send_step);
  if (mf & kMemoConverted) w.Varint(m.converted_run);
  if (mf & kMemoDateNext) w.Time(*m.date_next);
  if (mf & kMemoDateFired) w.Signed(m.date_fired_key);
}

void WriteJourney(Writer& w, const Journey& j) {
  w.Text(j.flow);
  w.Varint(j.run);
  w.Text(j.step);
  // Made by PackTriggerData or read by DecodeState, both of which check it: written as it
  // is, unless it is not a packed object at all.
  const std::string_view packed =
      IsPackedObject(j.trigger_data) ? std::string_view(j.trigger_data) : std::string_view();
  const uint8_t jf = static_cast<uint8_t>(static_cast<uint8_t>(j.wait) & kJourneyWaitMask) |
                     (j.wake != TimePoint{} ? kJourneyWake : 0) |
                     (!j.trigger_type.empty() ? kJourneyTriggerType : 0) |
                     (!j.trigger_event_id.empty() ? kJourneyTriggerId : 0) |
                     (j.trigger_ts != TimePoint{} ? kJourneyTriggerTs : 0) |
                     (!packed.empty() ? kJourneyTriggerData : 0);
  w.Byte(jf);
  const int64_t entered = w.Time(j.entered_at);
  if (jf & kJourneyWake) w.TimeFrom(j.wake, entered);
  if (jf & kJourneyTriggerType) w.Text(j.trigger_type);
  if (jf & kJourneyTriggerId) w.Text(j.trigger_event_id);
  if (jf & kJourneyTriggerTs) w.TimeFrom(j.trigger_ts, entered);
  if (jf & kJourneyTriggerData) w.Bytes(packed);
}

void WriteHistoryEntry(Writer& w, const HistoryEntry& h) {
  w.Time(h.at);
  uint8_t kind = kHistoryKindOther;
  for (size_t i = 0; i < std::size(kHistoryKinds); ++i) {
    if (kHistoryKinds[i] == h.kind) kind = static_cast<uint8_t>(i);
  }
  w.Byte(kind);
  if (kind == kHistoryKindOther) w.Text(h.kind);
  w.Text(h.flow);
  w.Text(h.step);
  w.Text(h.detail);
}

}  // namespace

void EncodeState(const CustomerState& s, std::string* out) {
  Writer w(std::move(*out));
  WriteHead(w, s);
  w.Varint(s.profile.size());
  for (const auto& [name, value] : s.profile) {
    WriteName(w, name);
    WriteAttr(w, value);
  }
  w.Varint(s.memos.size());
  for (const FlowMemo& m : s.memos) WriteMemo(w, m);
  w.Varint(s.journeys.size());
  for (const Journey& j : s.journeys) WriteJourney(w, j);
  w.Varint(s.history.size());
  for (const HistoryEntry h : s.history) WriteHistoryEntry(w, h);
  // Ids are unique: they may refer to a trigger_event_id but are not referred to.
  w.Varint(s.recent_event_ids.size());
  for (const auto& id : s.recent_event_ids) w.Text(id, /*remember=*/false);
  w.Varint(s.recent_marketing_sends.size());
  for (TimePoint t : s.recent_marketing_sends) w.Time(t);
  *out = w.Take();
}

namespace {

// An error unless the version byte is one this journeyd reads.
bool CheckVersion(std::string_view bytes, std::string* error) {
  if (bytes.empty()) {
    *error = "customer state is empty";
    return false;
  }
  const auto version = static_cast<uint8_t>(bytes[0]);
  if (version == 0) {
    *error = "customer state version 0 does not exist: the data is not a journeyd state";
    return false;
  }
  if (version > CustomerState::kCodecVersion) {
    *error = fmt::format("customer state version {} is newer than this journeyd ({})", version,
                         CustomerState::kCodecVersion);
    return false;
  }
  return true;
}

// id, flags, orders and the optional revenue and times (after the version byte).
void ReadHead(Reader& r, CustomerState& s) {
  s.id.assign(r.StrView());
  const uint8_t flags = r.Flags(kStateFlagsAll, "state");
  s.unsubscribed = flags & kUnsubscribed;
  s.bouncing = flags & kBouncing;
  s.orders = r.Signed();
  s.revenue = flags & kRevenue ? r.Double() : 0;
  s.first_purchase_at.reset();
  s.last_purchase_at.reset();
  s.wake.reset();
  if (flags & kFirstPurchase) s.first_purchase_at = r.Time();
  if (flags & kLastPurchase) s.last_purchase_at = r.Time();
  if (flags & kWake) s.wake = r.Time();
}

void ReadProfile(Reader& r, CustomerState& s) {
  const uint64_t n = r.Count();
  s.profile.resize(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    auto& [name, a] = s.profile[i];
    ReadName(r, name);
    ReadAttr(r, a);
    if (r.ok() && i > 0 && s.profile[i - 1].first >= name) {
      r.Fail("profile attributes out of order");
    }
  }
}

void ReadMemo(Reader& r, FlowMemo& m) {
  m.flow.assign(r.TextView());
  m.runs = r.Varint32("run count");
  const uint8_t mf = r.Flags(kMemoFlagsAll, "flow memo");
  m.last_entry = mf & kMemoLastEntry ? r.Time() : TimePoint{};
  m.last_send = mf & kMemoLastSend ? r.Time() : TimePoint{};
  m.last_send_step.assign(mf & kMemoLastSendStep ? r.TextView() : std::string_view());
  m.converted_run = mf & kMemoConverted ? r.Varint32("run number") : 0;
  m.date_next.reset();
  if (mf & kMemoDateNext) m.date_next = r.Time();
  m.date_fired_key = mf & kMemoDateFired ? r.Signed() : 0;
}

// Trigger data is kept as the bytes read, once they are checked to be a packed object.
void ReadTriggerData(Reader& r, Journey& j) {
  std::string_view packed = r.Bytes();
  if (!r.ok()) return;
  if (!CheckMsgpack(packed)) {
    r.Fail("trigger data is not valid MessagePack");
  } else if (!IsPackedObject(packed)) {
    r.Fail("trigger data is not an object");
  } else {
    j.trigger_data.assign(packed);
  }
}

void ReadJourney(Reader& r, Journey& j) {
  j.flow.assign(r.TextView());
  j.run = r.Varint32("run number");
  j.step.assign(r.TextView());
  const uint8_t jf = r.Flags(kJourneyFlagsAll, "journey");
  const uint8_t wait = jf & kJourneyWaitMask;
  if (wait > static_cast<uint8_t>(Journey::Wait::kEvent)) r.Fail("unknown wait kind");
  j.wait = static_cast<Journey::Wait>(wait);
  j.entered_at = r.Time();
  const int64_t entered = ToUnixMillis(j.entered_at);
  j.wake = jf & kJourneyWake ? FromUnixMillis(r.TimeFrom(entered)) : TimePoint{};
  j.trigger_type.assign(jf & kJourneyTriggerType ? r.TextView() : std::string_view());
  j.trigger_event_id.assign(jf & kJourneyTriggerId ? r.TextView() : std::string_view());
  j.trigger_ts = jf & kJourneyTriggerTs ? FromUnixMillis(r.TimeFrom(entered)) : TimePoint{};
  j.trigger_data.clear();
  if (jf & kJourneyTriggerData) ReadTriggerData(r, j);
}

void ReadHistory(Reader& r, CustomerState& s) {
  const uint64_t n = r.Count();
  s.history.clear();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    HistoryEntry h;
    h.at = r.Time();
    const uint8_t kind = r.Byte();
    if (kind < std::size(kHistoryKinds)) {
      h.kind = kHistoryKinds[kind];
    } else if (kind == kHistoryKindOther) {
      h.kind = r.TextView();
    } else {
      r.Fail("unknown history kind");
    }
    h.flow = r.TextView();
    h.step = r.TextView();
    h.detail = r.TextView();
    if (r.ok()) s.history.push_back(h);
  }
}

// Everything after the version byte, in the order EncodeState writes it.
void ReadState(Reader& r, CustomerState& s) {
  ReadHead(r, s);
  ReadProfile(r, s);
  uint64_t n = r.Count();
  s.memos.resize(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) ReadMemo(r, s.memos[i]);
  n = r.Count();
  s.journeys.resize(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) ReadJourney(r, s.journeys[i]);
  ReadHistory(r, s);
  n = r.Count();
  s.recent_event_ids.resize(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) s.recent_event_ids[i].assign(r.TextView(false));
  n = r.Count();
  s.recent_marketing_sends.resize(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) s.recent_marketing_sends[i] = r.Time();
  if (r.ok() && !r.done()) r.Fail("trailing bytes");
}

}  // namespace

bool DecodeState(std::string_view bytes, CustomerState* out, std::string* error) {
  std::string ignored;
  if (!error) error = &ignored;
  if (!CheckVersion(bytes, error)) return false;
  // Read into a state kept for the thread, reusing the strings and vectors of the last one
  // read there, and swapped with `out` once all of it reads: `out` stays as it was on an
  // error, and a caller that keeps its states from batch to batch hands their allocations
  // back here for the next read.
  thread_local CustomerState s;
  Reader r(bytes.substr(1));
  ReadState(r, s);
  if (!r.ok()) {
    *error = r.error();
    return false;
  }
  std::swap(*out, s);
  return true;
}

}  // namespace journeyd::engine
