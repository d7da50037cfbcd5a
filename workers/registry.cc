#include "workers/registry.h"

#include <algorithm>

#include "workers/exec_runtime.h"

namespace sluice::workers {

Result<std::unique_ptr<Runtime>> make_runtime(const FunctionConfig& fn,
                                              const std::string& base_dir) {
  switch (fn.runtime) {
    case RuntimeKind::exec: {
      // posix_spawn blocks its thread until the child has exec'd: with one io thread
      // the spawns of concurrent invocations queue behind each other (measured in
      // bench/exec_runtime.sh: 0.87x of a plain spawn loop with 1 thread, 0.95x with 4).
      ExecOptions opts;
      opts.io_threads = std::clamp<unsigned>(fn.concurrency, 1, 4);
      return std::unique_ptr<Runtime>(new ExecRuntime(fn, base_dir, opts));
    }
    case RuntimeKind::stdio:
    case RuntimeKind::http:
    case RuntimeKind::inproc: break;
  }
  return Error{Errc::invalid_argument, std::string("runtime '") + to_string(fn.runtime) +
                                           "' is not implemented yet (function '" + fn.name +
                                           "')"};
}

}  // namespace sluice::workers
