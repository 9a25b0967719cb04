#include "reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

#include "journeyd/app/logging.h"
#include "journeyd/host/flow_files.h"

namespace journeyd::app::internal {

namespace {

void LogDiagnostics(const Diagnostics& diags) {
  for (const auto& d : diags.all()) {
    if (d.severity == Severity::kError) {
      spdlog::error("reload: {}", d.ToString());
    } else {
      spdlog::warn("reload: {}", d.ToString());
    }
  }
}

ReloadOutcome Refuse(const std::string& why) {
  ReloadOutcome out;
  out.summary = "reload refused: " + why + "; the running flows stay";
  spdlog::error("{}", out.summary);
  return out;
}

}  // namespace

ReloadOutcome ReloadFlows(Shared& s) {
  spdlog::info("reload: reading {} and {}", s.config.file, s.config.flows.dir);
  Diagnostics diags;
  std::optional<Config> config;
  if (!s.config.file.empty()) {
    config = LoadConfig(s.config.file, diags);
    if (!config) {
      LogDiagnostics(diags);
      return Refuse(fmt::format("{} error(s) in {}", diags.error_count(), s.config.file));
    }
    if (config->flows.dir != s.config.flows.dir) {
      spdlog::warn("reload: flows.dir changed to {}; a restart applies it, reloading {}",
                   config->flows.dir, s.config.flows.dir);
    }
  }
  auto loaded = host::LoadFlowDirectory(s.config.flows.dir);
  diags.Append(loaded.diagnostics);
  LogDiagnostics(diags);
  if (!loaded.flows || diags.HasErrors()) {
    return Refuse(fmt::format("{} error(s) in {}", diags.error_count(), s.config.flows.dir));
  }
  if (config && !ApplyLogLevel(config->log_level)) {
    return Refuse("log.level '" + config->log_level + "' is not a level");
  }

  // What changed, by flow id and content version, for the log.
  std::map<std::string, uint64_t> before;
  for (const auto& f : s.Flows()->flows()) before[f.id] = f.version;
  std::vector<std::string> changes;
  for (const auto& f : loaded.flows->flows()) {
    auto it = before.find(f.id);
    if (it == before.end()) {
      changes.push_back(fmt::format("{} added ({:08x})", f.id, f.version & 0xffffffff));
    } else if (it->second != f.version) {
      changes.push_back(fmt::format("{} changed ({:08x} -> {:08x})", f.id, it->second & 0xffffffff,
                                    f.version & 0xffffffff));
    }
    if (it != before.end()) before.erase(it);
  }
  for (const auto& [id, version] : before) changes.push_back(id + " removed");

  s.flows.store(loaded.flows);
  ReloadOutcome out;
  out.applied = true;
  out.summary = fmt::format(
      "reloaded {} flow(s) from {}: {}", s.Flows()->flows().size(), s.config.flows.dir,
      changes.empty() ? "no flow changed" : fmt::format("{}", fmt::join(changes, ", ")));
  spdlog::info("{}", out.summary);
  return out;
}

}  // namespace journeyd::app::internal
