// `sluice invoke -c CONFIG FUNCTION [DATA | @FILE | -]`: a synchronous call through
// the running engine's POST /function/{name}; prints the function's result.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd/cli.h"
#include "cmd/engine_state.h"
#include "cmd/http_get.h"

namespace sluice::cmd {

int invoke(const InvokeArgs& a) {
  Config cfg = load_or_exit(a.config);
  const FunctionConfig* fn = cfg.function(a.function);
  if (!fn) throw Exit{kUsage, "no function '" + a.function + "' in " + a.config};
  auto at = engine_address(cfg);
  if (!at)
    throw Exit{at.error().code == Errc::invalid_argument ? kUsage : kFailure,
               "invoke needs the engine's HTTP API: " + at.error().message};
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Content-Type", a.content_type.empty() ? "application/octet-stream" : a.content_type);
  if (!a.key.empty()) headers.emplace_back("X-Sluice-Key", a.key);
  for (const auto& h : a.headers) {
    auto eq = h.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Exit{kUsage, "--header '" + h + "': expected NAME=VALUE"};
    headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  const std::string data = a.data.empty() ? std::string() : read_data_arg(a.data);
  // The function's own timeout decides; the margin covers queueing and the network.
  auto timeout = fn->timeout + std::chrono::seconds(10);
  auto r = http_post(at.value(), "/function/" + a.function,
                     first_token(cfg.http.bearer_tokens_file), data, headers, timeout);
  if (!r) throw Exit{kFailure, r.error().message + " (is `sluice run` up?)"};
  const HttpReply& rep = r.value();
  if (rep.status >= 200 && rep.status < 300) {
    std::cout << rep.body;
    if (!rep.body.empty() && rep.body.back() != '\n' && isatty(1)) std::cout << '\n';
    std::cout.flush();
    return kOk;
  }
  std::string why = rep.body;
  auto j = nlohmann::json::parse(rep.body, nullptr, false);
  if (j.is_object() && j.contains("error")) why = j["error"].get<std::string>();
  auto outcome = rep.headers.count("x-function-outcome") ? rep.headers.at("x-function-outcome") : "";
  throw Exit{kFailure, fmt::format("function '{}' failed{}: HTTP {}: {}", a.function,
                                   outcome.empty() ? "" : " (" + outcome + ")", rep.status, why)};
}

}  // namespace sluice::cmd
