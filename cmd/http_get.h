// A blocking HTTP/1.1 GET against the local engine (for CLI verbs that show live
// state). Short timeouts; an error when the engine is not reachable.
#pragma once

#include <string>

#include "core/result.h"

namespace sluice::cli {

struct HttpReply {
  int status = 0;
  std::string body;
};

// `listen` is "host:port" as in the config; `token` is sent as a bearer token if set.
Result<HttpReply> http_get(const std::string& listen, const std::string& path,
                           const std::string& token);

}  // namespace sluice::cli
