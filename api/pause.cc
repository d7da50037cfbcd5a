#include "api/pause.h"

#include <nlohmann/json.hpp>

#include "dispatcher/dispatcher.h"

namespace sluice::api {

namespace {
constexpr std::string_view kPrefix = "/system/functions/";
}  // namespace

void add_pause_routes(http::HttpServer& server, dispatcher::Dispatcher& dispatcher) {
  using http::Status;
  server.route(http::Verb::post, std::string(kPrefix),
               [&dispatcher](http::Request&& req, http::Responder res) {
                 // {name}/pause or {name}/resume; the name is URL-decoded.
                 const std::string_view rest =
                     http::target_path(http::sv(req.target())).substr(kPrefix.size());
                 const auto slash = rest.rfind('/');
                 const std::string_view verb =
                     slash == std::string_view::npos ? "" : rest.substr(slash + 1);
                 if (slash == 0 || (verb != "pause" && verb != "resume"))
                   return res(http::json_error(
                       Status::not_found, "expected POST /system/functions/{name}/pause or "
                                          "/system/functions/{name}/resume"));
                 const std::string_view raw = rest.substr(0, slash);
                 auto decoded = http::url_decode(raw);
                 const std::string name = decoded ? decoded.value() : std::string(raw);
                 const bool pause = verb == "pause";
                 if (!dispatcher.set_paused(name, pause))
                   return res(http::json_error(Status::not_found,
                                               "unknown function '" + name + "'"));
                 const nlohmann::json body = {{"name", name}, {"paused", pause}};
                 res(http::json_response(Status::ok, body.dump()));
               });
}

}  // namespace sluice::api
