// The SMTP figure: mails from the outbox into Postfix's smtp-sink through the real journeyd,
// next to Postfix's own smtp-source sending the same number of same-size messages to the same
// sink over the same number of connections; and our SMTP client alone, for comparison.
#include "smtp_bench.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "journeyd/engine/engine.h"
#include "journeyd/mail/message.h"
#include "journeyd/mail/smtp.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/outbox.h"

namespace journeyd::bench {

namespace asio = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A real welcome mail, rendered by the engine from the shipped flows.
engine::SendJob SampleJob(const flow::FlowSet& flows) {
  engine::CustomerState st;
  st.id = "bench";
  engine::Event ev;
  ev.type = "signup";
  ev.customer_id = "bench";
  ev.ts = *ParseTimestamp("2026-01-01T10:00:00Z");
  ev.data = nlohmann::json::object();
  engine::ProfileFromJson(
      {{"email", "anna@example.com"}, {"first_name", "Anna"}, {"email_opt_in", true}}, &ev.profile,
      nullptr);
  engine::Policy policy;
  policy.unsubscribe_url = [](std::string_view, std::string_view, std::string_view) {
    return std::string("http://127.0.0.1:8725/unsubscribe?token=bench.welcome.0123456789abcdef");
  };
  auto d = engine::Step(flows, policy, st, engine::EventInput{ev}, ev.ts);
  return d.sends.empty() ? engine::SendJob{} : d.sends[0];
}

}  // namespace

std::optional<SmtpFigures> RunSmtpBench(const flow::FlowSet& flows, const PostfixTools& postfix,
                                        int messages, int runs, int connections,
                                        const std::string& flows_dir) {
  engine::SendJob job = SampleJob(flows);
  std::string err;
  auto built = mail::BuildMessage(job, {"Shop <news@shop.example>", ""}, TimePoint{}, &err);
  if (!built) {
    std::cerr << "cannot build the sample mail: " << err << "\n";
    return std::nullopt;
  }
  SmtpFigures fig;
  fig.message_bytes = built->data.size();
  fig.flows_dir = std::filesystem::absolute(flows_dir).string();
  std::vector<double> daemon_rates, client_rates, postfix_rates;
  for (int run = 0; run < runs; ++run) {
    TempDir tmp;
    Process sink;
    const int sink_port = StartSmtpSink(postfix, tmp.path(), &sink);
    if (sink_port == 0) {
      std::cerr << "smtp-sink did not start (see its log)\n";
      return std::nullopt;
    }

    // 1. Postfix's smtp-source: the same message (from a file: it adds CRLF and dot-stuffs).
    {
      std::string file = tmp.path() + "/sample.txt";
      std::ofstream out(file, std::ios::binary);
      std::string lf = built->data;
      for (size_t at; (at = lf.find("\r\n")) != std::string::npos;) lf.replace(at, 2, "\n");
      out << lf;
      out.close();
      Process source;
      auto start = Clock::now();
      source.Start({postfix.source, "-d", "-s", std::to_string(connections), "-m",
                    std::to_string(messages), "-F", file, "-f", "news@shop.example", "-t",
                    "anna@example.com", "127.0.0.1:" + std::to_string(sink_port)},
                   postfix.Env(), tmp.path() + "/source.log");
      int status = 0;
      ::waitpid(source.pid(), &status, 0);
      postfix_rates.push_back(messages / Since(start));
    }

    // 2. Our SMTP client alone: every message handed to the pool at once.
    {
      asio::io_context io;
      mail::SmtpOptions o;
      o.port = sink_port;
      o.tls = mail::SmtpTls::kNone;
      o.connections = connections;
      mail::SmtpPool pool(io.get_executor(), o);
      int ok = 0, left = messages;
      auto start = Clock::now();
      for (int i = 0; i < messages; ++i) {
        asio::co_spawn(io, pool.Send(built->envelope_from, built->envelope_to, built->data),
                       [&](std::exception_ptr, mail::SmtpResult r) {
                         ok += r.sent();
                         if (--left == 0) io.stop();
                       });
      }
      io.run();
      client_rates.push_back(messages / Since(start));
      if (ok != messages) fig.note += fmt::format(" client: {} of {} accepted;", ok, messages);
    }

    // 3. The real journeyd: jobs preloaded in the outbox, drained into the sink.
    {
      RedisProc redis(tmp.path());
      auto client = redis.Client();
      if (!client) return std::nullopt;
      store::Keys keys("journeyd", 0);
      std::vector<std::vector<std::string>> batch;
      for (int i = 0; i < messages; ++i) {
        engine::SendJob j = job;
        j.customer_id = fmt::format("c{}", i);
        j.job_id = fmt::format("{:016x}", 0x1000000ull + static_cast<uint64_t>(i));
        std::vector<std::string> cmd = {"XADD", keys.outbox(), "*"};
        for (auto& f : store::OutboxFields(j)) cmd.push_back(std::move(f));
        batch.push_back(std::move(cmd));
        if (batch.size() == 1000 || i + 1 == messages) {
          if (!client->Pipeline(batch, &err)) {
            std::cerr << err << "\n";
            return std::nullopt;
          }
          batch.clear();
        }
      }
      std::string config = tmp.path() + "/journeyd.yaml";
      std::ofstream(config) << "redis: { port: " << redis.port() << ", partitions: 1 }\n"
                            << "flows: { dir: \"" << fig.flows_dir << "\" }\n"
                            << SmtpConfig(sink_port, connections, tmp.path())
                            << "admin: { listen: \"127.0.0.1:" << FreeLoopbackPort() << "\" }\n"
                            << "log: { level: warn }\n";
      Process daemon;
      auto start = Clock::now();
      daemon.Start({SelfDir() + "/journeyd", "-c", config}, {}, tmp.path() + "/journeyd.log");
      bool done = false;
      while (!done && Since(start) < 600) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        int status = 0;
        if (::waitpid(daemon.pid(), &status, WNOHANG) == daemon.pid()) {
          std::ifstream log(tmp.path() + "/journeyd.log");
          std::cerr << "journeyd exited:\n" << log.rdbuf() << "\n";
          return std::nullopt;
        }
        auto info = client->Command({"XINFO", "GROUPS", keys.outbox()}, &err);
        if (!info || info->elements.empty()) continue;
        int64_t pending = -1, lag = -1;
        const auto& g = info->elements[0].elements;
        for (size_t i = 0; i + 1 < g.size(); i += 2) {
          if (g[i].str == "pending") pending = g[i + 1].integer;
          if (g[i].str == "lag") lag = g[i + 1].integer;
        }
        done = pending == 0 && lag == 0;
      }
      double secs = Since(start);
      daemon.Stop();
      daemon_rates.push_back(messages / secs);
      auto dead = client->Command({"XLEN", keys.dead()}, &err);
      if (dead && dead->integer > 0) {
        fig.note += fmt::format(" daemon: {} dead;", dead->integer);
      }
      if (!done) fig.note += " daemon: did not finish;";
    }
  }
  fig.postfix_per_sec = Median(postfix_rates);
  fig.client_per_sec = Median(client_rates);
  fig.daemon_per_sec = Median(daemon_rates);
  return fig;
}

}  // namespace journeyd::bench
