#include "journeyd/mail/smtp.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <optional>

#include <fmt/format.h>

#include "journeyd/mail/message.h"

namespace journeyd::mail {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::awaitable;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxReplyLine = 4096;  // RFC 5321 says 512; be lenient, but bounded
constexpr size_t kMaxReplyLines = 100;

// Reply text goes to logs and the dead stream: no control characters, bounded length.
std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

SmtpResult Fail(std::string stage, std::string reply, int code = 0) {
  SmtpResult r;
  r.stage = std::move(stage);
  r.reply = std::move(reply);
  r.code = code;
  r.status = code >= 500 ? SmtpResult::Status::kPermanent : SmtpResult::Status::kTransient;
  return r;
}

SmtpResult FromReply(std::string stage, const SmtpReply& reply) {
  SmtpResult r = Fail(std::move(stage), reply.Text(), reply.code);
  if (reply.code >= 200 && reply.code < 300) r.status = SmtpResult::Status::kSent;
  return r;
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::string SmtpResult::ToString() const { return stage.empty() ? reply : stage + ": " + reply; }

std::string SmtpReply::Text() const {
  std::string out = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty() && lines.size() == 1) break;
    out += i == 0 ? " " : " / ";
    out += lines[i];
  }
  return out;
}

void SmtpReplyParser::Reset() {
  reply_ = {};
  error_.clear();
}

SmtpReplyParser::State SmtpReplyParser::Feed(std::string_view line) {
  auto fail = [&](std::string why) {
    error_ = std::move(why);
    return State::kError;
  };
  if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
      !std::isdigit(static_cast<unsigned char>(line[1])) ||
      !std::isdigit(static_cast<unsigned char>(line[2]))) {
    return fail("malformed reply line '" + Printable(line, 80) + "'");
  }
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) return fail("unexpected reply code " + std::to_string(code));
  if (!reply_.lines.empty() && code != reply_.code) {
    return fail("reply code changed from " + std::to_string(reply_.code) + " to " +
                std::to_string(code) + " within one reply");
  }
  reply_.code = code;
  if (reply_.lines.size() >= kMaxReplyLines) return fail("reply has too many lines");
  if (line.size() == 3) {
    reply_.lines.emplace_back();
    return State::kDone;
  }
  if (line[3] != ' ' && line[3] != '-') {
    return fail("malformed reply line '" + Printable(line, 80) + "'");
  }
  reply_.lines.push_back(Printable(line.substr(4), 512));
  return line[3] == ' ' ? State::kDone : State::kMore;
}

SmtpExtensions SmtpExtensions::From(const SmtpReply& ehlo) {
  SmtpExtensions e;
  for (size_t i = 1; i < ehlo.lines.size(); ++i) {  // line 0 is the server's greeting
    std::string l = Upper(ehlo.lines[i]);
    std::string_view word = l;
    word = word.substr(0, word.find(' '));
    if (word == "PIPELINING") {
      e.pipelining = true;
    } else if (word == "STARTTLS") {
      e.starttls = true;
    } else if (word == "AUTH" || l.rfind("AUTH=", 0) == 0) {
      // "AUTH" alone names no mechanism: there is nothing after the keyword to read.
      std::string_view rest = std::string_view(l).substr(std::min<size_t>(5, l.size()));
      while (!rest.empty()) {
        size_t sp = rest.find(' ');
        std::string_view mech = rest.substr(0, sp);
        if (mech == "PLAIN") e.auth_plain = true;
        if (mech == "LOGIN") e.auth_login = true;
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
      }
    } else if (word == "SIZE" && l.size() > 5) {
      e.size = std::strtoull(l.c_str() + 5, nullptr, 10);
    }
  }
  return e;
}

