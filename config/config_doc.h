// Generates docs/CONFIG.md's key tables and the "properties" of
// schemas/config.schema.json from the key table (config_keys.h).
//
// Each function takes the committed file's text and returns it with the generated parts
// replaced, leaving everything else (prose, headings, the schema's shared $defs) as it
// was written. `sluice-config-doc` writes the results back; config_test checks that the
// committed files are what these return. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::config {

// The markdown table of one section's keys ("| Key | Type | Default | Meaning |").
std::string key_table(std::string_view section);

// docs/CONFIG.md with the table of every section replaced between its markers,
//   <!-- keys: SECTION -->
//   ...
//   <!-- /keys -->
// An error when a section has no markers (or the markers name an unknown section).
Result<std::string> render_config_md(std::string_view committed);

// schemas/config.schema.json with "properties" and "required" of every section's object
// schema generated (keys in table order), printed with two-space indents.
Result<std::string> render_schema(std::string_view committed);

}  // namespace sluice::config
