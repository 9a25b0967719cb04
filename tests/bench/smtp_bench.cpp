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

// Sink counts, then the three senders, each into the same sink.
// Waits until the sink in `dir` has received `want` more messages than `before` (the count
// arrives a moment after the last 250); the number it received, counted from `before`.
int64_t SinkReceived(const std::string& dir, int64_t before, int64_t want) {
  int64_t got = SinkMessages(dir) - before;
  for (int i = 0; i < 200 && got < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    got = SinkMessages(dir) - before;
  }
  return got;
}

// 1. Postfix's smtp-source, the peer: the same message (from a file: it adds CRLF and
// dot-stuffs). Its rate, or nullopt when it failed or the sink did not receive every mail.
std::optional<double> RunSmtpSource(const PostfixTools& postfix, const std::string& data,
                                    const std::string& dir, int sink_port, int messages,
                                    int connections) {
  std::string file = dir + "/sample.txt";
  std::ofstream out(file, std::ios::binary);
  std::string lf = data;
  for (size_t at; (at = lf.find("\r\n")) != std::string::npos;) lf.replace(at, 2, "\n");
  out << lf;
  out.close();
  const int64_t before = SinkMessages(dir);
  Process source;
  auto start = Clock::now();
  source.Start({postfix.source, "-d", "-s", std::to_string(connections), "-m",
                std::to_string(messages), "-F", file, "-f", "news@shop.example", "-t",
                "anna@example.com", "127.0.0.1:" + std::to_string(sink_port)},
               postfix.Env(), dir + "/source.log");
  int status = 0;
  ::waitpid(source.pid(), &status, 0);
  const double secs = Since(start);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream log(dir + "/source.log");
    std::cerr << "smtp: smtp-source " << ExitText(status) << ":\n" << log.rdbuf() << "\n";
    return std::nullopt;
  }
  const int64_t got = SinkReceived(dir, before, messages);
  if (got != messages) {
    std::cerr << fmt::format("smtp: smtp-sink received {} of smtp-source's {} mails\n", got,
                             messages);
    return std::nullopt;
  }
  return messages / secs;
}

// 2. Our SMTP client alone: every message handed to the pool at once.
std::optional<double> RunClient(const mail::BuiltMessage& built, const std::string& dir,
                                int sink_port, int messages, int connections) {
  asio::io_context io;
  mail::SmtpOptions o;
  o.port = sink_port;
  o.tls = mail::SmtpTls::kNone;
  o.connections = connections;
  mail::SmtpPool pool(io.get_executor(), o);
  const int64_t before = SinkMessages(dir);
  int ok = 0, left = messages;
  auto start = Clock::now();
  for (int i = 0; i < messages; ++i) {
    asio::co_spawn(io, pool.Send(built.envelope_from, built.envelope_to, built.data),
                   [&](std::exception_ptr, mail::SmtpResult r) {
                     ok += r.sent();
                     if (--left == 0) io.stop();
                   });
  }
  io.run();
  const double secs = Since(start);
  const int64_t got = SinkReceived(dir, before, messages);
  if (ok != messages || got != messages) {
    std::cerr << fmt::format(
        "smtp: our client had {} of {} mails accepted; smtp-sink received {}\n", ok, messages, got);
    return std::nullopt;
  }
  return messages / secs;
}

// Send jobs for `messages` customers written into partition 0's outbox.
bool FillOutbox(store::SyncRedis& client, const engine::SendJob& job, int messages) {
  store::Keys keys("journeyd", 0);
  std::vector<std::vector<std::string>> batch;
  std::string err;
  for (int i = 0; i < messages; ++i) {
    engine::SendJob j = job;
    j.customer_id = fmt::format("c{}", i);
    j.job_id = fmt::format("{:016x}", 0x1000000ull + static_cast<uint64_t>(i));
    std::vector<std::string> cmd = {"XADD", keys.outbox(), "*"};
    for (auto& f : store::OutboxFields(j)) cmd.push_back(std::move(f));
    batch.push_back(std::move(cmd));
    if (batch.size() == 1000 || i + 1 == messages) {
      if (!client.Pipeline(batch, &err)) {
        std::cerr << "smtp: filling the outbox failed: " << err << "\n";
        return false;
      }
      batch.clear();
    }
  }
  return true;
}

