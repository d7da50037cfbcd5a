#include "cmd/cli.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>


namespace sluice::cmd {

namespace {
// Prints every problem, one a line, and exits 2 with their count.
[[noreturn]] void exit_with(const std::vector<ConfigError>& errors, const std::string& path) {
  for (const auto& e : errors) std::cerr << e.to_string() << "\n";
  throw Exit{kUsage, fmt::format("{}: {} error{} in the config", path, errors.size(),
                                 errors.size() == 1 ? "" : "s")};
}
}  // namespace

Config load_or_exit(const std::string& path) {
  auto r = load_config_file(path);
  if (!r.config) exit_with(r.errors, path);
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

PreflightReport preflight_or_exit(const Config& c, const std::string& path) {
  PreflightReport p = preflight(c);
  if (!p.errors.empty()) exit_with(p.errors, path);
  return p;
}

topology::Plan plan_or_exit(const Config& c, const std::string& path) {
  topology::PlanResult r = topology::plan(c);
  if (!r.plan) exit_with(r.errors, path);
  return std::move(*r.plan);
}

int validate(const std::string& path) {
  Config c = load_or_exit(path);
  const PreflightReport pre = preflight_or_exit(c, path);
  size_t subs = 0;
  for (const auto& f : c.functions) subs += f.subscribe.size();
  std::cout << fmt::format("{}: ok ({} broker{}, {} function{}, {} subscription{})\n", path,
                           c.brokers.size(), c.brokers.size() == 1 ? "" : "s",
                           c.functions.size(), c.functions.size() == 1 ? "" : "s", subs,
                           subs == 1 ? "" : "s");
  // What only starting can tell (preflight.h), so "ok" is not read as more than it is.
  std::string unchecked;
  for (const auto& n : pre.not_checked) unchecked += (unchecked.empty() ? "" : ", ") + n;
  if (!unchecked.empty()) std::cout << "not checked (known only at run): " << unchecked << "\n";
  return kOk;
}

}  // namespace sluice::cmd
