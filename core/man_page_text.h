// Manual pages as plain text for the demo corpus, rendered by groff as `man` renders them (preconv
// for UTF-8, tbl for tables, the mandoc macros for man and mdoc pages), without overstrikes,
// hyphenation or justification, one line per paragraph, the running header and footer dropped.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace polymoe {

// The page's text. A page that only redirects to another (".so man1/x.1") is empty. Throws
// ConfigError when groff is not installed (Debian package groff-base), FormatError naming origin
// when groff fails on the page or runs past 60 seconds.
std::string renderManPage(std::string_view roff, const std::string &origin);

// groff's terminal output made plain: overstrikes and SGR colour sequences removed, U+2010 (the
// hyphen groff prints for "-") as "-", lines trimmed, runs of spaces as one, runs of blank lines
// as one, and the first and last lines dropped when they are the page's running header and footer.
std::string plainManText(std::string_view groffOutput);

// Reads a man page, gunzipping when the name ends in .gz. Throws IoError / FormatError.
std::string readManPage(const std::filesystem::path &path);

} // namespace polymoe
