// The flow compiler: flow files and template files, already read into memory → a checked
// FlowSet, with every problem collected as `file:line:column: error: message`. Reading a
// flows directory from disk is the host module's job (journeyd/host/flow_files.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "journeyd/common/diagnostics.h"
#include "journeyd/flow/flow.h"

namespace journeyd::flow {

struct LoadResult {
  std::shared_ptr<const FlowSet> flows;  // null when any error was found
  Diagnostics diagnostics;
};

// A file's text and the path messages name it by ("flows/welcome.yaml"). `error` is set
// instead of `text` when the file could not be read; compiling it reports that error.
struct SourceFile {
  std::string path;
  std::string text;
  std::string error;
};

// A template file: `locale` is "" for templates/<name>.yaml, else the name of its locale
// folder (templates/<locale>/<name>.yaml). The template's name is its file name's stem.
struct TemplateSource {
  std::string locale;
  SourceFile file;
};

// A flows directory in memory: the flow files directly in it (in the order they are
// compiled) and the template files under its templates/ folder.
struct FlowSources {
  std::string templates_dir;  // as messages name it ("flows/templates")
  std::vector<TemplateSource> templates;
  std::vector<SourceFile> flows;
};

// Compiles a flows directory. `diagnostics` holds what was found while reading it; the set
// is built only when neither they nor the compiler report an error. Sorted by position.
LoadResult CompileFlowSet(const FlowSources& sources, Diagnostics diagnostics = {});

// Compiles template files into `set`; every template needs a default-locale version.
void CompileTemplates(const std::vector<TemplateSource>& sources, const std::string& templates_dir,
                      TemplateSet& set, Diagnostics& diags);

// Compiles one template file (public for tests and for `validate` of single templates).
std::optional<Template> CompileTemplate(const SourceFile& file, const std::string& name,
                                        const std::string& locale, Diagnostics& diags);

// Compiles one flow file against `templates` (found in `templates_dir`, for messages).
std::optional<Flow> CompileFlow(const SourceFile& file, const TemplateSet* templates,
                                const std::string& templates_dir, Diagnostics& diags);

// A value as messages show it: control characters escaped, at most 60 characters.
std::string Quote(std::string_view s);

// The file name of a path without its last extension ("flows/welcome.yaml" → "welcome").
std::string FileStem(std::string_view path);

}  // namespace journeyd::flow
