// A Redis command written straight into its wire form (RESP, an array of bulk strings).
//
// Big commands (a batch commit carries hundreds of customer states and rendered mails) are
// built here piece by piece, with no vector of argument strings and no second formatting pass.
#pragma once

#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace journeyd::store {

// Appends `a` to `buf` as a RESP bulk string.
inline void AppendBulk(std::string& buf, std::string_view a) {
  char head[24] = {'$'};  // "$<length>\r\n"
  char* end = std::to_chars(head + 1, head + sizeof head - 2, a.size()).ptr;
  *end++ = '\r';
  *end++ = '\n';
  buf.append(head, end);
  buf.append(a);
  buf.append("\r\n", 2);
}

// Arguments in RESP form without the array header, so that parts built separately (keys,
// then arguments) can be joined in any order before the command is framed.
class RespArgs {
 public:
  RespArgs& Arg(std::string_view a) {
    AppendBulk(buf_, a);
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
    buf_.append(other.buf_);
    count_ += other.count_;
    return *this;
  }
  void Reserve(size_t bytes) { buf_.reserve(bytes); }
  size_t count() const { return count_; }
  size_t bytes() const { return buf_.size(); }
  const std::string& body() const { return buf_; }

 private:
  std::string buf_;
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
    c.wire_.append(args.body());
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
    (c.wire_.append(parts.body()), ...);
    return c;
  }
  // Built in place, one argument after the other, when there is nothing to join: room for the
  // array header is kept at the front and filled by Done(), so nothing is copied twice.
  static RespCommand Build(size_t reserve_bytes) {
    RespCommand c;
    c.wire_.reserve(reserve_bytes + kHeaderRoom);
    c.wire_.append(kHeaderRoom, ' ');
    c.start_ = kHeaderRoom;
    return c;
  }
  RespCommand& Arg(std::string_view a) {
    AppendBulk(wire_, a);
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
    wire_.replace(start_, len, n, len);
    return std::move(*this);
  }
  std::string_view wire() const { return std::string_view(wire_).substr(start_); }

 private:
  static constexpr size_t kHeaderRoom = 24;  // "*<count>\r\n" for any size_t count
  size_t start_ = 0;                         // where the wire form starts in wire_
  size_t built_ = 0;                         // Build: arguments so far

  void Frame(size_t count, size_t bytes) {
    char n[24];
    auto end = std::to_chars(n, n + sizeof n, count).ptr;
    wire_.reserve(bytes + 16);
    wire_.push_back('*');
    wire_.append(n, end);
    wire_.append("\r\n", 2);
  }
  std::string wire_;
};

}  // namespace journeyd::store
