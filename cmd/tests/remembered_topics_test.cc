// The bounded set of topic names `sluice lag` lists when they hold events and have no
// subscriber (cmd/remembered_topics.h).
#include "cmd/remembered_topics.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice::cmd::testing {
namespace {

namespace fs = std::filesystem;

class RememberedTopicsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sluice-remember-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file() const { return (fs::path(dir_) / "sub" / "unsubscribed-topics").string(); }
  std::string dir_;
};

TEST_F(RememberedTopicsTest, NamesAreDistinctPerBrokerAndOldestFirst) {
  RememberedTopics r(file());
  EXPECT_TRUE(r.names().empty());  // no file yet
  ASSERT_TRUE(r.remember("kafka", "greetngs"));
  ASSERT_TRUE(r.remember("nats", "evnets.in"));
  ASSERT_TRUE(r.remember("kafka", "greetngs"));  // once
  ASSERT_TRUE(r.remember("kafka", "audti"));
  using N = RememberedTopics::Name;
  EXPECT_EQ(r.names(), (std::vector<N>{{"kafka", "greetngs"}, {"nats", "evnets.in"}, {"kafka", "audti"}}));
  EXPECT_EQ(r.topics_of("kafka"), (std::vector<std::string>{"greetngs", "audti"}));
  // Another process (another instance) sees them too.
  EXPECT_EQ(RememberedTopics(file()).topics_of("nats"), std::vector<std::string>{"evnets.in"});
}

TEST_F(RememberedTopicsTest, RefusesWhatIsNotATopicAndSkipsForeignLines) {
  RememberedTopics r(file());
  EXPECT_FALSE(r.remember("kafka", "with space"));
  EXPECT_FALSE(r.remember("kafka", ""));
  EXPECT_FALSE(r.remember("", "t"));
  EXPECT_FALSE(r.remember("a\tb", "t"));
  ASSERT_TRUE(r.remember("kafka", "ok"));
  std::ofstream(file(), std::ios::app) << "garbage line\n\tnobroker\nkafka\tbad topic\n";
  EXPECT_EQ(r.names(), (std::vector<RememberedTopics::Name>{{"kafka", "ok"}}));
}

TEST_F(RememberedTopicsTest, KeepsTheNewestNamesAndTheFileStaysSmall) {
  RememberedTopics r(file());
  const size_t total = RememberedTopics::kMaxRemembered + 500;
  const std::string pad(230, 'x');  // long names, so that the file needs compacting
  for (size_t i = 0; i < total; ++i) ASSERT_TRUE(r.remember("kafka", pad + std::to_string(i)));
  const auto names = r.names();
  ASSERT_EQ(names.size(), RememberedTopics::kMaxRemembered);
  EXPECT_EQ(names.front().topic, pad + std::to_string(total - RememberedTopics::kMaxRemembered));
  EXPECT_EQ(names.back().topic, pad + std::to_string(total - 1));
  EXPECT_LE(fs::file_size(file()), RememberedTopics::kCompactBytes + 200);
  // Compaction rewrote the file: the newest names are still all there, once each.
  EXPECT_EQ(RememberedTopics(file()).names(), names);
}

TEST_F(RememberedTopicsTest, StateFileSitsBesideTheLocalQueueOrTheControlKey) {
  Config with_local;
  BrokerConfig local;
  local.name = "local";
  local.settings = LocalBrokerConfig{.path = "/data/q.db"};
  with_local.brokers.push_back(local);
  EXPECT_EQ(state_file(with_local, "unsubscribed-topics"), "/data/q.db.unsubscribed-topics");
  Config remote;
  remote.engine.control_key_file = "/etc/sluice/control.key";
  EXPECT_EQ(state_file(remote, "engine.json"), "/etc/sluice/engine.json");
}

}  // namespace
}  // namespace sluice::cmd::testing
