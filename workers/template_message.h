// The messages a worker template sends sluice on its control socket (the wire:
// worker_template.h), parsed from one datagram and the number of fds that came with
// it. The template is the user's process: every byte is untrusted, and anything but
// exactly one of these forms is refused with the reason:
//   "ready <pid>"                   no fd
//   "forked <pid>"                  one fd: a pidfd of the new worker
//   "error <text>"                  no fd; the text may be empty
//   "exit <pid> <wait status>"      no fd
// <pid> is decimal, 1 to 2^31-1; <wait status> is decimal, 0 to 65535 (what waitpid
// gives); neither has a sign or leading zeros. Words are separated by one space;
// nothing follows the last. A datagram is at most kTemplateMessageMax bytes.
// What a parsed message's pid names is not checked here: the fork answer's pid
// against its pidfd is WorkerTemplate's (check_fork_answer), and an exit report
// counts only for a pid sluice adopted (ExitReports).
//
// Plain functions of their arguments; any thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "core/result.h"

namespace sluice::workers {

inline constexpr size_t kTemplateMessageMax = 256;  // bytes of one datagram
inline constexpr size_t kTemplateErrorText = 200;   // bytes of an "error" text kept

struct TemplateReady {
  pid_t pid;
};
struct TemplateForked {
  pid_t pid;  // the message's one fd is a pidfd of it
};
struct TemplateForkError {
  std::string text;  // at most kTemplateErrorText bytes, printable ASCII ('?' for others)
};
struct TemplateExit {
  pid_t pid;
  int wait_status;
};
using TemplateMessage =
    std::variant<TemplateReady, TemplateForked, TemplateForkError, TemplateExit>;

// The message `datagram` carries, which came with `nfds` fds (their number must be
// what the message needs; the caller closes every fd it does not keep); an
// Errc::invalid_argument error saying in one line why not.
Result<TemplateMessage> parse_template_message(std::string_view datagram, size_t nfds);

}  // namespace sluice::workers
