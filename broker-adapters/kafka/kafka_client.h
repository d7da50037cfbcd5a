// Shared plumbing of the Kafka adapter over librdkafka's C API: RAII handles,
// error mapping and client configuration (defaults, the broker's `options`
// pass-through, and the keys sluice manages itself).
//
// Pure helpers: no state of their own; safe on any thread.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartList = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

// How long the adapter waits for metadata, watermark and committed-offset queries.
inline constexpr std::chrono::milliseconds kQueryTimeout{5000};
// How long opening a broker waits for the cluster's first answer.
inline constexpr std::chrono::milliseconds kConnectTimeout{10000};

// "<context>: <librdkafka's text>", with the Errc and retriable flag of `err`.
Error kafka_error(std::string_view context, rd_kafka_resp_err_t err);
Error kafka_error(std::string_view context, const rd_kafka_error_t* err);

enum class Role { producer, consumer, browser };

// A client for `cfg` (bootstrap, options) in `role`. `group` is the consumer group
// (consumer and browser roles). Unknown or invalid options are an Errc::invalid_argument
// that names the broker and the option. Keys sluice manages (group.id,
// enable.auto.offset.store) may not be given in `options`. `hooks` installs callbacks
// (and their opaque) on the configuration before the client is made.
// Sets every property make_client would (all roles) on throw-away confs, creating no
// client: unknown options and bad values, for `validate` (cmd/preflight.cc).
Result<void> check_options(const BrokerConfig& cfg);

Result<Handle> make_client(const BrokerConfig& cfg, Role role, const std::string& group,
                           const std::function<void(rd_kafka_conf_t*)>& hooks = {});

// A consumer that reads with assign() only: it never joins the group and never
// commits (the browser's reads, the lag peeks). Closed, then destroyed, with it.
struct Reader {
  Handle rk;
  explicit Reader(Handle h) : rk(std::move(h)) {}
  Reader(Reader&&) noexcept = default;
  ~Reader();
};
// A Role::browser client for `group` whose records are served by
// rd_kafka_consumer_poll. `hooks` as for make_client.
Result<Reader> make_reader(const BrokerConfig& cfg, const std::string& group,
                           const std::function<void(rd_kafka_conf_t*)>& hooks = {});

// A list of (topic, partition) for each of `parts`, offsets unset.
PartList make_list(std::string_view topic, const std::vector<int32_t>& parts);

// The partition count of `topic` (metadata request); Errc::not_found when the
// topic does not exist.
Result<int32_t> partition_count(rd_kafka_t* rk, std::string_view topic,
                                std::chrono::milliseconds timeout = kQueryTimeout);

}  // namespace sluice::kafka
