// See sink.h: mails as .eml files.
#include <filesystem>
#include <fstream>

#include "journeyd/mail/sink.h"

namespace journeyd::mail {

std::string FileSink::Write(std::string_view data, std::string_view job_id) const {
  const std::string name(job_id);
  auto dir = std::filesystem::path(dir_);
  auto tmp = dir / ("." + name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    out.flush();
    if (!out) return "cannot write " + tmp.string();
  }
  std::error_code ec;
  std::filesystem::rename(tmp, dir / (name + ".eml"), ec);
  if (ec) return "cannot rename " + tmp.string() + ": " + ec.message();
  return "";
}

boost::asio::awaitable<SendOutcome> FileSink::Send(const BuiltMessage& message,
                                                   std::string_view job_id, SmtpPool::Guard guard) {
  SendOutcome o;
  if (guard && !guard()) {
    o.withheld = true;
    co_return o;
  }
  o.local_error = Write(message.data, job_id);
  if (o.local_error.empty()) o.result.status = SmtpResult::Status::kSent;
  co_return o;
}

}  // namespace journeyd::mail
