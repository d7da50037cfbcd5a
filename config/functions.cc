// functions: [ { name, runtime, command, ..., subscribe, retry, dead_letter, output } ]
#include <algorithm>
#include <cmath>
#include <sstream>

#include "config/parse.h"
#include "config/values.h"

namespace sluice::config {
namespace {


// [a-z0-9][a-z0-9_.-]{0,62}
bool valid_function_name(const std::string& s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 63 || !alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// Reads a broker name and checks that it names a configured broker.
std::optional<std::string> read_broker_ref(Diagnostics& d, const Field& f, const BrokerNames& b) {
  auto name = read_string(d, f);
  if (!name || !b.known) return name;
  if (std::find(b.names.begin(), b.names.end(), *name) != b.names.end()) return name;
  std::vector<std::string_view> candidates(b.names.begin(), b.names.end());
  std::string msg = "unknown broker " + quote(*name);
  std::string_view hint = closest(*name, candidates);
  if (!hint.empty()) {
    msg += " (did you mean \"" + std::string(hint) + "\"?)";
  } else {
    msg += " (configured:";
    for (const std::string& n : b.names) msg += " " + n;
    msg += ")";
  }
  d.error(f.path, f.line, std::move(msg));
  return std::nullopt;
}

void parse_command(Diagnostics& d, const Field& f, const std::string& base_dir,
                   FunctionConfig& fn) {
  if (f.node.IsScalar() && !f.node.Scalar().empty()) {
    // `command: cat` or `command: python3 fn.py`: no shell splits it, so say how.
    std::string list;
    std::istringstream words(f.node.Scalar());
    for (std::string w; words >> w;) list += (list.empty() ? "" : ", ") + w;
    if (list.size() > kEchoLimit) list = list.substr(0, kEchoLimit) + "...";
    d.error(f.path, f.line, "expected a list (no shell splits the command); write it as a list: [" +
                                list + "]");
    return;
  }
  auto argv = read_string_list(d, f, /*non_empty_list=*/true);
  if (!argv) return;
  if (fn.runtime == RuntimeKind::inproc) {
    if (argv->size() != 1) {
      d.error(f.path, f.line, "an inproc function's command is [path/to/lib.so], got " +
                                  std::to_string(argv->size()) + " items");
      return;
    }
    // dlopen() resolves a name with a slash against the working directory: use base_dir.
    if (argv->front().find('/') != std::string::npos) {
      argv->front() = absolute_path(base_dir, argv->front());
    }
  }
  fn.command = std::move(*argv);
}

void parse_workers(Diagnostics& d, const Field& f, FunctionConfig& fn) {
  MapReader m(d, f, config::section("workers"));
  WorkersConfig& w = fn.workers;
  w.autoscale = true;  // a `workers:` stanza turns lag-based scaling on
  auto uint = [&](std::string_view key) {
    return [&d, key](const Field& x) { return read_uint(d, x, config::key("workers", key)); };
  };
  read_into(w.min, m, "min", uint("min"));
  read_into(w.max, m, "max", uint("max"));
  read_into(w.target_lag, m, "target_lag", uint("target_lag"));
  read_into(w.idle_after, m, "idle_after", [&](const Field& x) {
    return read_duration(d, x, config::key("workers", "idle_after"));
  });
  const uint32_t max = w.max > 0 ? w.max : fn.concurrency;
  if (w.min > max) {
    auto at = m.get("min");
    d.error(at->path, at->line,
            "must be <= " +
                (w.max > 0 ? "workers.max (" + std::to_string(w.max) + ")"
                           : "concurrency (" + std::to_string(fn.concurrency) +
                                 ") when workers.max is 0"));
  }
}

void parse_limits(Diagnostics& d, const Field& f, LimitsConfig& l) {
  MapReader m(d, f, config::section("limits"));
  read_into(l.memory, m, "memory",
            [&](const Field& x) { return read_size(d, x, config::key("limits", "memory")); });
  read_into(l.open_files, m, "open_files",
            [&](const Field& x) { return read_uint(d, x, config::key("limits", "open_files")); });
  read_into(l.cpu_seconds, m, "cpu_seconds",
            [&](const Field& x) { return read_uint(d, x, config::key("limits", "cpu_seconds")); });
}

void parse_retry(Diagnostics& d, const Field& f, RetryPolicy& r) {
  MapReader m(d, f, config::section("retry"));
  auto dur = [&](std::string_view key) {
    return [&d, key](const Field& x) { return read_duration(d, x, config::key("retry", key)); };
  };
  read_into(r.max_attempts, m, "max_attempts",
            [&](const Field& x) { return read_uint(d, x, config::key("retry", "max_attempts")); });
  read_into(r.backoff, m, "backoff",
            [&](const Field& x) { return read_enum(d, x, config::kBackoff); });
  read_into(r.initial, m, "initial", dur("initial"));
  read_into(r.max, m, "max", dur("max"));
  read_into(r.jitter, m, "jitter", [&](const Field& x) { return read_enum(d, x, config::kJitter); });
  read_into(r.mode, m, "mode", [&](const Field& x) { return read_enum(d, x, config::kMode); });
  read_into(r.max_crashes, m, "max_crashes",
            [&](const Field& x) { return read_uint(d, x, config::key("retry", "max_crashes")); });
  if (r.max < r.initial) {
    const Field at = m.has("max") ? *m.get("max") : m.has("initial") ? *m.get("initial") : f;
    d.error(at.path == f.path ? join_path(f.path, "max") : at.path, at.line,
            "retry.max (" + std::to_string(r.max.count()) + "ms) must be >= retry.initial (" +
                std::to_string(r.initial.count()) + "ms)");
  }
}

// rate_limit: { per_second, burst, by } and max_per_key (flow control before a worker
// is taken; dispatcher/rate_limit.h).
void parse_rate_limit(Diagnostics& d, const MapReader& fm, FunctionConfig& fn) {
  if (auto f = fm.get("rate_limit")) {
    MapReader m(d, *f, config::section("rate_limit"));
    if (m.is_map()) {
      RateLimitConfig r;
      read_into(r.per_second, m, "per_second", [&](const Field& x) {
        return read_number(d, x, config::key("rate_limit", "per_second"));
      });
      r.burst = static_cast<uint32_t>(std::max(1.0, std::ceil(r.per_second)));
      read_into(r.burst, m, "burst",
                [&](const Field& x) { return read_uint(d, x, config::key("rate_limit", "burst")); });
      size_t by = 0;
      read_into(by, m, "by", [&](const Field& x) { return read_enum(d, x, config::kRateBy); });
      r.by_key = by == 1;
      if (r.per_second > 0) fn.rate_limit = r;
    }
  }
  if (auto f = fm.get("max_per_key")) {
    if (auto v = read_uint(d, *f, config::key("function", "max_per_key"))) {
      const bool unordered = std::all_of(fn.subscribe.begin(), fn.subscribe.end(),
                                         [](const Subscription& s) { return s.ordering == Ordering::none; });
      if (*v > 0 && !unordered) {
        d.error(f->path, f->line,
                "max_per_key needs `ordering: none` on every subscription (with `ordering: "
                "key` or `partition` one event per key or partition runs at a time already)");
      } else {
        fn.max_per_key = static_cast<uint32_t>(*v);
      }
    }
  }
}

void parse_subscriptions(Diagnostics& d, const Field& f, const BrokerNames& brokers,
                         FunctionConfig& fn) {
  if (f.node.IsNull()) return;
  if (!f.node.IsSequence()) {
    d.error(f.path, f.line, "expected a list of subscriptions, got " + describe(f.node));
    return;
  }
  for (std::size_t i = 0; i < f.node.size(); ++i) {
    const Field item{f.node[i], index_path(f.path, i), line_of(f.node[i])};
    MapReader m(d, item, config::section("subscription"));
    if (!m.is_map()) continue;
    Subscription s;
    s.broker = brokers.first;
    read_into(s.broker, m, "broker",
              [&](const Field& x) { return read_broker_ref(d, x, brokers); });
    read_into(s.topic, m, "topic", [&](const Field& x) { return read_topic(d, x); });
    read_into(s.ordering, m, "ordering",
              [&](const Field& x) { return read_enum(d, x, config::kOrdering); });
    read_into(s.filter, m, "filter", [&](const Field& x) { return parse_filter(d, x); });
    const bool dup = std::any_of(fn.subscribe.begin(), fn.subscribe.end(), [&](const auto& o) {
      return o.broker == s.broker && o.topic == s.topic;
    });
    if (dup && !s.topic.empty()) {
      d.error(item.path, item.line,
              "duplicate subscription to topic " + quote(s.topic) + " on broker " + quote(s.broker));
    }
    fn.subscribe.push_back(std::move(s));
  }
}

// A media type as HTTP and CloudEvents carry it: type/subtype and optional
// parameters, printable ASCII, at most 255 characters.
bool valid_content_type(std::string_view v) {
  if (v.empty() || v.size() > 255) return false;
  for (char c : v)
    if (c < ' ' || c > '~') return false;
  std::string_view mt = v.substr(0, v.find(';'));
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  const size_t slash = mt.find('/');
  return slash != 0 && slash != std::string_view::npos && slash + 1 < mt.size() &&
         mt.find_first_of(" /", slash + 1) == std::string_view::npos &&
         mt.substr(0, slash).find(' ') == std::string_view::npos;
}

// dead_letter and output (a reader of section "target" or "output"); the broker
// defaults to the one the function reads. output.content_type is read by the caller.
std::optional<Target> parse_target(Diagnostics& d, const MapReader& m, const BrokerNames& brokers,
                                   const FunctionConfig& fn) {
  if (!m.is_map()) return std::nullopt;
  Target t;
  t.broker = fn.subscribe.empty() ? brokers.first : fn.subscribe.front().broker;
  read_into(t.broker, m, "broker", [&](const Field& x) { return read_broker_ref(d, x, brokers); });
  read_into(t.topic, m, "topic", [&](const Field& x) { return read_topic(d, x); });
  return t;
}

void parse_function(Diagnostics& d, const Field& item, const BrokerNames& brokers,
                    const std::string& base_dir, FunctionConfig& fn) {
  MapReader m(d, item, config::section("function"));
  auto dur = [&](std::string_view key) {
    return [&d, key](const Field& x) { return read_duration(d, x, config::key("function", key)); };
  };
  if (auto f = m.get("name")) {
    auto name = read_string(d, *f);
    if (name && !valid_function_name(*name)) {
      d.error(f->path, f->line,
              quote(*name) + " is not a valid function name " +
                  "(1-63 characters of a-z, 0-9, _ . -, starting with a-z or 0-9)");
    } else if (name) {
      fn.name = *name;
    }
  }
  read_into(fn.runtime, m, "runtime",
            [&](const Field& x) { return read_enum(d, x, config::kRuntime); });
  if (auto f = m.get("command")) parse_command(d, *f, base_dir, fn);
  read_into(fn.env, m, "env", [&](const Field& x) { return read_string_map(d, x); });
  for (const auto& [k, v] : fn.env) {
    if (k.find('=') != std::string::npos) {
      d.error(join_path(m.get("env")->path, k), m.get("env")->line,
              "environment variable names must not contain '='");
    }
  }
  read_into(fn.timeout, m, "timeout", dur("timeout"));
  read_into(fn.concurrency, m, "concurrency",
            [&](const Field& x) { return read_uint(d, x, config::key("function", "concurrency")); });
  read_into(fn.max_inflight_bytes, m, "max_inflight_bytes", [&](const Field& x) {
    return read_size(d, x, config::key("function", "max_inflight_bytes"));
  });
  if (auto f = m.get("workers")) parse_workers(d, *f, fn);
  if (auto f = m.get("subscribe")) parse_subscriptions(d, *f, brokers, fn);
  if (auto f = m.get("retry")) parse_retry(d, *f, fn.retry);
  if (auto f = m.get("limits")) parse_limits(d, *f, fn.limits);
  if (auto f = m.get("ready_path")) {
    auto p = read_string(d, *f);
    if (p && p->front() != '/') {
      d.error(f->path, f->line, "must be a path starting with '/', got " + quote(*p));
    } else if (p) {
      fn.ready_path = *p;
    }
  }
  read_into(fn.start_timeout, m, "start_timeout", dur("start_timeout"));
  if (auto f = m.get("inline")) {
    if (auto v = read_bool(d, *f)) {
      if (*v && fn.runtime != RuntimeKind::inproc) {
        d.error(f->path, f->line,
                "only the inproc runtime can run inline (on the dispatcher thread)");
      } else {
        fn.inline_calls = *v;
      }
    }
  }
  read_into(fn.paused, m, "paused", [&](const Field& x) { return read_bool(d, x); });
  parse_rate_limit(d, m, fn);
  read_into(fn.max_age, m, "max_age", dur("max_age"));
  read_into(fn.on_expired, m, "on_expired",
            [&](const Field& x) { return read_enum(d, x, config::kOnExpired); });
  read_into(fn.scheduling, m, "scheduling",
            [&](const Field& x) { return read_enum(d, x, config::kScheduling); });
  if (auto f = m.get("worker_template")) {
    if (auto v = read_bool(d, *f)) fn.worker_template = *v;
  }
  fn.dead_letter = Target{fn.subscribe.empty() ? brokers.first : fn.subscribe.front().broker,
                          fn.name.empty() ? "" : fn.name + ".dlq"};
  if (auto f = m.get("dead_letter")) {
    if (auto t = parse_target(d, MapReader(d, *f, config::section("target")), brokers, fn))
      fn.dead_letter = *t;
  }
  if (auto f = m.get("output")) {
    const MapReader out(d, *f, config::section("output"));
    fn.output = parse_target(d, out, brokers, fn);
    if (auto ct = out.get("content_type")) {
      auto v = read_string(d, *ct);
      if (v && !valid_content_type(*v)) {
        d.error(ct->path, ct->line,
                quote(*v) + " is not a media type (write it as type/subtype, e.g. " +
                    "application/json)");
      } else if (v) {
        fn.output_content_type = *v;
      }
    }
    for (const Subscription& s : fn.subscribe) {
      if (fn.output && !s.topic.empty() && s.broker == fn.output->broker &&
          s.topic == fn.output->topic) {
        d.error(f->path, f->line,
                "output topic " + quote(s.topic) + " on broker " + quote(s.broker) +
                    " is also a subscription of this function (an infinite loop)");
      }
    }
  }
}

}  // namespace

void parse_functions(Diagnostics& d, const Field& f, const BrokerNames& brokers, Config& c) {
  if (f.node.IsNull()) return;
  if (!f.node.IsSequence()) {
    d.error(f.path, f.line, "expected a list of functions, got " + describe(f.node));
    return;
  }
  for (std::size_t i = 0; i < f.node.size(); ++i) {
    const Field item{f.node[i], index_path(f.path, i), line_of(f.node[i])};
    FunctionConfig fn;
    fn.line = item.line;
    parse_function(d, item, brokers, c.base_dir, fn);
    if (!fn.name.empty()) {
      auto first = std::find_if(c.functions.begin(), c.functions.end(),
                                [&](const FunctionConfig& o) { return o.name == fn.name; });
      if (first != c.functions.end()) {
        d.error(join_path(item.path, "name"), line_of(item.node["name"]),
                "duplicate function name \"" + fn.name + "\" (first on line " +
                    std::to_string(first->line) + ")");
      }
    }
    c.functions.push_back(std::move(fn));
  }
}

}  // namespace sluice::config
