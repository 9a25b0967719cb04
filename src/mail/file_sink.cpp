// See sink.h: mails as .eml files.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "journeyd/mail/sink.h"

namespace journeyd::mail {

namespace {

// "cannot write to the mail folder DIR (smtp.dir): REASON".
std::string FolderError(const std::filesystem::path& dir, std::string_view what, int err) {
  return "cannot " + std::string(what) + " in the mail folder " + dir.string() +
         " (smtp.dir): " + std::strerror(err);
}

// All of `data` to `fd`; 0 or the errno of the failed write.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

std::string FileSink::Write(std::string_view data, std::string_view job_id) const {
  const std::string name(job_id);
  const auto dir = std::filesystem::path(dir_);
  const auto tmp = dir / ("." + name + ".tmp");
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  int fd = ::open(tmp.c_str(), flags, 0644);
  if (fd < 0 && errno == ENOENT) {  // the folder was removed: made again
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    fd = ::open(tmp.c_str(), flags, 0644);
  }
  if (fd < 0) return FolderError(dir, "create a file", errno);
  int err = WriteAll(fd, data);
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());  // a partial file is no mail
    return FolderError(dir, "write a file", err);
  }
  if (::rename(tmp.c_str(), (dir / (name + ".eml")).c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return FolderError(dir, "rename a file", err);
  }
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
  if (o.local_error.empty()) {
    o.result.status = SmtpResult::Status::kSent;
    backoff_ = Duration{0};
    next_attempt_ = {};
    health_ = {};
    co_return o;
  }
  const auto now = std::chrono::steady_clock::now();
  if (health_.up) health_.since = now;
  health_.up = false;
  health_.error = o.local_error;
  // Once per try of the folder: the other mails of the batch that failed with this one do not
  // make the wait longer.
  if (now >= next_attempt_) {
    backoff_ = std::clamp(backoff_ * 2, kSecond, std::max(kSecond, backoff_max_));
    next_attempt_ = now + backoff_;
  }
  co_return o;
}

}  // namespace journeyd::mail
