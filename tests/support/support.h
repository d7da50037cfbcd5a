// Helpers every test binary shares (linked into each by sluice_test()): polling for
// a condition outside the test's control, and free loopback ports for test servers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace sluice::testsupport {

// A deadline only for tests that would otherwise hang; never a speed bound.
inline constexpr std::chrono::seconds kDeadline{60};

// Polls `cond` every `every` until it holds or `limit` has passed; returns whether
// it held. For state the test does not control (a process, a broker, /proc).
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = kDeadline,
                std::chrono::milliseconds every = std::chrono::milliseconds(5));

// A loopback TCP port that was free a moment ago (bound to port 0, then released).
uint16_t free_port();

// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
bool port_accepts(uint16_t port);

}  // namespace sluice::testsupport