// One SMTP session. Every read and write runs under a deadline that closes the socket when it
// passes, which ends the pending operation.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(const asio::any_io_executor& ex, ssl::context& ctx, const SmtpOptions& o)
      : stream_(ex, ctx), deadline_(ex), o_(o) {}

  bool usable() const { return usable_; }
  SteadyTime last_used{};
  int delivered = 0;

  awaitable<SmtpResult> Open() {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(o_.host, std::to_string(o_.port), kTuple);
    if (rec) co_return Fail("connect", "cannot resolve " + o_.host + ": " + rec.message());
    Arm(o_.connect_timeout);
    auto [cec, ep] = co_await asio::async_connect(stream_.next_layer(), endpoints, kTuple);
    Disarm();
    if (cec) {
      co_return Fail("connect", fmt::format("cannot connect to {}:{}: {}", o_.host, o_.port,
                                            timed_out_ ? "timed out" : cec.message()));
    }
    boost::system::error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);
    if (o_.tls == SmtpTls::kImplicit) {
      std::string err = co_await Handshake();
      if (!err.empty()) co_return Fail("TLS", err);
    }
    std::string err;
    auto greeting = co_await ReadReply(o_.command_timeout, &err);
    if (!greeting) co_return Fail("greeting", err);
    if (greeting->code != 220) co_return FromReplyFailure("greeting", *greeting);
    SmtpResult r = co_await Hello();
    if (!r.sent()) co_return r;
    if (o_.tls == SmtpTls::kStartTls) {
      if (!ext_.starttls) {
        co_return Fail("STARTTLS",
                       "the server does not offer STARTTLS (smtp.tls: none sends in clear)");
      }
      auto rep = co_await Command("STARTTLS\r\n", o_.command_timeout, &err);
      if (!rep) co_return Fail("STARTTLS", err);
      if (rep->code != 220) co_return FromReplyFailure("STARTTLS", *rep);
      if (!rbuf_.empty()) {
        // Anything the server sent after its 220 would be read as if it came over TLS.
        co_return Fail("STARTTLS", "the server sent data before the TLS handshake");
      }
      err = co_await Handshake();
      if (!err.empty()) co_return Fail("TLS", err);
      r = co_await Hello();
      if (!r.sent()) co_return r;
    }
    if (!o_.username.empty()) {
      r = co_await Authenticate();
      if (!r.sent()) co_return r;
    }
    usable_ = true;
    r.stage.clear();
    co_return r;
  }

  awaitable<SmtpResult> Deliver(const std::string& from, const std::string& to,
                                const std::string& data) {
    std::string err;
    if (ext_.size != 0 && data.size() > ext_.size) {
      SmtpResult r =
          Fail("SIZE", fmt::format("the message has {} bytes; the server takes at most {}",
                                   data.size(), ext_.size));
      r.status = SmtpResult::Status::kPermanent;
      co_return r;
    }
    std::string mail = "MAIL FROM:<" + from + ">";
    if (ext_.size != 0) mail += " SIZE=" + std::to_string(data.size());
    mail += "\r\n";
    std::string rcpt = "RCPT TO:<" + to + ">\r\n";
    std::optional<SmtpReply> mail_reply, rcpt_reply, data_reply;
    if (ext_.pipelining) {
      err = co_await Write(mail + rcpt + "DATA\r\n", o_.command_timeout);
      if (!err.empty()) co_return Fail("MAIL FROM", err);
      mail_reply = co_await ReadReply(o_.command_timeout, &err);
      if (mail_reply) rcpt_reply = co_await ReadReply(o_.command_timeout, &err);
      if (rcpt_reply) data_reply = co_await ReadReply(o_.command_timeout, &err);
      if (!mail_reply) co_return Fail("MAIL FROM", err);
      if (!rcpt_reply) co_return Fail("RCPT TO", err);
      if (!data_reply) co_return Fail("DATA", err);
    } else {
      mail_reply = co_await Command(mail, o_.command_timeout, &err);
      if (!mail_reply) co_return Fail("MAIL FROM", err);
      if (mail_reply->code / 100 == 2) {
        rcpt_reply = co_await Command(rcpt, o_.command_timeout, &err);
        if (!rcpt_reply) co_return Fail("RCPT TO", err);
        if (rcpt_reply->code / 100 == 2) {
          data_reply = co_await Command("DATA\r\n", o_.command_timeout, &err);
          if (!data_reply) co_return Fail("DATA", err);
        }
      }
    }
    std::optional<SmtpResult> refused;
    if (mail_reply->code / 100 != 2) {
      refused = FromReplyFailure("MAIL FROM", *mail_reply);
    } else if (rcpt_reply->code / 100 != 2) {
      refused = FromReplyFailure("RCPT TO", *rcpt_reply);
      refused->recipient_rejected = rcpt_reply->code >= 500;
    } else if (data_reply->code != 354) {
      refused = FromReplyFailure("DATA", *data_reply);
    }
    if (refused) {
      if (data_reply && data_reply->code == 354) {
        // The server took DATA though the transaction failed: end it with an empty message.
        auto end = co_await Command(".\r\n", o_.data_timeout, &err);
        if (!end) co_return *refused;
      }
      co_await Reset();
      co_return *refused;
    }
    std::string body = DotStuff(data);
    if (body.size() < 2 || body.compare(body.size() - 2, 2, "\r\n") != 0) body += "\r\n";
    body += ".\r\n";
    err = co_await Write(body, o_.data_timeout);
    if (!err.empty()) co_return Fail("end of data", err);
    auto final_reply = co_await ReadReply(o_.data_timeout, &err);
    if (!final_reply) {
      // The final dot went out: the server may have taken the message. A retry carries the
      // same Message-ID, so the receiving side can tell.
      SmtpResult r = Fail("end of data", err + " (the message may have been delivered)");
      r.maybe_sent = true;
      co_return r;
    }
    if (final_reply->code / 100 == 2) {
      ++delivered;
      co_return FromReply("end of data", *final_reply);
    }
    SmtpResult r = FromReplyFailure("end of data", *final_reply);
    co_await Reset();
    co_return r;
  }

  awaitable<void> Quit() {
    if (usable_) {
      std::string err;
      co_await Command("QUIT\r\n", std::min<Duration>(o_.command_timeout, 5 * kSecond), &err);
    }
    Close();
  }

  void Close() {
    usable_ = false;
    boost::system::error_code ignored;
    deadline_.cancel();
    stream_.lowest_layer().close(ignored);
  }

 private:
  // A failed reply; 421 means the server is closing the connection.
  SmtpResult FromReplyFailure(std::string stage, const SmtpReply& reply) {
    SmtpResult r = FromReply(std::move(stage), reply);
    if (r.sent()) r.status = SmtpResult::Status::kTransient;  // e.g. 250 where 354 was due
    if (reply.code == 421 || reply.code / 100 == 3) usable_ = false;
    return r;
  }

  awaitable<SmtpResult> Hello() {
    std::string err;
    auto rep = co_await Command("EHLO " + o_.helo_name + "\r\n", o_.command_timeout, &err);
    if (!rep) co_return Fail("EHLO", err);
    if (rep->code == 250) {
      ext_ = SmtpExtensions::From(*rep);
      co_return FromReply("EHLO", *rep);
    }
    if (rep->code == 421) co_return FromReplyFailure("EHLO", *rep);
    // An old server that does not know EHLO.
    rep = co_await Command("HELO " + o_.helo_name + "\r\n", o_.command_timeout, &err);
    if (!rep) co_return Fail("HELO", err);
    ext_ = {};
    if (rep->code != 250) co_return FromReplyFailure("HELO", *rep);
    co_return FromReply("HELO", *rep);
  }

  awaitable<SmtpResult> Authenticate() {
    std::string err;
    std::optional<SmtpReply> rep;
    if (ext_.auth_plain) {
      std::string token = std::string(1, '\0') + o_.username + '\0' + o_.password;
      rep = co_await Command("AUTH PLAIN " + Base64(token) + "\r\n", o_.command_timeout, &err);
    } else if (ext_.auth_login) {
      rep = co_await Command("AUTH LOGIN\r\n", o_.command_timeout, &err);
      if (rep && rep->code == 334) {
        rep = co_await Command(Base64(o_.username) + "\r\n", o_.command_timeout, &err);
      }
      if (rep && rep->code == 334) {
        rep = co_await Command(Base64(o_.password) + "\r\n", o_.command_timeout, &err);
      }
    } else {
      co_return Fail("AUTH", "the server offers neither AUTH PLAIN nor AUTH LOGIN");
    }
    if (!rep) co_return Fail("AUTH", err);
    if (rep->code != 235) {
      // A refused login is the operator's to fix: never permanent for the message.
      SmtpResult r = FromReplyFailure("AUTH", *rep);
      r.status = SmtpResult::Status::kTransient;
      r.reply = "login as '" + Printable(o_.username, 100) + "' refused: " + r.reply;
      usable_ = false;
      co_return r;
    }
    co_return FromReply("AUTH", *rep);
  }

  awaitable<std::string> Handshake() {
    if (o_.tls_verify) {
      stream_.set_verify_mode(ssl::verify_peer);
      stream_.set_verify_callback(ssl::host_name_verification(o_.host));
    } else {
      stream_.set_verify_mode(ssl::verify_none);
    }
    if (!IsIpLiteral(o_.host)) SSL_set_tlsext_host_name(stream_.native_handle(), o_.host.c_str());
    Arm(o_.command_timeout);
    auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, kTuple);
    Disarm();
    if (ec) {
      usable_ = false;
      co_return "TLS handshake with " + o_.host +
          " failed: " + (timed_out_ ? std::string("timed out") : ec.message());
    }
    tls_ = true;
    co_return "";
  }

  awaitable<void> Reset() {
    if (!usable_) co_return;
    std::string err;
    auto rep = co_await Command("RSET\r\n", o_.command_timeout, &err);
    if (!rep || rep->code != 250) Close();
  }

  awaitable<std::optional<SmtpReply>> Command(const std::string& line, Duration timeout,
                                              std::string* err) {
    *err = co_await Write(line, timeout);
    if (!err->empty()) co_return std::nullopt;
    co_return co_await ReadReply(timeout, err);
  }

  void Arm(Duration d) {
    timed_out_ = false;
    deadline_.expires_after(d);
    deadline_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto s = w.lock()) {
        s->timed_out_ = true;
        boost::system::error_code ignored;
        s->stream_.lowest_layer().close(ignored);
      }
    });
  }
  void Disarm() { deadline_.cancel(); }

  awaitable<std::string> Write(const std::string& data, Duration timeout) {
    Arm(timeout);
    boost::system::error_code ec;
    if (tls_) {
      auto [e, n] = co_await asio::async_write(stream_, asio::buffer(data), kTuple);
      ec = e;
    } else {
      auto [e, n] = co_await asio::async_write(stream_.next_layer(), asio::buffer(data), kTuple);
      ec = e;
    }
    Disarm();
    if (!ec) co_return "";
    usable_ = false;
    co_return timed_out_ ? "timed out sending" : "connection lost: " + ec.message();
  }

  awaitable<std::optional<SmtpReply>> ReadReply(Duration timeout, std::string* err) {
    SmtpReplyParser parser;
    Arm(timeout);
    std::array<char, 4096> buf;
    for (;;) {
      size_t end = rbuf_.find("\r\n");
      if (end == std::string::npos) {
        if (rbuf_.size() > kMaxReplyLine) {
          Disarm();
          Close();
          *err = "protocol error: reply line longer than " + std::to_string(kMaxReplyLine);
          co_return std::nullopt;
        }
        boost::system::error_code ec;
        size_t n = 0;
        if (tls_) {
          auto [e, k] = co_await stream_.async_read_some(asio::buffer(buf), kTuple);
          ec = e;
          n = k;
        } else {
          auto [e, k] = co_await stream_.next_layer().async_read_some(asio::buffer(buf), kTuple);
          ec = e;
          n = k;
        }
        if (ec) {
          Disarm();
          usable_ = false;
          if (timed_out_) {
            *err = "timed out waiting for the server's reply";
          } else if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
            *err = "connection closed by the server";
          } else {
            *err = "connection lost: " + ec.message();
          }
          co_return std::nullopt;
        }
        rbuf_.append(buf.data(), n);
        continue;
      }
      std::string_view line(rbuf_.data(), end);
      auto state = parser.Feed(line);
      rbuf_.erase(0, end + 2);
      if (state == SmtpReplyParser::State::kError) {
        Disarm();
        Close();
        *err = "protocol error: " + parser.error();
        co_return std::nullopt;
      }
      if (state == SmtpReplyParser::State::kDone) {
        Disarm();
        if (parser.reply().code == 421) usable_ = false;
        co_return parser.reply();
      }
    }
  }

  ssl::stream<tcp::socket> stream_;
  asio::steady_timer deadline_;
  const SmtpOptions& o_;
  std::string rbuf_;
  SmtpExtensions ext_;
  bool tls_ = false;
  bool usable_ = false;
  bool timed_out_ = false;
};

