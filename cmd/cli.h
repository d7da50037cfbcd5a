// Shared helpers of the CLI verbs: config loading with exit code 2 on bad config,
// one-line errors, and plain-text tables.
#pragma once

#include <string>
#include <vector>

#include "cmd/preflight.h"
#include "config/config.h"
#include "core/result.h"
#include "topology/plan.h"

namespace sluice::cmd {

inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;
inline constexpr int kUsage = 2;
// `sluice run` stopped, but its drain left work unfinished (engine.drain_timeout):
// those events are delivered again after a restart.
inline constexpr int kDrainIncomplete = 3;
// `sluice run` was stopped by a second SIGINT/SIGTERM during the drain (128 + SIGINT).
inline constexpr int kInterrupted = 130;

// Thrown by verbs to end with one line on stderr and an exit code.
struct Exit {
  int code;
  std::string message;
};

// Loads and validates; on error prints every problem and throws Exit{2}.
Config load_or_exit(const std::string& path);
// The checks of cmd/preflight.h (files, programs, libraries); on error prints every
// problem and throws Exit{2}. `validate` and `run` both call it.
PreflightReport preflight_or_exit(const Config& c, const std::string& path);
// The topology plan (topology/plan.h); on error prints every problem and throws Exit{2}.
topology::Plan plan_or_exit(const Config& c, const std::string& path);

// Prints rows under headers, columns padded to their widest cell.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

// DATA | @FILE | - (stdin) -> bytes; Exit{2} when the file cannot be read.
std::string read_data_arg(const std::string& arg);

int run_engine(const std::string& config_path);
int validate(const std::string& config_path);
struct PublishArgs {
  std::string config, broker, topic, data, key, type;
  std::vector<std::string> headers;
  int count = 1;
  bool internal = false;  // --internal: a function's retry/dead-letter topic is allowed
};
int publish(const PublishArgs& a);
struct InvokeArgs {
  std::string config, function, data, content_type, key;
  std::vector<std::string> headers;
};
int invoke(const InvokeArgs& a);
struct NewArgs {
  std::string name, lang, dir, source_root;
  std::string config;  // --config: append the function to this file instead of writing one
};
int new_function(const NewArgs& a);
// json: `-o json` (functions: one array; lag: one array per refresh). lag's `all`
// (--all): count every topic of each broker, not only those sluice knows of.
int functions(const std::string& config_path, bool json = false);
int lag(const std::string& config_path, bool watch, bool json = false, bool all = false);
struct DlqArgs {
  std::string config, function, to;
  std::vector<std::string> ids;
  int limit = 100;
  bool json = false, dry_run = false;
  bool force = false;  // replay: also dead letters whose seal does not verify
};
// `sluice filter`: a CloudEvents SQL expression against one event (cmd/verb_filter.cc).
struct FilterArgs {
  std::string expression;
  std::string event;  // FILE | - (stdin) | empty: the empty event
};
int filter_expression(const FilterArgs& a);
// `sluice pause` (pause = true) / `sluice resume` through the running engine
// (cmd/verb_pause.cc); json: print the engine's answer.
int set_paused(const std::string& config_path, const std::string& function, bool pause,
               bool json = false);
int dlq_list(const DlqArgs& a);
int dlq_show(const DlqArgs& a);
int dlq_replay(const DlqArgs& a);

}  // namespace sluice::cmd
