#include "config/config_keys.h"

#include <cstdlib>

namespace sluice::config_keys {

const std::vector<Section>& sections() {
  static const std::vector<Section> kSections = {
      {"root", "", "Top level", {"brokers", "http", "metrics", "engine", "functions"}, {}},
      {"broker_local",
       "/$defs/broker_local",
       "brokers.<name> (kind: local)",
       {"kind", "path", "partitions", "group"},
       {"kind"}},
      {"broker_kafka",
       "/$defs/broker_kafka",
       "brokers.<name> (kind: kafka)",
       {"kind", "bootstrap", "group", "options"},
       {"kind", "bootstrap"}},
      {"broker_nats",
       "/$defs/broker_nats",
       "brokers.<name> (kind: nats)",
       {"kind", "url", "jetstream", "options"},
       {"kind"}},
      {"jetstream",
       "/$defs/jetstream",
       "brokers.<name>.jetstream",
       {"stream", "subjects", "create"},
       {"stream", "subjects"}},
      {"http",
       "/$defs/http",
       "http",
       {"listen", "auth", "max_body", "max_connections", "idle_timeout",
        // callbacks
        "callback_allow", "callback_timeout", "callback_max_attempts", "callback_concurrency"},
       {}},
      {"http_auth", "/$defs/http_auth", "http.auth", {"bearer_tokens_file"}, {}},
      {"metrics", "/$defs/metrics", "metrics", {"listen", "auth"}, {}},
      {"metrics_auth", "/$defs/metrics_auth", "metrics.auth", {"bearer_tokens_file"}, {}},
      {"engine", "/$defs/engine", "engine", {"drain_timeout", "control_key_file"}, {}},
      {"function",
       "/$defs/function",
       "functions[]",
       {"name", "runtime", "command", "env", "timeout", "concurrency", "max_inflight_bytes",
        "workers", "subscribe", "retry", "dead_letter", "output", "limits", "ready_path",
        "start_timeout", "inline"},
       {"name", "command"}},
      {"workers",
       "/$defs/workers",
       "functions[].workers",
       {"min", "max", "target_lag", "idle_after"},
       {}},
      {"subscription",
       "/$defs/subscription",
       "functions[].subscribe[]",
       {"broker", "topic", "ordering"},
       {"topic"}},
      {"retry",
       "/$defs/retry",
       "functions[].retry",
       {"max_attempts", "backoff", "initial", "max", "jitter", "mode"},
       {}},
      {"limits",
       "/$defs/limits",
       "functions[].limits",
       {"memory", "open_files", "cpu_seconds"},
       {}},
      {"target",
       "/$defs/target",
       "functions[].dead_letter, functions[].output",
       {"broker", "topic"},
       {"topic"}},
  };
  return kSections;
}

const Section& section(std::string_view name) {
  for (const Section& s : sections()) {
    if (s.name == name) return s;
  }
  std::abort();  // a typo in the loader, caught by every test
}

const EnumSpec kRuntime{"/$defs/function/properties/runtime",
                        {"exec", "stdio", "http", "inproc"}};
const EnumSpec kOrdering{"/$defs/subscription/properties/ordering", {"partition", "key", "none"}};
const EnumSpec kBackoff{"/$defs/retry/properties/backoff", {"exponential", "fixed"}};
const EnumSpec kJitter{"/$defs/retry/properties/jitter", {"full", "equal", "none"}};
const EnumSpec kMode{"/$defs/retry/properties/mode", {"inline", "topic"}};
const EnumSpec kKind{"/$defs/broker/oneOf", {"local", "kafka", "nats"}};

const std::vector<const EnumSpec*>& enums() {
  static const std::vector<const EnumSpec*> kEnums = {&kRuntime, &kOrdering, &kBackoff,
                                                      &kJitter,  &kMode,     &kKind};
  return kEnums;
}

}  // namespace sluice::config_keys
