// UTF-8 validation and counting for corpus import and statistics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace polymoe {

// Byte offset of the first invalid sequence (overlong forms, surrogates and values past U+10FFFF
// count as invalid), or nullopt when the text is valid UTF-8.
std::optional<size_t> findInvalidUtf8(std::string_view s);
int64_t countCodePoints(std::string_view s);    // assumes valid UTF-8
int64_t countWords(std::string_view s);         // runs of non-whitespace (ASCII and U+00A0 etc.)
std::string trimWhitespace(std::string_view s); // ASCII whitespace at both ends
// Every run of ASCII whitespace (space, tab, newline, CR, FF, VT) becomes one space; none at the ends.
std::string collapseWhitespace(std::string_view s);

} // namespace polymoe
