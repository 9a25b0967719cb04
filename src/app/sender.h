// A partition's outbox sender: reads send jobs from `{N}:outbox`, builds each mail and hands
// it to the delivery backend (.eml files or the SMTP pool). Internal to the app module.
#pragma once

#include "runtime.h"

namespace journeyd::app::internal {

mail::SmtpOptions SmtpOptionsOf(const Config& config);

// Runs while `owned` stays true and the daemon is not stopping.
asio::awaitable<void> RunOutboxSender(asio::io_context& io, Shared& shared, int partition,
                                      const bool& owned);

}  // namespace journeyd::app::internal
