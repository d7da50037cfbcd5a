// End-to-end: the local queue's disk fills up (a real, small tmpfs). Publishers get
// 503 with Retry-After, /readyz is not ready, sluice_local_queue_writable is 0; when
// space returns everything recovers by itself, and every event answered 202 is
// processed. Needs mount(2) (root): skipped where it is not permitted.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.h"

namespace sluice::e2e {
namespace {

class Tmpfs {
 public:
  explicit Tmpfs(const std::string& dir) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=2m") == 0;
    if (!mounted_) why_ = std::string("mount -t tmpfs: ") + std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_, why_;
  bool mounted_ = false;
};

// Writes `path` until the filesystem is full; returns the bytes written.
size_t fill(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  const std::string chunk(16384, 'f');
  size_t total = 0;
  for (;;) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  ::close(fd);
  return total;
}

TEST(FullDisk, PublishesGet503AndReadyzIsNotReadyUntilSpaceReturns) {
  TempDir dir;
  Tmpfs disk(dir.file("disk"));
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.why() << ")";
  const uint16_t port = free_port(), mport = free_port();
  dir.write("sluice.yaml",
            "brokers:\n  local: { kind: local, path: ./disk/q.db, partitions: 1 }\n"
            "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
            "metrics: { listen: 127.0.0.1:" + std::to_string(mport) + " }\n"
            "functions:\n"
            "  - name: rec\n"
            "    command: [sh, -c, 'head -c 11 >> processed.log; echo >> processed.log']\n"
            "    subscribe: [{ topic: in }]\n");
  {
    Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    HttpClient client(port);
    std::set<std::string> accepted;
    int n = 0;
    auto post = [&] {
      char id[16];
      std::snprintf(id, sizeof id, "ev-%08d", n++);
      auto r = client.post("/topics/in", std::string(id) + std::string(2000, '.'),
                           {{"Content-Type", "text/plain"}});
      if (r.status == 202) accepted.insert(id);
      return r;
    };
    for (int i = 0; i < 5; ++i) ASSERT_EQ(post().status, 202);

    ASSERT_GT(fill(dir.file("disk/filler")), 0u);
    HttpClient::Reply full;
    for (int i = 0; i < 2000 && full.status != 503; ++i) {
      full = post();
      ASSERT_TRUE(full.status == 202 || full.status == 503) << full.status << " " << full.body;
    }
    ASSERT_EQ(full.status, 503) << "the queue never reported the full disk";
    EXPECT_EQ(full.headers["retry-after"], "1");
    EXPECT_NE(full.body.find("full"), std::string::npos) << full.body;
    EXPECT_EQ(client.get("/readyz").status, 503);
    EXPECT_TRUE(eventually([&] {
      return HttpClient(mport).get("/metrics").body.find(
                 "sluice_local_queue_writable{broker=\"local\"} 0") != std::string::npos;
    }, 10s));

    // Space returns: ready again without any publish, then publishes succeed.
    std::filesystem::remove(dir.file("disk/filler"));
    EXPECT_TRUE(eventually([&] { return HttpClient(port).get("/readyz").status == 200; }, 10s));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(post().status, 202);

    // Every event answered 202 is processed (none lost).
    EXPECT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= accepted.size(); }, 30s));
    std::set<std::string> processed;
    for (const auto& l : lines(dir.file("processed.log"))) processed.insert(l);
    EXPECT_EQ(processed, accepted);
  }
}

}  // namespace
}  // namespace sluice::e2e
