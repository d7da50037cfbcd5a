#include "cmd/remembered_topics.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "broker-adapters/registry.h"
#include "core/topic.h"

namespace sluice::cmd {

namespace fs = std::filesystem;

namespace {

// At most this much of the file's end is read: the file stays far smaller unless
// something other than sluice wrote it.
constexpr std::streamoff kMaxRead = 4 * static_cast<std::streamoff>(RememberedTopics::kCompactBytes);

Error io_error(const std::string& what, const std::string& path) {
  return Error{Errc::io, what + " " + path + ": " + std::strerror(errno)};
}

// The newest kMaxRemembered distinct names in `text`, oldest first.
std::vector<RememberedTopics::Name> parse(const std::string& text) {
  std::vector<RememberedTopics::Name> all;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos || tab == 0) continue;
    RememberedTopics::Name n{line.substr(0, tab), line.substr(tab + 1)};
    if (topic_name_error(n.topic)) continue;  // also a line cut by the tail read
    all.push_back(std::move(n));
  }
  std::vector<RememberedTopics::Name> out;
  std::unordered_set<std::string> seen;
  for (auto it = all.rbegin(); it != all.rend() && out.size() < RememberedTopics::kMaxRemembered; ++it)
    if (seen.insert(it->broker + '\t' + it->topic).second) out.push_back(*it);
  return {out.rbegin(), out.rend()};
}

std::string read_tail(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  const off_t from = st.st_size > kMaxRead ? st.st_size - kMaxRead : 0;
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (from > 0) text.erase(0, text.find('\n') == std::string::npos ? text.size() : text.find('\n') + 1);
  return text;
}

// Holds flock(LOCK_EX) on `path`, reopened until the descriptor is the file at `path`
// (a compaction by another process may have renamed a new one into place).
class LockedFile {
 public:
  explicit LockedFile(const std::string& path) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) return;
      int rc;
      do rc = ::flock(fd_, LOCK_EX);
      while (rc != 0 && errno == EINTR);
      struct stat open_st {}, path_st {};
      if (rc == 0 && ::fstat(fd_, &open_st) == 0 && ::stat(path.c_str(), &path_st) == 0 &&
          open_st.st_ino == path_st.st_ino && open_st.st_dev == path_st.st_dev)
        return;
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~LockedFile() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  LockedFile(const LockedFile&) = delete;
  LockedFile& operator=(const LockedFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace

std::string state_file(const Config& cfg, std::string_view name) {
  for (const auto& b : cfg.brokers)
    if (brokers::broker_capabilities(b).own_database) return b.local().path + "." + std::string(name);
  return (fs::path(cfg.engine.control_key_file).parent_path() / std::string(name)).string();
}

RememberedTopics::RememberedTopics(const Config& cfg)
    : path_(state_file(cfg, "unsubscribed-topics")) {}

Result<void> RememberedTopics::remember(std::string_view broker, std::string_view topic) {
  if (topic_name_error(topic) || broker.empty() || broker.find_first_of("\t\n") != std::string_view::npos)
    return Error{Errc::invalid_argument, "not a broker and topic name"};
  std::string line = std::string(broker) + '\t' + std::string(topic) + '\n';
  std::lock_guard lk(mu_);
  if (written_.count(line)) return ok();
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  LockedFile f(path_);
  if (f.fd() < 0) return io_error("cannot open", path_);
  if (::write(f.fd(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return io_error("cannot append to", path_);
  if (written_.size() >= kMaxRemembered) written_.clear();
  written_.insert(std::move(line));
  struct stat st {};
  if (::fstat(f.fd(), &st) != 0 || static_cast<size_t>(st.st_size) <= kCompactBytes) return ok();
  // Compaction, still under the lock: the newest names into a new file, renamed over.
  std::string text;
  for (const Name& n : parse(read_tail(f.fd()))) text += n.broker + '\t' + n.topic + '\n';
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return Error{Errc::io, "cannot write " + tmp};
  }
  fs::rename(tmp, path_, ec);
  if (ec) return Error{Errc::io, "cannot replace " + path_ + ": " + ec.message()};
  return ok();
}

std::vector<RememberedTopics::Name> RememberedTopics::names() const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text = read_tail(fd);
  ::close(fd);
  return parse(text);
}

std::vector<std::string> RememberedTopics::topics_of(std::string_view broker) const {
  std::vector<std::string> out;
  for (Name& n : names())
    if (n.broker == broker) out.push_back(std::move(n.topic));
  return out;
}

}  // namespace sluice::cmd
