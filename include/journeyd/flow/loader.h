// The flow compiler: flows/*.yaml and flows/templates/** → a checked FlowSet, with every
// problem collected as `file:line:column: error: message`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/flow/flow.h"

namespace journeyd::flow {

struct LoadResult {
  std::shared_ptr<const FlowSet> flows;  // null when any error was found
  Diagnostics diagnostics;
};

// Loads a flows directory: every *.yaml / *.yml directly in `dir` is a flow, templates come
// from `dir`/templates/*.yaml and `dir`/templates/<locale>/*.yaml.
LoadResult LoadFlowDirectory(const std::string& dir);

// `journeyctl validate PATH...`: each path is a flows directory, a flow file (its templates
// are looked up in templates/ beside it), a templates directory or a template file.
Diagnostics ValidatePaths(const std::vector<std::string>& paths);

// Loads one template file (public for tests and for `validate` of single templates).
std::optional<Template> LoadTemplateFile(const std::string& path, const std::string& name,
                                         const std::string& locale, Diagnostics& diags);

}  // namespace journeyd::flow

namespace journeyd::flow {
// Compiles one flow file; its templates are looked up in templates/ beside it.
std::optional<Flow> LoadFlowFile(const std::string& path, Diagnostics& diags);
}  // namespace journeyd::flow
