#include "broker-adapters/http/callback_sink.h"

#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "broker-adapters/http/http_util.h"
#include "config/backoff.h"
#include "core/log_limit.h"

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// sluice_callbacks_total{outcome}: the values, in this order.
enum class Count { delivered, failed, gave_up, refused, rejected_full };
constexpr std::array<const char*, 5> kOutcomes{"delivered", "failed", "gave_up", "refused",
                                               "rejected_full"};

// How one attempt ended.
struct End {
  enum Kind { delivered, refused, failed } kind = failed;
  std::string why;  // "HTTP 503", "connect: Connection refused", the refusing rule
};

// Hosts whose refusal was logged; past this many, refusals share one LogLimit.
constexpr size_t kRefusedHostsLogged = 1024;

}  // namespace

CallbackSink::Options CallbackSink::Options::from(const HttpConfig& http) {
  Options o;
  o.timeout = http.callback_timeout;
  o.retry.max_attempts = http.callback_max_attempts;
  o.concurrency = std::max<uint32_t>(1, http.callback_concurrency);
  o.per_host = std::min<uint32_t>(8, o.concurrency);
  o.max_queue = size_t{16} * o.concurrency;
  o.allow = http.callback_allow;
  return o;
}

// One callback from publish() to its completion. Owned by Impl::jobs; io thread only.
struct CallbackSink::Job {
  std::string url_text;
  CallbackUrl url;
  uint16_t port = 0;
  std::string host_key;  // lower-case host:port, for the per-host limit
  Event event;
  PublishCallback done;
  uint32_t attempt = 0;
  std::unique_ptr<asio::steady_timer> backoff;  // while waiting for the next attempt
  std::shared_ptr<Attempt> current;             // while an attempt runs
};

// A name lookup on its own thread. `io` may be used only while `cancelled` is false,
// under `mu`: the sink cancels every lookup before its io_context goes away.
struct CallbackSink::Lookup {
  std::mutex mu;
  bool cancelled = false;
  asio::io_context* io = nullptr;
  std::weak_ptr<Attempt> attempt;
};

struct CallbackSink::Impl {
  Impl(CallbackSink& s, metrics::Metrics* metrics, Options o);

  // io thread
  void accept(std::unique_ptr<Job> job);
  void pump();
  void start(Job* job);
  void begin(const std::shared_ptr<Attempt>& a);
  void lookup(const std::shared_ptr<Attempt>& a);
  void resolved(const std::shared_ptr<Attempt>& a, Result<std::vector<tcp::endpoint>> r);
  template <class Stream>
  void send(const std::shared_ptr<Attempt>& a, Stream& stream);
  void end(const std::shared_ptr<Attempt>& a, End e);
  void complete(Job* job, Result<PublishAck> r);
  void cancel_all();
  void count(Count c) {
    if (counters[static_cast<size_t>(c)]) counters[static_cast<size_t>(c)]->Increment();
  }

  CallbackSink& sink;
  const Options opts;
  std::array<prometheus::Counter*, 5> counters{};
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::thread thread;

  // Any thread, under mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  size_t held = 0;
  bool stopping = false;

  // io thread only.
  bool stopped = false;
  std::unordered_map<Job*, std::unique_ptr<Job>> jobs;
  std::deque<Job*> ready;  // due for an attempt, waiting for a slot
  uint32_t active = 0;
  std::unordered_map<std::string, uint32_t> per_host;
  std::mt19937_64 rng{std::random_device{}()};
  std::unordered_set<std::string> refused_hosts;
  LogLimit refused_log, failure_log{std::chrono::seconds(1)}, bad_url_log, full_log;

  // Lookup threads alive (they may outlive the sink: shared).
  std::shared_ptr<std::atomic<uint32_t>> lookups = std::make_shared<std::atomic<uint32_t>>(0);
};

// One attempt of one callback. Shared by the handlers of its operations; io thread only.
struct CallbackSink::Attempt {
  Attempt(Impl& i, Job* j) : impl(i), job(j), deadline(i.io), socket(i.io) {}
  tcp::socket& sock() { return tls ? tls->next_layer() : socket; }

  Impl& impl;
  Job* job;               // null once the attempt is over
  bool finished = false;  // end() ran: every later handler returns at once
  asio::steady_timer deadline;
  tcp::socket socket;                                   // http
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;  // https (owns its socket)
  std::shared_ptr<Lookup> lookup;
  std::vector<tcp::endpoint> endpoints;
  bhttp::request<bhttp::string_body> req;
  beast::flat_buffer buf;
  std::optional<bhttp::response_parser<bhttp::empty_body>> parser;
};

