// A partition's outbox sender: reads send jobs from `{N}:outbox`, builds each mail and hands
// it to the delivery backend (.eml files or the SMTP pool). It runs on the main thread (`io`),
// where the SMTP pool is; its partition's worker may run on another. Internal to the app
// module.
#pragma once

#include <atomic>

#include "runtime.h"

namespace journeyd::app::internal {

mail::SmtpOptions SmtpOptionsOf(const Config& config);

// Runs while `owned` stays true and the daemon is not stopping.
asio::awaitable<void> RunOutboxSender(asio::io_context& io, Shared& shared, int partition,
                                      const std::atomic<bool>& owned);

}  // namespace journeyd::app::internal
