// `${VAR}` and `${VAR:-default}` in config values (docs/CONFIG.md "Environment
// variables"): the text expansion, and the pass over a loaded YAML tree that applies it
// to every scalar value (never to keys). `$$` stands for one `$`; a `$` followed by
// anything else is kept as written. Pure functions; used on the loading thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::config {

class Diagnostics;

// The value of an environment variable, or nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// getenv(3).
std::optional<std::string> process_env(std::string_view name);

// An expanded value is refused past this many bytes.
inline constexpr std::size_t kMaxExpanded = 1 << 20;

// `text` with each ${NAME} / ${NAME:-default} replaced and $$ turned into $.
// NAME is [A-Za-z_][A-Za-z0-9_]*. Errors (Errc::invalid_argument, one line): an
// unclosed `${`, an empty or malformed name, a nested `${` (also inside a default),
// an unset variable without a default, a result longer than kMaxExpanded.
Result<std::string> expand_vars(std::string_view text, const EnvLookup& env);

// Expands every scalar value under `root` in place (keys stay as written); each
// failure is reported with its line. Gives up (one error) past `max_nodes` nodes, so
// that aliases of aliases cannot make the walk exponential.
void expand_tree(Diagnostics& d, YAML::Node& root, const EnvLookup& env,
                 std::size_t max_nodes = 200000);

}  // namespace sluice::config