CallbackSink::Impl::Impl(CallbackSink& s, metrics::Metrics* metrics, Options o)
    : sink(s), opts(std::move(o)) {
  if (metrics)
    for (size_t i = 0; i < kOutcomes.size(); ++i)
      counters[i] = &metrics->callbacks.Add({{"outcome", kOutcomes[i]}});
  tls.set_default_verify_paths();
  tls.set_verify_mode(asio::ssl::verify_peer);
}

CallbackSink::CallbackSink(metrics::Metrics* metrics, Options opts)
    : policy_(opts.allow), impl_(std::make_unique<Impl>(*this, metrics, std::move(opts))) {
  impl_->thread = std::thread([io = &impl_->io] {
    for (;;) {
      try {
        io->run();
        return;
      } catch (const std::exception& e) {  // a bug: keep the loop alive
        spdlog::error("callback sender: unexpected exception: {}", e.what());
      }
    }
  });
}

CallbackSink::~CallbackSink() { stop(); }

size_t CallbackSink::held() const {
  std::lock_guard lk(impl_->mu);
  return impl_->held;
}

void CallbackSink::publish(std::string_view url, Event ev, PublishCallback done) {
  Impl& m = *impl_;
  auto parsed = parse_callback_url(url);
  if (!parsed) {  // never deliverable: nothing to retry
    m.count(Count::refused);
    if (auto n = m.bad_url_log.allow())
      spdlog::error("callback for {} dropped: {}{}", ev.id, parsed.error().message,
                    suppressed_note(*n));
    done(PublishAck{std::string(url), -1, -1});
    return;
  }
  auto job = std::make_unique<Job>();
  job->url_text = std::string(url);
  job->url = std::move(parsed).value();
  job->port = static_cast<uint16_t>(std::stoi(job->url.port));
  for (char c : job->url.host)
    job->host_key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  job->host_key += ":" + job->url.port;
  job->event = std::move(ev);
  std::unique_lock lk(m.mu);
  if (m.stopping) {
    lk.unlock();
    done(Error{Errc::closed, "callback sender stopped"});
    return;
  }
  if (m.held >= m.opts.max_queue) {
    const size_t held = m.held;
    lk.unlock();
    m.count(Count::rejected_full);
    if (auto n = m.full_log.allow())
      spdlog::warn("callback queue full ({} callbacks held): publishing is held back{}", held,
                   suppressed_note(*n));
    done(Error{Errc::overloaded,
               "callback queue full (" + std::to_string(held) + " callbacks held); try later",
               true});
    return;
  }
  ++m.held;
  job->done = std::move(done);
  // Posted under the lock: it is queued before stop()'s cancel_all(), which handles it.
  asio::post(m.io, [&m, j = job.release()] { m.accept(std::unique_ptr<Job>(j)); });
}

Result<void> CallbackSink::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  if (!impl_->cv.wait_for(lk, timeout, [this] { return impl_->held == 0; }))
    return Error{Errc::timeout, std::to_string(impl_->held) + " callback(s) still pending"};
  return ok();
}

void CallbackSink::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    m.stopping = true;
  }
  if (!m.thread.joinable()) return;
  asio::post(m.io, [&m] { m.cancel_all(); });
  m.work.reset();
  m.thread.join();  // every attempt was aborted: only their handlers are left to run
}

void CallbackSink::Impl::accept(std::unique_ptr<Job> job) {
  Job* j = job.get();
  jobs.emplace(j, std::move(job));
  if (stopped) return complete(j, Error{Errc::closed, "callback sender stopped"});
  ready.push_back(j);
  pump();
}

void CallbackSink::Impl::pump() {
  for (auto it = ready.begin(); it != ready.end() && active < opts.concurrency && !stopped;) {
    Job* job = *it;
    if (per_host[job->host_key] >= opts.per_host) {
      ++it;
      continue;
    }
    it = ready.erase(it);
    start(job);
  }
}

// Takes the slots and posts the attempt's first step (never ends it synchronously, so
// pump() does not recurse through end()).
void CallbackSink::Impl::start(Job* job) {
  ++active;
  ++per_host[job->host_key];
  ++job->attempt;
  job->backoff.reset();
  auto a = std::make_shared<Attempt>(*this, job);
  job->current = a;
  a->deadline.expires_after(opts.timeout);
  a->deadline.async_wait([a](const boost::system::error_code& ec) {
    if (ec || a->finished) return;
    a->impl.end(a, {End::failed, "no answer within " + std::to_string(a->impl.opts.timeout.count()) +
                                     " ms"});
  });
  asio::post(io, [a] { a->impl.begin(a); });
}

