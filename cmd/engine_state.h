// Where the CLI verbs find a running engine: the `--engine URL` option (or
// SLUICE_ENGINE), else the config's `http.listen`, else — when that port is 0 — the
// state file `sluice run` writes once it listens: beside the local queue
// (`<path>.engine.json`) or, without a local broker, beside the control key
// (`engine.json`). It holds the pid and the real addresses, and is removed at exit.
//
// Threads: called from the CLI's main thread only.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "core/result.h"

namespace sluice::cmd {

// The path of the state file of the engine that runs `cfg`.
std::string engine_state_file(const Config& cfg);

// Written by `sluice run` after start (atomically: a temporary file, then rename).
Result<void> write_engine_state(const Config& cfg, uint16_t http_port, uint16_t metrics_port);
void remove_engine_state(const Config& cfg);

// The `--engine` option: "http://host:port", "host:port" or empty.
void set_engine_url(const std::string& url);

// "host:port" of the running engine's HTTP API, or an error that says how to point
// at it (no `http:` in the config, port 0 and no live state file).
Result<std::string> engine_address(const Config& cfg);

}  // namespace sluice::cmd
