#include "core/event.h"

#include <errno.h>
#include <pthread.h>
#include <strings.h>
#include <sys/random.h>

#include <boost/uuid/random_generator.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <ctime>

#include "event.pb.h"

namespace sluice {

const char* to_string(Errc c) noexcept {
  switch (c) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::io: return "io";
    case Errc::unavailable: return "unavailable";
    case Errc::timeout: return "timeout";
    case Errc::overloaded: return "overloaded";
    case Errc::no_space: return "no_space";
    case Errc::corrupt: return "corrupt";
    case Errc::closed: return "closed";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

const std::string* Event::header(std::string_view name) const {
  for (const auto& h : headers)
    if (h.name.size() == name.size() &&
        strncasecmp(h.name.data(), name.data(), name.size()) == 0)
      return &h.value;
  return nullptr;
}

const std::string* Event::extension(std::string_view name) const {
  for (const auto& [k, v] : extensions)
    if (k == name) return &v;
  return nullptr;
}

void Event::set_header(std::string name, std::string value) {
  for (auto& h : headers) {
    if (h.name.size() == name.size() &&
        strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      h.value = std::move(value);
      return;
    }
  }
  headers.push_back({std::move(name), std::move(value)});
}

size_t Event::byte_size() const {
  size_t n = sizeof(Event) + id.size() + source.size() + type.size() + subject.size() +
             datacontenttype.size() + dataschema.size() + time.size() + data.size() +
             broker.size() + topic.size() + key.size();
  for (const auto& h : headers) n += h.name.size() + h.value.size() + sizeof(Header);
  for (const auto& [k, v] : extensions) n += k.size() + v.size() + 64;
  return n;
}

void to_proto(const Event& e, v1::Event* p) {
  p->set_id(e.id);
  p->set_source(e.source);
  p->set_spec_version(e.specversion);
  p->set_type(e.type);
  p->set_data_content_type(e.datacontenttype);
  p->set_data_schema(e.dataschema);
  p->set_subject(e.subject);
  p->set_time(e.time);
  for (const auto& [k, v] : e.extensions) {
    auto* x = p->add_extensions();
    x->set_name(k);
    x->set_value(v);
  }
  p->set_data(e.data);
  p->set_broker(e.broker);
  p->set_topic(e.topic);
  p->set_partition(e.partition);
  p->set_offset(e.offset);
  p->set_key(e.key);
  for (const auto& h : e.headers) {
    auto* x = p->add_headers();
    x->set_name(h.name);
    x->set_value(h.value);
  }
  p->set_broker_timestamp_ms(e.broker_timestamp_ms);
  p->set_attempt(e.attempt);
  p->set_first_attempt_time_ms(e.first_attempt_time_ms);
}

Event from_proto(v1::Event&& p) {
  Event e;
  e.id = std::move(*p.mutable_id());
  e.source = std::move(*p.mutable_source());
  e.specversion = std::move(*p.mutable_spec_version());
  e.type = std::move(*p.mutable_type());
  e.datacontenttype = std::move(*p.mutable_data_content_type());
  e.dataschema = std::move(*p.mutable_data_schema());
  e.subject = std::move(*p.mutable_subject());
  e.time = std::move(*p.mutable_time());
  e.extensions.reserve(p.extensions_size());
  for (auto& x : *p.mutable_extensions())
    e.extensions.emplace_back(std::move(*x.mutable_name()), std::move(*x.mutable_value()));
  e.data = std::move(*p.mutable_data());
  e.broker = std::move(*p.mutable_broker());
  e.topic = std::move(*p.mutable_topic());
  e.partition = p.partition();
  e.offset = p.offset();
  e.key = std::move(*p.mutable_key());
  e.headers.reserve(p.headers_size());
  for (auto& h : *p.mutable_headers())
    e.headers.push_back({std::move(*h.mutable_name()), std::move(*h.mutable_value())});
  e.broker_timestamp_ms = p.broker_timestamp_ms();
  e.attempt = p.attempt();
  e.first_attempt_time_ms = p.first_attempt_time_ms();
  return e;
}

std::string encode(const Event& e) {
  v1::Event p;
  to_proto(e, &p);
  return p.SerializeAsString();
}

Result<Event> decode(std::string_view bytes) {
  v1::Event p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Error{Errc::corrupt, "stored event does not parse as sluice.v1.Event"};
  return from_proto(std::move(p));
}

namespace {

// Bumped in a forked child, so that it never reuses random bytes its parent buffered.
std::atomic<uint64_t> g_fork_generation{0};

// Random bytes from the kernel (getrandom), fetched a block at a time: one syscall per
// kIdsPerBlock ids instead of one per id. Per thread; refilled after a fork.
class RandomBlock {
 public:
  // 16 fresh random bytes; never hands out the same bytes twice.
  const unsigned char* take16() {
    const uint64_t gen = g_fork_generation.load(std::memory_order_relaxed);
    if (pos_ + 16 > fill_ || gen != generation_) refill(gen);
    const unsigned char* p = buf_.data() + pos_;
    pos_ += 16;
    return p;
  }

 private:
  static constexpr size_t kIdsPerBlock = 64;
  void refill(uint64_t gen) {
    static const bool registered = [] {
      pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); });
      return true;
    }();
    (void)registered;
    generation_ = gen;
    size_t got = 0;
    while (got < buf_.size()) {
      ssize_t n = ::getrandom(buf_.data() + got, buf_.size() - got, 0);
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        // No getrandom (very old kernel): Boost's provider reads /dev/urandom.
        boost::uuids::random_generator gen_fallback;
        for (; got + 16 <= buf_.size(); got += 16) {
          boost::uuids::uuid u = gen_fallback();
          std::memcpy(buf_.data() + got, u.data, 16);
        }
        break;
      }
    }
    fill_ = got - got % 16;
    pos_ = 0;
  }

  std::array<unsigned char, 16 * kIdsPerBlock> buf_{};
  size_t pos_ = 0;
  size_t fill_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace

