// See journeyd/app/preview.h.
#include "journeyd/app/preview.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "journeyd/admin/server.h"
#include "journeyd/app/unsubscribe.h"
#include "journeyd/engine/engine.h"
#include "journeyd/engine/render.h"
#include "journeyd/engine/state_codec.h"
#include "journeyd/host/flow_files.h"
#include "journeyd/host/time_zones.h"
#include "journeyd/mail/message.h"
#include "journeyd/store/customers.h"
#include "journeyd/store/keys.h"
#include "journeyd/store/sync.h"

namespace journeyd::app {

namespace {

// The customer's state from Redis; false with `*error` when it cannot be read or is not there.
bool StateFromRedis(const Config& config, const std::string& id, engine::CustomerState* state,
                    std::string* error) {
  std::string err;
  auto redis = store::SyncRedis::Connect(RedisOptionsOf(config), &err);
  if (!redis) {
    *error = err;
    return false;
  }
  store::Keys keys(config.redis.prefix, store::PartitionOf(id, config.redis.partitions));
  store::Got<std::optional<std::string>> got = store::Run(*redis, store::CustomerState(keys, id));
  if (!got.ok()) {
    *error = got.error;
    return false;
  }
  if (!*got.value) {
    *error = fmt::format("no customer '{}' in {}", id, keys.customer(id));
    return false;
  }
  if (!engine::DecodeState(**got.value, state, error)) return false;
  if (state->id.empty()) state->id = id;
  return true;
}

// A state holding `profile` as the daemon would after an event carrying it: the engine merges
// it (an event of a type no flow listens to).
bool StateFromProfile(const flow::FlowSet& flows, const engine::Policy& policy,
                      const std::string& profile_json, TimePoint now, engine::CustomerState* state,
                      std::string* error) {
  const nlohmann::json profile = nlohmann::json::parse(profile_json, nullptr, false);
  if (profile.is_discarded() || !profile.is_object()) {
    *error = "--profile: not a JSON object";
    return false;
  }
  engine::EventInput in;
  in.event.type = "journeyctl_preview";
  in.event.customer_id = "preview";
  in.event.ts = now;
  in.event.data = nlohmann::json::object();
  engine::EventError bad;
  if (!engine::ProfileFromJson(profile, &in.event.profile, &bad)) {
    *error = "--profile: " + bad.ToString();
    return false;
  }
  state->id = in.event.customer_id;
  engine::Step(flows, policy, *state, in, now);
  return true;
}

// "welcome.thanks" or "welcome.thanks.nl".
std::string BaseName(const engine::SendJob& job) {
  return job.locale.empty() ? fmt::format("{}.{}", job.flow, job.step)
                            : fmt::format("{}.{}.{}", job.flow, job.step, job.locale);
}

// The unsubscribe link as the sender signs it; with a throwaway key (and a note) when
// admin.secret_file is not set, as the daemon does then.
std::string UnsubscribeUrl(const Config& config, const engine::SendJob& job, std::ostream& err) {
  std::string secret = config.admin.secret;
  if (secret.empty()) {
    std::random_device rd;
    for (int i = 0; i < 4; ++i) secret += fmt::format("{:08x}", rd());
    err << "journeyctl: admin.secret_file is not set: the unsubscribe link is signed with a "
           "throwaway key\n";
  }
  return UnsubscribeTokens(secret).Url(config.admin.public_url, job.customer_id, job.flow);
}

// A text part as a page, escaped.
std::string TextPage(std::string_view text) {
  return "<!doctype html>\n<meta charset=\"utf-8\">\n<pre>" + admin::HtmlEscape(text) + "</pre>\n";
}

bool WriteFile(const std::filesystem::path& p, const std::string& data, std::ostream& err) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
  f.flush();
  if (!f) err << "journeyctl: cannot write " << p.string() << "\n";
  return static_cast<bool>(f);
}

}  // namespace

int RunPreview(const Config& config, const PreviewRequest& r, std::ostream& out,
               std::ostream& err) {
  flow::LoadResult loaded = host::LoadFlowDirectory(config.flows.dir);
  for (const auto& d : loaded.diagnostics.all()) err << d.ToString() << "\n";
  if (!loaded.flows) return 1;
  engine::Policy policy;
  policy.timezone = config.policy.timezone;
  policy.zones = &host::SystemTimeZones();
  policy.rfm = config.rfm;
  const TimePoint now = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  engine::CustomerState state;
  std::string error;
  const bool got = r.customer_id.empty() ? StateFromProfile(*loaded.flows, policy, r.profile_json,
                                                            now, &state, &error)
                                         : StateFromRedis(config, r.customer_id, &state, &error);
  std::optional<nlohmann::json> data;
  if (got && !r.trigger_data_json.empty()) {
    data = nlohmann::json::parse(r.trigger_data_json, nullptr, false);
    if (data->is_discarded() || !data->is_object()) error = "--trigger-data: not a JSON object";
  }
  std::optional<engine::SendJob> job;
  if (got && error.empty()) {
    policy.render_mail = false;  // rendered below, once the link is in, as the sender does
    job = engine::PreviewSend(*loaded.flows, policy, state, r.flow, r.step, r.locale,
                              data ? &*data : nullptr, now, &error);
  }
  if (job && job->marketing) job->unsubscribe_url = UnsubscribeUrl(config, *job, err);
  std::optional<mail::BuiltMessage> m;
  if (job && engine::RenderSendJob(loaded.flows->templates(), *job, &error)) {
    m = mail::BuildMessage(*job, {config.smtp.from, config.smtp.unsubscribe_mailto}, now, &error);
  }
  if (!m) {
    err << "journeyctl: preview: " << error << "\n";
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(r.out_dir, ec);
  const auto base = std::filesystem::path(r.out_dir) / BaseName(*job);
  const auto eml = base.string() + ".eml", html = base.string() + ".html";
  const std::string page = job->html.empty() ? TextPage(job->text) : job->html;
  if (!WriteFile(eml, m->data, err) || !WriteFile(html, page, err)) return 1;
  out << job->subject << "\n" << eml << "\n" << html << "\n";
  return 0;
}

}  // namespace journeyd::app
