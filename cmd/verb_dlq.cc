// `sluice dlq list|show|replay`: the dead-letter queue of each function.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "broker-adapters/registry.h"
#include "cmd/cli.h"
#include "core/seal.h"
#include "dlq/record.h"

namespace sluice::cmd {

namespace {

// The brokers a dlq verb needs, opened once.
class Brokers {
 public:
  explicit Brokers(const Config& cfg) : cfg_(cfg) {}
  ~Brokers() {
    for (auto& [n, b] : open_) b->stop();
  }
  Broker& get(const std::string& name) {
    auto it = open_.find(name);
    if (it != open_.end()) return *it->second;
    const BrokerConfig* bc = cfg_.broker(name);
    if (!bc) throw Exit{kUsage, "no broker named '" + name + "' in the config"};
    auto b = brokers::make_broker(*bc);
    if (!b) throw Exit{kFailure, b.error().message};
    return *open_.emplace(name, std::move(b).value()).first->second;
  }
  TopicBrowser& browser(const std::string& name) {
    TopicBrowser* br = get(name).browser();
    if (!br) throw Exit{kFailure, "broker '" + name + "' cannot list stored events"};
    return *br;
  }

 private:
  const Config& cfg_;
  std::map<std::string, std::unique_ptr<Broker>> open_;
};

// engine.control_key_file, to verify dead letters with; never created here. Without
// it every record is unverified (said once on stderr).
std::optional<seal::Keyring> control_keys(const Config& cfg) {
  auto k = seal::Keyring::load(cfg.engine.control_key_file, /*create=*/false);
  if (k) return std::move(k).value();
  std::cerr << "note: " << k.error().message
            << "; no dead letter can be verified (engine.control_key_file)\n";
  return std::nullopt;
}

const seal::Keyring* ptr(const std::optional<seal::Keyring>& k) { return k ? &*k : nullptr; }

// The dead-letter targets (broker, topic) of the selected functions.
std::vector<Target> dlq_targets(const Config& cfg, const std::string& function) {
  std::vector<Target> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& f : cfg.functions) {
    if (!function.empty() && f.name != function) continue;
    if (seen.insert({f.dead_letter.broker, f.dead_letter.topic}).second) out.push_back(f.dead_letter);
  }
  if (!function.empty() && out.empty()) throw Exit{kUsage, "no function named '" + function + "'"};
  return out;
}

// Every record of `t` that belongs to `function` (all when empty), up to `limit`.
std::vector<dlq::Record> read_records(TopicBrowser& br, const Target& t,
                                      const std::string& function, size_t limit,
                                      const seal::Keyring* keys) {
  std::vector<dlq::Record> out;
  int64_t from = 0;
  int32_t partition = -1;
  // Page per partition so offsets are comparable. A broker that cannot list the
  // partitions without a consumer group (NATS: one stream sequence) is read as one.
  auto parts = br.lag(t.topic, "");
  std::vector<int32_t> ps;
  if (parts)
    for (const auto& p : parts.value()) ps.push_back(p.partition);
  if (ps.empty()) ps.push_back(-1);
  for (int32_t p : ps) {
    partition = p;
    from = 0;
    while (out.size() < limit) {
      auto page = br.read(t.topic, partition, from, std::min<size_t>(500, limit - out.size()));
      if (!page) throw Exit{kFailure, page.error().message};
      if (page.value().empty()) break;
      for (auto& e : page.value()) {
        from = e.offset + 1;
        auto rec = dlq::parse_record(std::move(e), keys);
        if (!rec) continue;  // not a dead letter (someone else wrote here)
        if (!function.empty() && rec.value().function != function) continue;
        out.push_back(std::move(rec).value());
      }
    }
  }
  return out;
}

Target target_of(const Config& cfg, const std::string& topic) {
  for (const auto& f : cfg.functions)
    if (f.dead_letter.topic == topic) return f.dead_letter;
  throw Exit{kUsage, "'" + topic + "' is not the dead-letter topic of any function"};
}

std::string one_line(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace

int dlq_list(const DlqArgs& a) {
  Config cfg = load_or_exit(a.config);
  if (a.limit < 1) throw Exit{kUsage, "--limit must be at least 1"};
  Brokers brokers(cfg);
  const auto keys = control_keys(cfg);
  std::vector<std::vector<std::string>> rows;
  size_t total = 0, unverified = 0;
  for (const auto& t : dlq_targets(cfg, a.function)) {
    auto recs = read_records(brokers.browser(t.broker), t, a.function, a.limit - total, ptr(keys));
    total += recs.size();
    for (const auto& r : recs) {
      if (a.json) {
        std::cout << dlq::to_json(r, false) << "\n";
        continue;
      }
      unverified += !r.verified;
      rows.push_back({r.id, r.verified ? "yes" : "NO", r.function, r.error_class, std::to_string(r.attempts),
                      format_rfc3339(r.last_failure_ms),
                      fmt::format("{}/{}/{}", r.original_topic, r.original_partition, r.original_offset),
                      r.event.id, one_line(r.error_message, 60)});
    }
    if (total >= static_cast<size_t>(a.limit)) break;
  }
  if (!a.json) {
    print_table({"ID", "VERIFIED", "FUNCTION", "CLASS", "ATTEMPTS", "LAST_FAILURE", "ORIGINAL", "EVENT_ID", "ERROR"}, rows);
    if (rows.empty()) std::cout << "(no dead letters)\n";
    if (unverified)
      std::cout << fmt::format(
          "{} unverified: their seal does not verify with the control key (not written by "
          "sluice, changed, or sealed with a retired key); replay skips them unless --force\n",
          unverified);
  }
  return kOk;
}

int dlq_show(const DlqArgs& a) {
  Config cfg = load_or_exit(a.config);
  if (a.ids.size() != 1) throw Exit{kUsage, "dlq show takes one ID (see `sluice dlq list`)"};
  auto id = dlq::parse_record_id(a.ids[0]);
  if (!id) throw Exit{kUsage, id.error().message};
  Brokers brokers(cfg);
  Target t = target_of(cfg, id.value().topic);
  auto ev = brokers.browser(t.broker).get(t.topic, id.value().partition, id.value().offset);
  if (!ev) throw Exit{kFailure, "dead letter " + a.ids[0] + ": " + ev.error().message};
  const auto keys = control_keys(cfg);
  auto rec = dlq::parse_record(std::move(ev).value(), ptr(keys));
  if (!rec) throw Exit{kFailure, rec.error().message};
  // The record as JSON (-o json: on one line, for tools).
  std::cout << nlohmann::json::parse(dlq::to_json(rec.value(), true)).dump(a.json ? -1 : 2) << "\n";
  if (!rec.value().verified)
    std::cerr << "warning: dead letter " << rec.value().id << " is unverified ("
              << rec.value().unverified_reason
              << "): sluice may not have written it; replay skips it unless --force\n";
  return kOk;
}

int dlq_replay(const DlqArgs& a) {
  Config cfg = load_or_exit(a.config);
  Brokers brokers(cfg);
  const auto keys = control_keys(cfg);
  // Select.
  std::vector<std::pair<Target, dlq::Record>> todo;
  if (!a.ids.empty()) {
    for (const auto& s : a.ids) {
      auto id = dlq::parse_record_id(s);
      if (!id) throw Exit{kUsage, id.error().message};
      Target t = target_of(cfg, id.value().topic);
      auto ev = brokers.browser(t.broker).get(t.topic, id.value().partition, id.value().offset);
      if (!ev) throw Exit{kFailure, "dead letter " + s + ": " + ev.error().message};
      auto rec = dlq::parse_record(std::move(ev).value(), ptr(keys));
      if (!rec) throw Exit{kFailure, rec.error().message};
      if (!a.function.empty() && rec.value().function != a.function) continue;
      todo.emplace_back(t, std::move(rec).value());
    }
  } else {
    for (const auto& t : dlq_targets(cfg, a.function))
      for (auto& r : read_records(brokers.browser(t.broker), t, a.function, SIZE_MAX, ptr(keys)))
        todo.emplace_back(t, std::move(r));
  }
  // Records sluice did not seal (forged, changed, or sealed with a retired key) are
  // left in place unless --force: replaying would publish what someone else wrote.
  size_t skipped = 0;
  if (!a.force) {
    skipped = static_cast<size_t>(std::count_if(todo.begin(), todo.end(),
                                                [](const auto& x) { return !x.second.verified; }));
    std::erase_if(todo, [](const auto& x) { return !x.second.verified; });
  }
  const std::string skipped_note =
      skipped ? fmt::format("; skipped {} unverified (replay them with --force)", skipped) : "";
  auto dest_of = [&](const dlq::Record& r) {
    std::string broker = cfg.broker(r.original_broker) ? r.original_broker : cfg.brokers.front().name;
    std::string topic = a.to.empty() ? r.original_topic : a.to;
    return std::pair{broker, topic};
  };
  if (a.dry_run) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [t, r] : todo) {
      auto [b, topic] = dest_of(r);
      rows.push_back({r.id, r.function, r.event.id, b + "/" + topic});
    }
    print_table({"ID", "FUNCTION", "EVENT_ID", "REPLAY_TO"}, rows);
    std::cout << fmt::format("dry run: {} dead letter(s) would be replayed{}\n", todo.size(),
                             skipped_note);
    return kOk;
  }
  const bool tty = isatty(STDERR_FILENO);
  size_t replayed = 0, failed = 0, kept = 0;
  std::string first_error;
  const size_t window = 256;
  for (size_t start = 0; start < todo.size(); start += window) {
    size_t end = std::min(todo.size(), start + window);
    std::mutex mu;
    std::condition_variable cv;
    size_t left = end - start;
    std::vector<char> ok(end - start, 0);
    for (size_t i = start; i < end; ++i) {
      auto [b, topic] = dest_of(todo[i].second);
      if (topic.empty()) throw Exit{kFailure, "dead letter " + todo[i].second.id + " has no original topic; use --to"};
      brokers.get(b).sink().publish(topic, dlq::original_event(todo[i].second),
                                    [&, i](Result<PublishAck> r) {
                                      std::lock_guard lk(mu);
                                      if (r) {
                                        ok[i - start] = 1;
                                      } else if (first_error.empty()) {
                                        first_error = r.error().message;
                                      }
                                      if (--left == 0) cv.notify_all();
                                    });
    }
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return left == 0; });
    }
    // Only now, with the re-publish durable, remove from the dead-letter queue.
    for (size_t i = start; i < end; ++i) {
      if (!ok[i - start]) {
        ++failed;
        continue;
      }
      ++replayed;
      const auto& [t, r] = todo[i];
      if (auto rm = brokers.browser(t.broker).remove(t.topic, r.event.partition, r.event.offset); !rm) {
        ++kept;
        if (kept == 1) std::cerr << "note: " << rm.error().message << "; replayed records stay listed\n";
      }
    }
    if (tty) {
      size_t done = end, width = 30, fill = todo.empty() ? width : done * width / todo.size();
      std::cerr << fmt::format("\rreplaying [{}{}] {}/{}", std::string(fill, '#'),
                               std::string(width - fill, ' '), done, todo.size())
                << std::flush;
    }
  }
  if (tty && !todo.empty()) std::cerr << "\n";
  std::cout << fmt::format("replayed {} of {} dead letter(s){}\n", replayed, todo.size(),
                           skipped_note);
  if (failed) throw Exit{kFailure, fmt::format("{} could not be re-published (kept in the DLQ): {}", failed, first_error)};
  return kOk;
}

}  // namespace sluice::cmd
