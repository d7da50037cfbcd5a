// NATS subject matching (`*` one token, `>` the rest): the NATS adapter's sink and
// browser, and the config validator's check that a JetStream stream stores every
// subject a function uses. Its own small library (sluice_nats_subject, no nats.c), so
// config can link it without the adapter. Pure functions; any thread.
#pragma once

#include <string_view>
#include <vector>

namespace sluice::nats {

// Splits "a.b.c" into its dot-separated tokens.
std::vector<std::string_view> subject_tokens(std::string_view s);
// `*` matches one token, `>` one or more trailing tokens.
bool subject_matches(std::string_view pattern, std::string_view subject);
// True when every subject `filter` can match is also matched by `pattern`
// (a stream covering a source's filter or a sink's subject).
bool subject_covers(std::string_view pattern, std::string_view filter);

}  // namespace sluice::nats
