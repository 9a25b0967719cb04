#include "admin_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>

#include "journeyd/engine/event.h"
#include "journeyd/engine/state.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/partition_info.h"
#include "journeyd/store/publish.h"
#include "journeyd/store/stats.h"

namespace journeyd::app::internal {

using admin::Json;
using admin::Request;
using admin::Response;
using admin::Text;
using store::Got;
using store::Run;

namespace {

constexpr Duration kAdminRedisTimeout{2000};

Response JsonError(int status, std::string_view message) {
  return Json(status, nlohmann::json::object({{"error", message}}).dump() + "\n");
}

// A small page for people who clicked a link in a mail. The token is a credential: no
// referrer, no caching, no scripts.
Response Page(int status, std::string_view title, std::string_view body_html) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"robots\" content=\"noindex\"><title>{}</title>"
      "<style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}"
      "button{{font-size:1em;padding:.5em 1em}}</style></head>\n<body><h1>{}</h1>\n{}\n"
      "</body></html>\n",
      admin::HtmlEscape(title), admin::HtmlEscape(title), body_html);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
  return r;
}

Response InvalidLinkPage() {
  return Page(403, "This link is not valid",
              "<p>This unsubscribe link is incomplete or was altered. Please use the link from "
              "the most recent e-mail you received, or copy it in full.</p>");
}

std::string FlowLabel(const flow::FlowSet& flows, const std::string& flow_id) {
  const flow::Flow* f = flows.Find(flow_id);
  return f && !f->name.empty() ? f->name : flow_id;
}

Response ConfirmPage(const flow::FlowSet& flows, const std::string& token,
                     const std::string& flow_id) {
  // The form posts back to this same URL (relative, so a reverse proxy's path prefix holds)
  // with the RFC 8058 body a mail client's one-click POST sends.
  return Page(200, "Unsubscribe",
              fmt::format("<p>Stop receiving marketing e-mail from us? You got this link in "
                          "a mail of “{}”.</p>\n"
                          "<form method=\"post\" action=\"?token={}\">"
                          "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                          "<button type=\"submit\">Unsubscribe</button></form>",
                          admin::HtmlEscape(FlowLabel(flows, flow_id)), admin::HtmlEscape(token)));
}

std::string UnsubscribeData(const std::string& flow_id) {
  return nlohmann::json::object({{"flow", flow_id}}).dump();
}

// Per-step counts: "<flow>\t<step>\t<kind>\t<reason>" → count, summed over partitions.
using Counts = std::map<std::string, int64_t>;

struct StepCounts {
  int64_t entered = 0, sent = 0, converted = 0;
  std::map<std::string, int64_t> suppressed, exited;

  void Add(std::string_view kind, const std::string& reason, int64_t n) {
    if (kind == "enter") entered += n;
    if (kind == "send") sent += n;
    if (kind == "convert") converted += n;
    if (kind == "suppress") suppressed[reason] += n;
    if (kind == "exit") exited[reason] += n;
  }
  void Add(const StepCounts& o) {
    entered += o.entered;
    sent += o.sent;
    converted += o.converted;
    for (const auto& [k, v] : o.suppressed) suppressed[k] += v;
    for (const auto& [k, v] : o.exited) exited[k] += v;
  }
  void To(nlohmann::json& j) const {
    j["entered"] = entered;
    j["sent"] = sent;
    j["suppressed"] = suppressed;
    j["exited"] = exited;
    j["converted"] = converted;
  }
};

std::string FlowsJson(const flow::FlowSet& flows, const Counts& counts) {
  // flow → step → counts
  std::map<std::string, std::map<std::string, StepCounts>> by_flow;
  for (const auto& [field, n] : counts) {
    size_t a = field.find('\t');
    size_t b = a == std::string::npos ? a : field.find('\t', a + 1);
    size_t c = b == std::string::npos ? b : field.find('\t', b + 1);
    if (c == std::string::npos) continue;
    by_flow[field.substr(0, a)][field.substr(a + 1, b - a - 1)].Add(
        std::string_view(field).substr(b + 1, c - b - 1), field.substr(c + 1), n);
  }
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json list = nlohmann::json::array();
  for (const flow::Flow& f : flows.flows()) {
    auto& steps = by_flow[f.id];
    nlohmann::json jf = nlohmann::json::object();
    jf["id"] = f.id;
    jf["name"] = f.name;
    jf["category"] = f.category == flow::Category::kMarketing ? "marketing" : "transactional";
    StepCounts total;
    for (const auto& [id, sc] : steps) total.Add(sc);
    total.To(jf);
    nlohmann::json js = nlohmann::json::array();
    for (const flow::Step& st : f.steps) {
      nlohmann::json j = nlohmann::json::object();
      j["id"] = st.id;
      j["kind"] = flow::StepKindName(st.kind);
      if (st.kind == flow::StepKind::kSend) j["template"] = st.template_name;
      auto it = steps.find(st.id);
      (it == steps.end() ? StepCounts{} : it->second).To(j);
      js.push_back(std::move(j));
    }
    // Counts of steps an edited flow no longer has stay visible.
    for (const auto& [id, sc] : steps) {
      if (id.empty() || f.FindStep(id) != flow::kEnd) continue;
      nlohmann::json j = nlohmann::json::object();
      j["id"] = id;
      j["removed"] = true;
      sc.To(j);
      js.push_back(std::move(j));
    }
    jf["steps"] = std::move(js);
    list.push_back(std::move(jf));
  }
  out["flows"] = std::move(list);
  return out.dump(2) + "\n";
}

