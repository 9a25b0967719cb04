// SMTP replies as a relay sends them (mail/smtp.h SmtpReplyParser, SmtpExtensions): the
// input is cut into lines at CRLF as the session's reader does, and fed reply after reply;
// every complete reply is also read as an EHLO reply. Invariants: the parser ends a reply or
// refuses it with a reason; a complete reply has a code of 200-599 and lines and a Text()
// without control characters (they go to logs and the dead stream).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "journeyd/mail/smtp.h"

using namespace journeyd;

namespace {

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  mail::SmtpReplyParser parser;
  using State = mail::SmtpReplyParser::State;
  for (;;) {
    const size_t end = in.find("\r\n");
    const std::string_view line = in.substr(0, end);
    const State state = parser.Feed(line);
    if (state == State::kError && parser.error().empty()) std::abort();
    if (state == State::kDone) {
      const mail::SmtpReply& r = parser.reply();
      if (r.code < 200 || r.code > 599 || r.lines.empty()) std::abort();
      for (const std::string& l : r.lines) {
        if (HasControl(l)) std::abort();
      }
      if (HasControl(r.Text())) std::abort();
      (void)mail::SmtpExtensions::From(r);
    }
    if (state != State::kMore) parser.Reset();
    if (end == std::string_view::npos) break;
    in.remove_prefix(end + 2);
  }
  return 0;
}
