// The pause routes of the HTTP API (`sluice pause` / `sluice resume`):
//
//   POST /system/functions/{name}/pause   -> 200 {"name", "paused": true}
//   POST /system/functions/{name}/resume  -> 200 {"name", "paused": false}
//
// Through Dispatcher::set_paused: idempotent (pausing a paused function answers the
// same 200); an unknown function is 404, any other path under /system/functions/ 404
// naming the two forms. Protected by the bearer tokens like every route but the health
// checks. The state lasts until the next resume or the end of the process: at start
// a function is paused only when its config says `paused: true`.
//
// Threads: the handler runs on an HTTP strand and waits briefly for the dispatcher
// thread to apply the change (as GET /system/functions waits for its stats).
#pragma once

#include "broker-adapters/http/http_server.h"

namespace sluice::dispatcher {
class Dispatcher;
}  // namespace sluice::dispatcher

namespace sluice::api {

// `dispatcher` must outlive the server.
void add_pause_routes(http::HttpServer& server, dispatcher::Dispatcher& dispatcher);

}  // namespace sluice::api
