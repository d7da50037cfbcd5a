// The workers/ module logger. One place, so a named logger can replace the default
// one without touching call sites. Lines carry "[fn <name>]" and, for per-event
// lines, "[event <id>]".
#pragma once

#include <spdlog/spdlog.h>

namespace sluice::workers {

inline spdlog::logger& log() { return *spdlog::default_logger_raw(); }

}  // namespace sluice::workers
