// NatsConn: one nats.c connection (+ JetStream context) per `brokers:` entry, and
// the helpers every NATS file shares (status -> Error, subject matching, options).
//
// Ownership and threads: owned by NatsBroker; Sources and the Sink it makes keep a
// reference and must be destroyed first. nats.c runs its own threads (reader,
// flusher, reconnect); its connection callbacks only log and update atomics here.
// It owns the adapter's NatsProbe (shared with the broker's metrics export).
// natsConnection and jsCtx are thread-safe, so every method may be called from any
// thread.
#pragma once

#include "broker-adapters/nats/nats_probe.h"
#include "broker-adapters/nats/nats_subject.h"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/log_limit.h"
#include "core/result.h"

namespace sluice::nats {

// The BrokerConfig `options` this adapter understands (README.md lists them).
struct NatsSettings {
  std::vector<std::string> urls;        // default nats://127.0.0.1:4222
  std::string user, password, token, name, creds;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_hostname;
  Millis connect_timeout{2000};
  Millis reconnect_wait{1000};
  Millis publish_timeout{5000};  // wait for a JetStream publish ack
  Millis ack_wait{30000};        // default AckWait of JetStream sources
  int64_t max_ack_pending = 1000;  // used when the engine gives no in-flight budget
  bool max_ack_pending_set = false;  // pinned in `options`: wins over the engine's budget
  int fetch_batch = 1024;        // upper bound of one pull request
  // Ordering key of a message (ordering: key): the value of header `key_header`,
  // else the CloudEvents partitionkey, else subject token `key_token` (1-based,
  // negative counts from the end, 0 = none: such events run unordered).
  std::string key_header = "sluice-key";
  int key_token = -1;
};

// Checks and converts `cfg.options`; an unknown key or a bad value is an
// Errc::invalid_argument naming the broker and the key.
Result<NatsSettings> parse_settings(const BrokerConfig& cfg);

// "what: <status text> (<nats_GetLastError>)"; unavailable (retriable) for
// connection-level failures and timeouts, `code` otherwise.
Error nats_error(std::string_view what, natsStatus s, Errc code = Errc::io);
// Same for JetStream API calls that also return a jsErrCode.
Error js_error(std::string_view what, natsStatus s, jsErrCode jerr);

// subject_matches / subject_covers: nats_subject.h (config uses them too).

class NatsConn {
 public:
  static Result<std::unique_ptr<NatsConn>> connect(const BrokerConfig& cfg,
                                                   const NatsSettings& s);
  ~NatsConn();
  NatsConn(const NatsConn&) = delete;
  NatsConn& operator=(const NatsConn&) = delete;

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }  // management calls (stream/consumer/msg get)
  const std::string& broker() const { return broker_; }
  const NatsSettings& settings() const { return settings_; }
  // Closes the connection: no nats.c callback runs after it returns. Idempotent.
  void close();
  bool connected() const { return connected_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  uint64_t disconnects() const { return disconnects_.load(); }
  // The adapter's degraded-mode counters (this connection's and its sources').
  NatsProbe& probe() const { return *probe_; }
  std::shared_ptr<const NatsProbe> shared_probe() const { return probe_; }

 private:
  NatsConn(std::string broker, NatsSettings s) : broker_(std::move(broker)), settings_(std::move(s)) {}
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);
  static void on_closed(natsConnection* nc, void* self);
  static void on_async_error(natsConnection* nc, natsSubscription* sub, natsStatus err,
                             void* self);

  const std::string broker_;
  const NatsSettings settings_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};  // close() called: disconnects are expected
  // nats.c calls the connection callbacks on its own thread, also after Close()
  // returned; the closed callback is the last one. The destructor waits for it.
  std::mutex closed_mu_;
  std::condition_variable closed_cv_;
  bool closed_cb_done_ = false;
  std::atomic<uint64_t> reconnects_{0}, disconnects_{0};
  const std::shared_ptr<NatsProbe> probe_ = std::make_shared<NatsProbe>(kNatsErrors);
  LogLimit async_log_;  // on_async_error: a slow consumer repeats it per message
};

}  // namespace sluice::nats
