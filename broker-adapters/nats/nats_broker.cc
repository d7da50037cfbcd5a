#include "broker-adapters/nats/nats_broker.h"

#include <spdlog/spdlog.h>

#include "broker-adapters/nats/core_source.h"

namespace sluice::nats {

Result<std::unique_ptr<NatsBroker>> NatsBroker::open(const BrokerConfig& cfg) {
  if (cfg.kind() != BrokerKind::nats)
    return Error{Errc::invalid_argument, "broker '" + cfg.name + "' is not of kind nats"};
  SLUICE_TRY(settings, parse_settings(cfg));
  std::unique_ptr<NatsBroker> b(new NatsBroker());
  b->group_ = cfg.nats().group;
  SLUICE_TRY(conn, NatsConn::connect(cfg, settings));
  b->conn_ = std::move(conn);
  if (cfg.nats().jetstream) {
SLUICE_TRY(b->setup_stream(cfg));
  }
  SLUICE_TRY(sink, NatsSink::open(*b->conn_, b->stream_, b->subjects_));
  b->sink_ = std::move(sink);
  if (!b->stream_.empty()) b->browser_ = std::make_unique<NatsBrowser>(*b->conn_, b->stream_);
  return b;
}

namespace {
std::string who_stream(const BrokerConfig& cfg) {
  return "nats broker '" + cfg.name + "': stream '" + cfg.nats().jetstream->stream + "'";
}
}  // namespace

Result<void> check_jetstream(const BrokerConfig& cfg) {
  if (!cfg.nats().jetstream) return ok();
  const std::string& stream = cfg.nats().jetstream->stream;
  if (stream.empty() || stream.find_first_of(".*> \t") != std::string::npos)
    return Error{Errc::invalid_argument, who_stream(cfg) + ": not a valid stream name"};
  return ok();
}

Result<void> NatsBroker::setup_stream(const BrokerConfig& cfg) {
  const JetStreamConfig& js = *cfg.nats().jetstream;
  const std::string who = who_stream(cfg);
  SLUICE_TRY(check_jetstream(cfg));
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, conn_->js(), js.stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    for (int i = 0; si->Config && i < si->Config->SubjectsLen; ++i)
      subjects_.emplace_back(si->Config->Subjects[i]);
    jsStreamInfo_Destroy(si);
    for (const auto& want : js.subjects) {
      bool covered = false;
      for (const auto& have : subjects_) covered = covered || subject_covers(have, want);
      if (!covered)
        spdlog::warn("{}: exists but does not cover configured subject '{}' (left unchanged)",
                     who, want);
    }
    stream_ = js.stream;
    return ok();
  }
  if (jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND) return js_error(who, s, jerr);
  if (!js.create)
    return Error{Errc::invalid_argument,
                 who + " does not exist on the server (create it, or set jetstream.create: true)"};
  if (js.subjects.empty())
    return Error{Errc::invalid_argument, who + ": jetstream.subjects is needed to create it"};
  std::vector<const char*> subs;
  for (const auto& x : js.subjects) subs.push_back(x.c_str());
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = js.stream.c_str();
  sc.Subjects = subs.data();
  sc.SubjectsLen = static_cast<int>(subs.size());
  sc.Storage = js_FileStorage;
  s = js_AddStream(&si, conn_->js(), &sc, nullptr, &jerr);
  if (s != NATS_OK) {
    Error e = js_error(who + ": create", s, jerr);
    if (jerr != 0) e.code = Errc::invalid_argument;  // the server refused the configuration
    return e;
  }
  jsStreamInfo_Destroy(si);
  spdlog::info("{}: created (file storage)", who);
  subjects_ = js.subjects;
  stream_ = js.stream;
  return ok();
}

NatsBroker::~NatsBroker() {
  stop();
  sink_.reset();
  browser_.reset();
  conn_.reset();
}

Result<std::unique_ptr<Source>> NatsBroker::make_source(const std::string& topic,
                                                        const std::string& group, const SourceOptions& opts) {
  const std::string& g = group.empty() ? group_ : group;
  if (stream_.empty()) {
    SLUICE_TRY(src, CoreSource::open(*conn_, topic, g));
    return std::unique_ptr<Source>(std::move(src));
  }
  const NatsSettings& s = conn_->settings();
  // MaxAckPending follows the consumer's in-flight budget (what the functions it
  // feeds may hold, core/broker.h held_budget: more than they run, so the next
  // fetch is answered while the current batch runs) unless the broker's `options.max_ack_pending` pins it: an explicit
  // setting wins (e.g. a larger window so `ordering: key` finds other keys to run).
  const int64_t max_ack_pending = s.max_ack_pending_set || opts.max_in_flight == 0
                                      ? s.max_ack_pending
                                      : static_cast<int64_t>(opts.max_in_flight);
  if (opts.max_run_time > s.ack_wait)
    spdlog::info("nats broker '{}': {}/{}: the function may run {} ms, longer than ack_wait "
                 "{} ms: in-progress keep-alives every {} ms hold its messages",
                 name(), topic, g, opts.max_run_time.count(), s.ack_wait.count(),
                 (s.ack_wait / 2).count());
  SLUICE_TRY(src, make_jetstream_source(topic, g, {s.ack_wait, max_ack_pending, s.fetch_batch}));
  return std::unique_ptr<Source>(std::move(src));
}

Result<std::unique_ptr<JetStreamSource>> NatsBroker::make_jetstream_source(
    const std::string& topic, const std::string& group, JsSourceOptions opt) {
  const std::string who = "nats broker '" + std::string(name()) + "': source '" + topic + "'";
  if (stream_.empty())
    return Error{Errc::invalid_argument, who + ": the broker has no jetstream stream"};
  bool covered = false;
  for (const auto& p : subjects_) covered = covered || subject_covers(p, topic);
  if (!covered)
    return Error{Errc::invalid_argument,
                 who + ": not covered by the subjects of stream '" + stream_ + "'"};
  return JetStreamSource::open(*conn_, stream_, topic, group.empty() ? group_ : group, opt);
}

void NatsBroker::stop() {
  if (stopped_ || !conn_) return;
  stopped_ = true;
  if (!sink_) return conn_->close();
  if (auto r = sink_->flush(conn_->settings().publish_timeout); !r)
    spdlog::warn("{} (stopping)", r.error().message);
  sink_->stop();
  conn_->close();
}

Result<std::unique_ptr<Broker>> make_nats_broker(const BrokerConfig& cfg) {
  SLUICE_TRY(b, nats::NatsBroker::open(cfg));
  return std::unique_ptr<Broker>(std::move(b));
}

}  // namespace sluice::nats
