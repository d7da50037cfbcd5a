// The `sluice` binary: CLI verbs (PRODUCT.md section 2).
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid config. Every error
// is one readable line on stderr.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "cmd/cli.h"
#include "cmd/engine_state.h"
#include "config/values.h"
#include "core/version.h"

using namespace sluice::cmd;

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("sluice");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

// The first word that is not an option must be a verb: "unknown command 'bogus'
// (did you mean 'lag'?)" instead of CLI11's "A subcommand is required".
std::optional<std::string> unknown_verb(CLI::App& app, int argc, char** argv) {
  std::vector<std::string_view> verbs;
  for (const auto* sub : app.get_subcommands({})) verbs.push_back(sub->get_name());
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") return std::nullopt;
    if (a.starts_with("-")) {
      // A global option's value is the next word unless written --opt=value.
      if (a.find('=') == std::string_view::npos &&
          (a == "--log-level" || a == "-c" || a == "--config" || a == "--engine" || a == "-o" ||
           a == "--output"))
        ++i;
      continue;
    }
    for (auto v : verbs)
      if (a == v) return std::nullopt;
    std::string msg = "unknown command '" + std::string(a) + "'";
    if (auto hint = sluice::config::closest(a, verbs); !hint.empty())
      msg += " (did you mean '" + std::string(hint) + "'?)";
    msg += "; commands:";
    for (auto v : verbs) msg += " " + std::string(v);
    return msg;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"sluice — a message-queue function engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sluice ") + sluice::kVersion);
  // Global options may stand before or after the verb (fallthrough): `sluice run
  // --log-level debug` and `sluice --log-level debug run` are the same.
  app.fallthrough();
  std::string config = "sluice.yaml", level = "info", output = "table", engine_url;
  app.add_option("--log-level", level, "trace|debug|info|warn|error|off (env SLUICE_LOG_LEVEL)")
      ->envname("SLUICE_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("-c,--config", config, "config file (env SLUICE_CONFIG)")
      ->envname("SLUICE_CONFIG")
      ->capture_default_str();
  app.add_option("--engine", engine_url,
                 "the running engine's HTTP API, http://HOST:PORT (env SLUICE_ENGINE; default: "
                 "from the config)")
      ->envname("SLUICE_ENGINE");
  app.add_option("-o,--output", output, "table | json (functions, lag, dlq list, dlq show, pause, resume)")
      ->check(CLI::IsMember({"table", "json"}));
  auto config_opt = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config, "config file (env SLUICE_CONFIG)")
        ->envname("SLUICE_CONFIG")
        ->capture_default_str();
  };
  auto output_opt = [&](CLI::App* sub) {
    sub->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));
  };
  auto json = [&] { return output == "json"; };
  int rc = kOk;
  std::function<int()> action;

  auto* run = app.add_subcommand("run", "run the engine in the foreground (SIGTERM/SIGINT drain)");
  config_opt(run);
  run->callback([&] { action = [&] { return run_engine(config); }; });

  auto* val = app.add_subcommand("validate", "check a config; errors name the field and line");
  config_opt(val);
  val->callback([&] { action = [&] { return validate(config); }; });

  PublishArgs pa;
  auto* pub = app.add_subcommand("publish", "publish an event durably");
  config_opt(pub);
  pub->add_option("--broker", pa.broker, "broker name (default: the first)");
  pub->add_option("topic", pa.topic, "topic")->required();
  pub->add_option("data", pa.data, "DATA | @FILE | - (stdin)");
  pub->add_option("--key", pa.key, "partition key");
  pub->add_option("--header", pa.headers, "NAME=VALUE (repeatable)");
  pub->add_option("--type", pa.type, "CloudEvents type");
  pub->add_option("--count", pa.count, "publish N copies (new ids)")->check(CLI::Range(1, 100000000));
  pub->add_flag("--internal", pa.internal,
                "allow a function's retry or dead-letter topic (records arrive unsealed)");
  pub->callback([&] { action = [&] { pa.config = config; return publish(pa); }; });

  InvokeArgs ia;
  auto* inv = app.add_subcommand("invoke", "call a function synchronously and print its result");
  config_opt(inv);
  inv->add_option("function", ia.function, "function name")->required();
  inv->add_option("data", ia.data, "DATA | @FILE | - (stdin)");
  inv->add_option("--content-type", ia.content_type, "Content-Type of DATA");
  inv->add_option("--key", ia.key, "partition key");
  inv->add_option("--header", ia.headers, "NAME=VALUE (repeatable)");
  inv->callback([&] { action = [&] { ia.config = config; return invoke(ia); }; });

  NewArgs na;
  auto* nw = app.add_subcommand("new", "write a function folder (handler, build script, sluice.yaml) that runs as printed");
  nw->add_option("function", na.name, "function name")->required();
  nw->add_option("--lang", na.lang, "python | node | go | cpp")->required();
  nw->add_option("--dir", na.dir, "parent folder (default: .)");
  nw->add_option("--config", na.config,
                 "add the function to this sluice.yaml instead of writing one in its folder");
  nw->add_option("--source", na.source_root, "the sluice checkout with sdk/ (default: this build's)");
  nw->callback([&] { action = [&] { return new_function(na); }; });

  auto* fns = app.add_subcommand("functions", "list functions with workers and in-flight events");
  config_opt(fns);
  output_opt(fns);
  fns->callback([&] { action = [&] { return functions(config, json()); }; });

  std::string paused_fn;
  auto* pse = app.add_subcommand(
      "pause", "stop a function's intake at runtime: running events finish, the rest wait in the broker");
  config_opt(pse);
  output_opt(pse);
  pse->add_option("function", paused_fn, "function name")->required();
  pse->callback([&] { action = [&] { return set_paused(config, paused_fn, true, json()); }; });
  auto* rsm = app.add_subcommand("resume", "resume a paused function (until the next start)");
  config_opt(rsm);
  output_opt(rsm);
  rsm->add_option("function", paused_fn, "function name")->required();
  rsm->callback([&] { action = [&] { return set_paused(config, paused_fn, false, json()); }; });

  bool watch = false, all_topics = false;
  auto* lg = app.add_subcommand("lag", "consumer lag per broker/topic/partition/group");
  config_opt(lg);
  lg->add_flag("--watch", watch, "refresh every 2 s");
  lg->add_flag("--all", all_topics,
               "also list every topic the brokers hold events in that nothing subscribes to");
  output_opt(lg);
  lg->callback([&] { action = [&] { return lag(config, watch, json(), all_topics); }; });

  FilterArgs fa;
  auto* flt = app.add_subcommand(
      "filter", "evaluate a CloudEvents SQL expression against an event; prints {\"result\", \"error\"}");
  flt->add_option("expression", fa.expression, "CESQL expression (docs/FILTERS.md)")->required();
  flt->add_option("--event", fa.event, "FILE | - (stdin): a CloudEvent in JSON (default: the empty event)");
  flt->callback([&] { action = [&] { return filter_expression(fa); }; });

  DlqArgs da;
  auto* dlq = app.add_subcommand("dlq", "dead-letter queue: list, show, replay");
  dlq->require_subcommand(1);
  auto* dl = dlq->add_subcommand("list", "list dead letters");
  config_opt(dl);
  dl->add_option("--function", da.function, "only this function");
  dl->add_option("--limit", da.limit, "at most N")->check(CLI::Range(1, 10000000));
  dl->add_flag("--json", da.json, "one JSON object per line (same as -o json)");
  output_opt(dl);
  dl->callback([&] { action = [&] { da.config = config; da.json = da.json || json(); return dlq_list(da); }; });
  auto* ds = dlq->add_subcommand("show", "show one dead letter with its payload");
  config_opt(ds);
  ds->add_option("id", da.ids, "TOPIC:PARTITION:OFFSET")->required()->expected(1);
  output_opt(ds);
  ds->callback([&] { action = [&] { da.config = config; da.json = json(); return dlq_show(da); }; });
  auto* dr = dlq->add_subcommand("replay", "re-publish dead letters to their original topic");
  config_opt(dr);
  dr->add_option("--function", da.function, "only this function");
  dr->add_option("--id", da.ids, "only these ids (repeatable)");
  dr->add_option("--to", da.to, "publish to this topic instead");
  dr->add_flag("--dry-run", da.dry_run, "show what would be replayed");
  dr->add_flag("--force", da.force, "also replay dead letters whose seal does not verify");
  dr->callback([&] { action = [&] { da.config = config; return dlq_replay(da); }; });

  if (auto unknown = unknown_verb(app, argc, argv)) {
    std::cerr << "sluice: " << *unknown << " (see --help)\n";
    return kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "sluice: " << e.what() << " (see --help)\n";
    return kUsage;
  }
  setup_logging(level);
  set_engine_url(engine_url);
  try {
    rc = action ? action() : kUsage;
  } catch (const Exit& e) {
    if (!e.message.empty()) std::cerr << "sluice: " << e.message << "\n";
    rc = e.code;
  } catch (const std::exception& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    rc = kFailure;
  }
  return rc;
}
