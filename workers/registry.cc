#include "workers/registry.h"

#include <algorithm>

#include "workers/exec_runtime.h"
#include "workers/http_runtime.h"
#include "workers/inproc_runtime.h"
#include "workers/stdio_runtime.h"

namespace sluice::workers {

Result<std::unique_ptr<Runtime>> make_runtime(const FunctionConfig& fn,
                                              const std::string& base_dir) {
  switch (fn.runtime) {
    case RuntimeKind::exec: {
      // A spawn (CLONE_VFORK) blocks its thread until the child has exec'd: with one io thread
      // the spawns of concurrent invocations queue behind each other (bench/exec_runtime.sh,
      // BENCHMARKS.md "Figures behind code choices").
      ExecOptions opts;
      opts.io_threads = std::clamp<unsigned>(fn.concurrency, 1, 4);
      return std::unique_ptr<Runtime>(new ExecRuntime(fn, base_dir, opts));
    }
    case RuntimeKind::stdio:
      return std::unique_ptr<Runtime>(new StdioRuntime(fn, base_dir));
    case RuntimeKind::http:
      return std::unique_ptr<Runtime>(new HttpRuntime(fn, base_dir));
    case RuntimeKind::inproc:
      // dlopen() runs in sluice's own working directory; the config loader made a
      // library path with a '/' absolute against the config's directory.
      return std::unique_ptr<Runtime>(new InprocRuntime(fn));
  }
  return Error{Errc::invalid_argument, std::string("unknown runtime for function '") +
                                           fn.name + "'"};
}

RuntimeInfo runtime_info(const FunctionConfig& fn) {
  RuntimeInfo info;
  switch (fn.runtime) {
    case RuntimeKind::exec: break;
    case RuntimeKind::inproc: info.command_is_library = true; break;
    case RuntimeKind::stdio:
    case RuntimeKind::http: info.events_per_worker = fn.concurrency; break;
  }
  return info;
}

}  // namespace sluice::workers
