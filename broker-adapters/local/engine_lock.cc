#include "broker-adapters/local/engine_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace sluice::local {

namespace {

// The pid the holder wrote, or "unknown" (it may be between lock and write).
std::string holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string_view s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return "unknown";
  return std::string(s);
}

}  // namespace

Result<EngineLock> EngineLock::acquire(const std::string& db_path) {
  const std::string path = db_path + ".lock";
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  // Close-on-exec: a function's process must not inherit (and so keep) the lock.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return Error{Errc::io, "local broker " + db_path + ": cannot open the lock file " + path +
                               ": " + std::strerror(errno)};
  int rc;
  do rc = ::flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string msg = "local broker " + db_path;
    Errc code = Errc::io;
    if (err == EWOULDBLOCK) {
      code = Errc::unavailable;
      msg += " is in use by another sluice engine (pid " + holder_pid(fd) + ", lock " + path +
             "); one engine consumes a local database at a time: stop it, or give this one "
             "its own path";
    } else {
      msg += ": cannot lock " + path + ": " + std::strerror(err);
    }
    ::close(fd);
    return Error{code, std::move(msg)};
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds without the pid; a second engine would only say "pid unknown".
  }
  return EngineLock(fd, path);
}

EngineLock::~EngineLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (harmless)
}

}  // namespace sluice::local