// A group's lag when Redis could tell it (a nil lag, or no such group, leaves the last value).
void SetLag(AppMetrics& m, int partition, std::string_view stream,
            const Got<store::GroupInfo>& group) {
  if (!group.ok() || !group.value->lag) return;
  m.stream_lag.Set({std::to_string(partition), std::string(stream)},
                   static_cast<double>(*group.value->lag));
}

// Whole seconds the sink has been down, 0 while it is up.
int64_t DownSeconds(const mail::SinkHealth& h) {
  if (h.up) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                          h.since)
      .count();
}

}  // namespace

AdminApi::AdminApi(asio::io_context& io, Shared& shared, const UnsubscribeTokens& tokens)
    : s_(shared), tokens_(tokens) {
  store::RedisOptions o = RedisOptionsOf(shared.config);
  o.command_timeout = kAdminRedisTimeout;
  o.connect_timeout = kAdminRedisTimeout;
  conn_ = store::RedisConnection::Create(io, o);
}

AdminApi::~AdminApi() { conn_->Close(); }

admin::Routes AdminApi::Routes() {
  admin::Routes t;
  auto add = [&t](std::string path, bool prefix, std::vector<std::string> methods, std::string help,
                  admin::Handler h) {
    t.Add({std::move(path), prefix, std::move(methods), std::move(help), std::move(h)});
  };
  add("/healthz", false, {"GET"}, "the process is alive",
      [](const Request&) -> asio::awaitable<Response> { co_return Text(200, "ok\n"); });
  add("/readyz", false, {"GET"},
      "Redis answers, every partition has an owner, this instance owns some",
      [this](const Request& r) { return Readyz(r); });
  add("/metrics", false, {"GET"}, "Prometheus metrics (text format 0.0.4)",
      [this](const Request& r) { return Metrics(r); });
  add("/v1/flows", false, {"GET"},
      "loaded flows with per-step counts: entered, sent, suppressed, exited, converted",
      [this](const Request& r) { return Flows(r); });
  add("/v1/customers/", true, {"GET"}, "a customer's state as JSON (/v1/customers/{id})",
      [this](const Request& r) { return Customer(r); });
  add("/unsubscribe", false, {"GET", "POST"},
      "?token=...: GET (the link) or POST (RFC 8058 one-click) unsubscribes",
      [this](const Request& r) { return Unsubscribe(r); });
  return t;
}

asio::awaitable<std::string> AdminApi::Redis() {
  if (conn_->connected()) co_return "";
  // One connect at a time; a request arriving meanwhile is told to retry.
  if (connecting_) co_return "connecting to Redis";
  connecting_ = true;
  std::string err = co_await Connect(*conn_);
  connecting_ = false;
  co_return err;
}

asio::awaitable<Response> AdminApi::Readyz(const Request&) {
  admin::ReadyStatus st;
  st.partitions = s_.config.redis.partitions;
  st.owned_here = s_.stats.partitions_owned;
  st.redis_error = co_await Redis();
  if (!st.redis_error.empty()) co_return admin::ReadyzResponse(st);
  for (int n = 0; n < st.partitions; ++n) {
    Got<bool> held = co_await Run(*conn_, store::LeaseHeld(store::Keys(s_.config.redis.prefix, n)));
    if (!held.ok()) {
      st.redis_error = held.error;
      co_return admin::ReadyzResponse(st);
    }
    if (!*held.value) st.unowned.push_back(n);
  }
  st.redis_ok = true;
  const mail::SinkHealth delivery = s_.sink ? s_.sink->health() : mail::SinkHealth{};
  if (!delivery.up) {
    st.delivery_error = delivery.error;
    st.delivery_down_s = DownSeconds(delivery);
  }
  co_return admin::ReadyzResponse(st);
}

