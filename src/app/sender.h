// A partition's outbox sender: reads send jobs from `{N}:outbox`, builds each mail and hands
// it to the delivery backend (.eml files or the SMTP pool). It runs on the main thread (`io`),
// where the SMTP pool is; its partition's worker may run on another. Internal to the app
// module.
#pragma once

#include <atomic>
#include <memory>

#include "runtime.h"

namespace journeyd::app::internal {

mail::SmtpOptions SmtpOptionsOf(const Config& config);

// Runs while `*on` stays true and the daemon is not stopping; told to stop, it settles the
// batch it has out first. While `behind` holds (the partition's worker has more due timers or
// events than one batch), it takes turns with the worker (journeyd/app/turns.h).
asio::awaitable<void> RunOutboxSender(asio::io_context& io, Shared& shared, int partition,
                                      std::shared_ptr<const std::atomic<bool>> on,
                                      const std::atomic<bool>& behind);

}  // namespace journeyd::app::internal
