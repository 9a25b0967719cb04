// An SMTP client of our own on Boost.Asio (RFC 5321): EHLO with HELO fallback, STARTTLS or
// implicit TLS with certificate and host name checks, AUTH PLAIN / LOGIN, PIPELINING, SIZE,
// dot-stuffing, per-command timeouts (RFC 5321 §4.5.3.2), and a pool of reused connections
// behind a token-bucket rate limit. Every outcome says whether to retry, give up, or mark the
// recipient as bouncing, and whether the message may have been delivered already.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "journeyd/common/time.h"

namespace journeyd::mail {

enum class SmtpTls { kStartTls, kImplicit, kNone };

struct SmtpOptions {
  std::string host = "127.0.0.1";
  int port = 25;
  SmtpTls tls = SmtpTls::kStartTls;
  bool tls_verify = true;
  std::string tls_ca_file;  // an extra trust anchor (a private CA); system roots otherwise
  std::string username;     // AUTH only when set
  std::string password;     // never logged, never part of an error text
  std::string helo_name = "localhost";
  int connections = 4;
  double rate_per_sec = 0;  // messages per second across the pool; 0: no limit
  // RFC 5321 §4.5.3.2: greeting and MAIL/RCPT 5 min, DATA 2 min, each data block 3 min,
  // the final dot 10 min. `command_timeout` covers the greeting and every command, and
  // `data_timeout` the final dot.
  Duration connect_timeout = 30 * kSecond;
  Duration command_timeout = 5 * kMinute;
  Duration data_timeout = 10 * kMinute;
  Duration idle_timeout = 30 * kSecond;  // connections idle longer are closed with QUIT
  // While the relay cannot be reached, a new connection is tried after a second, then after
  // twice as long each time, up to this (smtp.retry_delay).
  Duration relay_backoff_max = kMinute;
};

struct SmtpResult {
  enum class Status { kSent, kTransient, kPermanent };
  Status status = Status::kTransient;
  int code = 0;       // the server's reply code; 0 when there was none (network, timeout)
  std::string reply;  // the server's reply (lines joined by " / "), or what went wrong
  std::string stage;  // connect, greeting, EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, ...
  bool recipient_rejected = false;  // a 5xx to RCPT TO: the address bounces
  bool maybe_sent = false;          // the connection was lost after the final dot
  // No session with the relay: it refused the connection, timed out, or would not serve
  // (421, or the connection lost, before the first transaction). The relay's state, not the
  // message's: the message was not offered, and is sent once the relay answers again.
  bool relay_unreachable = false;
  // Not offered because the caller's guard said no when a session was ready (SmtpPool::Send).
  bool withheld = false;

  bool sent() const { return status == Status::kSent; }
  std::string ToString() const;  // "RCPT TO: 550 5.1.1 no such user"
};

// One reply, possibly multi-line ("250-…" continuation lines, "250 …" the last).
struct SmtpReply {
  int code = 0;
  std::vector<std::string> lines;  // the text after the code on each line
  std::string Text() const;        // "550 5.1.1 no such user / second line"
};

// Collects a reply line by line (without CRLF). Malformed input (no code, a code that
// changes between lines, a bad separator, too many lines) is a protocol error, after
// which the connection must not be reused.
class SmtpReplyParser {
 public:
  enum class State { kMore, kDone, kError };
  State Feed(std::string_view line);
  const SmtpReply& reply() const { return reply_; }
  const std::string& error() const { return error_; }
  void Reset();

 private:
  SmtpReply reply_;
  std::string error_;
};

// Parses an EHLO reply's extension lines.
struct SmtpExtensions {
  bool pipelining = false;
  bool starttls = false;
  bool auth_plain = false;
  bool auth_login = false;
  uint64_t size = 0;  // 0: no limit announced
  static SmtpExtensions From(const SmtpReply& ehlo);
};

struct SmtpPoolCounters {
  uint64_t connections_opened = 0;
  uint64_t connection_failures = 0;
  uint64_t messages = 0;
};

// A pool of up to `connections` sessions to one relay. Send() may be called from many
// coroutines at once on the same executor; it waits for a free session and a rate token.
class SmtpPool {
 public:
  SmtpPool(boost::asio::any_io_executor executor, SmtpOptions options);
  ~SmtpPool();
  SmtpPool(const SmtpPool&) = delete;
  SmtpPool& operator=(const SmtpPool&) = delete;

  // Asked right before a transaction starts, with a session in hand: false withholds the
  // message (SmtpResult::withheld). The outbox sender's check that it still owns the partition.
  using Guard = std::function<bool()>;

  // Delivers one message (CRLF line ends, not dot-stuffed) to one recipient, unless `guard`
  // (when set) says no once a session is ready.
  boost::asio::awaitable<SmtpResult> Send(std::string from, std::string to, std::string data,
                                          Guard guard = {});

  // While the relay is unreachable: when the next connection will be tried (Sends before then
  // fail at once with relay_unreachable). A time already past otherwise.
  std::chrono::steady_clock::time_point next_attempt() const;
  // Whether the last attempt to open a session reached the relay; when it did not, why
  // (the failed attempt's reply or error) and since when it has been unreachable.
  bool relay_up() const;
  std::string relay_error() const;
  std::chrono::steady_clock::time_point relay_down_since() const;

  // Closes sessions idle for longer than idle_timeout (with QUIT).
  void CloseIdle();
  // Sends QUIT on every idle session and closes them all; later Sends open new ones.
  boost::asio::awaitable<void> Shutdown();

  const SmtpPoolCounters& counters() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace journeyd::mail
