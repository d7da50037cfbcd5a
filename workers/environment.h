// The clean environment of a function process.
//
// A function sees only:
//   1. PATH and HOME, inherited from sluice's own environment (when set there), so
//      that `command: [python3, ...]` resolves as it does in the user's shell;
//   2. the function's `env` map from the config (overrides 1);
//   3. per-event variables (override 1 and 2), see add_event_vars().
// Nothing else of sluice's environment leaks (no credentials, no SLUICE_* config).
//
// Threading: a plain value; build one per spawn on the thread that spawns.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"

namespace sluice::workers {

class Environment {
 public:
  // PATH and HOME from getenv(), then `fn_env`. Entries that cannot be exported
  // (see set()) are skipped; `rejected` (optional) receives their names.
  static Environment clean(const std::map<std::string, std::string>& fn_env,
                           std::vector<std::string>* rejected = nullptr);

  // Sets NAME=value, replacing an earlier value. Returns false and sets nothing when
  // the name is empty or contains '=' or NUL, or the value contains NUL.
  bool set(std::string_view name, std::string_view value);
  void unset(std::string_view name);
  const std::string* get(std::string_view name) const;
  size_t size() const { return vars_.size(); }

  // "NAME=value" strings, sorted by name: what execve's envp gets.
  std::vector<std::string> to_list() const;

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

// Adds the per-event variables (CloudEvents attributes, the watchdog habit):
//   CE_ID, CE_SOURCE, CE_TYPE, CE_SPECVERSION, CE_SUBJECT, CE_TIME,
//   CE_DATACONTENTTYPE, CE_DATASCHEMA        -- each only when non-empty
//   CE_<NAME>  for each extension (name upper-cased, other than [A-Z0-9_] -> '_';
//              never replaces one of the attributes above)
//   SLUICE_FUNCTION, SLUICE_ATTEMPT          -- always
//   SLUICE_BROKER, SLUICE_TOPIC, SLUICE_KEY  -- when non-empty
//   SLUICE_PARTITION, SLUICE_OFFSET          -- when >= 0
// A value containing NUL cannot be exported; its variable is left out and its name
// returned, so the caller can log it.
std::vector<std::string> add_event_vars(Environment& env, const Event& ev,
                                        std::string_view function);

}  // namespace sluice::workers
