#include "workers/environment.h"

#include <cstdlib>

namespace sluice::workers {

Environment Environment::clean(const std::map<std::string, std::string>& fn_env,
                               std::vector<std::string>* rejected) {
  Environment env;
  for (const char* inherited : {"PATH", "HOME"})
    if (const char* v = std::getenv(inherited)) env.set(inherited, v);
  for (const auto& [name, value] : fn_env)
    if (!env.set(name, value) && rejected) rejected->push_back(name);
  return env;
}

bool Environment::set(std::string_view name, std::string_view value) {
  if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != name.npos ||
      value.find('\0') != value.npos)
    return false;
  auto it = vars_.find(name);
  if (it != vars_.end())
    it->second.assign(value);
  else
    vars_.emplace(std::string(name), std::string(value));
  return true;
}

void Environment::unset(std::string_view name) {
  auto it = vars_.find(name);
  if (it != vars_.end()) vars_.erase(it);
}

const std::string* Environment::get(std::string_view name) const {
  auto it = vars_.find(name);
  return it == vars_.end() ? nullptr : &it->second;
}

std::vector<std::string> Environment::to_list() const {
  std::vector<std::string> out;
  out.reserve(vars_.size());
  for (const auto& [name, value] : vars_) {
    std::string entry;
    entry.reserve(name.size() + 1 + value.size());
    entry.append(name).append(1, '=').append(value);
    out.push_back(std::move(entry));
  }
  return out;
}

namespace {

std::string extension_var(std::string_view name) {
  std::string var = "CE_";
  for (char c : name) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    bool keep = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    var.push_back(keep ? c : '_');
  }
  return var;
}

}  // namespace

std::vector<std::string> add_event_vars(Environment& env, const Event& ev,
                                        std::string_view function) {
  std::vector<std::string> dropped;
  auto put = [&](std::string_view name, std::string_view value) {
    if (env.set(name, value)) return;
    env.unset(name);  // an event variable that cannot be exported is absent, not stale
    dropped.emplace_back(name);
  };
  auto put_nonempty = [&](std::string_view name, const std::string& value) {
    if (!value.empty()) put(name, value);
  };

  const std::pair<const char*, const std::string*> attributes[] = {
      {"CE_ID", &ev.id},
      {"CE_SOURCE", &ev.source},
      {"CE_TYPE", &ev.type},
      {"CE_SPECVERSION", &ev.specversion},
      {"CE_SUBJECT", &ev.subject},
      {"CE_TIME", &ev.time},
      {"CE_DATACONTENTTYPE", &ev.datacontenttype},
      {"CE_DATASCHEMA", &ev.dataschema},
  };
  auto is_attribute = [&](std::string_view var) {
    for (const auto& a : attributes)
      if (var == a.first) return true;
    return false;
  };
  for (const auto& [name, value] : ev.extensions) {
    std::string var = extension_var(name);
    if (name.empty() || is_attribute(var)) continue;
    put_nonempty(var, value);
  }
  for (const auto& [var, value] : attributes) put_nonempty(var, *value);

  put("SLUICE_FUNCTION", function);
  put("SLUICE_ATTEMPT", std::to_string(ev.attempt));
  put_nonempty("SLUICE_BROKER", ev.broker);
  put_nonempty("SLUICE_TOPIC", ev.topic);
  put_nonempty("SLUICE_KEY", ev.key);
  if (ev.partition >= 0) put("SLUICE_PARTITION", std::to_string(ev.partition));
  if (ev.offset >= 0) put("SLUICE_OFFSET", std::to_string(ev.offset));
  return dropped;
}

}  // namespace sluice::workers