std::string new_event_id() {
  thread_local RandomBlock block;
  unsigned char b[16];
  std::memcpy(b, block.take16(), 16);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t o = 0;
  for (size_t i = 0; i < 16; ++i) {
    if (o == 8 || o == 13 || o == 18 || o == 23) ++o;
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 0x0F];
  }
  return out;
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(int64_t unix_ms) {
  // On every record of a plain topic: no gmtime/snprintf. Days to a civil date by
  // H. Hinnant's algorithm (proleptic Gregorian, exact for any day).
  int64_t secs = unix_ms / 1000;
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = yoe + era * 400 + (month <= 2);
  if (year < 0 || year > 9999) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
  }
  char b[25] = "0000-00-00T00:00:00.000Z";
  auto put = [&](int pos, int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) {
      b[pos + i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, year, 4);
  put(5, month, 2);
  put(8, day, 2);
  put(11, sod / 3600, 2);
  put(14, sod / 60 % 60, 2);
  put(17, sod % 60, 2);
  put(20, ms, 3);
  return std::string(b, 24);
}

Result<int64_t> parse_rfc3339(std::string_view text) {
  auto bad = [&] {
    return Error{Errc::invalid_argument,
                 "'" + std::string(text) + "' is not an RFC 3339 timestamp"};
  };
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (text.size() < 20) return bad();
  auto digits = [&](size_t pos, size_t n, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int Y, M, D, h, m, s;
  if (!digits(0, 4, Y) || text[4] != '-' || !digits(5, 2, M) || text[7] != '-' ||
      !digits(8, 2, D) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      !digits(11, 2, h) || text[13] != ':' || !digits(14, 2, m) || text[16] != ':' ||
      !digits(17, 2, s))
    return bad();
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return bad();
  size_t i = 19;
  int ms = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    int scale = 100;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      ms += (text[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return bad();
  }
  if (i >= text.size()) return bad();
  int offset_min = 0;
  if (text[i] == 'Z' || text[i] == 'z') {
    ++i;
  } else if (text[i] == '+' || text[i] == '-') {
    int oh, om;
    if (!digits(i + 1, 2, oh) || i + 3 >= text.size() || text[i + 3] != ':' ||
        !digits(i + 4, 2, om) || oh > 23 || om > 59)
      return bad();
    offset_min = (oh * 60 + om) * (text[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return bad();
  }
  if (i != text.size()) return bad();
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s > 59 ? 59 : s;
  std::time_t t = timegm(&tm);
  return (static_cast<int64_t>(t) - offset_min * 60) * 1000 + ms;
}

}  // namespace sluice
