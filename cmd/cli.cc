#include "cmd/cli.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "broker-adapters/http/http_util.h"

namespace sluice::cli {

Config load_or_exit(const std::string& path) {
  auto r = load_config_file(path);
  if (!r.config) {
    for (const auto& e : r.errors) std::cerr << e.to_string() << "\n";
    throw Exit{kUsage, fmt::format("{}: {} error{} in the config", path, r.errors.size(),
                                   r.errors.size() == 1 ? "" : "s")};
  }
  return std::move(*r.config);
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) w[i] = headers[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size() && i < w.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(w[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
}

std::string read_data_arg(const std::string& arg) {
  if (arg == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  if (!arg.empty() && arg[0] == '@') {
    std::ifstream f(arg.substr(1), std::ios::binary);
    if (!f) throw Exit{kUsage, "cannot read " + arg.substr(1)};
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  return arg;
}

int validate(const std::string& path) {
  Config c = load_or_exit(path);
  // The token files, read the way `run` reads them at start.
  std::vector<std::string> token_errors;
  if (c.http.enabled && !c.http.bearer_tokens_file.empty())
    if (auto t = http::load_bearer_tokens(c.http.bearer_tokens_file); !t)
      token_errors.push_back(t.error().message);
  if (c.metrics.enabled && !c.metrics.bearer_tokens_file.empty())
    if (auto t = http::load_bearer_tokens(c.metrics.bearer_tokens_file,
                                          "metrics.auth.bearer_tokens_file");
        !t)
      token_errors.push_back(t.error().message);
  if (!token_errors.empty()) {
    for (const auto& e : token_errors) std::cerr << path << ": " << e << "\n";
    throw Exit{kUsage, fmt::format("{}: {} error{} in the config", path, token_errors.size(),
                                   token_errors.size() == 1 ? "" : "s")};
  }
  size_t subs = 0;
  for (const auto& f : c.functions) subs += f.subscribe.size();
  std::cout << fmt::format("{}: ok ({} broker{}, {} function{}, {} subscription{})\n", path,
                           c.brokers.size(), c.brokers.size() == 1 ? "" : "s",
                           c.functions.size(), c.functions.size() == 1 ? "" : "s", subs,
                           subs == 1 ? "" : "s");
  return kOk;
}

}  // namespace sluice::cli
