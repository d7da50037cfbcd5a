// `sluice new FUNCTION --lang python|node|go|cpp [--dir DIR] [--sdk DIR]`: writes a
// ready function folder (handler, build.sh, README) and prints the config stanza
// that runs it — the `faas-cli new` habit. build.sh installs the function's
// dependencies (the SDK from this checkout) and builds it; the stanza's command
// then runs as is.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cmd/cli.h"

namespace sluice::cli {

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
  std::string runtime;                        // stdio | inproc
  std::string command;                        // YAML list, relative to the config's folder
};

Template python_template() {
  return {{{"handler.py", R"PY("""The sluice function @NAME@ (runtime: stdio, Python SDK)."""
import sluice_sdk as sluice


def handle(event, ctx):
    # event.data is bytes; event.id, event.type, event.subject, event.key ... as in CloudEvents
    if not event.data:
        raise sluice.Reject("empty event")  # permanent: straight to the dead-letter queue
    ctx.info(f"handling {event.id}")
    return sluice.Response(event.data.upper(), event.data_content_type or "text/plain")


if __name__ == "__main__":
    sluice.run(handle)
)PY"},
           {"build.sh", R"SH(#!/bin/sh
# Makes @NAME@/.venv with the sluice Python SDK (from @SDK@/python) and its deps (PyPI).
set -e
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "@SDK@/python"
)SH"}},
          "stdio",
          "[@DIR@/.venv/bin/python, @DIR@/handler.py]"};
}

Template node_template() {
  return {{{"handler.js", R"JS('use strict';
// The sluice function @NAME@ (runtime: stdio, Node.js SDK).
const sluice = require('sluice-sdk');

sluice.run(async (event, ctx) => {
  // event.data is a Buffer; event.id, event.type, event.subject ... as in CloudEvents
  if (event.data.length === 0) throw new sluice.Reject('empty event'); // straight to the DLQ
  ctx.info(`handling ${event.id}`);
  return new sluice.Response(Buffer.from(event.data.toString('utf8').toUpperCase()),
                             { contentType: event.dataContentType || 'text/plain' });
});
)JS"},
           {"package.json", R"JSON({
  "name": "@NAME@",
  "version": "0.1.0",
  "private": true,
  "main": "handler.js",
  "dependencies": { "sluice-sdk": "file:@SDK@/node" }
}
)JSON"},
           {"build.sh", R"SH(#!/bin/sh
# Installs the sluice Node.js SDK (from @SDK@/node) and its deps (npm) into node_modules.
set -e
cd "$(dirname "$0")"
npm install --no-audit --no-fund --loglevel=error --install-links
)SH"}},
          "stdio",
          "[node, @DIR@/handler.js]"};
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
		sluice.Infof(ctx, "handling %s", ev.Id)
		ct := ev.DataContentType
		if ct == "" {
			ct = "text/plain"
		}
		return &sluice.Response{Output: bytes.ToUpper(ev.Data), ContentType: ct}, nil
	})
}
)GO"},
           {"go.mod", R"MOD(module example.com/@NAME@

go 1.23

require sluice.dev/sdk/go v0.0.0

replace sluice.dev/sdk/go => @SDK@/go
)MOD"},
           {"build.sh", R"SH(#!/bin/sh
# Builds @NAME@/.bin/@NAME@ with the sluice Go SDK (from @SDK@/go; deps from the Go proxy).
set -e
cd "$(dirname "$0")"
go mod tidy
go build -o .bin/@NAME@ .
)SH"}},
          "stdio",
          "[@DIR@/.bin/@NAME@]"};
}

Template cpp_template() {
  return {{{"function.cc", R"CC(// The sluice function @NAME@ (runtime: inproc — trusted code, loaded into sluice).
// The C ABI is @SDK_ROOT@/workers/inproc_abi.h.
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "workers/inproc_abi.h"

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
target_include_directories(@LIBNAME@ PRIVATE "@SDK_ROOT@")
set_target_properties(@LIBNAME@ PROPERTIES OUTPUT_NAME @LIBNAME@ PREFIX "lib")
)CM"},
           {"build.sh", R"SH(#!/bin/sh
# Builds @NAME@/build/lib@LIBNAME@.so with CMake.
set -e
cd "$(dirname "$0")"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
)SH"}},
          "inproc",
          "[@DIR@/build/lib@LIBNAME@.so]"};
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
  const fs::path dir = fs::path(a.dir.empty() ? "." : a.dir) / a.name;
  if (fs::exists(dir, ec)) throw Exit{kUsage, "'" + dir.string() + "' exists already; not overwriting it"};
  fs::create_directories(dir, ec);
  if (ec) throw Exit{kFailure, "cannot create '" + dir.string() + "': " + ec.message()};

  std::string libname = a.name;
  for (auto& c : libname)
    if (c == '.' || c == '-') c = '_';
  const std::map<std::string, std::string> vars = {
      {"@NAME@", a.name},
      {"@LIBNAME@", libname},
      {"@SDK@", fs::absolute(root / "sdk").lexically_normal().string()},
      {"@SDK_ROOT@", fs::absolute(root).lexically_normal().string()},
      {"@DIR@", dir.lexically_normal().string()},
  };
  const std::string stanza = replace_all(
      "  - name: @NAME@\n"
      "    runtime: " + t.runtime + "\n"
      "    command: " + t.command + "\n"
      "    timeout: 10s\n"
      "    concurrency: 8\n"
      "    subscribe: [{ broker: local, topic: @NAME@-in, ordering: none }]\n"
      "    retry: { max_attempts: 3, initial: 200ms, max: 10s }\n",
      vars);
  std::map<std::string, std::string> files = t.files;
  files["function.yaml"] = "# The config stanza for @NAME@: paste it under `functions:` in sluice.yaml\n"
                           "# (paths are relative to the folder `sluice new` ran in).\n" + stanza;
  files["README.md"] =
      "# @NAME@\n\nA sluice function (" + a.lang + ", runtime `" + t.runtime + "`), made by `sluice new`.\n\n"
      "    sh @DIR@/build.sh          # dependencies + build\n"
      "    # add function.yaml's stanza under `functions:` in sluice.yaml, then\n"
      "    sluice run -c sluice.yaml\n"
      "    sluice invoke -c sluice.yaml @NAME@ 'hello'   # needs `http:` in sluice.yaml\n";
  for (const auto& [rel, content] : files) {
    const fs::path p = dir / rel;
    std::ofstream out(p);
    out << replace_all(content, vars);
    if (!out) throw Exit{kFailure, "cannot write '" + p.string() + "'"};
    out.close();
    if (rel == "build.sh") fs::permissions(p, fs::perms::owner_exec | fs::perms::group_exec |
                                                  fs::perms::others_exec, fs::perm_options::add);
  }
  std::cerr << "wrote " << dir.string() << "/ (" << files.size() << " files); build it with: sh "
            << dir.string() << "/build.sh\nconfig stanza (also in " << dir.string()
            << "/function.yaml):\n";
  std::cout << stanza;
  return kOk;
}

}  // namespace sluice::cli
