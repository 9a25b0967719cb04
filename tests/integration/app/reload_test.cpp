// SIGHUP against the real daemon: flows and templates reloaded from disk, all or nothing
// (docs/operations.md, "Reload and stop"), and log.level re-read from the config file.
#include <nlohmann/json.hpp>

#include "daemon_fixture.h"

namespace journeyd {
namespace {

using testing::Daemon;
namespace fs = std::filesystem;

class Reload : public Daemon {
 protected:
  fs::path flows_;

  void SetUp() override {
    Daemon::SetUp();
    flows_ = dir_ / "flows";
    fs::copy(fs::path(JOURNEYD_SOURCE_DIR) / "flows", flows_, fs::copy_options::recursive);
  }

  // The fixture's config, on the copy of the flows.
  void WriteConfig(const std::string& level) {
    std::ofstream(dir_ / "journeyd.yaml")
        << "redis: { port: " << redis_.port() << ", lease_ms: 2000 }\n"
        << "flows: { dir: " << flows_.string() << " }\n"
        << "smtp: { mode: file, dir: " << (dir_ / "mail").string()
        << ", from: \"Shop <news@shop.example>\" }\n"
        << "admin: { listen: \"127.0.0.1:" << admin_port_ << "\" }\n"
        << "log: { level: " << level << " }\n";
  }

  void StartReady() {
    Start();
    ASSERT_TRUE(WaitFor([&] { return HttpGet("/readyz").find(" 200 ") != std::string::npos; }))
        << Log();
  }

  std::string Log() { return Read(dir_ / "journeyd.log"); }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // Sends SIGHUP and waits for the daemon's verdict line: "reloaded" or "reload refused".
  std::string Hup() {
    const std::string log = Log();
    const size_t before = Count(log, "reloaded ") + Count(log, "reload refused");
    ::kill(pid_, SIGHUP);
    EXPECT_TRUE(WaitFor([&] {
      std::string l = Log();
      return Count(l, "reloaded ") + Count(l, "reload refused") > before;
    })) << Log();
    return Log().substr(log.size());
  }

  void Edit(const std::string& file, const std::string& from, const std::string& to) {
    std::string text = Read(flows_ / file);
    auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << file;
    text.replace(at, from.size(), to);
    std::ofstream(flows_ / file, std::ios::trunc) << text;
  }

  // The steps of the mails sent to `customer` so far.
  std::multiset<std::string> StepsMailed(const std::string& customer) {
    std::multiset<std::string> steps;
    for (const auto& m : Mails()) {
      std::string mail = Read(m);
      if (Header(mail, "To") != customer + "@example.com") continue;
      steps.insert(Header(mail, "X-Journeyd-Step"));
    }
    return steps;
  }

  void Signup(const std::string& customer) {
    Publish({"type", "signup", "customer_id", customer, "profile",
             R"({"email":")" + customer + R"(@example.com","email_opt_in":true})"});
  }

  // `text` has "<file>:<line>:<column>: error:" (std::regex trips GCC 12 under sanitizers).
  static bool HasLocatedError(const std::string& text, const std::string& file) {
    for (size_t at = text.find(file + ":"); at != std::string::npos;
         at = text.find(file + ":", at + 1)) {
      size_t i = at + file.size() + 1;
      for (int part = 0; part < 2; ++part) {
        size_t digits = i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
        if (i == digits || i >= text.size() || text[i] != ':') break;
        ++i;
        if (part == 1 && text.compare(i, 8, " error: ") == 0) return true;
      }
    }
    return false;
  }

  // The line of `text` holding `what` starts with an RFC 3339 time stamp.
  static bool StampedLine(const std::string& text, const std::string& what) {
    size_t at = text.find(what);
    if (at == std::string::npos) return false;
    size_t start = text.rfind('\n', at);
    std::string line = text.substr(start == std::string::npos ? 0 : start + 1, 20);
    return line.size() == 20 && std::isdigit(static_cast<unsigned char>(line[0])) &&
           line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[13] == ':' &&
           line[16] == ':' && line[19] == '.';
  }

