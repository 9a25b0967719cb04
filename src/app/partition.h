// One partition's worker: takes the lease, reads events and due timers, runs them through the
// engine and commits each batch in one script; starts the partition's outbox sender.
// Internal to the app module.
#pragma once

#include <memory>

#include "runtime.h"

namespace journeyd::app::internal {

class PartitionWorker {
 public:
  virtual ~PartitionWorker() = default;
  static std::unique_ptr<PartitionWorker> Create(asio::io_context& io, Shared& shared,
                                                 int partition);
  // Works the partition until shared.stopping, reconnecting and retaking the lease as needed.
  virtual asio::awaitable<void> Run() = 0;
};

}  // namespace journeyd::app::internal
