// Where built mails go: the SMTP pool (smtp.mode: smtp) or `.eml` files (smtp.mode: file).
// The outbox sender hands each mail of a batch to its sink at once, one coroutine a mail, and
// counts them back in; a sink may have many sends under way.
#pragma once

#include <boost/asio/awaitable.hpp>
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
  // Set when the sink could not take the mail at all (a file it cannot write): no verdict, so
  // the job is neither retried nor given up but left where it is. Says why.
  std::string local_error;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Delivers `message`, named `job_id` (its Message-ID's local part). Both must stay alive
  // until the send completes.
  virtual boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message,
                                                   std::string_view job_id) = 0;
  // Lets go of what has been idle for long (the pool's idle SMTP sessions).
  virtual void CloseIdle() {}
};

// The shared SMTP pool (SmtpPool::Send), for every partition's sender.
class SmtpSink final : public Sink {
 public:
  explicit SmtpSink(std::shared_ptr<SmtpPool> pool) : pool_(std::move(pool)) {}
  boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message,
                                           std::string_view job_id) override;
  void CloseIdle() override { pool_->CloseIdle(); }

 private:
  std::shared_ptr<SmtpPool> pool_;
};

// Each mail as `<dir>/<job id>.eml`, written atomically (a temporary file renamed): a mail
// sent again after a crash overwrites its file instead of making a second one. `dir` must
// exist. Writes at once, without suspending.
class FileSink final : public Sink {
 public:
  explicit FileSink(std::string dir) : dir_(std::move(dir)) {}
  boost::asio::awaitable<SendOutcome> Send(const BuiltMessage& message,
                                           std::string_view job_id) override;
  // The write itself: "" or what went wrong.
  std::string Write(std::string_view data, std::string_view job_id) const;

 private:
  std::string dir_;
};

}  // namespace journeyd::mail
