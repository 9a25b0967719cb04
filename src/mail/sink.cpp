// See sink.h: the SMTP pool behind the sink interface.
#include "journeyd/mail/sink.h"

namespace journeyd::mail {

boost::asio::awaitable<SendOutcome> SmtpSink::Send(const BuiltMessage& message,
                                                   std::string_view /*job_id*/,
                                                   SmtpPool::Guard guard) {
  // Not `co_return SendOutcome{co_await ...}`: GCC 12 destroys that temporary twice.
  SendOutcome o;
  o.result = co_await pool_->Send(message.envelope_from, message.envelope_to, message.data,
                                  std::move(guard));
  o.withheld = o.result.withheld;
  co_return o;
}

SinkHealth SmtpSink::health() const {
  if (pool_->relay_up()) return {};
  return {false, "the relay cannot be reached: " + pool_->relay_error(), pool_->relay_down_since()};
}

}  // namespace journeyd::mail
