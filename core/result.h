// Result types for the event path (STYLE.md: errors are values, not exceptions).
//
// `Result<T>` is Boost.Outcome's result with our `Error` as the error type. An
// `Error` says what failed in one readable line and whether trying again may help.
#pragma once

#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>
#include <string>
#include <utility>

namespace sluice {

enum class Errc {
  invalid_argument,  // bad input from a user, a client or a broker record
  not_found,
  io,                // disk, socket or pipe failure
  unavailable,       // a broker or peer is down / not reachable (retriable)
  timeout,
  overloaded,        // a bound is reached; try later (retriable)
  no_space,          // the disk (or a quota) is full; try later (retriable)
  corrupt,           // stored data does not decode
  closed,            // the component is stopping or stopped
  internal,
};

const char* to_string(Errc c) noexcept;

struct Error {
  Errc code = Errc::internal;
  std::string message;
  bool retriable = false;

  Error() = default;
  Error(Errc c, std::string msg, bool retry = false)
      : code(c), message(std::move(msg)), retriable(retry) {}
};

namespace outcome = boost::outcome_v2;
template <class T>
using Result = outcome::result<T, Error, outcome::policy::terminate>;

inline Result<void> ok() { return outcome::success(); }

}  // namespace sluice

#define SLUICE_TRY BOOST_OUTCOME_TRY