  nlohmann::json Inspect(const std::string& customer) {
    std::string out = (dir_ / "inspect.json").string();
    std::string cmd = std::string(JOURNEYD_BINARY_DIR) + "/src/journeyctl -c " +
                      (dir_ / "journeyd.yaml").string() + " inspect " + customer + " > " + out;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return nlohmann::json::parse(Read(out), nullptr, false);
  }
};

constexpr const char* kFirstSteps = "steps:\n";
constexpr const char* kNewFirstStep = "steps:\n  - send: welcome_tips\n    id: early_tips\n";

TEST_F(Reload, AnAddedStepIsUsedAfterSighup) {
  WriteConfig("info");
  StartReady();
  Signup("before");
  ASSERT_TRUE(WaitFor([&] { return StepsMailed("before").size() == 1; })) << Log();
  EXPECT_EQ(StepsMailed("before"), std::multiset<std::string>{"thanks"});

  Edit("welcome.yaml", kFirstSteps, kNewFirstStep);
  std::string log = Hup();
  EXPECT_NE(log.find("reloaded 6 flow(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("welcome changed"), std::string::npos) << log;
  EXPECT_EQ(log.find("winback changed"), std::string::npos) << log;

  Signup("after");
  ASSERT_TRUE(WaitFor([&] { return StepsMailed("after").size() == 2; })) << Log();
  EXPECT_EQ(StepsMailed("after"), (std::multiset<std::string>{"early_tips", "thanks"}));
  // The customer who was already in the series stays at its step: nothing more for now.
  EXPECT_EQ(StepsMailed("before"), std::multiset<std::string>{"thanks"});
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Reload, ACustomerAtARemovedStepLeavesWithFlowChanged) {
  WriteConfig("info");
  StartReady();
  Signup("waiter");
  ASSERT_TRUE(WaitFor([&] { return StepsMailed("waiter").size() == 1; })) << Log();
  std::string waiting_at;
  ASSERT_TRUE(WaitFor([&] {
    nlohmann::json st = Inspect("waiter");
    if (!st.is_object() || st["journeys"].size() != 1) return false;
    waiting_at = st["journeys"][0].value("step", "");
    return !waiting_at.empty() && waiting_at != "thanks";
  }));
  EXPECT_EQ(waiting_at, "thanks+1");  // the unnamed `wait: 3d` after `thanks`

  Edit("welcome.yaml", "  - wait: 3d\n", "");
  std::string log = Hup();
  ASSERT_NE(log.find("welcome changed"), std::string::npos) << log;

  // The engine reconciles a customer's journeys when it next handles the customer: its timer
  // (three days away here) or, as now, its next event.
  Publish({"type", "page_view", "customer_id", "waiter"});
  nlohmann::json st;
  ASSERT_TRUE(WaitFor([&] {
    st = Inspect("waiter");
    return st.is_object() && st["journeys"].empty();
  })) << st.dump(2);
  bool left = false;
  for (const auto& h : st["history"]) {
    if (h.value("kind", "") == "exit" && h.value("flow", "") == "welcome" &&
        h.value("step", "") == "thanks+1" && h.value("detail", "") == "flow_changed") {
      left = true;
    }
  }
  EXPECT_TRUE(left) << st.dump(2);
  EXPECT_EQ(StepsMailed("waiter"), std::multiset<std::string>{"thanks"});
  // Counted, and visible in /v1/flows under the step the edit removed.
  std::string body;
  ASSERT_TRUE(WaitFor([&] {
    std::string resp = HttpGet("/v1/flows");
    body = resp.substr(resp.find("\r\n\r\n") + 4);
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("flows")) return false;
    for (const auto& f : j["flows"]) {
      if (f.value("id", "") != "welcome") continue;
      if (f["exited"].value("flow_changed", 0) != 1) return false;
      for (const auto& step : f["steps"]) {
        if (step.value("id", "") == "thanks+1" && step.value("removed", false) &&
            step["exited"].value("flow_changed", 0) == 1) {
          return true;
        }
      }
    }
    return false;
  })) << body;
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Reload, ABrokenFlowRefusesTheWholeReloadAndTheOldFlowsKeepSending) {
  WriteConfig("info");
  StartReady();
  // A valid change in one file and a YAML error in another: neither is applied.
  Edit("welcome.yaml", kFirstSteps, kNewFirstStep);
  Edit("winback.yaml", "steps:\n", "steps: [\n");
  std::string log = Hup();
  EXPECT_NE(log.find("reload refused"), std::string::npos) << log;
  EXPECT_NE(log.find("the running flows stay"), std::string::npos) << log;
  EXPECT_TRUE(HasLocatedError(log, (flows_ / "winback.yaml").string())) << log;

  Signup("during");
  ASSERT_TRUE(WaitFor([&] { return StepsMailed("during").size() == 1; })) << Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(StepsMailed("during"), std::multiset<std::string>{"thanks"});

  // Fixed: the next reload applies both files.
  Edit("winback.yaml", "steps: [\n", "steps:\n");
  log = Hup();
  EXPECT_EQ(log.find("reload refused"), std::string::npos) << log;
  Signup("fixed");
  ASSERT_TRUE(WaitFor([&] { return StepsMailed("fixed").size() == 2; })) << Log();
  EXPECT_EQ(StepsMailed("fixed"), (std::multiset<std::string>{"early_tips", "thanks"}));
  EXPECT_EQ(Stop(SIGTERM), 0);
}

TEST_F(Reload, LogLevelFollowsTheConfigFile) {
  WriteConfig("warn");
  StartReady();
  EXPECT_EQ(Log().find("journeyd running"), std::string::npos) << Log();
  WriteConfig("info");
  std::string log = Hup();
  // The outcome is an info line: there only because the new level was applied first.
  EXPECT_NE(log.find("info reloaded 6 flow(s)"), std::string::npos) << log;
  EXPECT_TRUE(StampedLine(log, "info reloaded")) << log;

  // A config that does not load refuses the reload and keeps the level (info).
  std::ofstream(dir_ / "journeyd.yaml", std::ios::app) << "bogus_key: 1\n";
  log = Hup();
  EXPECT_NE(log.find("reload refused"), std::string::npos) << log;
  EXPECT_NE(log.find("bogus_key"), std::string::npos) << log;
  EXPECT_EQ(Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace journeyd