void CallbackSink::Impl::begin(const std::shared_ptr<Attempt>& a) {
  if (a->finished) return;
  const Job& job = *a->job;
  const CallbackUrl& url = job.url;
  try {
    bhttp::request<bhttp::string_body>& req = a->req;
    req = {bhttp::verb::post, url.target, 11};
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (url.port != (url.scheme == "https" ? "443" : "80")) host += ":" + url.port;
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::user_agent, "sluice-callback");
    req.set(bhttp::field::content_type, job.event.datacontenttype.empty()
                                            ? "application/octet-stream"
                                            : job.event.datacontenttype);
    for (const auto& h : job.event.headers) req.set(h.name, h.value);
    req.body() = job.event.data;
    req.prepare_payload();
    req.keep_alive(false);
  } catch (const std::exception& e) {
    return end(a, {End::failed, std::string("cannot build the request: ") + e.what()});
  }
  auto literal = literal_address(url.host);
  if (url.scheme == "https") {
    a->tls = std::make_unique<asio::ssl::stream<tcp::socket>>(io, tls);
    // SNI carries names only; the certificate must match the host either way.
    if (!literal && !SSL_set_tlsext_host_name(a->tls->native_handle(), url.host.c_str()))
      return end(a, {End::failed, "TLS: cannot set the server name"});
    a->tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
  }
  if (literal) return resolved(a, std::vector<tcp::endpoint>{tcp::endpoint(*literal, job.port)});
  lookup(a);
}

// getaddrinfo on a thread of its own: it cannot be cancelled, and a slow DNS server
// must hold neither other callbacks nor stop(). A lookup still running when its
// attempt ends is abandoned; at most `concurrency` run at once.
void CallbackSink::Impl::lookup(const std::shared_ptr<Attempt>& a) {
  if (lookups->load() >= opts.concurrency)
    return end(a, {End::failed, "too many name lookups in progress"});
  auto lk = std::make_shared<Lookup>();
  lk->io = &io;
  lk->attempt = a;
  a->lookup = lk;
  ++*lookups;
  try {
    std::thread([lk, counter = lookups, host = a->job->url.host, port = a->job->url.port] {
      std::vector<tcp::endpoint> eps;
      std::string err;
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      // No AI_ADDRCONFIG: on a host with loopback only it hides even 127.0.0.1, and an
      // address family that is not configured fails fast at connect (the next is tried).
      hints.ai_flags = AI_NUMERICSERV;
      addrinfo* res = nullptr;
      const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      if (rc != 0) {
        err = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
      } else {
        for (addrinfo* p = res; p; p = p->ai_next) {
          if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
              p->ai_addrlen > sizeof(sockaddr_in6))
            continue;
          tcp::endpoint ep;
          std::memcpy(ep.data(), p->ai_addr, p->ai_addrlen);
          ep.resize(p->ai_addrlen);
          eps.push_back(ep);
        }
        freeaddrinfo(res);
      }
      {
        std::lock_guard g(lk->mu);
        if (!lk->cancelled)
          asio::post(*lk->io, [w = lk->attempt, eps = std::move(eps), err = std::move(err)]() mutable {
            auto a = w.lock();
            if (!a) return;
            if (!err.empty())
              return a->impl.resolved(a, Error{Errc::unavailable, "resolve: " + err});
            a->impl.resolved(a, std::move(eps));
          });
      }
      --*counter;
    }).detach();
  } catch (const std::exception& e) {
    --*lookups;
    end(a, {End::failed, std::string("cannot start a name lookup: ") + e.what()});
  }
}

void CallbackSink::Impl::resolved(const std::shared_ptr<Attempt>& a,
                                  Result<std::vector<tcp::endpoint>> r) {
  if (a->finished) return;
  if (!r) return end(a, {End::failed, r.error().message});
  const Job& job = *a->job;
  std::string refusal;
  for (const auto& ep : r.value()) {
    auto why = sink.policy_.refusal(job.url.host, job.port, ep.address());
    if (!why) {
      a->endpoints.push_back(ep);
    } else if (refusal.empty()) {
      refusal = std::move(*why);
    }
  }
  if (a->endpoints.empty()) {
    if (refusal.empty()) return end(a, {End::failed, "resolve: no address"});
    return end(a, {End::refused, refusal});
  }
  // Only the addresses just checked: no second lookup that could answer differently.
  asio::async_connect(a->sock(), a->endpoints,
                      [a](const boost::system::error_code& ec, const tcp::endpoint&) {
                        if (a->finished) return;
                        if (ec) return a->impl.end(a, {End::failed, "connect: " + ec.message()});
                        if (!a->tls) return a->impl.send(a, a->socket);
                        a->tls->async_handshake(asio::ssl::stream_base::client,
                                                [a](const boost::system::error_code& ec) {
                                                  if (a->finished) return;
                                                  if (ec)
                                                    return a->impl.end(
                                                        a, {End::failed, "TLS: " + ec.message()});
                                                  a->impl.send(a, *a->tls);
                                                });
                      });
}

