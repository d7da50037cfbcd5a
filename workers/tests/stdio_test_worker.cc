// A stdio worker for the tests, speaking schemas/worker.proto v1 without any SDK.
//
//   stdio_test_worker [mode]
//     mode: normal (default) | bad-version | garbage-start | silent | exit-at-start
//           | wrong-first-frame | max-inflight-2
//           | template (serves as a worker template when SLUICE_TEMPLATE=1, as the
//             Python SDK does: workers/worker_template.h) | template-mute (a template
//             that never answers a fork request) | template-liar (answers a fork
//             with pid 1 and the pidfd of the worker it forked) | template-forger
//             (answers with its own pid and the pidfd of the worker it forked)
//           | template-garbage (sends bad control messages, many with fds, before
//             its "ready" and before each fork answer) | template-garbage-only (the
//             same, but answers a fork request with bad messages only)
//             The fds sent with bad messages are memfds named "sluice-test-garbage".
// Each Invoke's data is a command:
//   echo:X      OK with output X          error:M    ERROR with message M
//   reject:M    REJECTED                  sleep:MS   OK "slept" after MS milliseconds
//   hang        never answers             crash      abort()
//   huge:N      OK with N bytes of 'x'    garbage    writes non-frame bytes to stdout
//   emit:N      OK with N emitted events  log:M      a Log frame M, then OK
//   pid         OK with its pid           env:NAME   OK with getenv(NAME) or "<unset>"
//   ppid        OK with its parent's pid
//   hold        never answers; appends a line to $HOLD_FILE
//   retry:MS    ERROR with retry_after_ms MS
//   nostatus    a Result without a status
//   alloc:N     mallocs N MiB and touches it; OK "allocated" or ERROR "malloc failed"
//   nofile:N    opens /dev/null N times; OK "opened" or ERROR "open failed"
//   emitbig:N:S OK with N emitted events of S bytes of data each
//   logs:N:S    N Log frames of S bytes each, then OK "logged"
//   stderr:N:S  N lines of S bytes (newline included) to stderr, then OK "written"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "worker.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

void write_all(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(1, s.data() + off, s.size() - off);
    if (n <= 0) std::exit(3);
    off += static_cast<size_t>(n);
  }
}

void send(const sluice::v1::Frame& f) {
  std::string body = f.SerializeAsString();
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out(4, '\0');
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  write_all(out + body);
}

void result(uint64_t id, sluice::v1::Result::Status st, const std::string& output,
            const std::string& msg = "") {
  sluice::v1::Frame f;
  auto* r = f.mutable_result();
  r->set_id(id);
  r->set_status(st);
  r->set_output(output);
  r->set_error_message(msg);
  send(f);
}

bool starts(const std::string& s, const char* p, std::string* rest) {
  size_t n = std::strlen(p);
  if (s.compare(0, n, p) != 0) return false;
  *rest = s.substr(n);
  return true;
}

void to_sluice(const std::string& msg, const std::vector<int>& fds = {}) {
  msghdr mh{};
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)]{};
  if (!fds.empty()) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (::sendmsg(0, &mh, MSG_NOSIGNAL) < 0) std::exit(0);
}

// `msg` with `nfds` fresh memfds named "sluice-test-garbage" (closed here once sent).
void garbage(const std::string& msg, size_t nfds) {
  std::vector<int> fds;
  for (size_t i = 0; i < nfds; ++i)
    fds.push_back(::memfd_create("sluice-test-garbage", MFD_CLOEXEC));
  to_sluice(msg, fds);
  for (int fd : fds) ::close(fd);
}

// Control messages sluice must ignore (workers/template_message.h), none of them a
// valid fork answer or fork error. With a child: also its pid with two fds and an exit
// report for it before it was adopted.
void send_garbage(pid_t child = -1, int pidfd = -1) {
  for (const char* m : {"forked", "forked ", "forked 12", "exit 12", "exit 12 ", "exit abc 0",
                        "exit 12 65536", "exit -3 0", "ready -1", "ready 0", "ready 007",
                        "ready 99999999999999999999", "ready 12 ", "error", "hello"})
    garbage(m, 0);
  garbage(std::string("ready 12\0", 9), 0);
  garbage("ready 12", 2);
  garbage("forked", 1);
  garbage("hello", 1);
  garbage(std::string(1000, 'x'), 1);
  garbage("error " + std::string(300, 'e'), 1);
  garbage("", 1);
  garbage("ready 1", 6);  // more fds than sluice reads with one message
  garbage("exit 999999 0", 0);  // a pid it never forked
  if (child > 0) {
    const int g = ::memfd_create("sluice-test-garbage", MFD_CLOEXEC);
    to_sluice("forked " + std::to_string(child), {pidfd, g});
    ::close(g);
    to_sluice("exit " + std::to_string(child) + " 0");  // not adopted yet: dropped
  }
}

