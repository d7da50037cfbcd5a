// CloudEvents 1.0 codec: the JSON event format (structured mode) and the header
// mapping of the protocol bindings (binary mode), shared by the HTTP, Kafka and
// NATS adapters.
//
// Pure functions over values: no state, no threads; safe to call from any thread.
// Every failure is Errc::invalid_argument with a message that names the attribute
// (callers turn it into a 4xx or a dead letter).
//
// Data rules (structured mode):
//   - `data` holding a JSON string: the string's text when datacontenttype is not
//     JSON-ish; with a JSON-ish datacontenttype, the JSON text as sent.
//   - `data` holding any other JSON value: the JSON text exactly as sent (byte for
//     byte, so numbers beyond 64 bits survive); datacontenttype defaults to
//     application/json.
//   - `data_base64`: the decoded bytes (strict RFC 4648: padded, no whitespace).
//   - `"data": null` counts as absent, as does any optional attribute set to null.
// The event key: the `partitionkey` extension sets Event.key; the encoders emit
// `partitionkey` from Event.key when the extensions do not already carry it.
#pragma once

#include <string>
#include <string_view>

#include "core/event.h"
#include "core/result.h"

namespace sluice::cloudevents {

// Media types of the JSON event format.
inline constexpr std::string_view kStructuredContentType = "application/cloudevents+json";
inline constexpr std::string_view kBatchContentType = "application/cloudevents-batch+json";

// Header-name prefixes of the bindings: "ce-" for HTTP and NATS, "ce_" for Kafka.
inline constexpr std::string_view kHttpPrefix = "ce-";
inline constexpr std::string_view kKafkaPrefix = "ce_";

// ---- structured mode (application/cloudevents+json) ----

// Parses one event in the JSON event format.
Result<Event> parse_structured(std::string_view json);
// The JSON event format of `e` (its CloudEvents attributes, extensions and data).
std::string to_structured(const Event& e);

// ---- binary mode (attributes in headers, data in the body) ----

// Builds an event from binding headers: `prefix`+attribute (case-insensitive) are
// the context attributes and extensions; `content_type` (or, when it is empty, a
// "content-type" header) is datacontenttype; `body` is the data. Every other header
// is kept in Event.headers. With the "ce-" prefix, values are percent-decoded as
// the HTTP binding (section 3.1.3.2) prescribes; with other prefixes they are taken
// as they are.
Result<Event> parse_binary(const Headers& headers, std::string_view prefix, std::string body,
                           std::string_view content_type);
// The inverse: prefix+attribute headers (lower case; percent-encoded for "ce-"),
// "content-type" when datacontenttype is set, then Event.headers (except names that
// start with the prefix or are content-type). The body is Event.data.
Headers to_binary(const Event& e, std::string_view prefix);

// ---- helpers (exposed for the adapters and tests) ----

// application/json, text/json or any */*+json, parameters ignored, any case.
bool is_json_content_type(std::string_view content_type);
// The CloudEvents attribute naming rule: [a-z0-9]{1,20}.
bool is_valid_attribute_name(std::string_view name);
bool is_valid_utf8(std::string_view s);

std::string base64_encode(std::string_view bytes);
// Strict: length a multiple of 4, only the standard alphabet, '=' only as padding.
Result<std::string> base64_decode(std::string_view text);

// The HTTP binding's header value escaping: space, '"', '%' and every byte outside
// printable ASCII become %XX; decoding rejects malformed escapes and non-UTF-8.
std::string percent_encode_header(std::string_view value);
Result<std::string> percent_decode_header(std::string_view value);

}  // namespace sluice::cloudevents