asio::awaitable<Response> AdminApi::Metrics(const Request&) {
  s_.metrics.partitions_owned.Set({}, s_.stats.partitions_owned);
  if (s_.sink) {
    const mail::SinkHealth delivery = s_.sink->health();
    const std::string sink = s_.config.smtp.mode;
    s_.metrics.delivery_up.Set({sink}, delivery.up ? 1 : 0);
    s_.metrics.delivery_down_seconds.Set({sink}, static_cast<double>(DownSeconds(delivery)));
  }
  // Refreshed on scrape; when Redis is away the last values stay (and /readyz says why).
  if ((co_await Redis()).empty()) {
    for (int n = 0; n < s_.config.redis.partitions; ++n) {
      store::Keys keys(s_.config.redis.prefix, n);
      // A stream without the group yet is an error reply: no lag, and on to the next.
      Got<store::GroupInfo> events = co_await Run(*conn_, store::EventsGroup(keys));
      if (events.lost) break;
      SetLag(s_.metrics, n, "events", events);
      Got<store::GroupInfo> outbox = co_await Run(*conn_, store::OutboxGroup(keys));
      if (outbox.lost) break;
      SetLag(s_.metrics, n, "outbox", outbox);
    }
  }
  Response r = Text(200, s_.metrics.Render());
  r.content_type = std::string(admin::kMetricsContentType);
  co_return r;
}

asio::awaitable<Response> AdminApi::Flows(const Request&) {
  std::string err = co_await Redis();
  if (!err.empty()) co_return JsonError(503, "Redis unreachable: " + err);
  Counts counts;
  for (int n = 0; n < s_.config.redis.partitions; ++n) {
    Got<std::vector<store::StatsEntry>> got =
        co_await Run(*conn_, store::JourneyCounts(store::Keys(s_.config.redis.prefix, n)));
    if (!got.ok()) co_return JsonError(503, "Redis: " + got.error);
    for (const store::StatsEntry& e : *got.value) counts[e.field] += e.count;
  }
  co_return Json(200, FlowsJson(*s_.Flows(), counts));
}

asio::awaitable<Response> AdminApi::Customer(const Request& req) {
  auto id = admin::UrlDecode(std::string_view(req.path).substr(sizeof("/v1/customers/") - 1));
  if (!id || !engine::ValidCustomerId(*id)) {
    co_return JsonError(400,
                        "not a valid customer id (1-128 bytes of UTF-8, no control characters)");
  }
  std::string err = co_await Redis();
  if (!err.empty()) co_return JsonError(503, "Redis unreachable: " + err);
  const int partition = store::PartitionOf(*id, s_.config.redis.partitions);
  Got<std::optional<std::string>> got = co_await Run(
      *conn_, store::CustomerState(store::Keys(s_.config.redis.prefix, partition), *id));
  if (!got.ok()) co_return JsonError(503, "Redis: " + got.error);
  if (!*got.value) co_return JsonError(404, "no such customer");
  engine::CustomerState state;
  if (!engine::DecodeState(**got.value, &state, &err)) {
    spdlog::error("admin: customer {}: {}", *id, err);
    co_return JsonError(500, "the stored state cannot be read");
  }
  if (state.id.empty()) state.id = *id;
  nlohmann::json out = engine::StateToJson(state);
  out["rfm"] = engine::RfmToJson(engine::ScoreRfm(
      state.orders, state.revenue, state.last_purchase_at, s_.clock.Now(), s_.config.rfm));
  co_return Json(200, out.dump(2) + "\n");
}

asio::awaitable<Response> AdminApi::Unsubscribe(const Request& req) {
  auto token = admin::QueryParam(req.query, "token");
  std::optional<UnsubscribeTokens::Subject> who;
  if (token) who = tokens_.Verify(*token);
  if (!who) co_return InvalidLinkPage();
  // SPEC §7: GET and POST both record the unsubscribe (a person clicking the link, a mail
  // client's RFC 8058 one-click POST). A HEAD (a link checker) changes nothing.
  if (req.method == "HEAD") co_return ConfirmPage(*s_.Flows(), *token, who->flow_id);
  // The normal event path: the partition's worker applies it like any shop event.
  std::string err = co_await Redis();
  if (err.empty()) {
    const int partition = store::PartitionOf(who->customer_id, s_.config.redis.partitions);
    const store::EventField fields[] = {{"type", "unsubscribe"},
                                        {"customer_id", who->customer_id},
                                        {"data", UnsubscribeData(who->flow_id)}};
    Got<std::string> added = co_await Run(
        *conn_, store::PublishEvent(store::Keys(s_.config.redis.prefix, partition), fields));
    if (!added.ok()) err = added.error;
  }
  if (!err.empty()) {
    spdlog::error("admin: unsubscribe of customer {} not recorded: {}", who->customer_id, err);
    co_return Page(503, "Please try again",
                   "<p>We could not record your request just now. Please try again in a "
                   "minute.</p>");
  }
  spdlog::info("customer={} flow={} unsubscribed through the link ({})", who->customer_id,
               who->flow_id, req.method);
  co_return Page(200, "You are unsubscribed",
                 "<p>You will no longer receive marketing e-mail from us. Messages about your "
                 "orders and account still reach you.</p>");
}

}  // namespace journeyd::app::internal
