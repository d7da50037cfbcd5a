#include "config/config_keys.h"

#include <charconv>
#include <cstdlib>
#include <string>

namespace sluice::config {

const EnumSpec kRuntime{"/$defs/function/properties/runtime",
                        {"exec", "stdio", "http", "inproc"}};
const EnumSpec kOrdering{"/$defs/subscription/properties/ordering", {"partition", "key", "none"}};
const EnumSpec kBackoff{"/$defs/retry/properties/backoff", {"exponential", "fixed"}};
const EnumSpec kJitter{"/$defs/retry/properties/jitter", {"full", "equal", "none"}};
const EnumSpec kMode{"/$defs/retry/properties/mode", {"inline", "topic"}};
const EnumSpec kOnExpired{"/$defs/function/properties/on_expired", {"dead_letter", "drop"}};
const EnumSpec kScheduling{"/$defs/function/properties/scheduling", {"batch", "normal"}};
const EnumSpec kKind{"/$defs/broker/oneOf", {"local", "kafka", "nats"}};

const EnumSpec kRateBy{"/$defs/rate_limit/properties/by", {"function", "key"}};

const std::vector<const EnumSpec*>& enums() {
  static const std::vector<const EnumSpec*> kEnums = {&kRuntime, &kOrdering, &kBackoff,
                                                      &kJitter,  &kMode,     &kKind,
                                                      &kRateBy, &kOnExpired, &kScheduling};
  return kEnums;
}

namespace {

using T = Type;

// Each section in document order: its name, schema pointer and docs heading.
struct SectionHead {
  std::string_view name, schema_pointer, doc_heading;
};
constexpr SectionHead kHeads[] = {
    {"root", "", "Top level"},
    {"broker_local", "/$defs/broker_local", "brokers.<name> (kind: local)"},
    {"broker_kafka", "/$defs/broker_kafka", "brokers.<name> (kind: kafka)"},
    {"broker_nats", "/$defs/broker_nats", "brokers.<name> (kind: nats)"},
    {"jetstream", "/$defs/jetstream", "brokers.<name>.jetstream"},
    {"http", "/$defs/http", "http"},
    {"http_auth", "/$defs/http_auth", "http.auth"},
    {"metrics", "/$defs/metrics", "metrics"},
    {"metrics_auth", "/$defs/metrics_auth", "metrics.auth"},
    {"engine", "/$defs/engine", "engine"},
    {"function", "/$defs/function", "functions[]"},
    {"workers", "/$defs/workers", "functions[].workers"},
    {"limits", "/$defs/limits", "functions[].limits"},
    {"subscription", "/$defs/subscription", "functions[].subscribe[]"},
    {"retry", "/$defs/retry", "functions[].retry"},
    {"rate_limit", "/$defs/rate_limit", "functions[].rate_limit"},
    {"target", "/$defs/target", "functions[].dead_letter"},
    {"output", "/$defs/output", "functions[].output"},
};

}  // namespace

const std::vector<Key>& keys() {
  static const std::vector<Key> kKeys = {
      // root
      {.section = "root", .name = "brokers", .type = T::broker_map, .of = "broker",
       .doc_default = "one `local` broker at `./data/sluice.db`",
       .doc = "The message brokers; the map key is the broker's name. At least one when present."},
      {.section = "root", .name = "http", .type = T::section, .of = "http",
       .doc_default = "absent = HTTP API off",
       .doc = "The HTTP API (PRODUCT.md §5). Writing the key, even empty, turns it on."},
      {.section = "root", .name = "metrics", .type = T::section, .of = "metrics",
       .doc_default = "absent = off",
       .doc = "The Prometheus `/metrics` endpoint. Writing the key turns it on."},
      {.section = "root", .name = "engine", .type = T::section, .of = "engine",
       .doc = "Engine-wide settings."},
      {.section = "root", .name = "functions", .type = T::section_list, .of = "function",
       .doc_default = "`[]`", .doc = "The functions and what they subscribe to."},

      // brokers.<name> (kind: local)
      {.section = "broker_local", .name = "kind", .type = T::kind, .of = "local",
       .required = true, .doc = "The embedded broker: a file, needs no server."},
      {.section = "broker_local", .name = "path", .type = T::path, .def = "./data/sluice.db",
       .doc = "The database file. One `sluice run` at a time per file (`<path>.lock`, "
              "docs/SECURITY.md)."},
      {.section = "broker_local", .name = "partitions", .type = T::integer, .def = "4",
       .min = "1", .max = "1024", .doc = "Partitions of topics created on first use."},
      {.section = "broker_local", .name = "group", .type = T::string, .def = "sluice",
       .doc = "Consumer group whose offsets are stored."},
      {.section = "broker_local", .name = "topics", .type = T::string_list, .def = "[]",
       .doc = "Topics that may be published to although no function subscribes to them "
              "(`POST /topics` answers 404 and `sluice publish` exits 2 for any other "
              "unknown topic, with a \"did you mean\"). Subscribed, output, retry and "
              "dead-letter topics are always known."},
      {.section = "broker_local", .name = "accept_any_topic", .type = T::boolean,
       .def = "false",
       .doc = "Accept publishes to every valid topic name, subscribed or not (the check "
              "`topics` relaxes is off)."},

      // brokers.<name> (kind: kafka)
      {.section = "broker_kafka", .name = "kind", .type = T::kind, .of = "kafka",
       .required = true, .doc = "Apache Kafka (or a compatible broker)."},
      {.section = "broker_kafka", .name = "bootstrap", .type = T::string, .required = true,
       .doc = "Bootstrap servers, `host:port[,host:port...]`. At start the cluster must answer "
              "within 10 s; one that does not is a configuration error (exit 2) naming the "
              "bootstrap and librdkafka's reason."},
      {.section = "broker_kafka", .name = "group", .type = T::string, .def = "sluice",
       .doc = "Consumer group id."},
      {.section = "broker_kafka", .name = "options", .type = T::string_map, .def = "{}",
       .doc = "Passed to librdkafka as-is (producer, consumers and lag readers alike); numbers "
              "and booleans are taken as written. An unknown property or a bad value is a "
              "configuration error naming it (exit 2); `group.id` (use `group`) and "
              "`enable.auto.offset.store` are sluice's. SASL/TLS, sluice's own defaults "
              "(idempotent producer, Java's murmur2 partitioner, cooperative-sticky, `earliest`, 16 MB prefetch) and "
              "faster failover (`session.timeout.ms`): "
              "[broker-adapters/kafka/README.md](../broker-adapters/kafka/README.md)."},

      // brokers.<name> (kind: nats)
      {.section = "broker_nats", .name = "kind", .type = T::kind, .of = "nats", .required = true,
       .doc = "NATS, core or JetStream."},
      {.section = "broker_nats", .name = "url", .type = T::nats_urls,
       .def = "nats://127.0.0.1:4222", .doc = "Server URLs, `nats://` or `tls://`."},
      {.section = "broker_nats", .name = "jetstream", .type = T::section, .of = "jetstream",
       .doc_default = "absent = core NATS", .doc = "Use a JetStream stream (below)."},
      {.section = "broker_nats", .name = "options", .type = T::string_map, .def = "{}",
       .doc = "Connection, TLS and consumer settings (table in broker-adapters/nats/README.md); "
              "unknown keys are rejected. `max_ack_pending` (default: what the function "
              "may hold, 2 × `concurrency` and at least 4096) pins the JetStream window; `ordering: key` orders by the header "
              "named `key_header` (default `sluice-key`), else the CloudEvents `partitionkey`, "
              "else subject token `key_token` (default `-1`, the last; 1-based, 0 = none)."},

      // brokers.<name>.jetstream
      {.section = "jetstream", .name = "stream", .type = T::string, .required = true,
       .doc = "Stream name."},
      {.section = "jetstream", .name = "subjects", .type = T::string_list, .required = true,
       .non_empty = true, .doc = "Subjects of the stream."},
      {.section = "jetstream", .name = "create", .type = T::boolean, .def = "false",
       .doc = "Create the stream at start when it does not exist."},

      // http
      {.section = "http", .name = "listen", .type = T::listen, .def = "127.0.0.1:8080",
       .doc = "Address of the HTTP API."},
      {.section = "http", .name = "auth", .type = T::section, .of = "http_auth",
       .doc_default = "no auth", .doc = "Authentication (below)."},
      {.section = "http", .name = "max_body", .type = T::size, .def = "1MiB", .min = "1B",
       .max = "1GiB", .doc = "Largest request body accepted."},
      {.section = "http", .name = "max_connections", .type = T::integer, .min = "1",
       .max = "10000000",
       .doc_default = "the fd limit less a reserve (a quarter of it, at least 256, at most "
                      "half), at most 65536",
       .doc = "Connections held open at once. Over it a new connection gets a canned `503` and "
              "is closed (counted in `sluice_http_connections_refused_total`). See "
              "[SECURITY.md](SECURITY.md#connections-and-overload)."},
      {.section = "http", .name = "idle_timeout", .type = T::duration, .def = "60s",
       .min = "1ms", .max = "24h",
       .doc = "A connection that reads or writes nothing for this long is closed (an idle "
              "keep-alive connection, or a client that sends its request too slowly)."},
      {.section = "http", .name = "io_threads", .type = T::integer, .min = "1", .max = "64",
       .doc_default = "half the CPUs, at least 2, at most 4",
       .doc = "Threads that read requests and write responses. One thread costs less per "
              "request (no cross-thread wake-ups) but falls behind when other processes "
              "compete for the CPUs."},
      {.section = "http", .name = "callback_allow", .type = T::string_list, .def = "[]",
       .doc = "Callback destinations opened beyond public addresses (see "
              "[SECURITY.md](SECURITY.md#callbacks)): a CIDR (`10.0.0.0/8`, `fd00::/8`), an "
              "address with an optional port (`127.0.0.1`, `127.0.0.1:9000`, `[::1]:8443`), or "
              "a host name as written in callback URLs with an optional port (`hooks.internal`, "
              "`hooks.internal:8443`)."},
      {.section = "http", .name = "callback_timeout", .type = T::duration, .def = "10s",
       .min = "1ms", .max = "1h",
       .doc = "One callback attempt in total: resolve, connect, TLS handshake, request and the "
              "answer's headers."},
      {.section = "http", .name = "callback_max_attempts", .type = T::integer, .def = "10",
       .min = "1", .max = "1000",
       .doc = "Attempts per callback (backoff 500ms doubling to 30s, full jitter); then it is "
              "given up."},
      {.section = "http", .name = "callback_concurrency", .type = T::integer, .def = "64",
       .min = "1", .max = "4096",
       .doc = "Callback attempts in flight at once, at most 8 per host; at most 16x this many "
              "callbacks wait, beyond which the partition is back-pressured."},

      // http.auth
      {.section = "http_auth", .name = "bearer_tokens_file", .type = T::path,
       .doc_default = "none = no auth",
       .doc = "File of accepted bearer tokens: one per line, blank lines and `#` comments "
              "ignored. Must exist and hold a token (checked by `validate` and at start)."},

      // metrics
      {.section = "metrics", .name = "listen", .type = T::listen, .def = "127.0.0.1:9464",
       .doc = "Address serving `/metrics` (and nothing else)."},
      {.section = "metrics", .name = "auth", .type = T::section, .of = "metrics_auth",
       .doc_default = "no auth", .doc = "Authentication (below)."},

      // metrics.auth
      {.section = "metrics_auth", .name = "bearer_tokens_file", .type = T::path,
       .doc_default = "none = no auth",
       .doc = "File of bearer tokens accepted on `/metrics` (same format as `http.auth`; name "
              "the HTTP API's file to reuse its tokens). Checked by `validate`."},

      // engine
      {.section = "engine", .name = "drain_timeout", .type = T::duration, .def = "30s",
       .min = "0s", .max = "24h", .doc = "On SIGTERM/SIGINT, how long in-flight work may finish."},
      {.section = "engine", .name = "control_key_file", .type = T::path,
       .def = "./data/control.key",
       .doc = "The key that seals sluice's own control headers (callback target, retry state, "
              "dead-letter fields); created with a random key, mode 0600, when absent. Every "
              "engine and `sluice dlq` of one deployment (e.g. several processes in one Kafka "
              "group) must use the same key: copy the file. One hex key per line, the first "
              "seals and all verify (rotation). See docs/SECURITY.md \"Control headers\"."},

      // functions[]
      {.section = "function", .name = "name", .type = T::string,
       .pattern = "^[a-z0-9][a-z0-9_.-]{0,62}$", .required = true,
       .doc_type = "string `[a-z0-9][a-z0-9_.-]{0,62}`", .doc = "Unique function name."},
      {.section = "function", .name = "runtime", .type = T::enumeration, .def = "exec",
       .values = &kRuntime, .doc = "How the code runs (PRODUCT.md §4)."},
      {.section = "function", .name = "command", .type = T::string_list, .required = true,
       .non_empty = true,
       .doc = "argv (`argv[0]` looked up in PATH); for `inproc` exactly `[path/to/lib.so]`."},
      {.section = "function", .name = "env", .type = T::string_map, .def = "{}",
       .doc = "The only environment the process gets (plus PATH, HOME)."},
      {.section = "function", .name = "timeout", .type = T::duration, .def = "30s", .min = "1ms",
       .max = "24h", .doc = "Per-event time limit; exceeding it is a retriable failure."},
      {.section = "function", .name = "concurrency", .type = T::integer, .def = "4", .min = "1",
       .max = "100000", .doc = "Most events in flight for this function."},
      {.section = "function", .name = "max_inflight_bytes", .type = T::size, .def = "64MiB",
       .min = "1B", .max = "64GiB", .doc = "Most event bytes in flight for this function."},
      {.section = "function", .name = "workers", .type = T::section, .of = "workers",
       .doc_default = "see below", .doc = "Lag-based scaling of worker processes."},
      {.section = "function", .name = "subscribe", .type = T::section_list, .of = "subscription",
       .doc_default = "`[]`",
       .doc = "Topics the function consumes. None: invoked over HTTP only."},
      {.section = "function", .name = "retry", .type = T::section, .of = "retry",
       .doc_default = "see below", .doc = "Retry policy for failures and timeouts."},
      {.section = "function", .name = "dead_letter", .type = T::section, .of = "target",
       .doc_type = "target",
       .doc_default = "topic `<name>.dlq` on the broker of the first subscription (or the first "
                      "broker)",
       .doc = "Where events go after the last attempt."},
      {.section = "function", .name = "output", .type = T::section, .of = "output",
       .doc_type = "output", .doc_default = "none",
       .doc = "Results are published here (pipelines). Must not be one of the function's own "
              "subscriptions."},
      {.section = "function", .name = "limits", .type = T::section, .of = "limits",
       .doc_default = "none = inherited",
       .doc = "Resource limits of the function's processes (below)."},
      {.section = "function", .name = "ready_path", .type = T::string, .def = "/healthz",
       .pattern = "^/", .doc_type = "string starting with `/`",
       .doc = "`http` runtime: sluice GETs this path until it answers 2xx before sending "
              "events."},
      {.section = "function", .name = "start_timeout", .type = T::duration, .def = "10s",
       .min = "1ms", .max = "1h",
       .doc = "`stdio`: the handshake, `http`: readiness must finish within this, or the start "
              "fails (and is retried with backoff)."},
      {.section = "function", .name = "worker_template", .type = T::boolean, .def = "true",
       .doc = "`stdio`: keep one pre-started process of `command` (a worker template, "
              "started with `SLUICE_TEMPLATE=1`) and fork new workers from it instead of "
              "starting the interpreter again. Only the Python SDK supports it; any other "
              "command is started once to find out and then spawned as before "
              "(workers/README.md)."},
      {.section = "function", .name = "scheduling", .type = T::enumeration, .def = "batch",
       .values = &kScheduling,
       .doc = "The Linux scheduling policy of the function's processes (`exec`, `stdio`, "
              "`http`): `batch` (SCHED_BATCH, same share of the CPU, but a process that "
              "wakes does not preempt the one running: the engine thread that hands it "
              "events is not interrupted once per event when the CPUs are busy) or "
              "`normal` (SCHED_OTHER: a woken process runs at once, for latency-bound "
              "functions on a busy machine)."},
      {.section = "function", .name = "inline", .type = T::boolean, .def = "false",
       .doc = "`inproc` only: call the function on the dispatcher thread instead of a pool of "
              "`concurrency` threads (below)."},
      {.section = "function", .name = "paused", .type = T::boolean, .def = "false",
       .doc = "Start paused: events wait in the broker (lag grows) until `sluice resume`; "
              "paused again at the next start while this says so."},
      {.section = "function", .name = "rate_limit", .type = T::section, .of = "rate_limit",
       .doc_default = "none",
       .doc = "Invocations per second, for the whole function or per event key (below); "
              "throttled events wait in the broker."},
      {.section = "function", .name = "max_per_key", .type = T::integer, .def = "0", .min = "0",
       .max = "100000",
       .doc = "Most invocations in flight per event key; 0 = no limit. Only with `ordering: "
              "none` on every subscription."},
      {.section = "function", .name = "max_age", .type = T::duration, .min = "1ms",
       .max = "8760h", .doc_default = "none = no limit",
       .doc = "An event older than this (its CloudEvents `time`, else the broker's timestamp) "
              "when its turn comes or a retry falls due is not invoked: it is dead-lettered "
              "as `expired` (\"Event age\" below)."},
      {.section = "function", .name = "on_expired", .type = T::enumeration,
       .def = "dead_letter", .values = &kOnExpired,
       .doc = "What happens to an expired event: `dead_letter`, or `drop` (counted in "
              "`sluice_events_expired_total` and committed)."},

      // functions[].workers
      {.section = "workers", .name = "min", .type = T::integer, .def = "0", .min = "0",
       .max = "100000",
       .doc = "Fewest workers; 0 = scale to zero. Must be <= `max` (or `concurrency` when `max` "
              "is 0)."},
      {.section = "workers", .name = "max", .type = T::integer, .def = "0", .min = "0",
       .max = "100000", .doc = "Most workers; 0 = same as `concurrency`."},
      {.section = "workers", .name = "target_lag", .type = T::integer, .def = "500", .min = "1",
       .doc = "Events of lag per worker the scaler aims for."},
      {.section = "workers", .name = "idle_after", .type = T::duration, .def = "60s",
       .min = "0s", .max = "168h",
       .doc = "With `min: 0`: no lag, nothing in flight and no event finished for this long "
              "scales the pool to zero."},

      // functions[].limits
      {.section = "limits", .name = "memory", .type = T::size, .min = "1MiB", .max = "64TiB",
       .doc_default = "inherited",
       .doc = "`RLIMIT_DATA`: heap and private writable mappings; allocations beyond it fail. "
              "(Not `RLIMIT_AS`, which would break runtimes that reserve large address ranges, "
              "such as Node.js and Go.)"},
      {.section = "limits", .name = "open_files", .type = T::integer, .min = "16",
       .max = "1048576", .doc_default = "inherited",
       .doc = "`RLIMIT_NOFILE`: most open file descriptors."},
      {.section = "limits", .name = "cpu_seconds", .type = T::integer, .min = "1",
       .max = "2147483647", .doc_default = "inherited",
       .doc = "`RLIMIT_CPU`: CPU seconds of the process over its whole life (a long-lived worker "
              "is restarted when it dies of it)."},

      // functions[].subscribe[]
      {.section = "subscription", .name = "broker", .type = T::broker_ref,
       .doc_default = "the first broker (`local` by default)",
       .doc = "Must name a broker in `brokers`."},
      {.section = "subscription", .name = "topic", .type = T::topic, .required = true,
       .doc = "Topic (NATS: subject) to consume."},
      {.section = "subscription", .name = "ordering", .type = T::enumeration, .def = "partition",
       .values = &kOrdering,
       .doc = "Events of one partition / key are handled in order, one at a time; `none` = no "
              "ordering."},
      {.section = "subscription", .name = "filter", .type = T::filter,
       .doc_default = "none (every event)",
       .doc = "Only events it passes are invoked; the others are committed without an "
              "invocation. One dialect: exact, prefix, suffix, all, any, not, sql (CESQL); "
              "docs/FILTERS.md."},

      // functions[].rate_limit
      {.section = "rate_limit", .name = "per_second", .type = T::number, .min = "0.001",
       .max = "1000000", .required = true,
       .doc = "Tokens added per second (fractions allowed: `0.5` is one every two seconds); each "
              "invocation, retries and synchronous calls included, takes one."},
      {.section = "rate_limit", .name = "burst", .type = T::integer, .min = "1", .max = "1000000",
       .doc_default = "`per_second` rounded up, at least 1",
       .doc = "Size of the bucket: invocations that may start at once after an idle spell."},
      {.section = "rate_limit", .name = "by", .type = T::enumeration, .def = "function",
       .values = &kRateBy,
       .doc = "`function`: one bucket for the function; `key`: one per event key (at most "
              "100000 keys remembered, least recently used forgotten; keyless events share one)."},

      // functions[].retry
      {.section = "retry", .name = "max_attempts", .type = T::integer, .def = "3", .min = "1",
       .max = "1000", .doc = "Attempts including the first."},
      {.section = "retry", .name = "backoff", .type = T::enumeration, .def = "exponential",
       .values = &kBackoff, .doc = "Delay growth between attempts."},
      {.section = "retry", .name = "initial", .type = T::duration, .def = "200ms", .min = "0s",
       .max = "24h", .doc = "First delay."},
      {.section = "retry", .name = "max", .type = T::duration, .def = "30s", .min = "0s",
       .max = "24h", .doc = "Largest delay; at least `initial`."},
      {.section = "retry", .name = "jitter", .type = T::enumeration, .def = "full",
       .values = &kJitter, .doc = "Randomisation of the delay."},
      {.section = "retry", .name = "mode", .type = T::enumeration, .def = "inline",
       .values = &kMode,
       .doc = "`inline`: retry in place (holds the lane, keeps order); `topic`: hand the event "
              "back and free the lane (see below)."},
      {.section = "retry", .name = "max_crashes", .type = T::integer, .def = "2", .min = "1",
       .max = "1000",
       .doc = "Invocations ending in `crash` (the worker died) after which the event is "
              "dead-lettered as `crash` without spending its remaining attempts; also the "
              "unexplained broker redeliveries after which it is quarantined before it runs "
              "(\"Crash quarantine\" below)."},

      // functions[].dead_letter
      {.section = "target", .name = "broker", .type = T::broker_ref,
       .doc_default = "the broker of the function's first subscription (or the first broker)",
       .doc = "Must name a broker in `brokers`."},
      {.section = "target", .name = "topic", .type = T::topic, .required = true,
       .doc = "Topic to publish to."},

      // functions[].output: a target, and the content type of results
      {.section = "output", .name = "broker", .type = T::broker_ref,
       .doc_default = "the broker of the function's first subscription (or the first broker)",
       .doc = "Must name a broker in `brokers`."},
      {.section = "output", .name = "topic", .type = T::topic, .required = true,
       .doc = "Topic to publish to."},
      {.section = "output", .name = "content_type", .type = T::string,
       .def = "application/octet-stream", .pattern = "^[!-~]+/[!-~]+( *;[ -~]*)?$",
       .doc_type = "string `type/subtype[; params]`",
       .doc = "The `datacontenttype` of a result event when the result names none (exec; an "
              "`http` response without Content-Type; an SDK result without a content type)."},
  };
  return kKeys;
}

const Key& key(std::string_view section, std::string_view name) {
  for (const Key& k : keys())
    if (k.section == section && k.name == name) return k;
  std::abort();  // a key missing from the table is a programming error
}

const std::vector<Section>& sections() {
  static const std::vector<Section> kSections = [] {
    std::vector<Section> out;
    for (const SectionHead& h : kHeads) {
      Section s{h.name, h.schema_pointer, h.doc_heading, {}, {}};
      for (const Key& k : keys()) {
        if (k.section != h.name) continue;
        s.keys.push_back(k.name);
        if (k.required) s.required.push_back(k.name);
      }
      out.push_back(std::move(s));
    }
    return out;
  }();
  return kSections;
}

const Section& section(std::string_view name) {
  for (const Section& s : sections()) {
    if (s.name == name) return s;
  }
  std::abort();  // a typo in the loader, caught by every test
}

namespace {
uint64_t integer_of(std::string_view text, uint64_t none) {
  if (text.empty()) return none;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) std::abort();
  return v;
}
Millis duration_of(std::string_view text) {
  auto r = parse_duration(text);
  if (!r) std::abort();
  return r.value();
}
uint64_t size_of(std::string_view text) {
  auto r = parse_size(text);
  if (!r) std::abort();
  return r.value();
}
double number_of(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) std::abort();
  return v;
}
}  // namespace

uint64_t min_integer(const Key& k) { return integer_of(k.min, 0); }
uint64_t max_integer(const Key& k) { return integer_of(k.max, UINT64_MAX); }
Millis min_duration(const Key& k) { return duration_of(k.min); }
Millis max_duration(const Key& k) { return duration_of(k.max); }
uint64_t min_size(const Key& k) { return size_of(k.min); }
uint64_t max_size(const Key& k) { return size_of(k.max); }
double min_number(const Key& k) { return number_of(k.min); }
double max_number(const Key& k) { return number_of(k.max); }

}  // namespace sluice::config
