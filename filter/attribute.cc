#include "filter/attribute.h"

namespace sluice::filter {

bool valid_attribute_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxAttributeNameBytes) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

namespace detail {
namespace {

struct AttrName {
  std::string_view name;
  Attr attr;
};
constexpr AttrName kContextAttributes[] = {
    {"id", Attr::id},
    {"source", Attr::source},
    {"specversion", Attr::specversion},
    {"type", Attr::type},
    {"datacontenttype", Attr::datacontenttype},
    {"dataschema", Attr::dataschema},
    {"subject", Attr::subject},
    {"time", Attr::time},
};

std::optional<std::string_view> optional_attr(const std::string& v) {
  if (v.empty()) return std::nullopt;
  return std::string_view(v);
}

}  // namespace

Attr resolve_attribute(std::string_view name) noexcept {
  for (const auto& a : kContextAttributes)
    if (a.name == name) return a.attr;
  return Attr::extension;
}

std::optional<std::string_view> lookup(const Event& e, Attr a, std::string_view name) noexcept {
  switch (a) {
    case Attr::id: return std::string_view(e.id);
    case Attr::source: return std::string_view(e.source);
    case Attr::specversion: return std::string_view(e.specversion);
    case Attr::type: return std::string_view(e.type);
    case Attr::datacontenttype: return optional_attr(e.datacontenttype);
    case Attr::dataschema: return optional_attr(e.dataschema);
    case Attr::subject: return optional_attr(e.subject);
    case Attr::time: return optional_attr(e.time);
    case Attr::extension:
      for (const auto& [n, value] : e.extensions)
        if (n == name) return std::string_view(value);
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace sluice::filter
