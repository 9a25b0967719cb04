// A Redis command written straight into its wire form (RESP, an array of bulk strings).
//
// Big commands (a batch commit carries hundreds of customer states and rendered mails) are
// built here piece by piece, with no vector of argument strings and no second formatting pass.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace journeyd::store {

// Bytes written through a pointer into a buffer kept larger than what is written, and never
// zero-filled: a commit appends a few thousand arguments, and std::string's append went
// through its general replace for each one (callgrind: about 175 instructions an argument).
class RespBuffer {
 public:
  RespBuffer() = default;
  RespBuffer(const RespBuffer& o) { *this = o; }
  RespBuffer& operator=(const RespBuffer& o) {
    if (this != &o) {
      used_ = 0;
      Raw(o.view());
    }
    return *this;
  }
  RespBuffer(RespBuffer&& o) noexcept { *this = std::move(o); }
  RespBuffer& operator=(RespBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    room_ = std::exchange(o.room_, 0);
    used_ = std::exchange(o.used_, 0);
    return *this;
  }

  // Appends `a` as a RESP bulk string. `a` must not point into this buffer.
  void Bulk(std::string_view a) {
    char* p = Room(a.size() + kBulkFrame);
    *p++ = '$';
    p = std::to_chars(p, p + 20, a.size()).ptr;
    *p++ = '\r';
    *p++ = '\n';
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
    *p = '\0';
    used_ = static_cast<size_t>(p - data_.get());
  }
  // Appends `a` then `b` as one bulk string (a key from its prefix and a name, with no string
  // built for it). Neither may point into this buffer.
  void Bulk(std::string_view a, std::string_view b) {
    const size_t n = a.size() + b.size();
    char* p = Room(n + kBulkFrame);
    *p++ = '$';
    p = std::to_chars(p, p + 20, n).ptr;
    *p++ = '\r';
    *p++ = '\n';
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    if (!b.empty()) std::memcpy(p, b.data(), b.size());
    p += b.size();
    *p++ = '\r';
    *p++ = '\n';
    *p = '\0';
    used_ = static_cast<size_t>(p - data_.get());
  }
  // Appends `a` as it is.
  void Raw(std::string_view a) {
    if (a.empty()) return;
    std::memcpy(Room(a.size()), a.data(), a.size());
    used_ += a.size();
    data_[used_] = '\0';
  }
  // Room for `bytes` in all without growing.
  void Reserve(size_t bytes) {
    if (room_ < bytes + 1) Grow(bytes + 1);
  }
  size_t size() const { return used_; }
  // What is written, followed by a NUL once anything is: hiredis reads a command's head
  // with strchr, as a C string.
  std::string_view view() const { return std::string_view(data_.get(), used_); }
  // Overwrites bytes already written, from `at`.
  void Overwrite(size_t at, std::string_view a) {
    std::memcpy(data_.get() + at, a.data(), a.size());
  }

 private:
  static constexpr size_t kBulkFrame = 25;  // "$", up to 20 digits, two CRLFs
  // Where `n` more bytes go, with one more after them for the terminating NUL; the buffer
  // doubles when they do not fit.
  char* Room(size_t n) {
    if (room_ - used_ < n + 1) Grow(std::max(room_ * 2, used_ + n + 1));
    return data_.get() + used_;
  }
  void Grow(size_t room) {
    auto bigger = std::make_unique_for_overwrite<char[]>(room);
    if (used_ > 0) std::memcpy(bigger.get(), data_.get(), used_);
    data_ = std::move(bigger);
    room_ = room;
  }
  std::unique_ptr<char[]> data_;  // [0, used_): written; [used_, room_): room
  size_t room_ = 0;
  size_t used_ = 0;
};

