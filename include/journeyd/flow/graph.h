// A flow as a diagram: Graphviz DOT or Mermaid, every step, branch and exit.
#pragma once

#include <string>

#include "journeyd/flow/flow.h"

namespace journeyd::flow {

std::string ToDot(const Flow& flow);
std::string ToMermaid(const Flow& flow);

}  // namespace journeyd::flow
