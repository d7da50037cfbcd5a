// The one place broker kinds are registered (STYLE.md: a compile-time list).
#pragma once

#include <memory>

#include "config/config.h"
#include "core/broker.h"

namespace sluice {

// Opens the broker a `brokers:` entry describes. Kinds not built in yet give a
// clear Errc::invalid_argument naming the broker.
Result<std::unique_ptr<Broker>> make_broker(const BrokerConfig& cfg);

}  // namespace sluice
