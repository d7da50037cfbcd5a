#include "broker-adapters/http/callback_sink.h"

#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "broker-adapters/http/http_util.h"

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

Result<CallbackUrl> parse_callback_url(std::string_view url) {
  const auto bad = [&](std::string_view why) -> Result<CallbackUrl> {
    return Error{Errc::invalid_argument,
                 "callback URL '" + std::string(url) + "': " + std::string(why)};
  };
  CallbackUrl u;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return bad("expected http://host[:port]/path");
  const std::string_view scheme = url.substr(0, sep);
  if (iequals(scheme, "http")) {
    u.scheme = "http";
    u.port = "80";
  } else if (iequals(scheme, "https")) {
    u.scheme = "https";
    u.port = "443";
  } else {
    return bad("only http and https callbacks are allowed");
  }
  std::string_view rest = url.substr(sep + 3);
  const auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.target.empty() && u.target[0] == '?') u.target = "/" + u.target;
  if (auto hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
  if (u.target.empty()) u.target = "/";
  if (authority.find('@') != std::string_view::npos) return bad("credentials in the URL are not allowed");
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return bad("junk after the IPv6 address");
      u.port = std::string(authority.substr(1));
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return bad("no host");
  for (char c : u.host)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/')
      return bad("bad character in the host");
  if (u.port.empty() || u.port.size() > 5 ||
      !std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(u.port) == 0 || std::stoi(u.port) > 65535)
    return bad("bad port");
  for (char c : u.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("bad character in the path");
  return u;
}

CallbackSink::CallbackSink(Metrics* metrics, Options opts) : metrics_(metrics), opts_(opts) {
  for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { run(); });
}

CallbackSink::~CallbackSink() { stop(); }

void CallbackSink::publish(std::string_view url, Event ev, PublishCallback done) {
  std::unique_lock lk(mu_);
  if (stopping_) {
    lk.unlock();
    done(Error{Errc::closed, "callback sender stopped"});
    return;
  }
  queue_.emplace(std::chrono::steady_clock::now(), Job{std::string(url), std::move(ev), std::move(done)});
  cv_.notify_one();
}

Result<void> CallbackSink::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (!cv_.wait_for(lk, timeout, [this] { return queue_.empty() && busy_ == 0; }))
    return Error{Errc::timeout, std::to_string(queue_.size() + busy_) + " callback(s) still pending"};
  return ok();
}

void CallbackSink::stop() {
  std::multimap<std::chrono::steady_clock::time_point, Job> left;
  {
    std::lock_guard lk(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& [due, job] : left) job.done(Error{Errc::closed, "callback sender stopped"});
}

void CallbackSink::finish(Job& job, Result<PublishAck> r) {
  job.done(std::move(r));
  std::lock_guard lk(mu_);
  --busy_;
  cv_.notify_all();
}

void CallbackSink::run() {
  std::unique_lock lk(mu_);
  while (true) {
    if (stopping_) return;
    if (queue_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto due = queue_.begin()->first;
    if (due > std::chrono::steady_clock::now()) {
      cv_.wait_until(lk, due);
      continue;
    }
    Job job = std::move(queue_.begin()->second);
    queue_.erase(queue_.begin());
    ++busy_;
    lk.unlock();

    ++job.attempt;
    const std::string& id = job.event.id;
    auto url = parse_callback_url(job.url);
    Result<int> status = url ? attempt(url.value(), job.event) : Result<int>(url.error());
    if (status && status.value() >= 200 && status.value() < 300) {
      spdlog::debug("callback {} for {} delivered ({})", job.url, id, status.value());
      finish(job, PublishAck{job.url, -1, -1});
      lk.lock();
      continue;
    }
    const std::string why = status ? "HTTP " + std::to_string(status.value()) : status.error().message;
    if (metrics_)
      metrics_->errors.Add({{"component", "callback"}, {"kind", "delivery"}}).Increment();
    if (!url || job.attempt >= opts_.max_attempts) {
      spdlog::error("callback {} for {} given up after {} attempt(s): {}", job.url, id,
                    job.attempt, why);
      if (metrics_)
        metrics_->errors.Add({{"component", "callback"}, {"kind", "gave_up"}}).Increment();
      finish(job, PublishAck{job.url, -1, -1});
      lk.lock();
      continue;
    }
    auto delay = std::min(opts_.max, opts_.initial * (1u << std::min(job.attempt - 1, 16u)));
    spdlog::warn("callback {} for {} failed (attempt {}/{}): {}; next try in {} ms", job.url, id,
                 job.attempt, opts_.max_attempts, why, delay.count());
    lk.lock();
    --busy_;
    queue_.emplace(std::chrono::steady_clock::now() + delay, std::move(job));
    cv_.notify_all();
  }
}

namespace {

template <class Stream>
Result<int> exchange(Stream& stream, const CallbackUrl& url, const Event& ev) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, url.target, 11};
  req.set(bhttp::field::host, url.host);
  req.set(bhttp::field::user_agent, "sluice-callback");
  req.set(bhttp::field::content_type,
          ev.datacontenttype.empty() ? "application/octet-stream" : ev.datacontenttype);
  for (const auto& h : ev.headers) req.set(h.name, h.value);
  req.body() = ev.data;
  req.prepare_payload();
  req.keep_alive(false);
  bhttp::write(stream, req);
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buf, res);
  return static_cast<int>(res.result_int());
}

}  // namespace

Result<int> CallbackSink::attempt(const CallbackUrl& url, const Event& ev) {
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(url.host, url.port);
    if (url.scheme == "http") {
      beast::tcp_stream stream(ioc);
      stream.expires_after(opts_.timeout);
      stream.connect(endpoints);
      auto r = exchange(stream, url, ev);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return r;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
      return Error{Errc::invalid_argument, "TLS: cannot set the server name"};
    stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    beast::get_lowest_layer(stream).expires_after(opts_.timeout);
    beast::get_lowest_layer(stream).connect(endpoints);
    stream.handshake(asio::ssl::stream_base::client);
    return exchange(stream, url, ev);
  } catch (const std::exception& e) {
    return Error{Errc::unavailable, e.what()};
  }
}

}  // namespace sluice::http
