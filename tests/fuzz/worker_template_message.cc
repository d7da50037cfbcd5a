// The worker template's control messages (workers/template_message.h) on what a
// template process could send: the first input byte is the number of fds that came
// with the datagram (a digit '0' to '4', any other byte its value mod 5), the rest is
// the datagram. What parses is exactly the canonical form of what it says (so nothing
// the parser dropped could have mattered) and within its bounds; what does not parse
// has a one-line reason.
#include <algorithm>
#include <string>
#include <variant>

#include "tests/fuzz/fuzz_input.h"
#include "workers/template_message.h"

using namespace sluice;
using namespace sluice::workers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t nfds = data[0] >= '0' && data[0] <= '4' ? data[0] - '0' : data[0] % 5;
  const std::string_view msg = fuzz::as_text(data + 1, size - 1);
  auto parsed = parse_template_message(msg, nfds);
  if (!parsed) {
    const std::string& why = parsed.error().message;
    SLUICE_FUZZ_CHECK(parsed.error().code == Errc::invalid_argument);
    SLUICE_FUZZ_CHECK(!why.empty() && why.size() < 200);
    SLUICE_FUZZ_CHECK(why.find('\n') == std::string::npos);
    return 0;
  }
  SLUICE_FUZZ_CHECK(msg.size() <= kTemplateMessageMax);
  const TemplateMessage& m = parsed.value();
  if (auto* r = std::get_if<TemplateReady>(&m)) {
    SLUICE_FUZZ_CHECK(r->pid > 0 && nfds == 0);
    SLUICE_FUZZ_CHECK(msg == "ready " + std::to_string(r->pid));
  } else if (auto* f = std::get_if<TemplateForked>(&m)) {
    SLUICE_FUZZ_CHECK(f->pid > 0 && nfds == 1);
    SLUICE_FUZZ_CHECK(msg == "forked " + std::to_string(f->pid));
  } else if (auto* x = std::get_if<TemplateExit>(&m)) {
    SLUICE_FUZZ_CHECK(x->pid > 0 && nfds == 0);
    SLUICE_FUZZ_CHECK(x->wait_status >= 0 && x->wait_status <= 0xffff);
    SLUICE_FUZZ_CHECK(msg == "exit " + std::to_string(x->pid) + " " +
                                 std::to_string(x->wait_status));
  } else {
    const std::string& text = std::get<TemplateForkError>(m).text;
    SLUICE_FUZZ_CHECK(nfds == 0 && msg.substr(0, 6) == "error ");
    SLUICE_FUZZ_CHECK(text.size() == std::min(msg.size() - 6, kTemplateErrorText));
    for (size_t i = 0; i < text.size(); ++i) {
      SLUICE_FUZZ_CHECK(text[i] >= 0x20 && text[i] < 0x7f);
      SLUICE_FUZZ_CHECK(text[i] == msg[6 + i] || text[i] == '?');
    }
  }
  return 0;
}
