#include "config/vars.h"

#include <cstdlib>
#include <set>
#include <vector>

#include "config/reader.h"
#include "config/values.h"

namespace sluice::config {
namespace {

bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

Error bad(std::string message) { return Error{Errc::invalid_argument, std::move(message)}; }

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

Result<std::string> expand_vars(std::string_view text, const EnvLookup& env) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, dollar - i));
    i = dollar + 1;
    if (i < text.size() && text[i] == '$') {  // $$ -> $
      out += '$';
      ++i;
      continue;
    }
    if (i >= text.size() || text[i] != '{') {  // a lone $ stays
      out += '$';
      continue;
    }
    const size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos)
      return bad("unclosed \"${\" (write $$ for a literal dollar sign)");
    const std::string_view body = text.substr(i + 1, close - i - 1);
    if (body.find("${") != std::string_view::npos)
      return bad("nested \"${\" in " + quote(text.substr(dollar, close + 1 - dollar)) +
                 " is not supported");
    const size_t sep = body.find(":-");
    const std::string_view name = body.substr(0, sep);
    if (name.empty()) return bad("empty variable name in \"${}\"");
    bool valid = name_start(name.front());
    for (char c : name) valid = valid && name_char(c);
    if (!valid)
      return bad("bad variable name " + quote(name) +
                 " (letters, digits and _, not starting with a digit; ${NAME:-default} "
                 "for a default)");
    auto value = env(name);
    if (!value) {
      if (sep == std::string_view::npos)
        return bad("environment variable " + std::string(name) + " is not set (write ${" +
                   std::string(name) + ":-default} for a default)");
      value = std::string(body.substr(sep + 2));
    }
    out += *value;
    if (out.size() > kMaxExpanded)
      return bad("the value is longer than " + format_size(kMaxExpanded) + " once expanded");
    i = close + 1;
  }
  if (out.size() > kMaxExpanded)
    return bad("the value is longer than " + format_size(kMaxExpanded) + " once expanded");
  return out;
}

void expand_tree(Diagnostics& d, YAML::Node& root, const EnvLookup& env, size_t max_nodes) {
  size_t visited = 0;
  // A node reached twice through an alias is expanded once (it keeps its mark).
  std::set<int> done;
  std::vector<YAML::Node> stack{root};
  while (!stack.empty()) {
    YAML::Node n = stack.back();
    stack.pop_back();
    if (++visited > max_nodes) {
      d.error("", 0, "the config has more than " + std::to_string(max_nodes) +
                         " nodes (aliases of aliases?)");
      return;
    }
    if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) stack.push_back(it->second);
    } else if (n.IsSequence()) {
      for (auto it = n.begin(); it != n.end(); ++it) stack.push_back(*it);
    } else if (n.IsScalar() && n.Scalar().find('$') != std::string::npos) {
      if (!done.insert(n.Mark().pos).second) continue;
      auto r = expand_vars(n.Scalar(), env);
      if (!r) {
        d.error("", line_of(n), r.error().message);
        continue;
      }
      n = r.value();
    }
  }
}

}  // namespace sluice::config
