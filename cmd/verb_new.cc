// `sluice new FUNCTION --lang python|node|go|cpp [--dir DIR] [--config FILE] [--source DIR]`:
// writes a function folder that runs as printed — the `faas-cli new` habit.
//
// The folder is self-contained and portable: the language's SDK is copied into it
// (`sluice-sdk/`; for cpp the ABI header), so build.sh holds no path of this checkout
// and the folder can be moved, committed or built in a container. Without --config it
// gets a complete sluice.yaml of its own (local queue, HTTP API, the function); with
// --config FILE the function's stanza is appended to that file's `functions:` list
// (paths relative to the file's folder) after checking that the result loads. The
// handler logs each result, so a published event's result shows in the engine's log.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cmd/cli.h"

namespace sluice::cmd {

namespace fs = std::filesystem;

namespace {

bool valid_name(const std::string& s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 63 || !alnum(s[0])) return false;
  for (char c : s)
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string replace_all(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars)
    for (size_t p = 0; (p = s.find(k, p)) != std::string::npos; p += v.size()) s.replace(p, k.size(), v);
  return s;
}

struct Template {
  std::map<std::string, std::string> files;  // relative path -> content
  std::string sdk;                           // the checkout's folder copied to sluice-sdk/
  std::string runtime;                       // stdio | inproc
  std::string command;                       // YAML list; @P@ = the folder, from the config's
  std::string build_note;                    // what build.sh does, for the printed steps
  // Checkout files the SDK needs beside its sources: what its package carries and the
  // checkout keeps only once (the node SDK's .proto files, from schemas/).
  std::map<std::string, std::string> sdk_files;  // checkout path -> path in sluice-sdk/
};

Template python_template() {
  return {{{"handler.py", R"PY("""The sluice function @NAME@ (runtime: stdio, Python SDK)."""
import sluice_sdk as sluice


def handle(event, ctx):
    # event.data is bytes; event.id, event.type, event.subject, event.key ... as in CloudEvents
    if not event.data:
        raise sluice.Reject("empty event")  # permanent: straight to the dead-letter queue
    result = event.data.upper()
    ctx.info(f"result: {result.decode(errors='replace')}")  # shows in sluice's log
    return sluice.Response(result, event.data_content_type or "text/plain")


if __name__ == "__main__":
    sluice.run(handle)
)PY"},
           {"build.sh", R"SH(#!/bin/sh
# Makes .venv here with the sluice Python SDK (./sluice-sdk) and its dependencies (PyPI).
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check ./sluice-sdk
)SH"},
           {".gitignore", ".venv/\ndata/\n__pycache__/\n"}},
          "sdk/python",
          "stdio",
          "[@P@.venv/bin/python, @P@handler.py]",
          "a .venv with the SDK and its dependencies (PyPI)"};
}

Template node_template() {
  return {{{"handler.js", R"JS('use strict';
// The sluice function @NAME@ (runtime: stdio, Node.js SDK).
const sluice = require('sluice-sdk');

sluice.run(async (event, ctx) => {
  // event.data is a Buffer; event.id, event.type, event.subject ... as in CloudEvents
  if (event.data.length === 0) throw new sluice.Reject('empty event'); // straight to the DLQ
  const result = event.data.toString('utf8').toUpperCase();
  ctx.info(`result: ${result}`); // shows in sluice's log
  return new sluice.Response(Buffer.from(result),
                             { contentType: event.dataContentType || 'text/plain' });
});
)JS"},
           {"package.json", R"JSON({
  "name": "@NAME@",
  "version": "0.1.0",
  "private": true,
  "main": "handler.js",
  "dependencies": { "sluice-sdk": "file:sluice-sdk" }
}
)JSON"},
           {"build.sh", R"SH(#!/bin/sh
# Installs the sluice Node.js SDK (./sluice-sdk) and its dependencies (npm) into node_modules.
set -e
cd "$(dirname "$0")"
npm install --no-audit --no-fund --loglevel=error --install-links
)SH"},
           {".gitignore", "node_modules/\ndata/\n"}},
          "sdk/node",
          "stdio",
          "[node, @P@handler.js]",
          "node_modules with the SDK and its dependencies (npm)",
          {{"schemas/event.proto", "proto/event.proto"},
           {"schemas/worker.proto", "proto/worker.proto"}}};
}

Template go_template() {
  return {{{"main.go", R"GO(// The sluice function @NAME@ (runtime: stdio, Go SDK).
package main

import (
	"bytes"
	"context"

	sluice "sluice.dev/sdk/go"
)

func main() {
	sluice.Run(func(ctx context.Context, ev *sluice.Event) (*sluice.Response, error) {
		if len(ev.Data) == 0 {
			return nil, sluice.Rejectf("empty event") // permanent: straight to the DLQ
		}
		result := bytes.ToUpper(ev.Data)
		sluice.Infof(ctx, "result: %s", result) // shows in sluice's log
		ct := ev.DataContentType
		if ct == "" {
			ct = "text/plain"
		}
		return &sluice.Response{Output: result, ContentType: ct}, nil
	})
}
)GO"},
           {"go.mod", R"MOD(module example.com/@NAME@

go 1.23

require sluice.dev/sdk/go v0.0.0

replace sluice.dev/sdk/go => ./sluice-sdk
)MOD"},
           {"build.sh", R"SH(#!/bin/sh
# Builds .bin/@NAME@ with the sluice Go SDK (./sluice-sdk; its dependencies from the Go proxy).
set -e
cd "$(dirname "$0")"
go mod tidy
go build -o .bin/@NAME@ .
)SH"},
           {".gitignore", ".bin/\ndata/\n"}},
          "sdk/go",
          "stdio",
          "[@P@.bin/@NAME@]",
          ".bin/@NAME@ (Go modules from the Go proxy)"};
}

Template cpp_template() {
  return {{{"function.cc", R"CC(// The sluice function @NAME@ (runtime: inproc).
//
// TRUSTED CODE ONLY: an inproc function is loaded into the sluice process itself. It
// runs with sluice's memory and privileges, no limits apply, and a crash or memory
// error in it takes the whole engine down. For code you do not fully trust, use the
// Python, Node.js or Go SDK (runtime: stdio) or any program (runtime: exec).
//
// The C ABI is inproc_abi.h (a copy of sluice's workers/inproc_abi.h).
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "inproc_abi.h"

extern "C" {

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* /*function_name*/, void** state) {
  *state = nullptr;
  return 0;
}

int sluice_invoke(void* /*state*/, const sluice_event* ev, sluice_result* res) {
  if (ev->data_len == 0) {
    res->status = SLUICE_REJECTED;
    res->error_message = strdup("empty event");
    return 0;
  }
  auto* out = static_cast<uint8_t*>(std::malloc(ev->data_len));
  if (!out) return 1;
  for (size_t i = 0; i < ev->data_len; ++i) out[i] = static_cast<uint8_t>(std::toupper(ev->data[i]));
  std::fprintf(stderr, "@NAME@ result: %.*s\n", static_cast<int>(ev->data_len),
               reinterpret_cast<const char*>(out));  // shows in sluice's output
  res->status = SLUICE_OK;
  res->output = out;
  res->output_len = ev->data_len;
  res->content_type = strdup("text/plain");
  return 0;
}

void sluice_free_result(void* /*state*/, sluice_result* res) {
  std::free(res->output);
  std::free(res->content_type);
  std::free(res->error_message);
}

void sluice_shutdown(void* /*state*/) {}

}  // extern "C"
)CC"},
           {"CMakeLists.txt", R"CM(cmake_minimum_required(VERSION 3.16)
project(@NAME@ CXX)
set(CMAKE_CXX_STANDARD 20)
add_library(@LIBNAME@ SHARED function.cc)
target_include_directories(@LIBNAME@ PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
set_target_properties(@LIBNAME@ PROPERTIES OUTPUT_NAME @LIBNAME@ PREFIX "lib")
)CM"},
           {"build.sh", R"SH(#!/bin/sh
# Builds build/lib@LIBNAME@.so with CMake.
set -e
cd "$(dirname "$0")"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
)SH"},
           {".gitignore", "build/\ndata/\n"}},
          "",
          "inproc",
          "[@P@build/lib@LIBNAME@.so]",
          "build/lib@LIBNAME@.so (CMake)"};
}

// Copies the SDK's sources (not its tests, examples, caches or installed dependencies).
void copy_sdk(const fs::path& from, const fs::path& to) {
  auto skipped = [](const fs::path& rel) {
    static const char* const kDirs[] = {"node_modules", "tests", "test", "examples",
                                        "__pycache__", "build", "dist"};
    for (const auto& part : rel) {
      const std::string s = part.string();
      if (s.size() > 1 && s[0] == '.') return true;  // .venv, .bin, caches: built here, not sources
      for (const char* d : kDirs)
        if (s == d) return true;
      if (s.size() > 9 && s.ends_with(".egg-info")) return true;
    }
    const std::string name = rel.filename().string();
    return name.ends_with("_test.go") || name.ends_with(".pyc") || name.ends_with(".tgz") ||
           name.ends_with(".whl");
  };
  std::error_code ec;
  fs::create_directories(to, ec);
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(from);
    if (skipped(rel)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory()) fs::create_directories(to / rel, ec);
    else if (it->is_regular_file()) fs::copy_file(it->path(), to / rel, fs::copy_options::overwrite_existing, ec);
    if (ec) break;
  }
  if (ec) throw Exit{kFailure, "cannot copy the SDK from '" + from.string() + "': " + ec.message()};
}

// How the printed commands call sluice: `sluice` when that is this binary on PATH,
// else this binary's path.
std::string sluice_command() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "sluice";
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string d; std::getline(dirs, d, ':');) {
      if (d.empty()) continue;
      const fs::path cand = fs::path(d) / "sluice";
      if (::access(cand.c_str(), X_OK) == 0 && fs::equivalent(cand, self, ec)) return "sluice";
    }
  }
  return self.string();
}

// The text of `config` with `stanza` added to its `functions:` list, or Exit{2} when
// that cannot be done safely by appending (the list is not the file's last section,
// or is written in flow style).
std::string append_stanza(const std::string& config, const std::string& stanza) {
  std::vector<std::string> lines;
  {
    std::stringstream in(config);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  auto top_level_key = [](const std::string& l) {
    return !l.empty() && l[0] != ' ' && l[0] != '\t' && l[0] != '#' && l[0] != '-';
  };
  ptrdiff_t functions_at = -1, last_key = -1;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!top_level_key(lines[i])) continue;
    last_key = static_cast<ptrdiff_t>(i);
    if (lines[i].rfind("functions:", 0) == 0) functions_at = static_cast<ptrdiff_t>(i);
  }
  std::string out = config;
  if (!out.empty() && out.back() != '\n') out += '\n';
  if (functions_at < 0) return out + "functions:\n" + stanza;
  const std::string rest = lines[static_cast<size_t>(functions_at)].substr(10);
  const auto tail = rest.find_first_not_of(" \t");
  if (functions_at != last_key || (tail != std::string::npos && rest[tail] != '#'))
    throw Exit{kUsage, "cannot append to the `functions:` list of the config file: it is not the "
                       "file's last section, or is written in flow style. Add the stanza "
                       "printed above under `functions:` by hand"};
  // Indent the new item like the list's first item.
  std::string indent = "  ";
  for (size_t i = static_cast<size_t>(functions_at) + 1; i < lines.size(); ++i) {
    const auto dash = lines[i].find_first_not_of(' ');
    if (dash == std::string::npos || lines[i][dash] == '#') continue;
    if (lines[i][dash] == '-') indent = lines[i].substr(0, dash);
    break;
  }
  std::string item;
  std::stringstream st(stanza);
  for (std::string l; std::getline(st, l);) item += indent + l.substr(2) + "\n";
  return out + item;
}

}  // namespace

int new_function(const NewArgs& a) {
  if (!valid_name(a.name))
    throw Exit{kUsage, "'" + a.name +
                           "' is not a valid function name (1-63 characters of a-z, 0-9, _ . -, "
                           "starting with a-z or 0-9)"};
  Template t;
  if (a.lang == "python") t = python_template();
  else if (a.lang == "node") t = node_template();
  else if (a.lang == "go") t = go_template();
  else if (a.lang == "cpp") t = cpp_template();
  else throw Exit{kUsage, "--lang '" + a.lang + "': expected python, node, go or cpp"};

  const fs::path root = a.source_root.empty() ? fs::path(SLUICE_SOURCE_DIR) : fs::path(a.source_root);
  std::error_code ec;
  if (!fs::exists(root / "sdk", ec) || !fs::exists(root / "workers" / "inproc_abi.h", ec))
    throw Exit{kUsage, "no sluice checkout at '" + root.string() + "' (expected sdk/ and workers/): pass --source DIR"};
  const fs::path dir = fs::absolute(fs::path(a.dir.empty() ? "." : a.dir) / a.name).lexically_normal();
  if (fs::exists(dir, ec)) throw Exit{kUsage, "'" + dir.string() + "' exists already; not overwriting it"};

  std::string libname = a.name;
  for (auto& c : libname)
    if (c == '.' || c == '-') c = '_';
  // Paths in the stanza are relative to the config file's folder (where sluice runs
  // the function): the function's own folder, or the --config file's.
  fs::path config_path = dir / "sluice.yaml";
  std::string prefix;
  if (!a.config.empty()) {
    config_path = fs::absolute(a.config).lexically_normal();
    prefix = dir.lexically_relative(config_path.parent_path()).string() + "/";
  }
  std::map<std::string, std::string> vars = {{"@NAME@", a.name}, {"@LIBNAME@", libname}, {"@P@", prefix}};
  const std::string stanza = replace_all(
      "  - name: @NAME@\n"
      "    runtime: " + t.runtime + "\n"
      "    command: " + t.command + "\n"
      "    timeout: 10s\n"
      "    concurrency: 8\n"
      "    subscribe: [{ broker: local, topic: @NAME@, ordering: none }]\n"
      "    retry: { max_attempts: 3, initial: 200ms, max: 10s }\n",
      vars);

  // With --config: the new file text is checked before anything is written.
  std::string new_config;
  if (!a.config.empty()) {
    std::ifstream in(config_path);
    if (!in) throw Exit{kUsage, "cannot read the config file '" + config_path.string() + "'"};
    std::stringstream text;
    text << in.rdbuf();
    std::cout << stanza;
    new_config = append_stanza(text.str(), stanza);
    auto loaded = load_config_string(new_config, config_path.parent_path().string());
    if (!loaded.config) {
      for (auto e : loaded.errors) {
        e.file = config_path.string();
        std::cerr << e.to_string() << "\n";
      }
      throw Exit{kUsage, "the config file with the new function does not load (above); nothing "
                         "was written. Add the stanza printed above by hand"};
    }
  }

  std::map<std::string, std::string> files = t.files;
  if (a.config.empty())
    files["sluice.yaml"] =
        "# sluice.yaml for @NAME@, made by `sluice new`. Run sluice in this folder:\n"
        "#   sluice run                      (uses ./sluice.yaml)\n"
        "brokers:\n"
        "  local: { kind: local, path: ./data/sluice.db }   # the embedded queue\n"
        "http: { listen: 127.0.0.1:8080 }                   # sluice invoke, POST /topics/{topic}\n"
        "functions:\n" + stanza;
  const bool trusted = t.runtime == "inproc";
  files["README.md"] =
      "# @NAME@\n\nA sluice function (" + a.lang + ", runtime `" + t.runtime + "`), made by `sluice new`.\n\n" +
      (trusted ? "**Trusted code only**: an `inproc` function is loaded into the sluice process. It runs\n"
                 "with sluice's memory and privileges, no limits apply, and a crash in it takes the\n"
                 "engine down. For other code use the Python, Node.js or Go SDK (runtime `stdio`).\n\n"
               : "") +
      "    sh build.sh                 # " + t.build_note + "\n" +
      (a.config.empty()
           ? "    sluice run                  # uses sluice.yaml here; leave it running\n"
             "    sluice invoke @NAME@ hello  # in another terminal: prints HELLO\n"
             "    sluice publish @NAME@ hi    # queued: the result shows in sluice's log\n\n"
           : "    # then, where the sluice.yaml that lists @NAME@ is:\n"
             "    sluice run -c sluice.yaml\n"
             "    sluice invoke -c sluice.yaml @NAME@ hello   # prints HELLO\n\n") +
      "The handler gets each event of topic `@NAME@`. " +
      (t.sdk.empty() ? std::string("`inproc_abi.h` is a copy of sluice's C ABI header.\n")
                     : "`sluice-sdk/` is a copy of the sluice " + a.lang +
                           " SDK, so this folder builds anywhere.\n");

  fs::create_directories(dir, ec);
  if (ec) throw Exit{kFailure, "cannot create '" + dir.string() + "': " + ec.message()};
  for (const auto& [rel, content] : files) {
    const fs::path p = dir / rel;
    std::ofstream out(p);
    out << replace_all(content, vars);
    if (!out) throw Exit{kFailure, "cannot write '" + p.string() + "'"};
    out.close();
    if (rel == "build.sh") fs::permissions(p, fs::perms::owner_exec | fs::perms::group_exec |
                                                  fs::perms::others_exec, fs::perm_options::add);
  }
  if (!t.sdk.empty()) copy_sdk(root / t.sdk, dir / "sluice-sdk");
  else fs::copy_file(root / "workers" / "inproc_abi.h", dir / "inproc_abi.h", ec);
  if (ec) throw Exit{kFailure, "cannot copy inproc_abi.h: " + ec.message()};
  for (const auto& [from, to] : t.sdk_files) {
    fs::create_directories((dir / "sluice-sdk" / to).parent_path(), ec);
    if (!ec)
      fs::copy_file(root / from, dir / "sluice-sdk" / to, fs::copy_options::overwrite_existing, ec);
    if (ec) throw Exit{kFailure, "cannot copy " + from + " into sluice-sdk/: " + ec.message()};
  }

  if (!a.config.empty()) {
    std::ofstream out(config_path, std::ios::trunc);
    out << new_config;
    if (!out) throw Exit{kFailure, "cannot write '" + config_path.string() + "'"};
  } else {
    std::cout << stanza;
  }

  const std::string sluice = sluice_command();
  const std::string cfg = a.config.empty() ? "" : " -c " + config_path.string();
  std::cerr << "wrote " << dir.string() << "/ (" << a.lang << ", runtime " << t.runtime << ")"
            << (a.config.empty() ? "" : " and added " + a.name + " to " + config_path.string())
            << "\n";
  if (trusted)
    std::cerr << "note: cpp functions run in-process (runtime inproc): trusted code only; a crash "
                 "in it stops sluice\n";
  std::cerr << "next:\n"
            << "  cd " << (a.config.empty() ? dir : config_path.parent_path()).string() << "\n"
            << "  sh " << (a.config.empty() ? std::string("build.sh") : prefix + "build.sh")
            << "   # " << replace_all(t.build_note, vars) << "\n"
            << "  " << sluice << " run" << cfg << "   # leave it running\n"
            << "  " << sluice << " invoke" << cfg << " " << a.name
            << " hello   # in another terminal: prints HELLO\n"
            << "  " << sluice << " publish" << cfg << " " << a.name
            << " hi   # queued: the result shows in sluice's log\n";
  return kOk;
}

}  // namespace sluice::cmd
