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

}  // namespace sluice::workers
