// man_page_text.h: groff renders, this file makes its terminal output plain text.
#include "man_page_text.h"

#include "polymoe/error.h"
#include "subprocess.h"

#include <zlib.h>

#include <chrono>
#include <vector>

namespace polymoe {

namespace {

// Whether the text has a run of at least n spaces: the gaps of a three-part running header or
// footer at groff's page width; paragraph text never has one.
bool hasSpaceRun(std::string_view line, size_t n)
{
    size_t run = 0;
    for (char c : line) {
        run = c == ' ' ? run + 1 : 0;
        if (run >= n)
            return true;
    }
    return false;
}

// A page that is nothing but comments, blank lines and one ".so" request.
bool onlyRedirects(std::string_view roff)
{
    bool so = false;
    size_t pos = 0;
    while (pos < roff.size()) {
        size_t end = roff.find('\n', pos);
        if (end == std::string_view::npos)
            end = roff.size();
        std::string_view line = roff.substr(pos, end - pos);
        pos = end + 1;
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t'))
            line.remove_suffix(1);
        if (line.empty() || line.rfind(".\\\"", 0) == 0 || line.rfind("'\\\"", 0) == 0 || line == ".")
            continue;
        if (line.rfind(".so ", 0) == 0 && !so)
            so = true;
        else
            return false;
    }
    return so;
}

} // namespace

std::string plainManText(std::string_view in)
{
    // Overstrikes (x BACKSPACE x, _ BACKSPACE x) keep the character after the backspace; SGR
    // sequences (ESC [ ... m) go.
    std::string s;
    s.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '\b') {
            while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80)
                s.pop_back();
            if (!s.empty())
                s.pop_back();
        } else if (c == '\x1b' && i + 1 < in.size() && in[i + 1] == '[') {
            size_t j = i + 2;
            while (j < in.size() && !(in[j] >= 0x40 && in[j] <= 0x7e))
                ++j;
            i = j;
        } else if (c == '\xe2' && i + 2 < in.size() && in[i + 1] == '\x80' && in[i + 2] == '\x90') {
            s += '-'; // U+2010 HYPHEN
            i += 2;
        } else {
            s += c == '\t' ? ' ' : c;
        }
    }
    std::vector<std::string> lines;
    std::vector<bool> running; // header- or footer-shaped
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t end = s.find('\n', pos);
        if (end == std::string::npos)
            end = s.size();
        std::string_view raw(s.data() + pos, end - pos);
        pos = end + 1;
        std::string line;
        for (char c : raw)
            if (c != ' ' || (!line.empty() && line.back() != ' '))
                line += c;
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
            line.pop_back();
        running.push_back(hasSpaceRun(raw, 10));
        lines.push_back(std::move(line));
    }
    // Drop the first and the last non-empty lines when they are header-shaped.
    const auto nonEmpty = [&](size_t i) { return !lines[i].empty(); };
    size_t first = 0, last = lines.size();
    while (first < lines.size() && !nonEmpty(first))
        ++first;
    while (last > first && !nonEmpty(last - 1))
        --last;
    if (first < lines.size() && running[first])
        lines[first].clear();
    if (last > first + 1 && running[last - 1])
        lines[last - 1].clear();
    std::string out;
    bool blank = false;
    for (const auto &l : lines) {
        if (l.empty()) {
            blank = !out.empty();
            continue;
        }
        if (blank)
            out += '\n';
        if (!out.empty())
            out += '\n';
        out += l;
        blank = false;
    }
    return out;
}

std::string renderManPage(std::string_view roff, const std::string &origin)
{
    if (onlyRedirects(roff))
        return {};
    // As man renders for a terminal, with: no overstrikes or colours (-c -b -o -u), no hyphenation
    // (HY=0), no justification (AD=l), and a line so long that each paragraph is one line.
    ProcessOptions options;
    options.input = roff;
    options.timeout = std::chrono::seconds(60);
    options.discardStderr = true; // groff's warnings about a page's markup are not ours to show
    options.maxOutputBytes = size_t(64) << 20;
    const ProcessResult r = runProcess({"groff", "-k", "-Kutf-8", "-t", "-mandoc", "-Tutf8", "-P-c", "-P-b", "-P-o",
                                        "-P-u", "-rLL=2000n", "-rHY=0", "-dAD=l", "-rcR=1"},
                                       options);
    if (!r.started)
        throw ConfigError("groff is not installed; manual pages are rendered with it (Debian package groff-base)");
    if (r.timedOut)
        throw FormatError(origin + ": groff ran for more than 60 seconds on this page");
    if (r.exitCode != 0 && r.output.empty())
        throw FormatError(origin + ": groff could not render this page (exit status " + std::to_string(r.exitCode) + ")");
    if (r.output.size() > options.maxOutputBytes)
        throw FormatError(origin + ": groff's text of this page is over 64 MiB");
    return plainManText(r.output);
}

std::string readManPage(const std::filesystem::path &path)
{
    gzFile f = gzopen(path.c_str(), "rb"); // reads plain files transparently too
    if (!f)
        throw IoError(path.string() + ": cannot open");
    std::string data;
    char buf[1 << 15];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0)
        data.append(buf, size_t(n));
    int err = 0;
    const char *msg = gzerror(f, &err);
    const std::string m = msg ? msg : "";
    gzclose(f);
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
        throw FormatError(path.string() + ": cannot decompress: " + m);
    return data;
}

} // namespace polymoe
