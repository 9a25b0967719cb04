#include "journeyd/mail/message.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "journeyd/common/hash.h"

namespace journeyd::mail {
namespace {

constexpr std::string_view kCrlf = "\r\n";

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

bool HasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Removes every control character: header text is one line, whatever it came from.
std::string Clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\t') {
      out += ' ';
    } else if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Length of the UTF-8 sequence starting with byte c (1 for stray bytes).
size_t Utf8Len(unsigned char c) {
  if (c >= 0xF0) return 4;
  if (c >= 0xE0) return 3;
  if (c >= 0xC0) return 2;
  return 1;
}

void AppendHeader(std::string& d, std::string_view name, std::string_view value) {
  d.append(name).append(": ").append(value).append(kCrlf);
}

std::string Boundary(std::string_view job_id) {
  return fmt::format("=_journeyd_{:016x}", StableHash64(job_id, 7));
}

}  // namespace

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string EncodeHeaderText(std::string_view raw, size_t name_length) {
  std::string text = Clean(raw);
  if (IsAscii(text)) {
    // Fold long ASCII text at spaces so no line exceeds 78 characters.
    std::string out;
    size_t line = name_length + 2;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find(' ', start + 1);
      if (end == std::string::npos) end = text.size();
      std::string_view word(text.data() + start, end - start);
      if (line + word.size() > 78 && !out.empty() && word.front() == ' ') {
        out += "\r\n";
        line = 0;
      }
      out += word;
      line += word.size();
      start = end;
    }
    return out;
  }
  // RFC 2047 B-encoding in words of at most 75 characters, never splitting a UTF-8 sequence.
  constexpr size_t kMaxChunk = 45;  // 45 bytes → 60 base64 chars + 12 of "=?UTF-8?B??="
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = i;
    while (end < text.size()) {
      size_t n = Utf8Len(static_cast<unsigned char>(text[end]));
      if (end + n - i > kMaxChunk) break;
      end += n;
    }
    if (end == i) end = std::min(text.size(), i + 1);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(std::string_view(text).substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

namespace {

// Bytes that go through as they are (RFC 2045 6.7, rules 2 and 3): printable ASCII but '=',
// and space and tab (encoded when they end a line).
constexpr std::array<bool, 256> kQpPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 33; c <= 126; ++c) t[static_cast<size_t>(c)] = c != '=';
  t[' '] = t['\t'] = true;
  return t;
}();

}  // namespace

std::string QuotedPrintable(std::string_view body) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(body.size() + body.size() / 8);
  size_t line = 0;
  // Each piece (a character, or =XX) goes on the current line if it fits in 75, else after a
  // soft line break.
  auto room = [&](size_t n) {
    if (line + n > 75) {
      out.append("=\r\n", 3);
      line = 0;
    }
    line += n;
  };
  auto hex = [&](unsigned char c) {
    const char e[3] = {'=', kHex[c >> 4], kHex[c & 15]};
    out.append(e, 3);
  };
  // Trailing white space before a line break must be encoded.
  auto encode_trailing_space = [&] {
    if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
      const auto last = static_cast<unsigned char>(out.back());
      out.pop_back();
      hex(last);
    }
  };
  const char* p = body.data();
  const size_t n = body.size();
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c == '\r' && i + 1 < n && p[i + 1] == '\n') continue;
    if (c == '\n') {
      encode_trailing_space();
      out.append("\r\n", 2);
      line = 0;
      continue;
    }
    // A '.' at the start of a line is encoded so a line can never be a lone dot.
    if (kQpPlain[c] && !(c == '.' && line == 0)) {
      room(1);
      // The run of plain characters after it that still fits on the line, in one append
      // (past the line's first character a '.' is plain too).
      size_t j = i + 1;
      const size_t stop = std::min(n, j + (75 - line));
      while (j < stop && kQpPlain[static_cast<unsigned char>(p[j])]) ++j;
      line += j - i - 1;
      out.append(p + i, j - i);
      i = j - 1;
    } else {
      room(3);
      hex(c);
    }
  }
  encode_trailing_space();
  return out;
}

std::string FormatRfc5322Date(TimePoint t) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto days = floor<std::chrono::days>(t);
  year_month_day ymd{days};
  weekday wd{days};
  int64_t ms = (t - days).count();
  return fmt::format("{}, {} {} {} {:02}:{:02}:{:02} +0000", kDays[wd.c_encoding()],
                     static_cast<unsigned>(ymd.day()),
                     kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                     ms / 3'600'000, ms / 60'000 % 60, ms / 1000 % 60);
}

bool ValidAddress(std::string_view a) {
  if (a.empty() || a.size() > 254 || HasControl(a)) return false;
  size_t at = a.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= a.size() ||
      a.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  for (char c : a) {
    if (c == ' ' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '(' ||
        c == ')' || c == '\\' || c == '[' || c == ']') {
      return false;
    }
  }
  return a.substr(at + 1).find('.') != std::string_view::npos || a.substr(at + 1) == "localhost";
}

