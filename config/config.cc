// The loader's entry points, the top-level sections and the small Config helpers.
#include "config/config.h"
#include "broker-adapters/nats/nats_subject.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "config/parse.h"
#include "config/values.h"
#include "config/vars.h"

namespace sluice {

const char* to_string(BrokerKind k) noexcept {
  switch (k) {
    case BrokerKind::local: return "local";
    case BrokerKind::kafka: return "kafka";
    case BrokerKind::nats: return "nats";
  }
  return "?";
}

const char* to_string(RuntimeKind k) noexcept {
  switch (k) {
    case RuntimeKind::exec: return "exec";
    case RuntimeKind::stdio: return "stdio";
    case RuntimeKind::http: return "http";
    case RuntimeKind::inproc: return "inproc";
  }
  return "?";
}

const char* to_string(Ordering o) noexcept {
  switch (o) {
    case Ordering::partition: return "partition";
    case Ordering::key: return "key";
    case Ordering::none: return "none";
  }
  return "?";
}

static_assert(std::variant_size_v<BrokerConfig::Settings> == 3 &&
              std::is_same_v<std::variant_alternative_t<static_cast<size_t>(BrokerKind::local),
                                                        BrokerConfig::Settings>,
                             LocalBrokerConfig> &&
              std::is_same_v<std::variant_alternative_t<static_cast<size_t>(BrokerKind::kafka),
                                                        BrokerConfig::Settings>,
                             KafkaBrokerConfig> &&
              std::is_same_v<std::variant_alternative_t<static_cast<size_t>(BrokerKind::nats),
                                                        BrokerConfig::Settings>,
                             NatsBrokerConfig>,
              "BrokerConfig::kind() is the index of the settings alternative");

namespace {
template <class T, class V>
auto& settings_of(V& settings) {
  auto* s = std::get_if<T>(&settings);
  if (!s) std::abort();  // asked for another kind than the broker's: a programming error
  return *s;
}
}  // namespace

using Local = LocalBrokerConfig;
using Kafka = KafkaBrokerConfig;
using Nats = NatsBrokerConfig;
const Local& BrokerConfig::local() const { return settings_of<Local>(settings); }
const Kafka& BrokerConfig::kafka() const { return settings_of<Kafka>(settings); }
const Nats& BrokerConfig::nats() const { return settings_of<Nats>(settings); }
Local& BrokerConfig::local() { return settings_of<Local>(settings); }
Kafka& BrokerConfig::kafka() { return settings_of<Kafka>(settings); }
Nats& BrokerConfig::nats() { return settings_of<Nats>(settings); }

const BrokerConfig* Config::broker(std::string_view name) const {
  for (const BrokerConfig& b : brokers) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

const FunctionConfig* Config::function(std::string_view name) const {
  for (const FunctionConfig& f : functions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  std::string out = file.empty() ? "<config>" : file;
  if (line > 0) out += ":" + std::to_string(line);
  if (!path.empty()) out += ": " + path;
  return out + ": " + message;
}

namespace {

using namespace config;

void parse_http_callbacks(Diagnostics& d, const MapReader& m, Config& c) {
  if (auto f = m.get("callback_allow")) {
    if (auto list = read_string_list(d, *f, false)) {
      for (size_t i = 0; i < list->size(); ++i) {
        auto e = parse_callback_allow((*list)[i]);
        if (!e) {
          d.error(index_path(f->path, i), line_of(f->node[i]), e.error().message);
          continue;
        }
        c.http.callback_allow.push_back(std::move(e).value());
      }
    }
  }
  read_into(c.http.callback_timeout, m, "callback_timeout", [&](const Field& x) {
    return read_duration(d, x, config::key("http", "callback_timeout"));
  });
  read_into(c.http.callback_max_attempts, m, "callback_max_attempts", [&](const Field& x) {
    return read_uint(d, x, config::key("http", "callback_max_attempts"));
  });
  read_into(c.http.callback_concurrency, m, "callback_concurrency", [&](const Field& x) {
    return read_uint(d, x, config::key("http", "callback_concurrency"));
  });
}

void parse_http(Diagnostics& d, const Field& f, Config& c) {
  MapReader m(d, f, config::section("http"));
  c.http.enabled = true;
  read_into(c.http.listen, m, "listen", [&](const Field& x) { return read_listen(d, x); });
  if (auto auth = m.get("auth")) {
    MapReader a(d, *auth, config::section("http_auth"));
    if (auto file = a.get("bearer_tokens_file")) {
      if (auto s = read_string(d, *file)) c.http.bearer_tokens_file = absolute_path(c.base_dir, *s);
    }
  }
  read_into(c.http.max_body, m, "max_body",
            [&](const Field& x) { return read_size(d, x, config::key("http", "max_body")); });
  read_into(c.http.max_connections, m, "max_connections",
            [&](const Field& x) { return read_uint(d, x, config::key("http", "max_connections")); });
  read_into(c.http.idle_timeout, m, "idle_timeout", [&](const Field& x) {
    return read_duration(d, x, config::key("http", "idle_timeout"));
  });
  read_into(c.http.io_threads, m, "io_threads",
            [&](const Field& x) { return read_uint(d, x, config::key("http", "io_threads")); });
  parse_http_callbacks(d, m, c);
}

void parse_metrics(Diagnostics& d, const Field& f, Config& c) {
  MapReader m(d, f, config::section("metrics"));
  c.metrics.enabled = true;
  read_into(c.metrics.listen, m, "listen", [&](const Field& x) { return read_listen(d, x); });
  if (auto auth = m.get("auth")) {
    MapReader a(d, *auth, config::section("metrics_auth"));
    if (auto file = a.get("bearer_tokens_file")) {
      if (auto s = read_string(d, *file))
        c.metrics.bearer_tokens_file = absolute_path(c.base_dir, *s);
    }
  }
}

void parse_root(Diagnostics& d, const YAML::Node& root, Config& c) {
  const Field top{root, "", 1};
  MapReader m(d, top, config::section("root"));
  if (!m.is_map()) return;
  const BrokerNames brokers = parse_brokers(d, m.get("brokers"), c);
  if (auto f = m.get("http")) parse_http(d, *f, c);
  if (auto f = m.get("metrics")) parse_metrics(d, *f, c);
  c.engine.control_key_file =
      absolute_path(c.base_dir, std::string(config::key("engine", "control_key_file").def));
  if (auto f = m.get("engine")) {
    MapReader e(d, *f, config::section("engine"));
    read_into(c.engine.drain_timeout, e, "drain_timeout", [&](const Field& x) {
      return read_duration(d, x, config::key("engine", "drain_timeout"));
    });
    if (auto file = e.get("control_key_file")) {
      if (auto s = read_string(d, *file)) {
        if (s->empty()) d.error(file->path, file->line, "must not be empty");
        else c.engine.control_key_file = absolute_path(c.base_dir, *s);
      }
    }
  }
  if (auto f = m.get("functions")) parse_functions(d, *f, brokers, c);
}

LoadResult load(const std::string& yaml, const std::string& base_dir, const std::string& file) {
  LoadResult r;
  Diagnostics d;
  Config c;
  c.file = file;
  try {
    namespace fs = std::filesystem;
    c.base_dir = fs::absolute(base_dir.empty() ? fs::current_path() : fs::path(base_dir))
                     .lexically_normal()
                     .string();
    if (c.base_dir.size() > 1 && c.base_dir.back() == '/') c.base_dir.pop_back();
    YAML::Node root;
    try {
      root = YAML::Load(yaml);
    } catch (const YAML::ParserException& e) {
      d.error("", e.mark.is_null() ? 0 : e.mark.line + 1, "YAML syntax error: " + e.msg);
    }
    if (d.empty() && root.IsNull())
      d.error("", 0, "the config file is empty (examples/quickstart.yaml shows a small one)");
    if (d.empty()) expand_tree(d, root, process_env);
    if (d.empty()) parse_root(d, root, c);
  } catch (const YAML::Exception& e) {
    d.error("", e.mark.is_null() ? 0 : e.mark.line + 1, "cannot read the config: " + e.msg);
  } catch (const std::exception& e) {
    d.error("", 0, std::string("cannot read the config: ") + e.what());
  }
  r.errors = d.take();
  // Document order; errors without a line last.
  auto order = [](const ConfigError& e) { return e.line == 0 ? INT32_MAX : e.line; };
  std::stable_sort(r.errors.begin(), r.errors.end(),
                   [&](const ConfigError& a, const ConfigError& b) { return order(a) < order(b); });
  for (ConfigError& e : r.errors) e.file = file;
  if (r.errors.empty()) r.config = std::move(c);
  return r;
}

}  // namespace

LoadResult load_config_file(const std::string& path) {
  auto fail = [&](std::string why) {
    LoadResult r;
    r.errors.push_back(ConfigError{"", 0, std::move(why), path});
    return r;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail("is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(std::string("cannot read: ") + std::strerror(errno));
  const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  if (ec) return fail("cannot resolve the path: " + ec.message());
  return load(text.str(), dir.string(), path);
}

LoadResult load_config_string(const std::string& yaml, const std::string& base_dir) {
  return load(yaml, base_dir, "");
}

}  // namespace sluice
