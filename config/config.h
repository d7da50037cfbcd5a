// The sluice configuration (PRODUCT.md section 3) as plain structs, and the loader.
//
// Loaded once at start-up and never mutated afterwards (STYLE.md); components get
// const references. Relative paths in the file (broker `path`, function `command`
// working directory, `bearer_tokens_file`) are resolved against the directory of the
// config file; `base_dir` holds it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/brokers/kafka.h"
#include "config/brokers/local.h"
#include "config/brokers/nats.h"
#include "core/result.h"
#include "filter/subscription_filter.h"

namespace sluice {

using Millis = std::chrono::milliseconds;

enum class BrokerKind { local, kafka, nats };
enum class RuntimeKind { exec, stdio, http, inproc };
enum class Ordering { partition, key, none };
enum class BackoffKind { exponential, fixed };
enum class Jitter { full, equal, none };
enum class RetryMode { inline_mode, topic };
// What happens to an event older than a function's max_age (dispatcher/age.h).
enum class OnExpired { dead_letter, drop };
enum class Scheduling { batch, normal };

const char* to_string(BrokerKind) noexcept;
const char* to_string(RuntimeKind) noexcept;
const char* to_string(Ordering) noexcept;

// One entry of `brokers:`. The settings of each kind are a struct of their own
// (config/brokers/<kind>.h); the alternative held is the broker's kind.
struct BrokerConfig {
  using Settings = std::variant<LocalBrokerConfig, KafkaBrokerConfig, NatsBrokerConfig>;

  std::string name;
  int line = 0;  // where it was declared (for messages)
  Settings settings;

  BrokerKind kind() const noexcept { return static_cast<BrokerKind>(settings.index()); }
  // The settings of one kind; asking for another kind than the broker's is a programming
  // error (aborts).
  const LocalBrokerConfig& local() const;
  const KafkaBrokerConfig& kafka() const;
  const NatsBrokerConfig& nats() const;
  LocalBrokerConfig& local();
  KafkaBrokerConfig& kafka();
  NatsBrokerConfig& nats();

  bool operator==(const BrokerConfig&) const = default;
};

// One `http.callback_allow` entry: a network (CIDR or one address) or a host name as
// written in callback URLs, with an optional port (parse_callback_allow).
struct CallbackAllow {
  std::string text;                   // as written (for messages)
  std::string host;                   // a host name in lower case; empty for a network
  std::array<uint8_t, 16> network{};  // network address bytes (IPv4: the first 4)
  bool v6 = false;
  uint8_t prefix = 0;                 // CIDR prefix length
  uint16_t port = 0;                  // 0 = any port

  bool operator==(const CallbackAllow&) const = default;
};
// "10.0.0.0/8", "fd00::/8", "127.0.0.1", "127.0.0.1:9000", "[::1]:8443", "hooks.example.com",
// "hooks.example.com:8443"; otherwise an invalid_argument error saying why.
Result<CallbackAllow> parse_callback_allow(std::string_view text);

struct HttpConfig {
  bool enabled = false;
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 = any free port
  std::string bearer_tokens_file;          // empty = no auth; absolute after loading
  uint64_t max_body = 1 << 20;             // bytes
  // Connections held open at once; 0 = derived from the fd limit at start
  // (core/fd_limit.h: default_max_connections). Over it, new ones get a canned 503.
  uint32_t max_connections = 0;
  Millis idle_timeout{60000};  // a connection with no byte read or written is closed
  // Threads running the HTTP io_context; 0 = derived from the CPU count at start
  // (http::default_io_threads).
  uint32_t io_threads = 0;
  // Callbacks of POST /async-function (docs/SECURITY.md, "Callbacks").
  std::vector<CallbackAllow> callback_allow;  // destinations opened beyond public addresses
  Millis callback_timeout{10000};             // one attempt, resolve to answer, in total
  uint32_t callback_max_attempts = 10;        // then the callback is given up
  uint32_t callback_concurrency = 64;         // attempts in flight at once (per host: <= 8)

  bool operator==(const HttpConfig&) const = default;
};

struct MetricsConfig {
  bool enabled = false;
  std::string listen = "127.0.0.1:9464";
  std::string bearer_tokens_file;  // empty = no auth; absolute after loading

  bool operator==(const MetricsConfig&) const = default;
};

struct EngineConfig {
  Millis drain_timeout{30000};  // SIGTERM: how long in-flight work may finish
  // The key(s) that seal sluice's control headers (core/seal.h); created with a
  // random key when absent. Absolute after loading; default <config dir>/data/control.key.
  std::string control_key_file;

  bool operator==(const EngineConfig&) const = default;
};

struct Target {
  std::string broker;
  std::string topic;

  bool operator==(const Target&) const = default;
};

struct Subscription {
  std::string broker;
  std::string topic;
  Ordering ordering = Ordering::partition;
  // `filter:` (compiled at load; empty = every event). Events it does not pass are
  // committed without an invocation (docs/FILTERS.md).
  filter::SubscriptionFilter filter;

