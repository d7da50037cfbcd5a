#include "cmd/preflight.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "broker-adapters/http/http_util.h"
#include "broker-adapters/registry.h"
#include "core/seal.h"
#include "topology/plan.h"
#include "workers/inproc_abi.h"
#include "workers/process.h"
#include "workers/registry.h"

namespace sluice::cmd {

namespace {

class Report {
 public:
  Report(const Config& c, PreflightReport& out) : c_(c), out_(out) {}
  void error(std::string path, int line, std::string message) {
    out_.errors.push_back(ConfigError{std::move(path), line, std::move(message), c_.file});
  }

 private:
  const Config& c_;
  PreflightReport& out_;
};

// The same reading the HTTP server does at start (http_util.h).
void check_tokens_file(Report& r, const std::string& path, const std::string& field) {
  if (path.empty()) return;
  if (auto t = http::load_bearer_tokens(path, field); !t) r.error(field, 0, t.error().message);
}

bool is_dir(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// exec, stdio, http: the program the runtime will start, from the config's directory.
void check_command(Report& r, const FunctionConfig& fn, const std::string& base_dir,
                   const std::string& path) {
  if (fn.command.empty()) return;
  const std::string& argv0 = fn.command.front();
  if (argv0.find('/') == std::string::npos) {
    if (auto exe = workers::resolve_command(argv0); !exe)
      r.error(path + ".command[0]", fn.line, exe.error().message);
    return;
  }
  // With a '/', the child's execve resolves it in its working directory (base_dir).
  const std::string exe = argv0.front() == '/' ? argv0 : base_dir + "/" + argv0;
  struct stat st{};
  if (::stat(exe.c_str(), &st) != 0) {
    r.error(path + ".command[0]", fn.line,
            "cannot start '" + argv0 + "': " + std::strerror(errno) + " (" + exe + ")");
  } else if (!S_ISREG(st.st_mode) || ::access(exe.c_str(), X_OK) != 0) {
    r.error(path + ".command[0]", fn.line,
            "cannot start '" + argv0 + "': not an executable file (" + exe + ")");
  }
}

// inproc: the library loads and exports the ABI (workers/inproc_abi.h). RTLD_LAZY so
// nothing but the library's own constructors runs; the functions are not called.
void check_library(Report& r, const FunctionConfig& fn, const std::string& path) {
  if (fn.command.size() != 1) return;
  const std::string& lib = fn.command.front();
  void* h = ::dlopen(lib.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    r.error(path + ".command[0]", fn.line,
            "inproc library '" + lib + "': " + (why ? why : "cannot be loaded"));
    return;
  }
  std::string missing;
  for (const char* sym : {"sluice_abi_version", "sluice_init", "sluice_invoke",
                          "sluice_free_result", "sluice_shutdown"})
    if (!::dlsym(h, sym)) missing += std::string(" ") + sym;
  ::dlclose(h);
  if (!missing.empty())
    r.error(path + ".command[0]", fn.line,
            "inproc library '" + lib + "': missing symbol(s):" + missing +
                " (see workers/inproc_abi.h; extern \"C\"?)");
}

// A local broker's database: the file (or the nearest existing directory above it,
// where run would create it) must be writable.
// A file sluice opens for writing, or creates (with its directories) when absent.
void check_writable_file(Report& r, const std::string& field, int line, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  std::error_code ec;
  if (fs::exists(p, ec)) {
    if (fs::is_directory(p, ec))
      r.error(field, line, "'" + path + "' is a directory");
    else if (::access(path.c_str(), R_OK | W_OK) != 0)
      r.error(field, line, "'" + path + "': " + std::strerror(errno));
    return;
  }
  for (p = p.parent_path(); !p.empty(); p = p.parent_path()) {
    if (!fs::exists(p, ec)) {
      if (p == p.root_path()) break;
      continue;
    }
    if (!fs::is_directory(p, ec) || ::access(p.c_str(), W_OK | X_OK) != 0)
      r.error(field, line,
              "cannot create '" + path + "': '" + p.string() + "' is not a writable directory");
    return;
  }
}

void check_local_path(Report& r, const BrokerConfig& b) {
  check_writable_file(r, "brokers." + b.name + ".path", b.line, b.local().path);
}

// The control key (core/seal.h): read as `run` reads it, or creatable where it is absent.
void check_control_key(Report& r, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return check_writable_file(r, "engine.control_key_file", 0, path);
  if (auto k = seal::Keyring::load(path, /*create=*/false); !k)
    r.error("engine.control_key_file", 0, k.error().message);
}

}  // namespace

PreflightReport preflight(const Config& c) {
  PreflightReport out;
  // What the config cannot run as (the plan Engine::start builds from), first.
  out.errors = topology::plan(c).errors;
  Report r(c, out);
  if (c.http.enabled) check_tokens_file(r, c.http.bearer_tokens_file, "http.auth.bearer_tokens_file");
  if (c.metrics.enabled)
    check_tokens_file(r, c.metrics.bearer_tokens_file, "metrics.auth.bearer_tokens_file");
  check_control_key(r, c.engine.control_key_file);
  for (const BrokerConfig& b : c.brokers) {
    const brokers::BrokerCapabilities caps = brokers::broker_capabilities(b);
    if (caps.own_database) check_local_path(r, b);
    if (caps.remote)
      out.not_checked.push_back(std::string(to_string(b.kind())) + " broker '" + b.name +
                                "' reachable");
  }
  for (size_t i = 0; i < c.functions.size(); ++i) {
    const FunctionConfig& fn = c.functions[i];
    const std::string path = "functions[" + std::to_string(i) + "]";
    if (workers::runtime_info(fn).command_is_library) {
      check_library(r, fn, path);
      continue;
    }
    // The runtimes start every process in the config's directory.
    if (!is_dir(c.base_dir)) {
      r.error(path, fn.line, "working directory '" + c.base_dir + "' does not exist");
      continue;
    }
    check_command(r, fn, c.base_dir, path);
  }
  if (c.http.enabled) out.not_checked.push_back("http.listen " + c.http.listen + " free");
  if (c.metrics.enabled) out.not_checked.push_back("metrics.listen " + c.metrics.listen + " free");
  return out;
}

}  // namespace sluice::cmd
