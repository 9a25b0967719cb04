// journeyd: the daemon. Thin: flags, config, flows, then the app runs.
#include <CLI/CLI.hpp>

#include <iostream>

#include "journeyd/app/config.h"
#include "journeyd/app/daemon.h"
#include "journeyd/app/logging.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/time_zones.h"

int main(int argc, char** argv) {
  using namespace journeyd;
  CLI::App cli{"journeyd: the marketing-automation flow daemon"};
  std::string config_path = "/etc/journeyd/journeyd.yaml";
  bool check = false;
  cli.add_option("-c,--config", config_path, "config file")->capture_default_str();
  cli.add_flag("--check", check,
               "load the config, flows and templates, print every problem and exit (0 = valid); "
               "touches no Redis");
  cli.set_version_flag("--version", std::string("journeyd ") + JOURNEYD_VERSION);
  CLI11_PARSE(cli, argc, argv);

  Diagnostics diags;
  auto config = app::LoadConfig(config_path, diags);
  std::shared_ptr<const flow::FlowSet> flows;
  if (config) {
    if (!host::SystemTimeZones().Find(config->policy.timezone)) {
      diags.Error({config_path, 0, 0},
                  "policy.timezone '" + config->policy.timezone + "' is not a known time zone");
    }
    auto loaded = host::LoadFlowDirectory(config->flows.dir);
    diags.Append(loaded.diagnostics);
    flows = loaded.flows;
  }
  for (const auto& d : diags.all()) std::cerr << d.ToString() << "\n";
  if (diags.HasErrors() || !config || !flows) {
    std::cerr << "journeyd: " << diags.error_count() << " problem(s); not starting\n";
    return 1;
  }
  if (check) {
    std::cout << "ok: " << config_path << " and " << flows->flows().size() << " flows in "
              << config->flows.dir << " are valid\n";
    return 0;
  }
  app::SetupLogging(config->log_level);
  return app::RunDaemon(*config, flows);
}