template <class Stream>
void CallbackSink::Impl::send(const std::shared_ptr<Attempt>& a, Stream& stream) {
  bhttp::async_write(stream, a->req, [a, &stream](const boost::system::error_code& ec, size_t) {
    if (a->finished) return;
    if (ec) return a->impl.end(a, {End::failed, "send: " + ec.message()});
    // Only the answer's header counts; it is bounded, and the body is never read.
    a->parser.emplace();
    a->parser->header_limit(static_cast<uint32_t>(a->impl.opts.max_answer_header));
    bhttp::async_read_header(stream, a->buf, *a->parser,
                             [a](const boost::system::error_code& ec, size_t) {
                               if (a->finished) return;
                               if (ec)
                                 return a->impl.end(a, {End::failed, "answer: " + ec.message()});
                               const unsigned status = a->parser->get().result_int();
                               a->impl.end(a, {status >= 200 && status < 300 ? End::delivered
                                                                             : End::failed,
                                               "HTTP " + std::to_string(status)});
                             });
  });
}

void CallbackSink::Impl::end(const std::shared_ptr<Attempt>& a, End e) {
  if (a->finished) return;
  a->finished = true;
  a->deadline.cancel();
  if (a->lookup) {
    std::lock_guard g(a->lookup->mu);
    a->lookup->cancelled = true;
  }
  boost::system::error_code ignored;
  a->sock().close(ignored);  // aborts whatever operation is pending
  Job* job = a->job;
  a->job = nullptr;
  if (!job) return;  // cancel_all() took it
  job->current.reset();
  --active;
  if (auto it = per_host.find(job->host_key); it != per_host.end() && --it->second == 0)
    per_host.erase(it);
  const std::string& url = job->url_text;
  const std::string& id = job->event.id;
  switch (e.kind) {
    case End::delivered:
      count(Count::delivered);
      spdlog::debug("callback {} for {} delivered ({})", url, id, e.why);
      complete(job, PublishAck{url, -1, -1});
      break;
    case End::refused:
      count(Count::refused);
      if (refused_hosts.size() < kRefusedHostsLogged) {
        if (refused_hosts.insert(job->host_key).second)
          spdlog::warn("callback {} for {} refused: {} (logged once per host)", url, id, e.why);
      } else if (auto n = refused_log.allow()) {
        spdlog::warn("callback {} for {} refused: {}{}", url, id, e.why, suppressed_note(*n));
      }
      complete(job, PublishAck{url, -1, -1});
      break;
    case End::failed:
      count(Count::failed);
      if (job->attempt >= opts.retry.max_attempts) {
        count(Count::gave_up);
        spdlog::error("callback {} for {} given up after {} attempt(s): {}", url, id, job->attempt,
                      e.why);
        complete(job, PublishAck{url, -1, -1});
        break;
      }
      const auto delay = config::backoff_delay(opts.retry, job->attempt, rng);
      if (auto n = failure_log.allow())
        spdlog::warn("callback {} for {} failed (attempt {}/{}): {}; next try in {} ms{}", url, id,
                     job->attempt, opts.retry.max_attempts, e.why, delay.count(),
                     suppressed_note(*n));
      job->backoff = std::make_unique<asio::steady_timer>(io, delay);
      job->backoff->async_wait([this, job](const boost::system::error_code& ec) {
        if (ec || stopped) return;
        ready.push_back(job);
        pump();
      });
      break;
  }
  pump();
}

void CallbackSink::Impl::complete(Job* job, Result<PublishAck> r) {
  auto done = std::move(job->done);
  jobs.erase(job);
  done(std::move(r));
  std::lock_guard lk(mu);
  --held;
  cv.notify_all();
}

void CallbackSink::Impl::cancel_all() {
  stopped = true;
  std::vector<PublishCallback> dones;
  for (auto& [p, job] : jobs) {
    if (auto a = job->current) {
      a->job = nullptr;
      end(a, {});
    }
    if (job->backoff) job->backoff->cancel();
    dones.push_back(std::move(job->done));
  }
  jobs.clear();
  ready.clear();
  active = 0;
  per_host.clear();
  if (!dones.empty())
    spdlog::info("{} callback(s) not delivered at shutdown: their events stay uncommitted and "
                 "are delivered again",
                 dones.size());
  for (auto& done : dones)
    done(Error{Errc::closed, "callback sender stopped before delivery"});
  std::lock_guard lk(mu);
  held -= dones.size();
  cv.notify_all();
}

}  // namespace sluice::http
