#include "core/topic.h"

namespace sluice {

std::optional<std::string> topic_name_error(std::string_view topic) {
  if (topic.empty()) return "a topic name cannot be empty";
  if (topic.size() > kMaxTopicName)
    return "a topic name has at most " + std::to_string(kMaxTopicName) + " bytes (this has " +
           std::to_string(topic.size()) + ")";
  if (topic == "." || topic == "..") return "'.' and '..' are not topic names";
  for (char ch : topic) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '/' || c == '\\') return "a topic name cannot contain '/' or '\\'";
    if (c <= 0x20 || c == 0x7f) return "a topic name cannot contain whitespace or control characters";
  }
  return std::nullopt;
}

std::string printable_topic(std::string_view topic) {
  constexpr size_t kShown = 64;
  std::string out;
  for (char ch : topic.substr(0, kShown)) {
    auto c = static_cast<unsigned char>(ch);
    out += (c < 0x20 || c >= 0x7f) ? '?' : ch;
  }
  if (topic.size() > kShown) out += "...";
  return out;
}

}  // namespace sluice
