// Renders manual pages (roff with the man macros) to plain text for the demo corpus: requests
// dropped, font and size escapes removed, special characters mapped, paragraphs joined.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace polymoe {

std::string roffToText(std::string_view roff);
// Reads a man page, gunzipping when the name ends in .gz. Throws IoError / FormatError.
std::string readManPage(const std::filesystem::path &path);

} // namespace polymoe