  bool operator==(const Subscription&) const = default;
};

struct RetryPolicy {
  uint32_t max_attempts = 3;  // including the first attempt
  BackoffKind backoff = BackoffKind::exponential;
  Millis initial{200};
  Millis max{30000};
  Jitter jitter = Jitter::full;
  RetryMode mode = RetryMode::inline_mode;
  // Invocations that end in `crash` before the event is dead-lettered as `crash`
  // (also the broker deliveries left unsettled by a dying engine: dispatcher/crash.h).
  uint32_t max_crashes = 2;

  bool operator==(const RetryPolicy&) const = default;
};

// functions[].rate_limit: a token bucket for the function's invocations
// (dispatcher/rate_limit.h).
struct RateLimitConfig {
  double per_second = 0;  // > 0; fractions allowed
  uint32_t burst = 1;     // >= 1; default: per_second rounded up
  bool by_key = false;    // `by: key`: one bucket per event key

  bool operator==(const RateLimitConfig&) const = default;
};

struct WorkersConfig {
  // True when the function has a `workers:` stanza: the pool follows lag between min
  // and max. Without one the pool is fixed at `concurrency`.
  bool autoscale = false;
  uint32_t min = 0;
  uint32_t max = 0;          // 0 = same as concurrency
  uint64_t target_lag = 500; // events of lag per worker
  Millis idle_after{60000};

  bool operator==(const WorkersConfig&) const = default;
};

// Resource limits of a function's processes (setrlimit in the child before exec).
// 0 = not set: the process inherits sluice's own limit.
struct LimitsConfig {
  uint64_t memory = 0;       // bytes; RLIMIT_DATA (heap and private writable mappings)
  uint64_t open_files = 0;   // RLIMIT_NOFILE
  uint64_t cpu_seconds = 0;  // RLIMIT_CPU (SIGXCPU at the limit, SIGKILL one second later)

  bool operator==(const LimitsConfig&) const = default;
};

struct FunctionConfig {
  std::string name;
  int line = 0;
  RuntimeKind runtime = RuntimeKind::exec;
  std::vector<std::string> command;          // argv; argv[0] looked up in PATH
  std::map<std::string, std::string> env;    // the only env the process gets (+ PATH, HOME)
  Millis timeout{30000};
  uint32_t concurrency = 4;                  // max events in flight
  uint64_t max_inflight_bytes = 64ull << 20; // byte bound of the same budget
  WorkersConfig workers;
  std::vector<Subscription> subscribe;
  RetryPolicy retry;
  Target dead_letter;               // default: <name>.dlq on the first subscription's broker
  std::optional<Target> output;     // results are published here
  // output.content_type: a result event's datacontenttype when the result names none.
  std::string output_content_type = "application/octet-stream";
  LimitsConfig limits;              // exec, stdio and http processes
  std::string ready_path = "/healthz";  // http runtime: GET here must answer 2xx before events
  Millis start_timeout{10000};      // stdio handshake / http readiness must finish within this
  // inproc only: call the function on the dispatcher thread (no hand-off, no
  // parallelism; a slow call stalls every function).
  bool inline_calls = false;
  // Starts paused (Dispatcher::set_paused): nothing runs until `sluice resume`.
  bool paused = false;
  std::optional<RateLimitConfig> rate_limit;  // none: not limited
  uint32_t max_per_key = 0;  // invocations in flight per event key (ordering: none); 0 = no limit
  // Event age (dispatcher/age.h): an event older than this when its turn comes is
  // dead-lettered as `expired` (or dropped); 0 = no limit.
  Millis max_age{0};
  OnExpired on_expired = OnExpired::dead_letter;
  // stdio only: fork new workers from a pre-started template process when the command
  // supports it (workers/worker_template.h).
  bool worker_template = true;
  // The scheduling policy of the function's processes (workers/process.h).
  Scheduling scheduling = Scheduling::batch;

  bool operator==(const FunctionConfig&) const = default;
};

struct Config {
  std::string file;      // the config file as given
  std::string base_dir;  // its directory, absolute
  std::vector<BrokerConfig> brokers;  // never empty after loading (default: local)
  HttpConfig http;
  MetricsConfig metrics;
  EngineConfig engine;
  std::vector<FunctionConfig> functions;

  const BrokerConfig* broker(std::string_view name) const;
  const FunctionConfig* function(std::string_view name) const;

  bool operator==(const Config&) const = default;
};

// One problem in a config file, with the field path and the 1-based line it is about.
struct ConfigError {
  std::string path;  // field path, e.g. functions[0].retry.max_attempts
  int line = 0;      // 1-based; 0 when not tied to a line
  std::string message;
  std::string file;  // the config file as given; empty when loaded from a string
  // "sluice.yaml:12: functions[0].timeout: expected a duration like 5s, got \"five\""
  // ("<config>" stands in for a missing file; line and path are left out when unknown).
  std::string to_string() const;
};

// Parses and validates; on failure returns every problem found, not just the first.
struct LoadResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
};
LoadResult load_config_file(const std::string& path);
LoadResult load_config_string(const std::string& yaml, const std::string& base_dir);

// "5s", "200ms", "1m", "1h30m", "250us" -> duration; plain integers are rejected.
Result<Millis> parse_duration(std::string_view text);
// "1MiB", "512KiB", "10MB", "1024" -> bytes.
Result<uint64_t> parse_size(std::string_view text);

}  // namespace sluice
