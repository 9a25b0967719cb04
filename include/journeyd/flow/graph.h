// A flow as a diagram: Graphviz DOT or Mermaid, every step, branch and exit.
#pragma once

#include <string>
#include <vector>

#include "journeyd/flow/flow.h"

namespace journeyd::flow {

std::string ToDot(const Flow& flow);
// Mermaid that GitHub's Markdown renders as it is (in a ```mermaid block): every label
// quoted, its special characters as entity codes.
std::string ToMermaid(const Flow& flow);
// Several flows in one chart, a subgraph each.
std::string ToMermaid(const std::vector<Flow>& flows);

}  // namespace journeyd::flow