// Arguments in RESP form without the array header, so that parts built separately (keys,
// then arguments) can be joined in any order before the command is framed.
class RespArgs {
 public:
  RespArgs& Arg(std::string_view a) {
    buf_.Bulk(a);
    ++count_;
    return *this;
  }
  // `a` and `b` as one argument.
  RespArgs& Arg(std::string_view a, std::string_view b) {
    buf_.Bulk(a, b);
    ++count_;
    return *this;
  }
  RespArgs& Arg(int64_t v) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    return Arg(std::string_view(digits, static_cast<size_t>(end - digits)));
  }
  RespArgs& Arg(const char* a) { return Arg(std::string_view(a)); }
  RespArgs& Arg(const std::string& a) { return Arg(std::string_view(a)); }
  RespArgs& Append(const RespArgs& other) {
    buf_.Raw(other.body());
    count_ += other.count_;
    return *this;
  }
  void Reserve(size_t bytes) { buf_.Reserve(bytes); }
  size_t count() const { return count_; }
  size_t bytes() const { return buf_.size(); }
  std::string_view body() const { return buf_.view(); }

 private:
  RespBuffer buf_;
  size_t count_ = 0;
};

// A whole command: the array header, then the arguments.
class RespCommand {
 public:
  RespCommand() = default;
  // Frames `args`.
  static RespCommand Of(const RespArgs& args) {
    RespCommand c;
    c.Frame(args.count(), args.bytes());
    c.wire_.Raw(args.body());
    return c;
  }
  // Frames the arguments given in place: RespCommand::Of({"GET", key}).
  static RespCommand Of(std::initializer_list<std::string_view> args) {
    RespArgs a;
    for (std::string_view x : args) a.Arg(x);
    return Of(a);
  }
  // Frames `head` followed by the arguments of `rest`: Join({"XACK", stream, group}, ids).
  static RespCommand Join(std::initializer_list<std::string_view> head, const RespArgs& rest) {
    RespArgs a;
    for (std::string_view x : head) a.Arg(x);
    return Join(a, rest);
  }
  template <typename... Parts>
  static RespCommand Join(const Parts&... parts) {
    RespCommand c;
    c.Frame((parts.count() + ...), (parts.bytes() + ...));
    (c.wire_.Raw(parts.body()), ...);
    return c;
  }
  // Built in place, one argument after the other, when there is nothing to join: room for the
  // array header is kept at the front and filled by Done(), so nothing is copied twice.
  static RespCommand Build(size_t reserve_bytes) {
    RespCommand c;
    c.wire_.Reserve(reserve_bytes + kHeaderRoom);
    c.wire_.Raw(std::string_view(kBlank, kHeaderRoom));
    c.start_ = kHeaderRoom;
    return c;
  }
  RespCommand& Arg(std::string_view a) {
    wire_.Bulk(a);
    ++built_;
    return *this;
  }
  RespCommand&& Done() && {
    char n[24];
    auto end = std::to_chars(n + 1, n + sizeof n - 2, built_).ptr;
    n[0] = '*';
    *end++ = '\r';
    *end++ = '\n';
    const size_t len = static_cast<size_t>(end - n);
    start_ = kHeaderRoom - len;
    wire_.Overwrite(start_, std::string_view(n, len));
    return std::move(*this);
  }
  std::string_view wire() const { return wire_.view().substr(start_); }

 private:
  static constexpr size_t kHeaderRoom = 24;  // "*<count>\r\n" for any size_t count
  static constexpr char kBlank[kHeaderRoom + 1] = "                        ";
  size_t start_ = 0;  // where the wire form starts in wire_
  size_t built_ = 0;  // Build: arguments so far

  void Frame(size_t count, size_t bytes) {
    char n[24] = {'*'};
    char* end = std::to_chars(n + 1, n + sizeof n - 2, count).ptr;
    *end++ = '\r';
    *end++ = '\n';
    wire_.Reserve(bytes + 16);
    wire_.Raw(std::string_view(n, static_cast<size_t>(end - n)));
  }
  RespBuffer wire_;
};

}  // namespace journeyd::store
