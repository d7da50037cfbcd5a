// `sluice pause -c CONFIG FUNCTION` / `sluice resume -c CONFIG FUNCTION`: through the
// running engine's POST /system/functions/{name}/pause|resume (api/pause.h). The state
// lasts until the other verb or the engine's end: at start a function is paused only
// when its config says `paused: true`.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd/cli.h"
#include "cmd/engine_state.h"
#include "cmd/http_get.h"

namespace sluice::cmd {

int set_paused(const std::string& config_path, const std::string& function, bool pause,
               bool json) {
  const char* verb = pause ? "pause" : "resume";
  Config cfg = load_or_exit(config_path);
  if (!cfg.function(function)) throw Exit{kUsage, "no function '" + function + "' in " + config_path};
  auto at = engine_address(cfg);
  if (!at)
    throw Exit{at.error().code == Errc::invalid_argument ? kUsage : kFailure,
               std::string(verb) + " needs the engine's HTTP API: " + at.error().message};
  const std::string path = "/system/functions/" + function + "/" + verb;
  auto r = http_post(at.value(), path, first_token(cfg.http.bearer_tokens_file), "", {},
                     std::chrono::seconds(10));
  if (!r) throw Exit{kFailure, r.error().message + " (is `sluice run` up?)"};
  const HttpReply& rep = r.value();
  if (rep.status != 200) {
    std::string why = rep.body;
    auto j = nlohmann::json::parse(rep.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"].get<std::string>();
    throw Exit{kFailure, "POST " + path + ": HTTP " + std::to_string(rep.status) + ": " + why};
  }
  if (json) {
    std::cout << rep.body << "\n";
  } else {
    std::cout << "function '" << function << "' " << (pause ? "paused" : "resumed") << "\n";
  }
  return kOk;
}

}  // namespace sluice::cmd
