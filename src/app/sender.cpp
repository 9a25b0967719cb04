#include "sender.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "journeyd/mail/message.h"
#include "journeyd/store/keys.h"

namespace journeyd::app::internal {

using asio::awaitable;
using store::Call;
using store::Keys;
using store::Reply;
using store::Result;

// Outbox → .eml files (smtp.mode: file). The file is named after the job id and written
// atomically, so a retry after a crash overwrites instead of duplicating.
awaitable<void> RunOutboxSender(asio::io_context& io_, Shared& s_, int partition,
                                const bool& owned_) {
  Keys keys_(s_.config.redis.prefix, partition);
  store::RedisOptions o = RedisOptionsOf(s_.config);
  auto conn = store::RedisConnection::Create(io_, o);
  std::filesystem::create_directories(s_.config.smtp.dir);
  std::string start = "0";  // our pending jobs first
  auto last_claim = std::chrono::steady_clock::now() - std::chrono::hours(1);
  mail::MessageOptions mo{s_.config.smtp.from, s_.config.smtp.unsubscribe_mailto};
  while (!s_.stopping && owned_) {
    if (!conn->connected()) {
      std::string err = co_await Connect(*conn);
      if (!err.empty()) {
        co_await Sleep(Duration{500});
        continue;
      }
    }
    // Jobs a dead instance took but never finished: claim them once they sat for a lease.
    Reply claimed;
    if (std::chrono::steady_clock::now() - last_claim >
        std::chrono::milliseconds(s_.config.redis.lease_ms)) {
      last_claim = std::chrono::steady_clock::now();
      Result c = co_await Call(
          *conn, Cmd("XAUTOCLAIM", keys_.outbox(), std::string(store::kOutboxGroup), s_.consumer,
                     std::to_string(s_.config.redis.lease_ms), "0-0", "COUNT", "100"));
      if (c.ok() && c.reply.elements.size() >= 2) claimed = std::move(c.reply.elements[1]);
    }
    Result r;
    if (claimed.elements.empty()) {
      r = co_await Call(*conn,
                        Cmd("XREADGROUP", "GROUP", std::string(store::kOutboxGroup), s_.consumer,
                            "COUNT", "100", "BLOCK", "200", "STREAMS", keys_.outbox(), start),
                        Duration{5200});
      if (!r.ok()) {
        co_await Sleep(Duration{200});
        continue;
      }
      if (EntryCount(r.reply) == 0) {
        if (start == "0") start = ">";
        continue;
      }
    }
    const Reply& entries = claimed.elements.empty() ? r.reply.elements[0].elements[1] : claimed;
    std::vector<std::string> ack = {"XACK", keys_.outbox(), std::string(store::kOutboxGroup)};
    for (const Reply& e : entries.elements) {
      if (e.elements.size() < 2) continue;
      auto f = FieldMap(e.elements[1]);
      engine::SendJob job;
      job.job_id = f["job_id"];
      job.customer_id = f["customer_id"];
      job.flow = f["flow"];
      job.step = f["step"];
      job.marketing = f["marketing"] == "1";
      job.to = f["to"];
      job.subject = f["subject"];
      job.text = f["text"];
      job.html = f["html"];
      job.unsubscribe_url = f["unsubscribe_url"];
      std::string err;
      auto msg = mail::BuildMessage(job, mo, s_.clock.Now(), &err);
      bool name_ok = !job.job_id.empty() &&
                     job.job_id.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!msg || !name_ok) {
        if (err.empty()) err = "bad job id";
        spdlog::warn("customer={} flow={} step={} mail not sent: {}", job.customer_id, job.flow,
                     job.step, err);
        std::vector<std::string> d = {"XADD",      keys_.dead(),     "*", "error", err,
                                      "source_id", e.elements[0].str};
        for (auto& [k, v] : f) {
          d.push_back(k);
          d.push_back(v);
        }
        co_await Call(*conn, std::move(d));
        ack.push_back(e.elements[0].str);
        continue;
      }
      auto dir = std::filesystem::path(s_.config.smtp.dir);
      auto tmp = dir / ("." + job.job_id + ".tmp");
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << msg->data;
        out.flush();
        if (!out) {
          spdlog::error("cannot write {}: mail stays in the outbox", tmp.string());
          continue;
        }
      }
      std::error_code ec;
      std::filesystem::rename(tmp, dir / (job.job_id + ".eml"), ec);
      if (ec) {
        spdlog::error("cannot rename {}: {}", tmp.string(), ec.message());
        continue;
      }
      spdlog::info("customer={} flow={} step={} mail written: {}.eml", job.customer_id, job.flow,
                   job.step, job.job_id);
      ++s_.stats.mails_written;
      ack.push_back(e.elements[0].str);
    }
    if (ack.size() > 3) co_await Call(*conn, std::move(ack));
  }
  conn->Close();
}

}  // namespace journeyd::app::internal
