#include "core/seal.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::seal {

namespace {

// The names are those of api/callbacks.h (callback), dispatcher/retry_topic.h
// and dlq/record.h; their tests check that the lists agree.
constexpr std::array<std::string_view, 2> kCallback = {"sluice-callback-url",
                                                        "sluice-callback-function"};
constexpr std::array<std::string_view, 4> kRetry = {"sluice-retry-attempt", "sluice-retry-due",
                                                     "sluice-retry-first-failure",
                                                     "sluice-retry-origin"};
constexpr std::array<std::string_view, 11> kDeadLetter = {
    "sluice-dlq-function",           "sluice-dlq-error-class",      "sluice-dlq-error-message",
    "sluice-dlq-attempts",           "sluice-dlq-first-failure-time",
    "sluice-dlq-last-failure-time",  "sluice-dlq-original-broker",
    "sluice-dlq-original-topic",     "sluice-dlq-original-partition",
    "sluice-dlq-original-offset",    "sluice-dlq-event-id"};
// A dead letter's own id is not stable (a plain Kafka record read back from the
// dead-letter topic gets an id from its new coordinates): its seal binds the
// original event id through this covered header instead.
constexpr std::string_view kDeadLetterEventId = "sluice-dlq-event-id";

constexpr std::string_view kVersion = "v1";
constexpr std::string_view kDomain = "sluice-seal/1";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), n);
}

// Length-prefixed, so that no two different field lists encode alike.
void field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  return v;
}

const std::string* only_header(const Event& ev, std::string_view name, bool* twice) {
  const std::string* found = nullptr;
  for (const auto& h : ev.headers) {
    if (!iequals(h.name, name)) continue;
    if (found) *twice = true;
    found = &h.value;
  }
  return found;
}

// The canonical bytes a seal of `k` covers; `twice` is set when a covered header
// appears more than once (such a record is never verified).
std::string canonical(Kind k, const Event& ev, std::string_view function, bool* twice) {
  std::string out;
  out.reserve(256);
  field(out, kDomain);
  field(out, to_string(k));
  if (k == Kind::dead_letter) {
    field(out, "");
  } else {
    field(out, ev.id);
  }
  field(out, function);
  field(out, sha256(ev.data));
  // A value is taken without surrounding white space, and an empty value counts as
  // absent: transports differ there (NATS headers trim, some drop empty ones), and
  // neither changes what sluice reads from the header.
  for (std::string_view name : covered_headers(k)) {
    const std::string* v = only_header(ev, name, twice);
    std::string_view value = v ? trim(*v) : std::string_view{};
    if (!value.empty()) {
      out += '+';
      field(out, value);
    } else {
      out += '-';
    }
  }
  return out;
}

std::string key_id_of(std::string_view key) {
  const std::string d = sha256(std::string("sluice-control-key-id/1:") + std::string(key));
  return hex(reinterpret_cast<const unsigned char*>(d.data()), 4);
}

std::string mac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &n);
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed: no random key can be made");
  return out;
}

Result<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Error{Errc::not_found, "control key file " + path + " does not exist"};
    return Error{Errc::io, "control key file " + path + ": " + std::strerror(errno)};
  }
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > 64 * 1024)
      return Error{Errc::invalid_argument, "control key file " + path + " is larger than 64 KiB"};
  }
  return text;
}

// Writes a fresh key file at `path` unless one exists; either way `path` then holds
// a complete file (written to a temporary name, then linked into place).
Result<void> create_key_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec)
    return Error{Errc::io, "control key file " + path + ": cannot create its directory: " +
                               ec.message()};
  const std::string key = random_bytes(Keyring::kMinKeyBytes);
  const std::string text =
      "# sluice control key (docs/SECURITY.md \"Control headers\"): keep it secret.\n" +
      hex(reinterpret_cast<const unsigned char*>(key.data()), key.size()) + "\n";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          hex(reinterpret_cast<const unsigned char*>(random_bytes(4).data()), 4);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error{Errc::io, "control key file " + tmp + ": " + std::strerror(errno)};
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return Error{Errc::io, "control key file " + tmp + ": " + std::strerror(err)};
  }
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0 && link_err != EEXIST)
    return Error{Errc::io, "control key file " + path + ": " + std::strerror(link_err)};
  if (linked == 0) spdlog::info("created control key file {} (mode 0600)", path);
  return ok();
}

}  // namespace

const char* to_string(Kind k) noexcept {
  switch (k) {
    case Kind::callback: return "callback";
    case Kind::retry: return "retry";
    case Kind::dead_letter: return "dead_letter";
  }
  return "?";
}

const char* to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::verified: return "verified";
    case Verdict::missing: return "no seal";
    case Verdict::malformed: return "malformed seal or repeated control header";
    case Verdict::other_key: return "sealed with an unknown key";
    case Verdict::mismatch: return "seal does not match the record";
  }
  return "?";
}

std::string_view seal_header(Kind k) noexcept {
  switch (k) {
    case Kind::callback: return "sluice-callback-seal";
    case Kind::retry: return "sluice-retry-seal";
    case Kind::dead_letter: return "sluice-dlq-seal";
  }
  return {};
}

std::span<const std::string_view> covered_headers(Kind k) noexcept {
  switch (k) {
    case Kind::callback: return kCallback;
    case Kind::retry: return kRetry;
    case Kind::dead_letter: return kDeadLetter;
  }
  return {};
}

