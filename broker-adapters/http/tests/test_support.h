// Test helpers: a small synchronous Beast client and an in-memory Sink.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "broker-adapters/http/http_util.h"
#include "core/broker.h"

namespace sluice::http::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

// One keep-alive connection; every call blocks until the response is read.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  Response send(Request req) {
    req.version(11);
    req.set(bhttp::field::host, "127.0.0.1");
    req.prepare_payload();
    bhttp::write(stream_, req);
    return read();
  }
  Response read() {
    Response res;
    bhttp::read(stream_, buffer_, res);
    return res;
  }
  Response post(std::string target, std::string body, std::string content_type = "",
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request req{Verb::post, target, 11};
    if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    return send(std::move(req));
  }
  Response get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request req{Verb::get, target, 11};
    for (auto& [k, v] : headers) req.set(k, v);
    return send(std::move(req));
  }
  // Raw bytes, for requests a well-behaved client would not send.
  void write_raw(std::string_view bytes) { net::write(stream_.socket(), net::buffer(bytes)); }
  std::string read_until(std::string_view delim) {
    std::string out;
    size_t n = net::read_until(stream_.socket(), net::dynamic_buffer(out), delim);
    pending_ = out.substr(n);  // not expected in these tests
    return out.substr(0, n);
  }
  // Every byte until the server closes the connection (or resets it).
  std::string read_all() {
    std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    std::array<char, 4096> chunk;
    for (;;) {
      beast::error_code ec;
      size_t n = stream_.socket().read_some(net::buffer(chunk), ec);
      out.append(chunk.data(), n);
      if (ec) return out;
    }
  }
  // True when the server closed the connection (the next read sees end of stream).
  bool server_closed() {
    Response res;
    beast::error_code ec;
    bhttp::read(stream_, buffer_, res, ec);
    return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
           ec == net::error::connection_reset;
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string pending_;
};

inline nlohmann::json json_of(const Response& res) {
  return nlohmann::json::parse(res.body(), nullptr, false);
}

// Records every event; completes inline or from its own thread, with an ack, an
// error, or by dropping the callback unanswered.
class RecordingSink : public Sink {
 public:
  enum class Mode { ack, fail_retriable, fail_fatal, drop };

  explicit RecordingSink(bool async = false) : async_(async) {
    if (async_) worker_ = std::thread([this] { run(); });
  }
  ~RecordingSink() override {
    if (!async_) return;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  std::string_view broker() const override { return "mem"; }
  void publish(std::string_view topic, Event ev, PublishCallback done) override {
    int64_t offset;
    Mode mode;
    {
      std::lock_guard lock(mu_);
      offset = static_cast<int64_t>(events_.size());
      events_.push_back(std::move(ev));
      topics_.emplace_back(topic);
      mode = mode_;
    }
    auto complete = [mode, t = std::string(topic), offset, done = std::move(done)]() mutable {
      if (mode == Mode::ack) return done(PublishAck{t, 2, offset});
      if (mode == Mode::fail_retriable)
        return done(Error{Errc::unavailable, "broker down", true});
      if (mode == Mode::fail_fatal) return done(Error{Errc::internal, "disk on fire"});
      done = nullptr;  // Mode::drop: never answered
    };
    if (!async_) return complete();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(complete));
    }
    cv_.notify_all();
  }
  Result<void> flush(std::chrono::milliseconds) override { return ok(); }

  void set_mode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
  }
  std::vector<Event> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return events_.size();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  const bool async_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::vector<std::string> topics_;
  Mode mode_ = Mode::ack;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

// A file in the test's temporary directory, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& content)
      : path_(::testing::TempDir() + "sluice_http_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter()++)) {
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string path_;
};

}  // namespace sluice::http::testing
