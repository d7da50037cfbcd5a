// Seals: authentication of sluice's own control headers (docs/SECURITY.md "Control
// headers").
//
// Some headers steer sluice: a callback target (sluice-callback-*), the retry state
// of a retry-topic record (sluice-retry-*) and the fields of a dead letter
// (sluice-dlq-*). Anyone who can write a record could write them too, so sluice
// trusts them only under a seal it made: an HMAC-SHA256 with the control key over a
// canonical encoding of
//
//   "sluice-seal/1" | kind | event id | function | SHA-256(payload) | the kind's
//   header values in a fixed order (trimmed of white space; empty or absent ones
//   marked as absent, since transports trim values and may drop empty headers)
//
// (each field length-prefixed; for a dead letter the event id is the original one,
// kept in the covered header sluice-dlq-event-id), carried in one header per kind
// (`sluice-callback-seal`, `sluice-retry-seal`, `sluice-dlq-seal`, each inside its
// kind's prefix so that code stripping a kind's headers strips its seal too). The
// binding to the event id, the function and the payload means a seal cannot be
// copied onto another record. Value: "v1:<key id>:<64 hex digits>".
//
// A control header that appears twice, a missing seal, a seal made with a key that
// is not in the keyring, or any changed byte: not verified.
//
// Threads: a Keyring is immutable after construction; seal()/verify() may be called
// from any thread at once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/result.h"

namespace sluice::seal {

enum class Kind : uint8_t { callback, retry, dead_letter };
const char* to_string(Kind k) noexcept;  // "callback" | "retry" | "dead_letter"

// The header carrying the seal of `k`.
std::string_view seal_header(Kind k) noexcept;
// The control headers a seal of `k` covers, in canonical order (the seal header
// itself not included).
std::span<const std::string_view> covered_headers(Kind k) noexcept;

enum class Verdict : uint8_t {
  verified,
  missing,     // no seal header
  malformed,   // not "v1:<id>:<hex>", or a covered header appears twice
  other_key,   // sealed with a key this keyring does not hold
  mismatch,    // right key, wrong MAC: something was changed or copied
};
const char* to_string(Verdict v) noexcept;

// The control keys: the first one seals, every one verifies (rotation: add the new
// key to every process first, then make it the first).
class Keyring {
 public:
  static constexpr size_t kMinKeyBytes = 32;
  static constexpr size_t kMaxKeys = 16;

  // Errc::invalid_argument when empty, more than kMaxKeys, or a key is shorter
  // than kMinKeyBytes.
  static Result<Keyring> from_keys(std::vector<std::string> keys);
  // A keyring of one fresh random key (tests, and a dispatcher given none).
  static Keyring random();

  // The key file: one key per line as hex (at least 64 digits); blank lines and
  // lines starting with '#' are ignored; the first key seals.
  static Result<Keyring> parse_file_text(std::string_view text);
  // Reads `path`; when it does not exist and `create` is set, creates it (and its
  // directory) with one random key, mode 0600, atomically (two processes starting
  // at once end up with the same key). Errc::not_found when absent and !create.
  static Result<Keyring> load(const std::string& path, bool create);

  // The seal of `k` for `ev`, steering `function`, over the covered headers' current
  // values in `ev`. Does not modify `ev`.
  std::string seal(Kind k, const Event& ev, std::string_view function) const;
  // seal() and set_header(seal_header(k), ...).
  void apply(Kind k, Event& ev, std::string_view function) const;
  Verdict verify(Kind k, const Event& ev, std::string_view function) const;

  // The key id of the sealing key (8 hex digits), as it appears in seals.
  const std::string& key_id() const { return keys_.front().id; }

 private:
  struct Key {
    std::string bytes;
    std::string id;
  };
  Keyring() = default;
  std::vector<Key> keys_;
};

// Removes every header of kind `k` (the covered ones and the seal) from `ev`.
void strip(Kind k, Event& ev);
// True when `ev` carries any header of kind `k` (covered or seal).
bool has_any(Kind k, const Event& ev);

}  // namespace sluice::seal
