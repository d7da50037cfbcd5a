// An inproc library for the tests: the event data is a command.
//   echo:X  error:M  reject:M  sleep:MS (then OK "slept")  throw  huge:N
//   badstatus  nullout  rc:N (sluice_invoke returns N)  retry:MS
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "workers/inproc_abi.h"

namespace {

char* dup(const std::string& s) {
  auto* out = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void set_output(sluice_result* r, const std::string& s) {
  r->output = reinterpret_cast<uint8_t*>(dup(s));
  r->output_len = s.size();
}

bool starts(const std::string& s, const char* p, std::string* rest) {
  size_t n = std::strlen(p);
  if (s.compare(0, n, p) != 0) return false;
  *rest = s.substr(n);
  return true;
}

}  // namespace

extern "C" {

uint32_t sluice_abi_version(void) {
  const char* v = std::getenv("SLUICE_TEST_ABI_VERSION");
  return v ? static_cast<uint32_t>(std::atoi(v)) : SLUICE_ABI_VERSION;
}

int sluice_init(const char* name, void** state) {
  if (std::getenv("SLUICE_TEST_INIT_FAIL")) return 3;  // nothing allocated
  *state = dup(name);
  return 0;
}

int sluice_invoke(void* state, const sluice_event* ev, sluice_result* r) {
  std::string cmd(reinterpret_cast<const char*>(ev->data), ev->data_len), arg;
  r->status = SLUICE_OK;
  if (starts(cmd, "echo:", &arg)) {
    set_output(r, arg);
  } else if (cmd == "name") {
    set_output(r, static_cast<const char*>(state));
  } else if (starts(cmd, "error:", &arg)) {
    r->status = SLUICE_ERROR;
    r->error_message = dup(arg);
  } else if (starts(cmd, "reject:", &arg)) {
    r->status = SLUICE_REJECTED;
    r->error_message = dup(arg);
  } else if (starts(cmd, "retry:", &arg)) {
    r->status = SLUICE_ERROR;
    r->retry_after_ms = static_cast<uint32_t>(std::stoul(arg));
  } else if (starts(cmd, "sleep:", &arg)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(arg)));
    set_output(r, "slept");
  } else if (cmd == "throw") {
    throw std::runtime_error("boom");
  } else if (starts(cmd, "huge:", &arg)) {
    set_output(r, std::string(std::stoul(arg), 'x'));
  } else if (cmd == "badstatus") {
    r->status = 42;
  } else if (cmd == "nullout") {
    r->output_len = 10;
  } else if (starts(cmd, "rc:", &arg)) {
    return std::stoi(arg);
  } else {
    r->status = SLUICE_ERROR;
    r->error_message = dup("unknown command");
  }
  return 0;
}

void sluice_free_result(void*, sluice_result* r) {
  std::free(r->output);
  std::free(r->content_type);
  std::free(r->error_message);
}

void sluice_shutdown(void* state) { std::free(state); }

}  // extern "C"