namespace {

// Whether a failure to open a session says the relay cannot be reached (refused, timed out,
// 421 or no service at the greeting, the connection lost while saying hello), rather than that
// it refuses us (TLS, AUTH: the operator's to fix, and reported per mail).
bool Unreachable(const SmtpResult& r) {
  if (r.stage == "connect" || r.stage == "greeting") return true;
  return r.code == 0 ? r.stage != "TLS" && r.stage != "AUTH" : r.code == 421;
}

}  // namespace

struct SmtpPool::Impl {
  Impl(asio::any_io_executor e, SmtpOptions opts)
      : ex(std::move(e)), o(std::move(opts)), ctx(ssl::context::tls_client) {
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    // The system's CA bundle takes some 40 ms to parse: only when it is used.
    if (o.tls != SmtpTls::kNone && o.tls_verify) ctx.set_default_verify_paths(ec);
    if (!o.tls_ca_file.empty()) {
      ctx.load_verify_file(o.tls_ca_file, ec);
      if (ec) setup_error = "cannot read smtp.tls_ca_file " + o.tls_ca_file + ": " + ec.message();
    }
    tokens = std::max(1.0, o.rate_per_sec);
    refilled = std::chrono::steady_clock::now();
  }

  asio::any_io_executor ex;
  SmtpOptions o;
  ssl::context ctx;
  std::string setup_error;
  std::vector<std::shared_ptr<Session>> idle;  // most recently used last
  int open = 0;                                // idle, busy and opening sessions
  std::deque<asio::steady_timer*> waiters;
  double tokens = 0;
  SteadyTime refilled;
  SteadyTime next_open{};
  Duration open_backoff{0};
  bool relay_up = true;
  SteadyTime down_since{};
  SmtpResult last_open_failure;
  SmtpPoolCounters counters;

