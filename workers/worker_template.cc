#include "workers/worker_template.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <variant>

#include "workers/logger.h"
#include "workers/template_message.h"

namespace sluice::workers {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// fds read with one message (a message needs at most one); a datagram carrying more
// has the rest closed by the kernel (MSG_CTRUNC), and is refused for its count.
constexpr size_t kMaxFds = 4;

constexpr std::string_view kBadMessages = "warnings about bad control messages";

Error sock_error(const char* what, int err) {
  return Error{Errc::io, std::string("worker template: ") + what + ": " + std::strerror(err),
               resource_exhausted(err)};
}

// The pid a pidfd refers to (its fdinfo's "Pid:" line); -1 if none.
pid_t pid_of(int pidfd) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(pidfd));
  std::string line;
  while (std::getline(info, line))
    if (line.rfind("Pid:", 0) == 0) return static_cast<pid_t>(std::atol(line.c_str() + 4));
  return -1;
}

}  // namespace

Result<void> check_fork_answer(pid_t pid, int pidfd) {
  const std::string what = "pid " + std::to_string(pid);
  if (pid <= 1) return Error{Errc::invalid_argument, what + ", not above 1"};
  if (pid_t named = pid_of(pidfd); named != pid) {
    std::string other = named < 0 ? "no process" : "pid " + std::to_string(named);
    return Error{Errc::invalid_argument, what + ", but its pidfd names " + other};
  }
  if (::getpgid(pid) != pid)
    return Error{Errc::invalid_argument, what + ", which does not lead its own process group"};
  return ok();
}

WorkerTemplate::WorkerTemplate(asio::io_context& io, std::string fn_name, Millis start_timeout,
                               Millis fork_timeout, LogBudgetOptions stderr_budget,
                               std::atomic<uint64_t>* dropped, Hooks hooks)
    : io_(io),
      name_(std::move(fn_name)),
      start_timeout_(start_timeout),
      fork_timeout_(fork_timeout),
      hooks_(std::move(hooks)),
      timer_(io),
      stderr_budget_(stderr_budget),
      bad_log_(stderr_budget, nullptr),
      dropped_(dropped) {}

WorkerTemplate::~WorkerTemplate() {
  bad_log_.report(prefix_, kBadMessages);
  *alive_ = false;
  reports_->close();
  timer_.cancel();
  if (sock_) sock_->close();
  child_.reset();  // SIGKILLs and reaps the template
}

Result<void> WorkerTemplate::start(SpawnOptions opts) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return sock_error("socketpair", errno);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  if (::fcntl(ours.get(), F_SETFL, O_NONBLOCK) != 0) return sock_error("fcntl", errno);
  opts.env.push_back("SLUICE_TEMPLATE=1");
  opts.stdin_fd = theirs.get();
  SLUICE_TRY(child, ChildProcess::spawn(io_.get_executor(), opts));
  child_ = std::move(child);
  sock_.emplace(io_, ours.release());
  prefix_ = "[fn " + name_ + "] [template " + std::to_string(child_->pid()) + "]";
  err_.emplace(prefix_, "stderr", stderr_budget_, dropped_);
  timer_.expires_after(start_timeout_);
  timer_.async_wait([this, alive = alive_](error_code ec) {
    if (ec || !*alive) return;
    hooks_.wrap([this, alive] {
      if (*alive && st_ == St::starting)
        become(St::unsupported, "no 'ready' within " + std::to_string(start_timeout_.count()) +
                                    " ms of start");
    })();
  });
  child_->async_wait_exit([this, alive = alive_](const ExitStatus& st) {
    hooks_.wrap([this, alive, st] {
      if (*alive)
        become(st_ == St::starting ? St::unsupported : St::dead, "exited: " + st.describe());
    })();
  });
  read_socket();
  read_stdout();
  read_stderr();
  return ok();
}

void WorkerTemplate::become(St st, const std::string& why) {
  if (st_ == St::unsupported || st_ == St::dead) return;
  st_ = st;
  timer_.cancel();
  bad_log_.report(prefix_, kBadMessages);
  if (st == St::unsupported)
    log().info("{} not used ({}): this function's workers are spawned", prefix_, why);
  else
    log().warn("{} {}: workers are spawned until it is restarted", prefix_, why);
  if (child_) child_->signal_group(SIGKILL);
  if (sock_) sock_->close();
  reports_->close();  // what it forked is reparented: their statuses are lost
  if (hooks_.on_change) hooks_.on_change();
}

void WorkerTemplate::read_socket() {
  if (!sock_ || !sock_->is_open()) return;
  sock_->async_wait(asio::posix::stream_descriptor::wait_read,
                    [this, alive = alive_](error_code ec) {
                      if (ec || !*alive) return;
                      hooks_.wrap([this, alive] {
                        if (!*alive) return;
                        while (take_message(MSG_DONTWAIT)) {
                        }
                        read_socket();
                      })();
                    });
}

bool WorkerTemplate::take_message(int flags) {
  if (!sock_ || !sock_->is_open()) return false;
  char data[kTemplateMessageMax + 1];  // one byte more: a longer datagram is refused
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{data, sizeof data};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sock_->native_handle(), &mh, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    become(St::dead, std::string("control socket: ") + std::strerror(errno));
    return false;
  }
  int fds[kMaxFds];
  size_t nfds = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (nfds < kMaxFds)
        fds[nfds++] = fd;
      else
        ::close(fd);
    }
  }
  if (n == 0 && nfds == 0) {
    become(st_ == St::starting ? St::unsupported : St::dead, "closed its control socket");
    return false;
  }
  handle(std::string_view(data, static_cast<size_t>(n)), fds, nfds);
  return true;
}