Result<Keyring> Keyring::from_keys(std::vector<std::string> keys) {
  if (keys.empty()) return Error{Errc::invalid_argument, "no control key"};
  if (keys.size() > kMaxKeys)
    return Error{Errc::invalid_argument,
                 "more than " + std::to_string(kMaxKeys) + " control keys"};
  Keyring r;
  for (auto& k : keys) {
    if (k.size() < kMinKeyBytes)
      return Error{Errc::invalid_argument, "a control key must have at least " +
                                               std::to_string(kMinKeyBytes) + " bytes (" +
                                               std::to_string(2 * kMinKeyBytes) +
                                               " hex digits), got " + std::to_string(k.size())};
    std::string id = key_id_of(k);
    r.keys_.push_back({std::move(k), std::move(id)});
  }
  return r;
}

Keyring Keyring::random() { return from_keys({random_bytes(kMinKeyBytes)}).value(); }

Result<Keyring> Keyring::parse_file_text(std::string_view text) {
  std::vector<std::string> keys;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.size() % 2 != 0 || line.size() > 1024)
      return Error{Errc::invalid_argument,
                   "line " + std::to_string(line_no) + ": expected a key as hex digits"};
    std::string key(line.size() / 2, '\0');
    for (size_t i = 0; i < key.size(); ++i) {
      const int hi = hex_digit(line[2 * i]), lo = hex_digit(line[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return Error{Errc::invalid_argument,
                     "line " + std::to_string(line_no) + ": expected a key as hex digits"};
      key[i] = static_cast<char>(hi * 16 + lo);
    }
    keys.push_back(std::move(key));
  }
  return from_keys(std::move(keys));
}

Result<Keyring> Keyring::load(const std::string& path, bool create) {
  auto text = read_small_file(path);
  if (!text && text.error().code == Errc::not_found && create) {
    if (auto c = create_key_file(path); !c) return c.error();
    text = read_small_file(path);
  }
  if (!text) return text.error();
  struct stat st {};
  // Group access is how a mounted Kubernetes Secret is shared with the pod's fsGroup;
  // access for everyone is never right.
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 007) != 0)
    spdlog::warn("control key file {} can be read by every user (mode {:o}): chmod 600 it",
                 path, st.st_mode & 0777);
  auto ring = parse_file_text(text.value());
  if (!ring) return Error{Errc::invalid_argument, "control key file " + path + ": " + ring.error().message};
  return ring;
}

std::string Keyring::seal(Kind k, const Event& ev, std::string_view function) const {
  bool twice = false;
  const Key& key = keys_.front();
  const std::string m = mac(key.bytes, canonical(k, ev, function, &twice));
  std::string out;
  out.reserve(3 + key.id.size() + 1 + 2 * m.size());
  out.append(kVersion).append(1, ':').append(key.id).append(1, ':');
  out += hex(reinterpret_cast<const unsigned char*>(m.data()), m.size());
  return out;
}

void Keyring::apply(Kind k, Event& ev, std::string_view function) const {
  if (k == Kind::dead_letter && !ev.header(kDeadLetterEventId))
    ev.set_header(std::string(kDeadLetterEventId), ev.id);
  ev.set_header(std::string(seal_header(k)), seal(k, ev, function));
}

Verdict Keyring::verify(Kind k, const Event& ev, std::string_view function) const {
  bool twice = false;
  const std::string* s = only_header(ev, seal_header(k), &twice);
  if (!s) return Verdict::missing;
  // "v1:<8 hex>:<64 hex>"
  std::string_view v(*s);
  if (twice || v.size() != 2 + 1 + 8 + 1 + 64 || v.substr(0, 2) != kVersion || v[2] != ':' ||
      v[11] != ':')
    return Verdict::malformed;
  const std::string_view id = v.substr(3, 8);
  const std::string_view digits = v.substr(12);
  unsigned char given[32];
  for (size_t i = 0; i < 32; ++i) {
    const int hi = hex_digit(digits[2 * i]), lo = hex_digit(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) return Verdict::malformed;
    given[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  const std::string data = canonical(k, ev, function, &twice);
  if (twice) return Verdict::malformed;
  bool known = false;
  for (const Key& key : keys_) {
    if (key.id != id) continue;
    known = true;
    const std::string m = mac(key.bytes, data);
    if (m.size() == sizeof given && CRYPTO_memcmp(m.data(), given, sizeof given) == 0)
      return Verdict::verified;
  }
  return known ? Verdict::mismatch : Verdict::other_key;
}

void strip(Kind k, Event& ev) {
  const auto covered = covered_headers(k);
  const std::string_view seal = seal_header(k);
  std::erase_if(ev.headers, [&](const Header& h) {
    return iequals(h.name, seal) ||
           std::any_of(covered.begin(), covered.end(),
                       [&](std::string_view n) { return iequals(h.name, n); });
  });
}

bool has_any(Kind k, const Event& ev) {
  const auto covered = covered_headers(k);
  const std::string_view seal = seal_header(k);
  return std::any_of(ev.headers.begin(), ev.headers.end(), [&](const Header& h) {
    return iequals(h.name, seal) ||
           std::any_of(covered.begin(), covered.end(),
                       [&](std::string_view n) { return iequals(h.name, n); });
  });
}

}  // namespace sluice::seal
