// Mail templates (flow/template.h) through the send path: parse the subject, text and html
// sources, snapshot the values they read (engine/render.h SnapshotVars), render the job from
// that snapshot as the sender does, and build the message (mail/message.h BuildMessage).
// Invariants: the snapshot always renders; the render from it equals the render from the
// scope; and the message's header section is made only of the headers BuildMessage writes,
// each once, in lines without CR or LF of their own, folded under 998 bytes (RFC 5322).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_scope.h"
#include "journeyd/engine/render.h"
#include "journeyd/flow/template.h"
#include "journeyd/mail/message.h"

using namespace journeyd;

namespace {

// What the sender adds to a job's own values: the names SnapshotVars leaves out because the
// job carries them (its time, its unsubscribe link, its flow and step).
class JobScope final : public flow::Scope {
 public:
  JobScope(const flow::Scope& values, const engine::SendJob& job) : values_(values), job_(job) {}
  flow::Value Lookup(const flow::Path& p) const override {
    if (p.root == flow::Root::kVar && p.segments.size() == 1) {
      if (p.segments[0] == "unsubscribe_url") return flow::Value::String(job_.unsubscribe_url);
      if (p.segments[0] == "flow_id") return flow::Value::String(job_.flow);
      if (p.segments[0] == "step_id") return flow::Value::String(job_.step);
    }
    if (p.root == flow::Root::kNow) return flow::Value::Time(job_.at);
    return values_.Lookup(p);
  }
  TimePoint Now() const override { return job_.at; }

 private:
  const flow::Scope& values_;
  const engine::SendJob& job_;
};

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

std::optional<flow::TextTemplate> Parse(const std::string& source) {
  flow::TemplateError error;
  std::optional<flow::TextTemplate> t = flow::TextTemplate::Parse(source, &error);
  if (!t && (error.offset > source.size() || error.message.empty())) Fail("bad error", source);
  return t;
}

void CheckHeaders(std::string_view data) {
  static const std::set<std::string_view> kNames = {"From",
                                                    "To",
                                                    "Subject",
                                                    "Date",
                                                    "Message-ID",
                                                    "MIME-Version",
                                                    "X-Journeyd-Flow",
                                                    "X-Journeyd-Step",
                                                    "List-Unsubscribe",
                                                    "List-Unsubscribe-Post",
                                                    "Content-Type",
                                                    "Content-Transfer-Encoding"};
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) Fail("no end of headers", data);
  std::string_view head = data.substr(0, end + 2);
  std::set<std::string_view> seen;
  while (!head.empty()) {
    const size_t crlf = head.find("\r\n");
    const std::string_view line = head.substr(0, crlf);
    head.remove_prefix(crlf + 2);
    if (line.find_first_of("\r\n") != std::string_view::npos) Fail("CR or LF in a header", line);
    if (line.size() > 998) Fail("header line over 998 bytes", line);
    if (line.empty()) Fail("empty header line", data);
    if (line[0] == ' ' || line[0] == '\t') continue;  // folded
    const std::string_view name = line.substr(0, line.find(':'));
    if (!kNames.contains(name) || !seen.insert(name).second) Fail("unexpected header", line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string choice = in.ConsumeRandomLengthString(16);
  const bool marketing = in.ConsumeBool();
  const bool has_html = in.ConsumeBool();
  const std::string to = in.ConsumeBool() ? in.ConsumeRandomLengthString(64) : "anna@example.com";
  const std::string subject_src = in.ConsumeRandomLengthString(512);
  const std::string html_src = has_html ? in.ConsumeRandomLengthString(1024) : "";
  const std::string text_src = in.ConsumeRemainingBytesAsString();

  std::optional<flow::TextTemplate> subject = Parse(subject_src);
  std::optional<flow::TextTemplate> text = Parse(text_src);
  std::optional<flow::TextTemplate> html;
  if (has_html) html = Parse(html_src);
  if (!subject || !text || (has_html && !html)) return 0;

  flow::Template t;
  t.name = "fuzz";
  t.subject = std::move(*subject);
  t.text = std::move(*text);
  t.html = std::move(html);

  // Only what a state can hold: the sender renders from the job's snapshot of the customer's
  // values, and those were checked on the way in (a NaN or invalid UTF-8 is no such value).
  fuzz::FuzzScope scope(choice, /*as_stored=*/true);
  engine::SendJob job;
  job.job_id = "c1:fuzz:1:s1";
  job.customer_id = "c1";
  job.flow = "fuzz";
  job.step = "s1";
  job.marketing = marketing;
  job.template_name = "fuzz";
  job.to = to;
  job.unsubscribe_url = marketing ? "https://shop.example/unsubscribe?token=a.b.c" : "";
  job.at = scope.Now();
  job.vars = engine::SnapshotVars(t, scope);
  std::string error;
  if (!engine::RenderSendJob(t, job, &error)) Fail("snapshot does not render", error);
  if (job.text != t.text.Render(JobScope(scope, job), false)) {
    Fail("text differs from the scope's", job.text);
  }

  mail::MessageOptions options;
  options.from = "Shop <news@shop.example>";
  options.unsubscribe_mailto = "unsubscribe@shop.example";
  std::optional<mail::BuiltMessage> m =
      mail::BuildMessage(job, options, FromUnixMillis(1779278400000), &error);
  if (!m) return 0;
  CheckHeaders(m->data);
  return 0;
}
