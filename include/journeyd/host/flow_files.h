// Flow files on disk: reads a flows directory (or the paths `journeyctl validate` is given)
// into memory and hands it to the flow compiler (journeyd/flow/loader.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/flow/loader.h"

namespace journeyd::host {

// The paths a command line names: each file or folder as given, each glob ("flows/*.yaml",
// quoted so that the shell leaves it to us) as its matches in order. A glob that matches
// nothing is kept as it is, so that the error about it names it.
std::vector<std::string> ExpandPaths(const std::vector<std::string>& patterns);

// `journeyctl graph PATH...`: the flow files the paths name: files as given, a folder's
// *.yaml / *.yml (its flows), globs expanded.
std::vector<std::string> FlowFilesOf(const std::vector<std::string>& paths);

// Reads a file of at most 1 MiB; a file that cannot be read comes back with its `error` set.
flow::SourceFile ReadSourceFile(const std::string& path);

// Loads a flows directory: every *.yaml / *.yml directly in `dir` is a flow, templates come
// from `dir`/templates/*.yaml and `dir`/templates/<locale>/*.yaml.
flow::LoadResult LoadFlowDirectory(const std::string& dir);

// `journeyctl validate PATH...`: each path (or glob, see ExpandPaths) is a flows directory, a
// flow file (its templates are looked up in templates/ beside it), a templates directory or a
// template file, or a flow tests folder (named tests/) or a file in it, whose files are read as
// flow tests (flow_tests.h).
Diagnostics ValidatePaths(const std::vector<std::string>& paths);

// Compiles one flow file; its templates are looked up in templates/ beside it.
std::optional<flow::Flow> LoadFlowFile(const std::string& path, Diagnostics& diags);

}  // namespace journeyd::host