// The worker template's side of workers/worker_template.h; returns in each forked
// worker, with its fds 0, 1, 2 in place.
void serve_as_template(const std::string& mode) {
  const bool mute = mode == "template-mute", liar = mode == "template-liar";
  const bool forger = mode == "template-forger";
  const bool garbage_only = mode == "template-garbage-only";
  const bool with_garbage = garbage_only || mode == "template-garbage";
  if (with_garbage) send_garbage();
  to_sluice("ready " + std::to_string(::getpid()));
  std::map<int, pid_t> children;  // pidfd -> pid
  while (true) {
    std::vector<pollfd> fds{{0, POLLIN, 0}};
    for (auto& [pfd, pid] : children) fds.push_back({pfd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      pid_t pid = children[fds[i].fd];
      children.erase(fds[i].fd);
      ::close(fds[i].fd);
      int status = 0;
      ::waitpid(pid, &status, 0);
      to_sluice("exit " + std::to_string(pid) + " " + std::to_string(status));
    }
    if (!fds[0].revents) continue;
    char data[64];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    iovec iov{data, sizeof data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(0, &mh, 0);
    if (n <= 0) std::exit(0);
    std::vector<int> got;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++k) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        got.push_back(fd);
      }
    if (mute || garbage_only || std::string(data, static_cast<size_t>(n)) != "fork" ||
        got.size() != 3) {
      for (int fd : got) ::close(fd);
      if (garbage_only) send_garbage();
      continue;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      for (auto& [pfd, p] : children) ::close(pfd);
      for (int t = 0; t < 3; ++t) ::dup2(got[t], t);
      for (int fd : got) ::close(fd);
      ::unsetenv("SLUICE_TEMPLATE");
      return;
    }
    for (int fd : got) ::close(fd);
    ::setpgid(pid, pid);
    int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    children[pfd] = pid;
    if (with_garbage) send_garbage(pid, pfd);
    to_sluice("forked " + std::to_string(liar ? 1 : forger ? ::getpid() : pid), {pfd});
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "normal";
  if (mode.rfind("template", 0) == 0) {
    const char* t = std::getenv("SLUICE_TEMPLATE");
    if (t && std::string(t) == "1") serve_as_template(mode);
  }
  if (mode == "exit-at-start") return 7;
  if (mode == "silent") {
    ::pause();
    return 0;
  }
  if (mode == "garbage-start") {
    write_all("Hello, I am not a frame\n");
    ::pause();
    return 0;
  }
  sluice::v1::Frame hello;
  if (mode == "wrong-first-frame") {
    hello.mutable_log()->set_message("hi");  // logs are fine; then a Result is not
    send(hello);
    result(1, sluice::v1::Result::OK, "x");
    ::pause();
    return 0;
  }
  hello.mutable_hello()->set_protocol_version(mode == "bad-version" ? 2 : 1);
  hello.mutable_hello()->set_sdk("stdio-test-worker/1");
  hello.mutable_hello()->set_max_inflight(mode == "max-inflight-2" ? 2 : 0);
  hello.mutable_hello()->set_pid(static_cast<uint32_t>(::getpid()));
  send(hello);

  std::string buf;
  std::multimap<Clock::time_point, uint64_t> sleeping;
  bool acked = false;
  char chunk[65536];
  while (true) {
    int wait_ms = -1;
    if (!sleeping.empty()) {
      auto d = std::chrono::duration_cast<std::chrono::milliseconds>(sleeping.begin()->first -
                                                                     Clock::now());
      wait_ms = d.count() < 0 ? 0 : static_cast<int>(d.count());
    }
    pollfd p{0, POLLIN, 0};
    int pr = ::poll(&p, 1, wait_ms);
    while (!sleeping.empty() && sleeping.begin()->first <= Clock::now()) {
      result(sleeping.begin()->second, sluice::v1::Result::OK, "slept");
      sleeping.erase(sleeping.begin());
    }
    if (pr <= 0) continue;
    ssize_t n = ::read(0, chunk, sizeof chunk);
    if (n <= 0) return 0;  // stdin closed: sluice said goodbye
    buf.append(chunk, static_cast<size_t>(n));
    while (buf.size() >= 4) {
      auto* u = reinterpret_cast<const unsigned char*>(buf.data());
      size_t len = (size_t{u[0]} << 24) | (size_t{u[1]} << 16) | (size_t{u[2]} << 8) | u[3];
      if (buf.size() < 4 + len) break;
      sluice::v1::Frame f;
      if (!f.ParseFromArray(buf.data() + 4, static_cast<int>(len))) {
        std::fprintf(stderr, "stdio-test-worker: bad frame from sluice\n");
        return 4;
      }
      buf.erase(0, 4 + len);
      if (f.has_hello_ack()) {
        acked = true;
        continue;
      }
      if (f.has_goodbye()) {
        std::fprintf(stderr, "stdio-test-worker: goodbye: %s\n", f.goodbye().reason().c_str());
        return f.goodbye().reason().find("version") != std::string::npos ? 5 : 0;
      }
      if (f.has_cancel()) continue;
      if (!f.has_invoke()) continue;
      if (!acked) {
        std::fprintf(stderr, "stdio-test-worker: Invoke before HelloAck\n");
        return 6;
      }
      const uint64_t id = f.invoke().id();
      const std::string cmd = f.invoke().event().data();
      std::string arg;
      using S = sluice::v1::Result;
      if (starts(cmd, "echo:", &arg)) {
        result(id, S::OK, arg);
      } else if (starts(cmd, "error:", &arg)) {
        result(id, S::ERROR, "", arg);
      } else if (starts(cmd, "reject:", &arg)) {
        result(id, S::REJECTED, "", arg);
      } else if (starts(cmd, "sleep:", &arg)) {
        sleeping.emplace(Clock::now() + std::chrono::milliseconds(std::stoi(arg)), id);
      } else if (cmd == "hang") {
      } else if (cmd == "crash") {
        std::fprintf(stderr, "stdio-test-worker: crashing on purpose\n");
        std::abort();
      } else if (starts(cmd, "huge:", &arg)) {
        result(id, S::OK, std::string(std::stoul(arg), 'x'));
      } else if (cmd == "garbage") {
        write_all(std::string("\xff\xff\xff\xffgarbage", 11));
      } else if (starts(cmd, "emit:", &arg)) {
        sluice::v1::Frame out;
        auto* r = out.mutable_result();
        r->set_id(id);
        r->set_status(S::OK);
        for (int i = 0; i < std::stoi(arg); ++i) {
          auto* e = r->add_emit();
          e->set_id("emitted-" + std::to_string(i));
          e->set_type("test.emitted");
          e->set_data("child " + std::to_string(i));
        }
        send(out);
      } else if (starts(cmd, "emitbig:", &arg) || starts(cmd, "logs:", &arg) ||
                 starts(cmd, "stderr:", &arg)) {
        const int n = std::stoi(arg);
        const size_t size = std::stoul(arg.substr(arg.find(':') + 1));
        if (cmd[0] == 'e') {
          sluice::v1::Frame out;
          auto* r = out.mutable_result();
          r->set_id(id);
          r->set_status(S::OK);
          for (int i = 0; i < n; ++i) r->add_emit()->set_data(std::string(size, 'e'));
          send(out);
          continue;
        }
        for (int i = 0; i < n; ++i) {
          if (cmd[0] == 'l') {
            sluice::v1::Frame l;
            l.mutable_log()->set_id(id);
            l.mutable_log()->set_level(sluice::v1::Log::INFO);
            l.mutable_log()->set_message(std::string(size, 'l'));
            send(l);
          } else {
            std::string line(size - 1, 's');
            line += '\n';
            if (::write(2, line.data(), line.size()) < 0) return 1;
          }
        }
        result(id, S::OK, cmd[0] == 'l' ? "logged" : "written");
      } else if (starts(cmd, "log:", &arg)) {
        sluice::v1::Frame l;
        l.mutable_log()->set_id(id);
        l.mutable_log()->set_level(sluice::v1::Log::WARN);
        l.mutable_log()->set_message(arg);
        send(l);
        result(id, S::OK, "logged");
      } else if (cmd == "pid") {
        result(id, S::OK, std::to_string(::getpid()));
      } else if (cmd == "ppid") {
        result(id, S::OK, std::to_string(::getppid()));
      } else if (starts(cmd, "env:", &arg)) {
        const char* v = std::getenv(arg.c_str());
        result(id, S::OK, v ? v : "<unset>");
      } else if (cmd == "hold") {
        if (const char* file = std::getenv("HOLD_FILE")) std::ofstream(file, std::ios::app) << id << "\n";
      } else if (starts(cmd, "retry:", &arg)) {
        sluice::v1::Frame out;
        auto* r = out.mutable_result();
        r->set_id(id);
        r->set_status(S::ERROR);
        r->set_error_message("busy");
        r->set_retry_after_ms(static_cast<uint32_t>(std::stoul(arg)));
        send(out);
      } else if (cmd == "nostatus") {
        result(id, S::STATUS_UNSPECIFIED, "?");
      } else if (starts(cmd, "alloc:", &arg)) {
        size_t bytes = std::stoul(arg) << 20;
        auto* p = static_cast<char*>(std::malloc(bytes));
        if (!p) {
          result(id, S::ERROR, "", "malloc failed");
        } else {
          std::memset(p, 1, bytes);
          result(id, S::OK, "allocated");
          std::free(p);
        }
      } else if (starts(cmd, "nofile:", &arg)) {
        std::vector<int> fds;
        bool okay = true;
        for (int i = 0; i < std::stoi(arg); ++i) {
          int fd = ::open("/dev/null", O_RDONLY);
          if (fd < 0) {
            okay = false;
            break;
          }
          fds.push_back(fd);
        }
        for (int fd : fds) ::close(fd);
        if (okay)
          result(id, S::OK, "opened");
        else
          result(id, S::ERROR, "", "open failed");
      } else {
        result(id, S::ERROR, "", "unknown command: " + cmd);
      }
    }
  }
}
