// SIGHUP: flows, templates and log.level again from disk (docs/operations.md, "Reload and stop";
// flows/README.md for what a reload does to customers in a flow). Internal to the app module.
#pragma once

#include <string>

#include "runtime.h"

namespace journeyd::app::internal {

struct ReloadOutcome {
  bool applied = false;
  std::string summary;  // one line for the log and systemd's STATUS=
};

// Re-reads the config file and loads its flows directory with the loader the daemon started
// with. All or nothing: on any error every problem is logged and the running flow set and log
// level stay; otherwise `shared.flows` is swapped in one assignment, so each batch (which takes
// one copy of the pointer) sees either the old set or the new one. Journeys at steps that no
// longer exist leave with `flow_changed` when the engine next handles their customer.
ReloadOutcome ReloadFlows(Shared& shared);

}  // namespace journeyd::app::internal