  void NotifyOne() {
    if (waiters.empty()) return;
    waiters.front()->cancel();
    waiters.pop_front();
  }

  awaitable<void> RateToken() {
    if (o.rate_per_sec <= 0) co_return;
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      double elapsed = std::chrono::duration<double>(now - refilled).count();
      refilled = now;
      tokens = std::min(std::max(1.0, o.rate_per_sec), tokens + elapsed * o.rate_per_sec);
      if (tokens >= 1) {
        tokens -= 1;
        co_return;
      }
      asio::steady_timer t(ex);
      t.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>((1 - tokens) / o.rate_per_sec)));
      co_await t.async_wait(kTuple);
    }
  }

  // A session ready for a transaction, or the reason there is none.
  awaitable<std::shared_ptr<Session>> Acquire(SmtpResult* failure, bool fresh) {
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      while (!fresh && !idle.empty()) {
        auto s = std::move(idle.back());
        idle.pop_back();
        if (s->usable() && now - s->last_used < o.idle_timeout) co_return s;
        --open;
        asio::co_spawn(ex, Retire(std::move(s)), asio::detached);
      }
      if (open < o.connections) {
        // Failing at once, each waiter wakes the next: a failed open wakes only one of the
        // many sends that may be waiting for a session, and each must hear the news.
        if (!setup_error.empty()) {
          *failure = Fail("TLS", setup_error);
          NotifyOne();
          co_return nullptr;
        }
        if (now < next_open) {
          *failure = last_open_failure;
          NotifyOne();
          co_return nullptr;
        }
        ++open;
        auto s = std::make_shared<Session>(ex, ctx, o);
        SmtpResult r = co_await s->Open();
        if (r.sent()) {
          ++counters.connections_opened;
          open_backoff = Duration{0};
          next_open = {};
          relay_up = true;
          co_return s;
        }
        --open;
        s->Close();
        NotifyOne();
        ++counters.connection_failures;
        // Connection trouble is the relay's or the operator's: wait before trying again,
        // longer each time, and fail the messages meanwhile.
        open_backoff =
            std::clamp(open_backoff * 2, kSecond, std::max(kSecond, o.relay_backoff_max));
        next_open = std::chrono::steady_clock::now() + open_backoff;
        if (r.status == SmtpResult::Status::kPermanent && r.stage != "RCPT TO") {
          r.status = SmtpResult::Status::kTransient;  // a refusing server, not a bad message
        }
        r.relay_unreachable = Unreachable(r);
        if (relay_up && r.relay_unreachable) down_since = std::chrono::steady_clock::now();
        relay_up = !r.relay_unreachable;
        last_open_failure = r;
        *failure = r;
        co_return nullptr;
      }
      fresh = false;
      asio::steady_timer wait(ex, asio::steady_timer::time_point::max());
      waiters.push_back(&wait);
      co_await wait.async_wait(kTuple);
    }
  }

  void Release(std::shared_ptr<Session> s) {
    if (s->usable()) {
      s->last_used = std::chrono::steady_clock::now();
      idle.push_back(std::move(s));
    } else {
      --open;
      s->Close();
    }
    NotifyOne();
  }

  static awaitable<void> Retire(std::shared_ptr<Session> s) { co_await s->Quit(); }
};

