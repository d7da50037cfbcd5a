#include "core/topic.h"

#include <gtest/gtest.h>

namespace sluice::testing {
namespace {

TEST(TopicName, AcceptsOrdinaryNamesAndNatsSubjects) {
  for (std::string_view t : {"a", "orders", "Orders_v1.dlq-2", "orders.*", "orders.>", "f.retry"})
    EXPECT_EQ(topic_name_error(t), std::nullopt) << t;
  EXPECT_EQ(topic_name_error(std::string(kMaxTopicName, 'x')), std::nullopt);
}

TEST(TopicName, RefusesDotsEmptySlashesAndControlCharacters) {
  const std::string_view bad[] = {".",    "..",   "",    "a/b", "../x", "a\\b",
                                  "a b",  "a\tb", "a\nb", std::string_view("a\0b", 3), "a\x7f"};
  for (std::string_view t : bad)
    EXPECT_NE(topic_name_error(t), std::nullopt) << printable_topic(t);
  EXPECT_NE(topic_name_error(std::string(kMaxTopicName + 1, 'x')), std::nullopt);
  // Dots inside a longer name are fine.
  EXPECT_EQ(topic_name_error("..."), std::nullopt);
}

TEST(TopicName, PrintableFormIsShortAndAscii) {
  EXPECT_EQ(printable_topic("a\nb"), "a?b");
  EXPECT_EQ(printable_topic(std::string(100, 'x')).size(), 67u);
}

}  // namespace
}  // namespace sluice::testing
