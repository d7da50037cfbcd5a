// NATS message <-> Event (the CloudEvents NATS binding, PRODUCT.md section 6).
//
// Pure functions over one message; safe on any thread (a natsMsg must not be used
// by two threads at once, which callers guarantee).
//
// Decoding, in order:
//   - any `ce-*` header: binary mode (cloudevents::parse_binary, prefix "ce-");
//   - content-type application/cloudevents+json: structured mode;
//   - otherwise, or when the CloudEvent is malformed: a plain event, id
//     "<stream>/<sequence>" (core NATS: a fresh UUID), source "/nats/<stream>",
//     type io.sluice.nats.message, every header kept; a malformed CloudEvent also
//     gets the header `sluice-decode-error` (delivered, never dropped).
//   key (what `ordering: key` orders by) = the header named by KeyRule.header
//   (default `sluice-key`), else the CloudEvents partitionkey, else the subject
//   token KeyRule.token (1-based; negative from the end; default -1 = last token;
//   0 = none, and the event has no key).
// Encoding: binary mode (ce-* headers + Event.headers as NATS headers, data as the
// payload).
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/event.h"
#include "core/result.h"

namespace sluice::nats {

inline constexpr std::string_view kPlainType = "io.sluice.nats.message";
inline constexpr std::string_view kDecodeErrorHeader = "sluice-decode-error";
inline constexpr std::string_view kKeyHeader = "sluice-key";

// Frees a message on the calling thread. natsMsg_Destroy hands every message to
// nats.c's garbage-collector thread and wakes it whenever it sleeps, which at tens of
// thousands of messages a second is a context switch per message (the woken collector
// preempts the thread doing the work). nats.c's own free function (exported, not in
// its header; found at configure time, SLUICE_HAVE_NATSMSG_FREE) frees at once;
// without it this is natsMsg_Destroy. Only for a message the caller owns outright
// (one it received); the sources' hot paths use it.
void free_msg(natsMsg* m);

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// Where a message came from. `stream` empty = core NATS (no sequence).
struct MsgCoords {
  std::string_view broker;
  std::string_view stream;
  uint64_t sequence = 0;
  int64_t timestamp_ms = 0;
};

// Where the ordering key of a message comes from (broker options key_header,
// key_token).
struct KeyRule {
  std::string header = std::string(kKeyHeader);
  int token = -1;
};

// What a JetStream message's reply (ack) subject says about it. The views point
// into the parsed subject.
struct AckMeta {
  std::string_view domain;    // "" when none ("_" on the wire) or the v1 form
  std::string_view stream, consumer;
  uint64_t delivered = 0;     // times the server delivered it (1 = first)
  uint64_t stream_seq = 0, consumer_seq = 0;
  int64_t timestamp_ns = 0;   // stored at, unix nanoseconds
  uint64_t pending = 0;       // messages left for the consumer
};

// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (v1,
// 9 tokens) or `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.
// <dseq>.<ts>.<pending>[.<more>...]` (v2: 11 tokens or more; servers send 12, the
// last a random token) without allocating, as natsMsg_GetMetaData does. False for
// anything else (another prefix, another token count, an empty or non-numeric
// number, a number above INT64_MAX).
bool parse_ack_subject(std::string_view reply, AckMeta& out);

// Token `n` of `subject` (1-based; negative counts from the end); "" when absent or 0.
std::string_view subject_token(std::string_view subject, int n);

// Every header of `m` in wire order (a name with several values gives several).
Headers read_headers(natsMsg* m);
// The event `m` carries; topic = subject, partition 0, offset = sequence (-1 core).
// `*bad` (when given) is set when `m` claimed to be a CloudEvent and did not decode.
Event msg_to_event(natsMsg* m, const MsgCoords& at, const KeyRule& key = {},
                   bool* bad = nullptr);
// A message for `subject` carrying `ev` in binary mode.
Result<MsgPtr> event_to_msg(std::string_view subject, const Event& ev);

}  // namespace sluice::nats
