// CloudEvents attributes by name, as CESQL and the subscription dialects read them:
// a context attribute is a field of the Event, anything else an extension looked up in
// Event.extensions. Required attributes (id, source, specversion, type) always exist;
// an optional context attribute exists when it is not empty; an extension exists when
// the event carries it. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/event.h"

namespace sluice::filter {

// A name as CloudEvents spells attributes: lower-case ASCII letters and digits, at
// least one, at most kMaxAttributeNameBytes.
inline constexpr size_t kMaxAttributeNameBytes = 64;
bool valid_attribute_name(std::string_view name) noexcept;

namespace detail {

enum class Attr : uint8_t {
  id, source, specversion, type,                    // required: always exist
  datacontenttype, dataschema, subject, time,       // optional: exist when not empty
  extension,                                        // Event.extensions by name
};

// The slot of a name (resolved once, when an expression or filter is compiled).
Attr resolve_attribute(std::string_view name) noexcept;
// The attribute's value in `e`, or nullopt when the event lacks it. `name` is read only
// for Attr::extension.
std::optional<std::string_view> lookup(const Event& e, Attr a, std::string_view name) noexcept;

}  // namespace detail
}  // namespace sluice::filter
