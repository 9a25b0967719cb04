// Flow diagrams: durations as the flow writes them, and Mermaid that renders as it is.
#include "journeyd/flow/graph.h"

#include <gtest/gtest.h>

#include <string>

#include "journeyd/flow/loader.h"
#include "journeyd/host/flow_files.h"

namespace journeyd::flow {
namespace {

Flow Compile(const std::string& text, const std::string& file = "g.yaml") {
  Diagnostics d;
  TemplateSet none;
  auto f = CompileFlow({file, text, ""}, &none, "templates", d);
  for (const auto& x : d.all()) ADD_FAILURE() << x.ToString();
  return f.value_or(Flow{});
}

constexpr const char* kFlow = R"(flow: g
name: "Gold & <silver> | \"VIP\""
trigger:
  event: signup
  when: customer.tier == "gold" || customer.tier == "silver"
steps:
  - wait: 180d
  - wait: 1h30m
  - wait_for:
      event: purchase
      timeout: 14d
    on_event: []
  - if: customer.orders >= 2 && customer.points < 10
    then:
      - exit: not_interested
)";

TEST(Graph, DurationsAreWrittenAsTheFlowSpellsThem) {
  Flow f = Compile(kFlow);
  for (const std::string& out : {ToDot(f), ToMermaid(f)}) {
    EXPECT_NE(out.find("wait 180d"), std::string::npos) << out;
    EXPECT_EQ(out.find("25w5d"), std::string::npos) << out;
    EXPECT_NE(out.find("wait 1h30m"), std::string::npos) << out;
    EXPECT_NE(out.find("(up to 14d)"), std::string::npos) << out;
    EXPECT_EQ(out.find("2w"), std::string::npos) << out;
  }
}

TEST(Graph, MermaidLabelsCarryNoCharacterMermaidReads) {
  Flow f = Compile(kFlow);
  std::string m = ToMermaid(f);
  EXPECT_NE(m.find(R"(start(["on signup when customer.tier == #quot;gold#quot; #124;#124; )"
                   R"(customer.tier == #quot;silver#quot;"]))"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"("if customer.orders #gt;= 2 #amp;#amp; customer.points #lt; 10")"),
            std::string::npos)
      << m;
  // Inside every quoted label: no quote, pipe, angle bracket, ampersand or backtick left.
  for (size_t at = 0; (at = m.find('"', at)) != std::string::npos;) {
    size_t end = m.find('"', at + 1);
    ASSERT_NE(end, std::string::npos) << m;
    std::string label = m.substr(at + 1, end - at - 1);
    EXPECT_EQ(label.find_first_of("|<>&`\n"), std::string::npos) << label;
    at = end + 1;
  }
}

TEST(Graph, SeveralFlowsAreOneMermaidChartWithASubgraphEach) {
  Flow a = Compile(kFlow);
  Flow b = Compile(std::string(kFlow).replace(6, 1, "h"), "h.yaml");
  std::string m = ToMermaid(std::vector<Flow>{a, b});
  EXPECT_EQ(m.rfind("flowchart TD\n", 0), 0u);
  EXPECT_NE(m.find("  subgraph flow_g[\"Gold #amp; #lt;silver#gt; #124; #quot;VIP#quot;\"]\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("  subgraph flow_h["), std::string::npos) << m;
  EXPECT_NE(m.find("    g_start --> g_n0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("    h_start --> h_n0\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("flowchart", 1), std::string::npos) << m;
}

TEST(Graph, TheShippedWinbackWaits180Days) {
  Diagnostics d;
  auto f = host::LoadFlowFile(std::string(JOURNEYD_SOURCE_DIR) + "/flows/winback.yaml", d);
  ASSERT_TRUE(f);
  EXPECT_NE(ToMermaid(*f).find("[\"wait 180d\"]"), std::string::npos) << ToMermaid(*f);
}

}  // namespace
}  // namespace journeyd::flow
