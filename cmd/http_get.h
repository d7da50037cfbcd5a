// A blocking HTTP/1.1 GET against the local engine (for CLI verbs that show live
// state). Short timeouts; an error when the engine is not reachable.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace sluice::cmd {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::map<std::string, std::string> headers;  // lower-case names
};

// `listen` is "host:port" as in the config; `token` is sent as a bearer token if set.
Result<HttpReply> http_get(const std::string& listen, const std::string& path,
                           const std::string& token);

// A POST with `body` and extra `headers`, waiting up to `timeout` for the answer.
Result<HttpReply> http_post(const std::string& listen, const std::string& path,
                            const std::string& token, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout);

// The first token of a bearer-token file ("" when none or no file).
std::string first_token(const std::string& file);

}  // namespace sluice::cmd
