// The callback URL parser (http::parse_callback_url, fed the X-Callback-Url header
// of `POST /async-function/{name}`): any text is a URL or an error; a URL has an
// http(s) scheme, a host, a port in 1..65535 and a target starting with '/'.
#include "broker-adapters/http/callback_sink.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto url = http::parse_callback_url(fuzz::as_text(data, size));
  if (!url) {
    SLUICE_FUZZ_CHECK(!url.error().message.empty());
    return 0;
  }
  const http::CallbackUrl& u = url.value();
  SLUICE_FUZZ_CHECK(u.scheme == "http" || u.scheme == "https");
  SLUICE_FUZZ_CHECK(!u.host.empty());
  SLUICE_FUZZ_CHECK(!u.port.empty() && u.port.size() <= 5);
  const long port = std::strtol(u.port.c_str(), nullptr, 10);
  SLUICE_FUZZ_CHECK(port >= 1 && port <= 65535);
  SLUICE_FUZZ_CHECK(!u.target.empty() && u.target.front() == '/');
  return 0;
}
