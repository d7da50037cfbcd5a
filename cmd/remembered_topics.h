// Names of topics published to a Kafka or NATS broker although no function subscribes
// to them (`sluice publish`, POST /topics), so that `sluice lag` can list those that
// hold events: most often a mistyped topic. Such brokers accept any topic (they may
// have readers other than sluice), so nothing else would ever show the mistake.
//
// A file of "broker<TAB>topic" lines, newest last, beside the engine state file
// (state_file()): the engine and the CLI each append under flock(2). The set is
// bounded: readers take the newest kMaxRemembered distinct names, and a writer that
// finds the file past kCompactBytes rewrites it with those alone (temporary file,
// then rename), so older names drop out first.
//
// Threads: RememberedTopics is thread-safe (a mutex guards the set of names this
// process already wrote, which spares the file a write per publish).
#pragma once

#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::cmd {

// A file of the engine's kept beside its state: `<local path>.<name>` when the config
// has a local broker, else `<directory of engine.control_key_file>/<name>`.
std::string state_file(const Config& cfg, std::string_view name);

class RememberedTopics {
 public:
  static constexpr size_t kMaxRemembered = 1024;
  static constexpr size_t kCompactBytes = 256 * 1024;

  // The file of the engine that runs `cfg` (state_file(cfg, "unsubscribed-topics")).
  explicit RememberedTopics(const Config& cfg);
  explicit RememberedTopics(std::string path) : path_(std::move(path)) {}

  // Adds `topic` of `broker` (a no-op when this process wrote it already). An I/O
  // error is returned for the caller to log: remembering is a hint, never a reason
  // to refuse a publish.
  Result<void> remember(std::string_view broker, std::string_view topic);

  struct Name {
    std::string broker;
    std::string topic;
    bool operator==(const Name&) const = default;
  };
  // The newest kMaxRemembered distinct names, oldest first; none when there is no
  // file. Lines that are not "broker<TAB>topic" are skipped.
  std::vector<Name> names() const;
  // Those of one broker.
  std::vector<std::string> topics_of(std::string_view broker) const;

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  std::mutex mu_;
  std::set<std::string> written_;  // lines this process appended; cleared at kMaxRemembered
};

}  // namespace sluice::cmd
