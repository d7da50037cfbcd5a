#include "harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sluice::e2e {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

std::string binary() { return SLUICE_BINARY; }

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "sluice-e2e-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("SLUICE_KEEP_TMP")) fs::remove_all(path_, ec);
}
void TempDir::write(const std::string& name, const std::string& content) const {
  std::ofstream(file(name), std::ios::binary) << content;
}
std::string TempDir::read(const std::string& name) const {
  std::ifstream in(file(name), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
std::string slurp_fd(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}
std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}
}  // namespace

CmdResult run_cli(const std::vector<std::string>& args_in, const std::string& input) {
  std::vector<std::string> args{binary()};
  args.insert(args.end(), args_in.begin(), args_in.end());
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  auto argv = argv_of(args);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) throw std::runtime_error("cannot spawn " + args[0]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(in[1]);
  });
  CmdResult r;
  std::thread err_reader([&] { r.err = slurp_fd(err[0]); });
  r.out = slurp_fd(out[0]);
  err_reader.join();
  writer.join();
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Engine::Engine(const std::string& config, const std::string& log_file)
    : Engine(config, log_file, 0) {}

Engine::Engine(const std::string& config, const std::string& log_file, int max_open_files) {
  std::vector<std::string> args{binary(), "run", "-c", config};
  if (max_open_files > 0)
    args = {"/bin/sh", "-c", "ulimit -n " + std::to_string(max_open_files) + " && exec \"$0\" \"$@\"",
            binary(), "run", "-c", config};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  auto argv = argv_of(args);
  int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot spawn sluice");
}

Engine::~Engine() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool Engine::wait_ready(uint16_t port, std::chrono::milliseconds limit) {
  return eventually(
      [&] {
        if (pid_ <= 0 || ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("sluice exited before it was ready");
        }
        try {
          HttpClient c(port);
          return c.get("/readyz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      limit);
}

void Engine::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Engine::wait_exit(std::chrono::milliseconds limit) {
  int code = -1;
  eventually(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return true;
      },
      limit);
  return code;
}

struct HttpClient::Impl {
  boost::asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buf;
};

namespace {
HttpClient::Reply reply_of(const http::response<http::string_body>& res) {
  HttpClient::Reply r{static_cast<int>(res.result_int()), res.body(), {}};
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  return r;
}
}  // namespace

HttpClient::HttpClient(uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->stream.expires_after(std::chrono::seconds(30));
  impl_->stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
}
HttpClient::~HttpClient() {
  beast::error_code ec;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

HttpClient::Reply HttpClient::post(const std::string& target, const std::string& body,
                                   const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  impl_->stream.expires_after(std::chrono::seconds(30));
  http::write(impl_->stream, req);
  http::response<http::string_body> res;
  http::read(impl_->stream, impl_->buf, res);
  return reply_of(res);
}

HttpClient::Reply HttpClient::get(const std::string& target,
                                  const std::map<std::string, std::string>& headers) {
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  impl_->stream.expires_after(std::chrono::seconds(30));
  http::write(impl_->stream, req);
  http::response<http::string_body> res;
  http::read(impl_->stream, impl_->buf, res);
  return reply_of(res);
}

std::vector<std::string> lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

std::map<std::string, int64_t> unsubscribed_topics(const std::string& config,
                                                   const std::vector<std::string>& extra,
                                                   std::string* all_rows) {
  std::vector<std::string> args{"lag", "-c", config, "-o", "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const CmdResult r = run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(rows.is_array()) << r.out << r.err;
  if (all_rows) *all_rows = r.out + r.err;
  std::map<std::string, int64_t> out;
  if (!rows.is_array()) return out;
  for (const auto& row : rows)
    if (row.value("group", "") == "(no subscriber)")
      out[row.value("topic", "")] = row.value("lag", int64_t{-1});
  return out;
}

CmdResult run_cmd(const std::vector<std::string>& argv_in, const std::string& input) {
  std::vector<std::string> args = argv_in;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  auto argv = argv_of(args);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("cannot spawn " + args[0]);
  }
  std::thread writer([&] {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(in[1]);
  });
  CmdResult r;
  std::thread err_reader([&] { r.err = slurp_fd(err[0]); });
  r.out = slurp_fd(out[0]);
  err_reader.join();
  writer.join();
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace sluice::e2e
