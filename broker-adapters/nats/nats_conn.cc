#include "broker-adapters/nats/nats_conn.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "config/values.h"

namespace sluice::nats {
namespace {


Error bad_option(const BrokerConfig& cfg, const std::string& key, const std::string& why) {
  return Error{Errc::invalid_argument,
               "broker '" + cfg.name + "': option '" + key + "': " + why};
}

Result<int64_t> parse_int(const BrokerConfig& cfg, const std::string& key,
                          const std::string& v, int64_t min) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < min)
    return bad_option(cfg, key, "expected an integer >= " + std::to_string(min) + ", got " +
                                    config::quote(v));
  return n;
}

Result<Millis> parse_dur(const BrokerConfig& cfg, const std::string& key,
                         const std::string& v) {
  auto d = parse_duration(v);
  if (!d || d.value().count() <= 0 || d.value() > std::chrono::hours(24))
    return bad_option(cfg, key, "expected a duration in 1ms..24h like 30s, got " +
                                    config::quote(v));
  return d.value();
}

bool is_connection_status(natsStatus s) {
  return s == NATS_TIMEOUT || s == NATS_NO_SERVER || s == NATS_CONNECTION_CLOSED ||
         s == NATS_CONNECTION_DISCONNECTED || s == NATS_STALE_CONNECTION ||
         s == NATS_IO_ERROR || s == NATS_NO_RESPONDERS || s == NATS_SLOW_CONSUMER;
}

}  // namespace

Result<NatsSettings> parse_settings(const BrokerConfig& cfg) {
  NatsSettings s;
  s.urls = cfg.nats().urls;
  if (s.urls.empty()) s.urls.push_back("nats://127.0.0.1:4222");
  s.name = "sluice-" + cfg.name;
  for (const auto& [key, v] : cfg.nats().options) {
    if (key == "user") s.user = v;
    else if (key == "password") s.password = v;
    else if (key == "token") s.token = v;
    else if (key == "name") s.name = v;
    else if (key == "creds") s.creds = v;
    else if (key == "tls") {
      if (v != "true" && v != "false") return bad_option(cfg, key, "expected true or false");
      s.tls = v == "true";
    } else if (key == "tls_ca") s.tls_ca = v;
    else if (key == "tls_cert") s.tls_cert = v;
    else if (key == "tls_key") s.tls_key = v;
    else if (key == "tls_hostname") s.tls_hostname = v;
    else if (key == "connect_timeout") { SLUICE_TRY(x, parse_dur(cfg, key, v)); s.connect_timeout = x; }
    else if (key == "reconnect_wait") { SLUICE_TRY(x, parse_dur(cfg, key, v)); s.reconnect_wait = x; }
    else if (key == "publish_timeout") { SLUICE_TRY(x, parse_dur(cfg, key, v)); s.publish_timeout = x; }
    else if (key == "ack_wait") { SLUICE_TRY(x, parse_dur(cfg, key, v)); s.ack_wait = x; }
    else if (key == "max_ack_pending") {
      SLUICE_TRY(x, parse_int(cfg, key, v, 1));
      s.max_ack_pending = x;
      s.max_ack_pending_set = true;
    } else if (key == "key_header") {
      if (v.empty() || v.find_first_of(" \t\r\n:") != std::string::npos)
        return bad_option(cfg, key, "expected a header name, got '" + v + "'");
      s.key_header = v;
    } else if (key == "key_token") {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v == "last") n = -1;
      else if (ec != std::errc{} || p != v.data() + v.size() || n < -255 || n > 255)
        return bad_option(cfg, key,
                          "expected a subject token position (1 = first, -1 or last = last, 0 = "
                          "none), got '" + v + "'");
      s.key_token = static_cast<int>(n);
    }
    else if (key == "fetch_batch") {
      SLUICE_TRY(n, parse_int(cfg, key, v, 1));
      s.fetch_batch = static_cast<int>(std::min<int64_t>(n, 10000));
    } else {
      return bad_option(cfg, key,
                        "unknown option (supported: user, password, token, name, creds, tls, "
                        "tls_ca, tls_cert, tls_key, tls_hostname, connect_timeout, "
                        "reconnect_wait, publish_timeout, ack_wait, max_ack_pending, "
                        "fetch_batch, key_header, key_token)");
    }
  }
  if (s.user.empty() != s.password.empty())
    return bad_option(cfg, s.user.empty() ? "password" : "user",
                      "user and password go together");
  if (s.tls_cert.empty() != s.tls_key.empty())
    return bad_option(cfg, s.tls_cert.empty() ? "tls_key" : "tls_cert",
                      "tls_cert and tls_key go together");
  return s;
}

