// Who goes first when a partition's worker and its outbox sender both have work to do.
//
// While the worker is behind (more due timers or events wait than one batch takes), the
// sender yields: a burst is committed before its mails start to go out, so journeys advance at
// the rate Redis and the cores allow, and the mails wait in the outbox, committed. The sender
// yields for at most one turn at a stretch, then delivers for a turn before it yields again:
// a backlog that lasts shares the time, and delivery never stops for longer than a turn.
#pragma once

#include <chrono>
#include <optional>

namespace journeyd::app {

class DeliveryTurns {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DeliveryTurns(Clock::duration turn) : turn_(turn) {}

  // Whether the sender waits at `now`, the worker being `behind` or not.
  bool Yield(bool behind, Clock::time_point now) {
    if (!behind) {
      yielding_since_.reset();
      return false;
    }
    if (now < delivering_until_) return false;  // delivery's turn
    if (!yielding_since_) yielding_since_ = now;
    if (now - *yielding_since_ < turn_) return true;
    yielding_since_.reset();
    delivering_until_ = now + turn_;
    return false;
  }

 private:
  Clock::duration turn_;
  std::optional<Clock::time_point> yielding_since_;
  Clock::time_point delivering_until_ = Clock::time_point::min();
};

}  // namespace journeyd::app
