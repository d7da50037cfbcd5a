// sluice-config-doc: regenerates docs/CONFIG.md's key tables and the properties of
// schemas/config.schema.json from config/config_keys.cc.
//
//   sluice-config-doc [--check] <source dir>
//
// Without --check the two files are rewritten; with it nothing is written and the exit
// code is 1 when either differs from what the table generates (config_test checks the
// same). Single-threaded.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config_doc.h"

namespace {

bool read(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc == 3 && std::string(argv[1]) == "--check";
  if (argc != 2 && !check) {
    std::fprintf(stderr, "usage: sluice-config-doc [--check] <source dir>\n");
    return 2;
  }
  const std::string root = argv[argc - 1];
  struct File {
    const char* rel;
    sluice::Result<std::string> (*render)(std::string_view);
  };
  int stale = 0;
  for (const File& f : {File{"docs/CONFIG.md", sluice::config::render_config_md},
                        File{"schemas/config.schema.json", sluice::config::render_schema}}) {
    const std::string path = root + "/" + f.rel;
    std::string text;
    if (!read(path, text)) {
      std::fprintf(stderr, "sluice-config-doc: cannot read %s\n", path.c_str());
      return 2;
    }
    auto out = f.render(text);
    if (!out) {
      std::fprintf(stderr, "sluice-config-doc: %s: %s\n", path.c_str(),
                   out.error().message.c_str());
      return 2;
    }
    if (out.value() == text) continue;
    ++stale;
    if (check) {
      std::fprintf(stderr, "sluice-config-doc: %s is not what config/config_keys.cc generates\n",
                   f.rel);
      continue;
    }
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    o << out.value();
    if (!o.flush()) {
      std::fprintf(stderr, "sluice-config-doc: cannot write %s\n", path.c_str());
      return 2;
    }
    std::printf("wrote %s\n", f.rel);
  }
  return check && stale > 0 ? 1 : 0;
}
