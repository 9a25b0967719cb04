#include "journeyd/flow/graph.h"

#include <fmt/format.h>

namespace journeyd::flow {
namespace {

struct Edge {
  std::string from, to, label;
};

struct Node {
  std::string id, label, shape;  // shape: box, diamond, ellipse, end
};

std::string NodeId(int32_t idx) { return idx < 0 ? "done" : fmt::format("n{}", idx); }

std::string DayList(uint8_t mask) {
  static const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  if (mask == 0x7f) return "";
  std::string out;
  for (int i = 0; i < 7; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += kDays[i];
  }
  return out;
}

// A duration as the flow wrote it ("180d"); the shortest spelling when the text is unknown.
std::string AsWritten(const std::string& text, Duration d) {
  return text.empty() ? FormatDuration(d) : text;
}

std::string Label(const Step& s) {
  switch (s.kind) {
    case StepKind::kSend:
      return fmt::format("send {}", s.template_name);
    case StepKind::kWait:
      return fmt::format("wait {}", AsWritten(s.wait_text, s.wait));
    case StepKind::kWaitUntil: {
      std::string l = "wait until";
      if (!s.until_date.empty()) l += " " + s.until_date.text();
      if (s.at_minutes) l += fmt::format(" at {:02}:{:02}", *s.at_minutes / 60, *s.at_minutes % 60);
      if (std::string d = DayList(s.weekdays); !d.empty()) l += " on " + d;
      return l;
    }
    case StepKind::kWaitFor:
      return fmt::format("wait for {} (up to {})", s.wait_event.event,
                         AsWritten(s.timeout_text, s.timeout));
    case StepKind::kIf:
      return fmt::format("if {}", s.condition.text());
    case StepKind::kSplit:
      return "split";
    case StepKind::kSet: {
      std::string l = "set";
      for (const auto& [k, v] : s.assignments) {
        l += fmt::format(" customer.{} = {}", k,
                         v.kind == Literal::Kind::kString ? v.str
                         : v.kind == Literal::Kind::kBool ? (v.b ? "true" : "false")
                                                          : v.AsValue().ToText());
      }
      return l;
    }
    case StepKind::kExit:
      return fmt::format("exit: {}", s.exit_reason);
  }
  return "?";
}

std::string TriggerLabel(const Flow& f) {
  const Trigger& t = f.trigger;
  std::string l;
  if (t.kind == Trigger::Kind::kEvent) {
    l = "on " + t.event;
  } else {
    l = "date customer." + t.date_attribute;
    if (t.offset.count()) l += " " + AsWritten(t.offset_text, t.offset);
    if (t.yearly) l += " every year";
    l += fmt::format(" at {:02}:{:02}", t.at_minutes / 60, t.at_minutes % 60);
  }
  if (!t.when.empty()) l += " when " + t.when.text();
  return l;
}

void Collect(const Flow& f, std::vector<Node>& nodes, std::vector<Edge>& edges) {
  nodes.push_back({"start", TriggerLabel(f), "ellipse"});
  edges.push_back({"start", NodeId(f.steps.empty() ? kEnd : 0), ""});
  for (size_t i = 0; i < f.steps.size(); ++i) {
    const Step& s = f.steps[i];
    std::string id = NodeId(static_cast<int32_t>(i));
    std::string label = Label(s);
    if (s.explicit_id) label += " [" + s.id + "]";
    std::string shape =
        s.kind == StepKind::kIf || s.kind == StepKind::kSplit || s.kind == StepKind::kWaitFor
            ? "diamond"
            : "box";
    nodes.push_back({id, label, shape});
    switch (s.kind) {
      case StepKind::kIf:
        edges.push_back({id, NodeId(s.then_first), "yes"});
        edges.push_back({id, NodeId(s.else_first), "no"});
        break;
      case StepKind::kWaitFor:
        edges.push_back({id, NodeId(s.on_event), s.wait_event.event});
        edges.push_back({id, NodeId(s.on_timeout), "timeout"});
        break;
      case StepKind::kSplit: {
        int total = 0;
        for (const auto& b : s.branches) total += b.weight;
        for (const auto& b : s.branches) {
          std::string pct = total ? fmt::format("{}%", b.weight * 100 / total) : "";
          if (b.holdout) {
            std::string hid = id + "_holdout";
            nodes.push_back({hid, "holdout: receives nothing", "end"});
            edges.push_back({id, hid, pct + " holdout"});
          } else {
            edges.push_back({id, NodeId(b.first), pct + " " + b.label});
          }
        }
        break;
      }
      case StepKind::kExit:
        edges.push_back({id, "done", s.exit_reason});
        break;
      default:
        edges.push_back({id, NodeId(s.next), ""});
    }
  }
  std::string end_label = "end";
  if (!f.exit_on.empty()) {
    end_label += " (halts early on";
    for (size_t i = 0; i < f.exit_on.size(); ++i) {
      end_label += (i ? ", " : " ") + f.exit_on[i].event;
    }
    end_label += ")";
  }
  nodes.push_back({"done", end_label, "end"});
}

std::string DotEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Mermaid's quoted labels end at a '"' and read '#...;' as an entity code, '|' ends an edge
// label and a leading backtick starts a Markdown string: every such character is written as
// an entity, so that a label shows as the flow says it (GitHub renders the output as it is).
std::string MermaidEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "#quot;";
        break;
      case '#':
        out += "#35;";
        break;
      case '&':
        out += "#amp;";
        break;
      case '<':
        out += "#lt;";
        break;
      case '>':
        out += "#gt;";
        break;
      case '|':
        out += "#124;";
        break;
      case '`':
        out += "#96;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string ToDot(const Flow& flow) {
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  Collect(flow, nodes, edges);
  std::string out =
      fmt::format("digraph \"{}\" {{\n  label=\"{}\";\n  labelloc=t;\n  rankdir=TB;\n",
                  DotEscape(flow.id), DotEscape(flow.name));
  for (const Node& n : nodes) {
    std::string shape = n.shape == "end" ? "doublecircle" : n.shape;
    if (n.shape == "end") shape = "box, style=rounded";
    out += fmt::format("  {} [label=\"{}\", shape={}];\n", n.id, DotEscape(n.label), shape);
  }
  for (const Edge& e : edges) {
    if (e.label.empty()) {
      out += fmt::format("  {} -> {};\n", e.from, e.to);
    } else {
      out += fmt::format("  {} -> {} [label=\"{}\"];\n", e.from, e.to, DotEscape(e.label));
    }
  }
  out += "}\n";
  return out;
}

namespace {

// One flow's nodes and edges; `prefix` keeps node ids apart when several flows share a chart.
void AppendMermaid(std::string& out, const Flow& flow, const std::string& prefix,
                   std::string_view indent) {
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  Collect(flow, nodes, edges);
  for (const Node& n : nodes) {
    std::string l = MermaidEscape(n.label);
    std::string id = prefix + n.id;
    if (n.shape == "diamond") {
      out += fmt::format("{}{}{{\"{}\"}}\n", indent, id, l);
    } else if (n.shape == "ellipse") {
      out += fmt::format("{}{}([\"{}\"])\n", indent, id, l);
    } else if (n.shape == "end") {
      out += fmt::format("{}{}((\"{}\"))\n", indent, id, l);
    } else {
      out += fmt::format("{}{}[\"{}\"]\n", indent, id, l);
    }
  }
  for (const Edge& e : edges) {
    if (e.label.empty()) {
      out += fmt::format("{}{}{} --> {}{}\n", indent, prefix, e.from, prefix, e.to);
    } else {
      out += fmt::format("{}{}{} -->|\"{}\"| {}{}\n", indent, prefix, e.from,
                         MermaidEscape(e.label), prefix, e.to);
    }
  }
}

}  // namespace

std::string ToMermaid(const Flow& flow) {
  std::string out = "flowchart TD\n";
  AppendMermaid(out, flow, "", "  ");
  return out;
}

std::string ToMermaid(const std::vector<Flow>& flows) {
  std::string out = "flowchart TD\n";
  for (const Flow& f : flows) {
    out += fmt::format("  subgraph flow_{}[\"{}\"]\n", f.id,
                       MermaidEscape(f.name.empty() ? f.id : f.name));
    AppendMermaid(out, f, f.id + "_", "    ");
    out += "  end\n";
  }
  return out;
}

}  // namespace journeyd::flow