Error nats_error(std::string_view what, natsStatus s, Errc code) {
  std::string msg(what);
  msg += ": ";
  msg += natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail && *detail && last == s) {
    msg += " (";
    msg += detail;
    msg += ")";
  }
  if (is_connection_status(s)) return Error{Errc::unavailable, std::move(msg), true};
  return Error{code, std::move(msg), false};
}

Error js_error(std::string_view what, natsStatus s, jsErrCode jerr) {
  Error e = nats_error(what, s);
  if (jerr != 0) e.message += " [jetstream error " + std::to_string(static_cast<int>(jerr)) + "]";
  if (jerr == JSStreamNotFoundErr || jerr == JSConsumerNotFoundErr || jerr == JSNoMessageFoundErr ||
      s == NATS_NOT_FOUND)
    e.code = Errc::not_found;
  return e;
}

Result<std::unique_ptr<NatsConn>> NatsConn::connect(const BrokerConfig& cfg,
                                                    const NatsSettings& s) {
  std::unique_ptr<NatsConn> c(new NatsConn(cfg.name, s));
  const std::string who = "nats broker '" + cfg.name + "'";
  natsStatus st = natsOptions_Create(&c->opts_);
  if (st != NATS_OK) return nats_error(who + ": natsOptions_Create", st, Errc::internal);
  std::vector<const char*> servers;
  for (const auto& u : s.urls) servers.push_back(u.c_str());
  auto check = [&](const char* what, natsStatus r) -> Result<void> {
    if (r != NATS_OK) return nats_error(who + ": " + what, r, Errc::invalid_argument);
    return ok();
  };
  natsOptions* o = c->opts_;
  SLUICE_TRY(check("url", natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size()))));
  SLUICE_TRY(check("name", natsOptions_SetName(o, s.name.c_str())));
  SLUICE_TRY(check("connect_timeout", natsOptions_SetTimeout(o, s.connect_timeout.count())));
  SLUICE_TRY(check("reconnect", natsOptions_SetMaxReconnect(o, -1)));  // forever
  SLUICE_TRY(check("reconnect_wait", natsOptions_SetReconnectWait(o, s.reconnect_wait.count())));
  SLUICE_TRY(check("reconnect buffer", natsOptions_SetReconnectBufSize(o, 64 << 20)));
  if (!s.user.empty()) {
    SLUICE_TRY(check("user", natsOptions_SetUserInfo(o, s.user.c_str(), s.password.c_str())));
  }
  if (!s.token.empty()) {
SLUICE_TRY(check("token", natsOptions_SetToken(o, s.token.c_str())));
  }
  if (!s.creds.empty()) {
    SLUICE_TRY(check("creds", natsOptions_SetUserCredentialsFromFiles(o, s.creds.c_str(), nullptr)));
  }
  if (s.tls || !s.tls_ca.empty() || !s.tls_cert.empty()) {
    SLUICE_TRY(check("tls", natsOptions_SetSecure(o, true)));
  }
  if (!s.tls_ca.empty()) {
    SLUICE_TRY(check("tls_ca", natsOptions_LoadCATrustedCertificates(o, s.tls_ca.c_str())));
  }
  if (!s.tls_cert.empty()) {
    SLUICE_TRY(check("tls_cert", natsOptions_LoadCertificatesChain(o, s.tls_cert.c_str(),
                                                                   s.tls_key.c_str())));
  }
  if (!s.tls_hostname.empty()) {
    SLUICE_TRY(check("tls_hostname", natsOptions_SetExpectedHostname(o, s.tls_hostname.c_str())));
  }
  NatsConn* self = c.get();
  SLUICE_TRY(check("callbacks", natsOptions_SetDisconnectedCB(o, &NatsConn::on_disconnected, self)));
  SLUICE_TRY(check("callbacks", natsOptions_SetReconnectedCB(o, &NatsConn::on_reconnected, self)));
  SLUICE_TRY(check("callbacks", natsOptions_SetClosedCB(o, &NatsConn::on_closed, self)));
  SLUICE_TRY(check("callbacks", natsOptions_SetErrorHandler(o, &NatsConn::on_async_error, self)));

  std::string urls;
  for (const auto& u : s.urls) urls += (urls.empty() ? "" : ",") + u;
  st = natsConnection_Connect(&c->nc_, o);
  if (st != NATS_OK) {
    // At start-up an unreachable url is a configuration problem (exit 2): once
    // connected, outages are ridden out by reconnecting forever.
    Error e = nats_error(who + ": cannot connect to " + urls, st);
    e.message += " (check the broker's url and that nats-server is running)";
    e.code = Errc::invalid_argument;
    e.retriable = false;
    c->nc_ = nullptr;
    return e;
  }
  c->connected_ = true;
  st = natsConnection_JetStream(&c->js_, c->nc_, nullptr);
  if (st != NATS_OK) return nats_error(who + ": JetStream context", st, Errc::internal);
  char url[256] = {0};
  natsConnection_GetConnectedUrl(c->nc_, url, sizeof url);
  spdlog::info("{}: connected to {}", who, url);
  return c;
}

