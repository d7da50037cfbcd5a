#include "workers/registry.h"

#include "workers/exec_runtime.h"

namespace sluice::workers {

Result<std::unique_ptr<Runtime>> make_runtime(const FunctionConfig& fn,
                                              const std::string& base_dir) {
  switch (fn.runtime) {
    case RuntimeKind::exec: return std::unique_ptr<Runtime>(new ExecRuntime(fn, base_dir));
    case RuntimeKind::stdio:
    case RuntimeKind::http:
    case RuntimeKind::inproc: break;
  }
  return Error{Errc::invalid_argument, std::string("runtime '") + to_string(fn.runtime) +
                                           "' is not implemented yet (function '" + fn.name +
                                           "')"};
}

}  // namespace sluice::workers
