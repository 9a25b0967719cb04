// A partition's outbox sender: reads send jobs from `{N}:outbox`, builds each mail and hands
// it to the delivery backend (.eml files or the SMTP pool). It runs on the main thread (`io`),
// where the SMTP pool is; its partition's worker may run on another. Internal to the app
// module.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "runtime.h"

namespace journeyd::app::internal {

mail::SmtpOptions SmtpOptionsOf(const Config& config);

// The daemon's mail sink: the SMTP pool (smtp.mode: smtp) or the mail folder, made when
// missing (smtp.mode: file), tried again after smtp.retry_delay at most when it fails.
std::shared_ptr<mail::Sink> MakeMailSink(const Config& config,
                                         std::shared_ptr<mail::SmtpPool> pool);

// What the partition's worker allows its sender: to run while `on`, and to start a delivery
// only before `until`, the end of the lease as the worker last took or renewed it (less a
// tenth, for the clocks). A sender frozen past its lease (SIGSTOP, a stalled machine) that
// wakes up sends nothing more, even before its worker has noticed the lease is gone.
struct SenderLicence {
  std::atomic<bool> on{true};
  std::atomic<int64_t> until{0};  // steady_clock, nanoseconds since its epoch

  // The lease taken or renewed by a call started at `asked`, for `lease_ms`.
  void Renewed(std::chrono::steady_clock::time_point asked, int lease_ms);
  // Whether a delivery may start at `now`.
  bool Holds(std::chrono::steady_clock::time_point now) const;
};

// Runs while `licence->on` stays true and the daemon is not stopping; told to stop, it settles
// the batch it has out first. While `behind` holds (the partition's worker has more due timers
// or events than one batch), it takes turns with the worker (journeyd/app/turns.h).
asio::awaitable<void> RunOutboxSender(asio::io_context& io, Shared& shared, int partition,
                                      std::shared_ptr<const SenderLicence> licence,
                                      const std::atomic<bool>& behind);

}  // namespace journeyd::app::internal
