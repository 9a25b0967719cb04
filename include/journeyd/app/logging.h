// Where journeyd's log lines go: to the journal (with their priority) when systemd runs the
// daemon with stderr connected to the journal, else plain text with timestamps on stderr.
#pragma once

#include <string>

namespace journeyd::app {

// Installs the default logger at `level` (a log.level value: trace ... off).
void SetupLogging(const std::string& level);

// Changes the level of the installed logger (reload). False when `level` is not a level.
bool ApplyLogLevel(const std::string& level);

// True when stderr is the journal stream systemd set up for this process: JOURNAL_STREAM
// names stderr's device and inode (systemd.exec(5)), not merely inherited from a parent.
bool StderrIsJournal();

}  // namespace journeyd::app