bool ParseMailbox(std::string_view mailbox, std::string* name, std::string* address) {
  if (HasControl(mailbox)) return false;
  size_t lt = mailbox.rfind('<');
  if (lt == std::string_view::npos) {
    *name = "";
    *address = std::string(mailbox);
    return ValidAddress(*address);
  }
  size_t gt = mailbox.find('>', lt);
  if (gt == std::string_view::npos || gt + 1 != mailbox.size()) return false;
  std::string_view n = mailbox.substr(0, lt);
  while (!n.empty() && n.back() == ' ') n.remove_suffix(1);
  if (n.size() >= 2 && n.front() == '"' && n.back() == '"') n = n.substr(1, n.size() - 2);
  *name = std::string(n);
  *address = std::string(mailbox.substr(lt + 1, gt - lt - 1));
  return ValidAddress(*address);
}

std::string DotStuff(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  // Line by line: a line that starts with '.' gets one more.
  size_t at = 0;
  while (at < data.size()) {
    size_t nl = data.find('\n', at);
    size_t end = nl == std::string_view::npos ? data.size() : nl + 1;
    if (data[at] == '.') out += '.';
    out.append(data.data() + at, end - at);
    at = end;
  }
  return out;
}

namespace {

// The From header's value: the bare address, a quoted ASCII name, or an encoded one.
std::string FromHeader(const std::string& from_name, const std::string& from_address) {
  if (from_name.empty()) return from_address;
  if (IsAscii(from_name)) {
    std::string quoted;
    for (char c : from_name) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    return fmt::format("\"{}\" <{}>", quoted, from_address);
  }
  return fmt::format("{} <{}>", EncodeHeaderText(from_name, 4), from_address);
}

// List-Unsubscribe (and the one-click List-Unsubscribe-Post) of a marketing mail.
void AppendUnsubscribeHeaders(std::string& d, const engine::SendJob& job,
                              const MessageOptions& options) {
  std::string links;
  if (!job.unsubscribe_url.empty() && !HasControl(job.unsubscribe_url) &&
      job.unsubscribe_url.find_first_of("<> ") == std::string::npos) {
    links = "<" + job.unsubscribe_url + ">";
  }
  if (!options.unsubscribe_mailto.empty() && ValidAddress(options.unsubscribe_mailto)) {
    if (!links.empty()) links += ", ";
    links += "<mailto:" + options.unsubscribe_mailto + "?subject=unsubscribe>";
  }
  if (links.empty()) return;
  AppendHeader(d, "List-Unsubscribe", links);
  if (links.front() == '<' && links.rfind("<mailto:", 0) != 0) {
    AppendHeader(d, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
  }
}

// One part: its headers, a blank line and the content as quoted-printable.
void AppendPart(std::string& d, std::string_view type, std::string_view content) {
  AppendHeader(d, "Content-Type", fmt::format("{}; charset=UTF-8", type));
  AppendHeader(d, "Content-Transfer-Encoding", "quoted-printable");
  d += kCrlf;
  d += QuotedPrintable(content);
  d += kCrlf;
}

// The body: the text alone, or the text and the HTML as multipart/alternative.
void AppendBody(std::string& d, const engine::SendJob& job) {
  if (job.html.empty()) {
    AppendPart(d, "text/plain", job.text);
    return;
  }
  std::string boundary = Boundary(job.job_id);
  AppendHeader(d, "Content-Type", fmt::format("multipart/alternative; boundary=\"{}\"", boundary));
  d += kCrlf;
  d += fmt::format("--{}{}", boundary, kCrlf);
  AppendPart(d, "text/plain", job.text);
  d += fmt::format("--{}{}", boundary, kCrlf);
  AppendPart(d, "text/html", job.html);
  d += fmt::format("--{}--{}", boundary, kCrlf);
}

}  // namespace

std::optional<BuiltMessage> BuildMessage(const engine::SendJob& job, const MessageOptions& options,
                                         TimePoint date, std::string* error) {
  std::string from_name, from_address;
  if (!ParseMailbox(options.from, &from_name, &from_address)) {
    *error = fmt::format("smtp.from '{}' is not a valid mailbox", Clean(options.from));
    return std::nullopt;
  }
  if (!ValidAddress(job.to) || !IsAscii(job.to)) {
    *error = fmt::format("recipient '{}' is not a valid e-mail address", Clean(job.to));
    return std::nullopt;
  }
  BuiltMessage m;
  m.envelope_from = from_address;
  m.envelope_to = job.to;
  std::string domain = from_address.substr(from_address.find('@') + 1);
  m.message_id = fmt::format("<{}@{}>", Clean(job.job_id), domain);

  std::string& d = m.data;
  // The headers, and the parts as quoted-printable makes them (a few bytes in ten grow).
  const size_t body = job.text.size() + job.html.size();
  d.reserve(1024 + job.unsubscribe_url.size() + body + body / 4);
  AppendHeader(d, "From", FromHeader(from_name, from_address));
  AppendHeader(d, "To", job.to);
  AppendHeader(d, "Subject", EncodeHeaderText(job.subject, 7));
  AppendHeader(d, "Date", FormatRfc5322Date(date));
  AppendHeader(d, "Message-ID", m.message_id);
  AppendHeader(d, "MIME-Version", "1.0");
  AppendHeader(d, "X-Journeyd-Flow", Clean(job.flow));
  AppendHeader(d, "X-Journeyd-Step", Clean(job.step));
  if (job.marketing) AppendUnsubscribeHeaders(d, job, options);
  AppendBody(d, job);
  return m;
}

}  // namespace journeyd::mail
