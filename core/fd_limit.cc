#include "core/fd_limit.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace sluice {

namespace {
uint64_t value_of(rlim_t v) {
  return v == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
}
}  // namespace

FdLimit raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    spdlog::warn("cannot read the open-file limit (RLIMIT_NOFILE): {}", std::strerror(errno));
    return {};
  }
  const uint64_t before = value_of(lim.rlim_cur);
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      lim = raised;
      spdlog::info("open-file limit raised from {} to {} (the hard limit)", before,
                   value_of(lim.rlim_cur));
    } else {
      spdlog::warn("cannot raise the open-file limit from {} to {}: {}", before,
                   value_of(lim.rlim_max), std::strerror(errno));
    }
  } else {
    spdlog::debug("open-file limit: {} (already the hard limit)", before);
  }
  return {value_of(lim.rlim_cur), value_of(lim.rlim_max)};
}

uint64_t fd_soft_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  return value_of(lim.rlim_cur);
}

uint64_t fd_reserve(uint64_t soft_limit) {
  return std::min<uint64_t>(std::max<uint64_t>(256, soft_limit / 4), soft_limit / 2);
}

uint32_t default_max_connections(uint64_t soft_limit) {
  // The upper bound keeps the memory of idle connections (a few KiB each) modest
  // under a very high fd limit; set http.max_connections to go past it.
  constexpr uint64_t kMin = 16, kMax = 65536;
  const uint64_t reserve = fd_reserve(soft_limit);
  const uint64_t n = soft_limit > reserve ? soft_limit - reserve : 0;
  return static_cast<uint32_t>(std::clamp(n, kMin, kMax));
}

}  // namespace sluice
