// The one visible place where runtimes are registered (STYLE.md: small interfaces,
// registered in one place; no static-initialiser magic).
//
// Threading: make_runtime() is a plain function; call it at start-up, from any thread.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "core/runtime.h"

namespace sluice::workers {

// The runtime for `fn.runtime`, not yet started. `base_dir` is the working
// directory of the function's processes (Config::base_dir).
//   exec   -> ExecRuntime (io threads: concurrency, 1..4)
//   stdio  -> StdioRuntime (default StdioOptions)
//   http   -> HttpRuntime (default HttpOptions)
//   inproc -> InprocRuntime (default InprocOptions; the library is loaded by start())
Result<std::unique_ptr<Runtime>> make_runtime(const FunctionConfig& fn,
                                              const std::string& base_dir);

// What a function's runtime kind says about itself, known from the config alone: what
// preflight and the scaling glue decide by, so that neither asks which kind it is.
struct RuntimeInfo {
  // Events one worker runs at once: 1 for exec and inproc (a process or a thread per
  // event); the function's concurrency for stdio and http (each worker multiplexes,
  // so any live worker allows them all).
  uint32_t events_per_worker = 1;
  // `command` names a shared library to load (inproc), not a program to start.
  bool command_is_library = false;
};
RuntimeInfo runtime_info(const FunctionConfig& fn);

}  // namespace sluice::workers
