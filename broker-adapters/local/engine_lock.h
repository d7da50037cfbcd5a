// One consuming engine per local database: `sluice run` holds an exclusive lock on
// `<db>.lock` (flock) for its whole life, with its pid written in the file. A second
// `sluice run` on the same database fails at once, naming the file and that pid. The
// kernel drops the lock when the holder exits in any way (kill -9 included), so a
// stale lock file is harmless. `sluice publish` and the `dlq` verbs do not take it:
// they may work beside a running engine (README.md, docs/SECURITY.md).
//
// Threads: an EngineLock is a move-only handle owned by the `run` verb's thread.
#pragma once

#include <string>

#include "core/result.h"

namespace sluice::local {

class EngineLock {
 public:
  // Locks `db_path + ".lock"` (creating it and its directory). Errc::unavailable when
  // another process holds it; Errc::io when the file cannot be opened or locked.
  static Result<EngineLock> acquire(const std::string& db_path);

  EngineLock(EngineLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  EngineLock& operator=(EngineLock&&) = delete;
  EngineLock(const EngineLock&) = delete;
  ~EngineLock();

  const std::string& path() const { return path_; }

 private:
  EngineLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace sluice::local