void WorkerTemplate::handle(std::string_view datagram, int* fds, size_t nfds) {
  size_t used = 0;  // fds[0, used) are kept; the others are closed below
  auto parsed = parse_template_message(datagram, nfds);
  if (!parsed) {
    const std::string line =
        prefix_ + " sent a bad control message (" + parsed.error().message + "): ignored";
    if (bad_log_.take(line.size(), prefix_, kBadMessages)) log().warn("{}", line);
  } else if (std::holds_alternative<TemplateReady>(parsed.value())) {
    if (st_ == St::starting) {
      st_ = St::ready;
      timer_.cancel();
      log().info("{} ready: new workers are forked from it", prefix_);
      if (hooks_.on_change) hooks_.on_change();
    }
  } else if (auto* f = std::get_if<TemplateForked>(&parsed.value())) {
    if (awaiting_fork_ && !forked_) {
      forked_.emplace(f->pid, fds[0]);
      used = 1;
    }
  } else if (auto* e = std::get_if<TemplateForkError>(&parsed.value())) {
    if (awaiting_fork_) fork_error_.emplace(std::move(e->text));
  } else if (auto* x = std::get_if<TemplateExit>(&parsed.value())) {
    // Not watched: a worker sluice has let go already (retired, stopped), or a pid
    // the template never forked. Dropped, so such reports cannot pile up.
    if (!reports_->report(x->pid, ExitStatus::from_wait_status(x->wait_status)))
      log().debug("{} reported the exit of pid {}, which no worker of sluice waits for: ignored",
                  prefix_, x->pid);
  }
  for (size_t i = used; i < nfds; ++i) ::close(fds[i]);
}

void WorkerTemplate::read_stdout() {
  child_->stdout_pipe().async_read_some(
      asio::buffer(buf_), [this, alive = alive_](error_code ec, size_t n) {
        if (!*alive || ec == asio::error::operation_aborted) return;
        hooks_.wrap([this, alive, ec, n] {
          if (!*alive) return;
          if (n > 0 && st_ == St::starting)
            become(St::unsupported, "it wrote to stdout: the command does not know SLUICE_TEMPLATE");
          if (!ec) read_stdout();
        })();
      });
}

void WorkerTemplate::read_stderr() {
  child_->stderr_pipe().async_read_some(
      asio::buffer(ebuf_), [this, alive = alive_](error_code ec, size_t n) {
        if (!*alive || ec == asio::error::operation_aborted) return;
        hooks_.wrap([this, alive, ec, n] {
          if (!*alive) return;
          if (n > 0) err_->feed(std::string_view(ebuf_.data(), n));
          if (ec) {
            err_->finish();
            return;
          }
          read_stderr();
        })();
      });
}

Result<std::unique_ptr<ChildProcess>> WorkerTemplate::fork() {
  if (st_ != St::ready) return Error{Errc::unavailable, "worker template not ready"};
  SLUICE_TRY(in, make_pipe());
  SLUICE_TRY(out, make_pipe());
  SLUICE_TRY(err, make_pipe());
  const int theirs[3] = {in.r.get(), out.w.get(), err.w.get()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof theirs)]{};
  char word[] = "fork";
  iovec iov{word, 4};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof theirs);
  std::memcpy(CMSG_DATA(c), theirs, sizeof theirs);
  if (::sendmsg(sock_->native_handle(), &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
    const int e = errno;
    if (e != EAGAIN && e != EWOULDBLOCK) become(St::dead, std::string("fork request: ") + std::strerror(e));
    return sock_error("fork request", e);
  }
  awaiting_fork_ = true;
  forked_.reset();
  fork_error_.reset();
  const auto deadline = std::chrono::steady_clock::now() + fork_timeout_;
  while (!forked_ && !fork_error_ && st_ == St::ready) {
    if (take_message(MSG_DONTWAIT)) continue;
    if (st_ != St::ready) break;
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      become(St::dead, "no answer to a fork request within " +
                           std::to_string(fork_timeout_.count()) + " ms");
      break;
    }
    pollfd p{sock_->native_handle(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()) + 1);
  }
  awaiting_fork_ = false;
  if (!forked_) {
    std::string why = fork_error_ ? "worker template: fork failed: " + *fork_error_
                                  : "worker template gone";
    fork_error_.reset();
    return Error{Errc::unavailable, std::move(why)};
  }
  SpawnedProcess p;
  p.pid = forked_->first;
  p.pidfd.reset(forked_->second);
  forked_.reset();
  if (auto checked = check_fork_answer(p.pid, p.pidfd.get()); !checked) {
    become(St::dead, "answered a fork request with " + checked.error().message);
    return Error{Errc::unavailable, "worker template: bad fork answer"};
  }
  p.stdin_w = std::move(in.w);
  p.stdout_r = std::move(out.r);
  p.stderr_r = std::move(err.r);
  // The child's ends (in.r, out.w, err.w) close here: the worker holds its copies.
  return ChildProcess::adopt(io_.get_executor(), std::move(p), reports_);
}

}  // namespace sluice::workers