SmtpPool::SmtpPool(asio::any_io_executor executor, SmtpOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

SmtpPool::~SmtpPool() {
  for (auto& s : impl_->idle) s->Close();
}

const SmtpPoolCounters& SmtpPool::counters() const { return impl_->counters; }

SteadyTime SmtpPool::next_attempt() const { return impl_->next_open; }

bool SmtpPool::relay_up() const { return impl_->relay_up; }

std::string SmtpPool::relay_error() const {
  return impl_->relay_up ? "" : impl_->last_open_failure.ToString();
}

SteadyTime SmtpPool::relay_down_since() const { return impl_->down_since; }

awaitable<SmtpResult> SmtpPool::Send(std::string from, std::string to, std::string data,
                                     Guard guard) {
  auto impl = impl_;
  co_await impl->RateToken();
  for (int attempt = 0;; ++attempt) {
    SmtpResult failure;
    auto s = co_await impl->Acquire(&failure, attempt > 0);
    if (!s) co_return failure;
    if (guard && !guard()) {
      impl->Release(s);
      SmtpResult withheld = Fail("", "not offered: the sender no longer owns the partition");
      withheld.withheld = true;
      co_return withheld;
    }
    const bool reused = s->delivered > 0;
    SmtpResult r = co_await s->Deliver(from, to, data);
    impl->Release(s);
    // A reused connection the server dropped while idle fails at the first command: that
    // is no verdict on the message, so try once more on a new connection.
    if (!r.sent() && reused && attempt == 0 && r.code == 0 && r.stage == "MAIL FROM") continue;
    ++impl->counters.messages;
    co_return r;
  }
}

void SmtpPool::CloseIdle() {
  auto& impl = *impl_;
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Session>> keep;
  for (auto& s : impl.idle) {
    if (s->usable() && now - s->last_used < impl.o.idle_timeout) {
      keep.push_back(std::move(s));
    } else {
      --impl.open;
      asio::co_spawn(impl.ex, Impl::Retire(std::move(s)), asio::detached);
    }
  }
  impl.idle = std::move(keep);
}

awaitable<void> SmtpPool::Shutdown() {
  auto impl = impl_;
  auto idle = std::move(impl->idle);
  impl->idle.clear();
  for (auto& s : idle) {
    --impl->open;
    co_await s->Quit();
  }
}

}  // namespace journeyd::mail
