#include "workers/pool_util.h"

#include <sys/stat.h>

namespace sluice::workers {

InvocationResult failure(Outcome o, std::string message) {
  InvocationResult r;
  r.outcome = o;
  r.message = std::move(message);
  return r;
}

Result<void> check_start(std::string_view kind, bool created, const std::string& function,
                         const std::vector<std::string>& command, const std::string& base_dir) {
  if (!created)
    return Error{Errc::closed, std::string(kind) + " runtime of function '" + function +
                                   "' was already started"};
  if (command.empty() || command[0].empty())
    return Error{Errc::invalid_argument, "function '" + function + "': runtime " +
                                             std::string(kind) + " needs a non-empty command"};
  if (!base_dir.empty()) {
    struct stat st{};
    if (::stat(base_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Error{Errc::not_found, "function '" + function + "': working directory '" +
                                        base_dir + "' does not exist"};
  }
  return ok();
}

Environment function_environment(const FunctionConfig& fn) {
  std::vector<std::string> rejected;
  Environment env = Environment::clean(fn.env, &rejected);
  for (const auto& name : rejected)
    log().warn("[fn {}] env '{}' left out: a name cannot contain '=' and a value not NUL",
               fn.name, name);
  return env;
}

}  // namespace sluice::workers
