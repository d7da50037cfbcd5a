// Small helpers for HTTP handlers: the request/response types, JSON responses,
// request-target parsing and bearer tokens. Pure functions; any thread.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Verb = bhttp::verb;
using Status = bhttp::status;

// Beast 1.74 speaks boost::string_view; sluice speaks std::string_view.
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }
// ASCII case-insensitive equality (header names, schemes, media types).
bool iequals(std::string_view a, std::string_view b);

// {"error": message} with Content-Type application/json.
Response json_error(Status status, std::string_view message);
// `json` (already serialised) with Content-Type application/json.
Response json_response(Status status, std::string json);
// Appends `s` as a JSON string literal (quoted, escaped; invalid UTF-8 replaced by
// U+FFFD), exactly as nlohmann::json's dump would write it.
void append_json_string(std::string& out, std::string_view s);

// The path of a request target, without the query string (not decoded).
std::string_view target_path(std::string_view target);
// The percent-decoded value of query parameter `name` ('+' is a space); empty when
// absent, an error for a malformed escape.
Result<std::string> query_param(std::string_view target, std::string_view name);
// Percent-decodes a path segment; an error for a malformed escape.
Result<std::string> url_decode(std::string_view s);

// Token file: one token per line, surrounding blanks trimmed, '#' comments and
// blank lines ignored. An error when it is missing, unreadable or holds no token;
// the message starts with `key`, the config key that named the file.
Result<std::vector<std::string>> load_bearer_tokens(
    const std::string& path, const std::string& key = "http.auth.bearer_tokens_file");
// True when `authorization` is "Bearer <t>" and t equals one of `tokens`. Every
// token is compared, in time that does not depend on where the first difference is.
bool bearer_token_ok(std::string_view authorization, const std::vector<std::string>& tokens);

}  // namespace sluice::http
