// Where built mails go: the SMTP pool (smtp.mode: smtp) or `.eml` files (smtp.mode: file).
// The outbox sender hands each mail of a batch to its sink at once, one coroutine a mail, and
// counts them back in; a sink may have many sends under way.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "journeyd/mail/message.h"
#include "journeyd/mail/smtp.h"

namespace journeyd::mail {

// What became of one mail.
struct SendOutcome {
  // The relay's verdict (a file sink's is kSent): sent, retry later, or give up.
  SmtpResult result;
  // Not sent because the guard said no: the sender no longer owns the partition. No verdict:
  // the job stays where it is, for the partition's owner.
  bool withheld = false;
  // Set when the sink could not take the mail at all (a file it cannot write): no verdict, so
  // the job is neither retried nor given up but left where it is. Says why.
  std::string local_error;
};

// Whether a sink takes mail now; when it does not, since when and why. For /readyz and
// /metrics: the relay (or the mail folder) is the operator's to fix, not any one mail's.
struct SinkHealth {
  bool up = true;
  std::string error;                              // why not, when down
  std::chrono::steady_clock::time_point since{};  // down since
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Delivers `message`, named `job_id` (its Message-ID's local part), unless `guard` (when
  // set) says no right before the mail goes out (SendOutcome::withheld). `message` and `job_id`
  // must stay alive until the send completes.
  virtual boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message,
                                                   std::string_view job_id,
                                                   SmtpPool::Guard guard) = 0;
  // Lets go of what has been idle for long (the pool's idle SMTP sessions).
  virtual void CloseIdle() {}
  // While the relay cannot be reached: when the sink tries it next (a past time otherwise).
  virtual std::chrono::steady_clock::time_point next_attempt() const { return {}; }
  virtual SinkHealth health() const { return {}; }
};

// The shared SMTP pool (SmtpPool::Send), for every partition's sender.
class SmtpSink final : public Sink {
 public:
  explicit SmtpSink(std::shared_ptr<SmtpPool> pool) : pool_(std::move(pool)) {}
  boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message, std::string_view job_id,
                                           SmtpPool::Guard guard) override;
  void CloseIdle() override { pool_->CloseIdle(); }
  std::chrono::steady_clock::time_point next_attempt() const override {
    return pool_->next_attempt();
  }
  SinkHealth health() const override;

 private:
  std::shared_ptr<SmtpPool> pool_;
};

// Each mail as `<dir>/<job id>.eml`, written atomically (a temporary file renamed): a mail
// sent again after a crash overwrites its file instead of making a second one. `dir` must
// exist. Writes at once, without suspending.
//
// A folder that cannot be written (missing, not a folder, full, read-only) is the sink's
// state, as an unreachable relay is the pool's: the mail gets SendOutcome::local_error (no
// verdict, no attempt counted), and the next write is tried after a second, then after twice
// as long each time, up to `backoff_max`; the first write that works ends it.
class FileSink final : public Sink {
 public:
  explicit FileSink(std::string dir, Duration backoff_max = kMinute)
      : dir_(std::move(dir)), backoff_max_(backoff_max) {}
  boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message, std::string_view job_id,
                                           SmtpPool::Guard guard) override;
  std::chrono::steady_clock::time_point next_attempt() const override { return next_attempt_; }
  SinkHealth health() const override { return health_; }
  // The write itself: "" or what went wrong, naming the folder.
  std::string Write(std::string_view data, std::string_view job_id) const;

 private:
  std::string dir_;
  Duration backoff_max_;
  Duration backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
  SinkHealth health_;
};

}  // namespace journeyd::mail
