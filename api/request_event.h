// The event an HTTP request carries, for every route that takes one (POST /topics,
// /function, /async-function): CloudEvents structured or binary mode, or a plain body.
//
// Threads: pure functions; called on the HTTP connection strands.
#pragma once

#include <string_view>

#include "broker-adapters/http/http_util.h"
#include "core/event.h"
#include "core/result.h"

namespace sluice::api {

// [A-Za-z0-9._-]{1,249} and a topic name by core/topic.h (so not "." or "..").
bool is_valid_topic_name(std::string_view topic);

// The event of a request: CloudEvents structured or binary mode, or a plain body
// (sluice fills in id, source, type, time). On failure `*status` says 415 (content
// type not accepted) or 400, and the error message says why.
Result<Event> event_of_request(http::Request& req, http::Status* status);

}  // namespace sluice::api
