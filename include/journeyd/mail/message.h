// RFC 5322 messages from send jobs. This module owns header encoding: no value from an event
// or a profile can add or alter a header (control characters never reach the wire), non-ASCII
// header text is RFC 2047-encoded, bodies are UTF-8 quoted-printable, HTML makes the message
// multipart/alternative.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "journeyd/common/time.h"
#include "journeyd/engine/engine.h"

namespace journeyd::mail {

struct MessageOptions {
  std::string from;                // smtp.from: "Shop <news@shop.example>" or an address
  std::string unsubscribe_mailto;  // smtp.unsubscribe_mailto, optional
};

struct BuiltMessage {
  std::string envelope_from;  // the address in `from`, for MAIL FROM
  std::string envelope_to;    // the recipient, for RCPT TO
  std::string message_id;     // "<job_id@domain>"
  std::string data;           // the whole message, CRLF line ends, not dot-stuffed
};

// Builds the message for a job. Returns nullopt and a reason when an address is unusable
// (the job then goes to the dead stream instead of the wire).
std::optional<BuiltMessage> BuildMessage(const engine::SendJob& job, const MessageOptions& options,
                                         TimePoint date, std::string* error);

// Pieces, public for tests.
std::string EncodeHeaderText(std::string_view text, size_t name_length);  // RFC 2047 when needed
std::string QuotedPrintable(std::string_view body);
std::string FormatRfc5322Date(TimePoint t);  // "Wed, 25 Nov 2026 06:46:01 +0000"
// A bare address: "a@b.example". Refuses control characters, spaces, angle brackets, missing
// or doubled '@', and anything over 254 bytes.
bool ValidAddress(std::string_view address);
// Splits "Name <a@b>" or "a@b" into display name and address.
bool ParseMailbox(std::string_view mailbox, std::string* name, std::string* address);
// Standard base64 (RFC 4648, padded): RFC 2047 words and SMTP AUTH.
std::string Base64(std::string_view bytes);
// Dot-stuffing for SMTP DATA (RFC 5321 §4.5.2): a line starting with '.' gets another '.'.
std::string DotStuff(std::string_view data);

}  // namespace journeyd::mail
