// The process's file-descriptor limit (RLIMIT_NOFILE): raising it at start, and the
// share of it the HTTP listeners may hold.
//
// Threads: raise_fd_limit() once at start (it changes a process-wide setting);
// the rest are pure or read-only.
#pragma once

#include <cstdint>

namespace sluice {

struct FdLimit {
  uint64_t soft = 0;  // RLIM_INFINITY is reported as UINT64_MAX
  uint64_t hard = 0;
};

// Raises the soft limit to the hard limit and returns the limits now in force
// (logged at info when raised, debug otherwise; a failure is a warning, not fatal).
FdLimit raise_fd_limit();
// The soft limit now in force.
uint64_t fd_soft_limit();

// fds kept back from the HTTP listeners' connections for worker pipes, broker
// sockets, the local database and the listeners themselves: a quarter of the
// limit, at least 256, at most half.
uint64_t fd_reserve(uint64_t soft_limit);
// `http.max_connections` when not set: soft limit - fd_reserve(), at least 16 and
// at most 65536.
uint32_t default_max_connections(uint64_t soft_limit);

}  // namespace sluice