// What is left of partition 0's outbox: "" when every job was settled as sent (nothing unread,
// unacknowledged, waiting for a retry or dead), else what is left.
std::string OutboxLeft(store::SyncRedis& client) {
  store::Keys keys("journeyd", 0);
  std::string err, left;
  auto done = GroupDone(client, keys.outbox(), &err);
  if (!done) return "cannot read the outbox group: " + err;
  if (!*done) left += " jobs unread or unacknowledged;";
  for (const auto& [what, cmd] :
       {std::pair{"waiting for a retry", std::vector<std::string>{"ZCARD", keys.retry()}},
        std::pair{"dead", std::vector<std::string>{"XLEN", keys.dead()}}}) {
    auto r = client.Command(cmd, &err);
    if (!r) return "cannot read " + cmd[1] + ": " + err;
    if (r->integer > 0) left += fmt::format(" {} {};", r->integer, what);
  }
  return left;
}

// 3. The real journeyd: jobs preloaded in the outbox, drained into the sink. Its rate counts
// the mails the sink received once the outbox settled every job as sent; nullopt when it did
// not deliver them all within ten minutes.
std::optional<double> RunDaemon(const engine::SendJob& job, const std::string& flows_dir,
                                const std::string& dir, int sink_port, int messages,
                                int connections) {
  RedisProc redis(dir);
  auto client = redis.Client();
  if (!client || !FillOutbox(*client, job, messages)) return std::nullopt;
  std::string config = dir + "/journeyd.yaml";
  std::ofstream(config) << "redis: { port: " << redis.port() << ", partitions: 1 }\n"
                        << "flows: { dir: \"" << flows_dir << "\" }\n"
                        << SmtpConfig(sink_port, connections, dir)
                        << "admin: { listen: \"127.0.0.1:" << FreeLoopbackPort() << "\" }\n"
                        << "log: { level: warn }\n";
  const int64_t before = SinkMessages(dir);
  Process daemon;
  auto start = Clock::now();
  daemon.Start({SelfDir() + "/journeyd", "-c", config}, {}, dir + "/journeyd.log");
  std::string left = "nothing checked";
  while (!left.empty() && Since(start) < 600) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int status = 0;
    if (::waitpid(daemon.pid(), &status, WNOHANG) == daemon.pid()) {
      std::ifstream log(dir + "/journeyd.log");
      std::cerr << "smtp: journeyd exited:\n" << log.rdbuf() << "\n";
      return std::nullopt;
    }
    // The sink's count first: the outbox settles a job only after its 250.
    if (SinkMessages(dir) - before < messages) continue;
    left = OutboxLeft(*client);
  }
  const double secs = Since(start);
  daemon.Stop();
  const int64_t got = SinkMessages(dir) - before;
  if (!left.empty() || got != messages) {
    std::cerr << fmt::format(
        "smtp: journeyd did not deliver all {} mails within 10 minutes: smtp-sink received {};{}\n",
        messages, got, left);
    return std::nullopt;
  }
  return messages / secs;
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
  std::vector<double> daemon_rates, client_rates, postfix_rates, ratios;
  for (int run = 0; run < runs; ++run) {
    TempDir tmp;
    Process sink;
    const int sink_port = StartSmtpSink(postfix, tmp.path(), &sink);
    if (sink_port == 0) {
      std::cerr << "smtp-sink did not start (see its log)\n";
      return std::nullopt;
    }
    auto peer = RunSmtpSource(postfix, built->data, tmp.path(), sink_port, messages, connections);
    if (!peer) return std::nullopt;
    auto client = RunClient(*built, tmp.path(), sink_port, messages, connections);
    if (!client) return std::nullopt;
    auto daemon = RunDaemon(job, fig.flows_dir, tmp.path(), sink_port, messages, connections);
    if (!daemon) return std::nullopt;
    postfix_rates.push_back(*peer);
    client_rates.push_back(*client);
    daemon_rates.push_back(*daemon);
    ratios.push_back(*daemon / *peer);
  }
  fig.delivered = messages;
  fig.postfix_per_sec = Median(postfix_rates);
  fig.client_per_sec = Median(client_rates);
  fig.daemon_per_sec = Median(daemon_rates);
  fig.ratio = Median(ratios);
  return fig;
}

}  // namespace journeyd::bench
