// run_guarded: the body of every long-lived engine thread. An exception must never
// leave a thread (std::terminate would take the whole engine down, as a library
// throwing on EMFILE once did): whatever escapes `body` is logged, at most once per
// interval for that thread, and `body` is called again after a short pause, so the
// thread goes on serving. `body` must be safe to call again: an io_context's run()
// is (it resumes with the handlers still queued), and so is a loop that checks its
// stop flag at the top.
//
// Threads: called on the thread it guards; nothing shared but the log.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>
#include <string_view>
#include <thread>

#include "core/log_limit.h"

namespace sluice {

template <class Body>
void run_guarded(std::string_view name, Body&& body,
                 std::chrono::milliseconds pause = std::chrono::milliseconds(100)) noexcept {
  LogLimit log_limit;
  for (;;) {
    const char* what = "unknown exception";
    std::string text;
    try {
      body();
      return;
    } catch (const std::exception& e) {
      try {
        text = e.what();
        what = text.c_str();
      } catch (...) {
      }
    } catch (...) {
    }
    try {
      if (auto n = log_limit.allow())
        spdlog::error("{} thread caught an exception and carries on: {}{}", name, what,
                      suppressed_note(*n));
    } catch (...) {
    }
    std::this_thread::sleep_for(pause);  // a body that throws at once must not spin
  }
}

}  // namespace sluice