void NatsConn::close() {
  closing_ = true;
  if (nc_) natsConnection_Close(nc_);
}

NatsConn::~NatsConn() {
  if (js_) jsCtx_Destroy(js_);
  if (nc_) {
    close();
    {
      // Callbacks may still be queued on nats.c's thread: wait for the last one.
      std::unique_lock lk(closed_mu_);
      if (!closed_cv_.wait_for(lk, std::chrono::seconds(5), [&] { return closed_cb_done_; }))
        spdlog::warn("nats broker '{}': no closed callback within 5 s", broker_);
    }
    natsConnection_Destroy(nc_);
  }
  if (opts_) natsOptions_Destroy(opts_);
}

void NatsConn::on_disconnected(natsConnection*, void* self) {
  auto* c = static_cast<NatsConn*>(self);
  if (c->connected_.exchange(false) && !c->closing_) {
    c->disconnects_.fetch_add(1);
    spdlog::warn("nats broker '{}': disconnected; reconnecting every {} ms", c->broker_,
                 c->settings_.reconnect_wait.count());
  }
}

void NatsConn::on_reconnected(natsConnection* nc, void* self) {
  auto* c = static_cast<NatsConn*>(self);
  c->connected_ = true;
  c->reconnects_.fetch_add(1);
  char url[256] = {0};
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  spdlog::info("nats broker '{}': reconnected to {}", c->broker_, url);
}

void NatsConn::on_closed(natsConnection*, void* self) {
  auto* c = static_cast<NatsConn*>(self);
  c->connected_ = false;
  if (!c->closing_) spdlog::warn("nats broker '{}': connection closed", c->broker_);
  std::lock_guard lk(c->closed_mu_);  // last touch of `c`: the destructor waits for it
  c->closed_cb_done_ = true;
  c->closed_cv_.notify_all();
}

void NatsConn::on_async_error(natsConnection*, natsSubscription*, natsStatus err, void* self) {
  auto* c = static_cast<NatsConn*>(self);
  c->probe_->count(NatsError::async);
  if (auto quiet = c->async_log_.allow())
    spdlog::warn("nats broker '{}': asynchronous error: {}{}", c->broker_, natsStatus_GetText(err),
                 suppressed_note(*quiet));
}

}  // namespace sluice::nats
