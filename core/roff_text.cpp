// A small roff renderer: enough of the man macros and escapes to turn manual pages into clean
// running text. Not a typesetter: tables keep their cells, layout is dropped.
#include "roff_text.h"

#include "polymoe/error.h"

#include <zlib.h>

#include <cstring>
#include <map>
#include <vector>

namespace polymoe {

namespace {

const std::map<std::string, std::string> &specialChars()
{
    static const std::map<std::string, std::string> m = {
        {"em", "\u2014"}, {"en", "\u2013"}, {"hy", "-"}, {"aq", "'"}, {"dq", "\""}, {"lq", "\u201c"},
        {"rq", "\u201d"}, {"oq", "\u2018"}, {"cq", "\u2019"}, {"co", "\u00a9"}, {"rg", "\u00ae"},
        {"tm", "\u2122"}, {"bu", "\u2022"}, {"de", "\u00b0"}, {"mu", "\u00d7"}, {"di", "\u00f7"},
        {"+-", "\u00b1"}, {"<=", "\u2264"}, {">=", "\u2265"}, {"!=", "\u2260"}, {"->", "\u2192"},
        {"<-", "\u2190"}, {"Fo", "\u00ab"}, {"Fc", "\u00bb"}, {"fo", "\u2039"}, {"fc", "\u203a"},
        {"ti", "~"}, {"ha", "^"}, {"rs", "\\"}, {"ga", "`"}, {"at", "@"}, {"sh", "#"}, {"Do", "$"},
        {"ba", "|"}, {"or", "|"}, {"sl", "/"}, {"ul", "_"}, {"ss", "\u00df"}, {":a", "\u00e4"},
        {":o", "\u00f6"}, {":u", "\u00fc"}, {":A", "\u00c4"}, {":O", "\u00d6"}, {":U", "\u00dc"},
        {"'e", "\u00e9"}, {"`e", "\u00e8"}, {"'a", "\u00e1"}, {"'o", "\u00f3"}, {"'i", "\u00ed"},
        {"'u", "\u00fa"}, {"~n", "\u00f1"}, {"~N", "\u00d1"}, {"r!", "\u00a1"}, {"r?", "\u00bf"},
        {"lh", "\u261c"}, {"rh", "\u261e"}, {"OK", "\u2713"}, {"pc", "\u00b7"}, {"aa", "\u00b4"},
    };
    return m;
}

// Skips an argument of the form 'x', [xx] or (xx and returns its text.
std::string takeName(std::string_view s, size_t &i)
{
    if (i >= s.size())
        return {};
    if (s[i] == '(') {
        std::string r(s.substr(i + 1, 2));
        i += 3;
        return r;
    }
    if (s[i] == '[') {
        const size_t e = s.find(']', i);
        std::string r(s.substr(i + 1, e == std::string_view::npos ? std::string_view::npos : e - i - 1));
        i = e == std::string_view::npos ? s.size() : e + 1;
        return r;
    }
    return std::string(1, s[i++]);
}

void skipDelimited(std::string_view s, size_t &i)
{
    if (i >= s.size())
        return;
    const char d = s[i++];
    const size_t e = s.find(d, i);
    i = e == std::string_view::npos ? s.size() : e + 1;
}

// Text of one line with escapes resolved.
std::string unescape(std::string_view s)
{
    std::string out;
    for (size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c != '\\') {
            out += c;
            ++i;
            continue;
        }
        if (++i >= s.size())
            break; // a trailing backslash joins lines; treat as nothing
        const char e = s[i++];
        switch (e) {
        case 'f': case 'F': takeName(s, i); break;                          // font
        case 's': // size: \s+2, \s-1, \s0, \s(12, \s[12]
            if (i < s.size() && (s[i] == '+' || s[i] == '-'))
                ++i;
            if (i < s.size() && (s[i] == '(' || s[i] == '['))
                takeName(s, i);
            else
                while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
                    ++i;
            break;
        case '-': out += '-'; break;
        case 'e': case '\\': out += '\\'; break;
        case '.': out += '.'; break;
        case '&': case '|': case '^': case ')': case '%': case ':': case 'c': case 'd': case 'u': break;
        case ' ': case '~': case '0': out += ' '; break;
        case '`': out += '`'; break;
        case '\'': out += '\''; break;
        case '"': return out;                                                 // comment to end of line
        case '#': return out;
        case '(': case '[': {
            --i;
            const std::string name = takeName(s, i);
            const auto &m = specialChars();
            if (auto it = m.find(name); it != m.end())
                out += it->second;
            else if (name.size() > 2 && name[0] == 'u') { // \[u00E4]
                try {
                    const unsigned long cp = std::stoul(name.substr(1), nullptr, 16);
                    if (cp < 0x80) out += char(cp);
                    else if (cp < 0x800) { out += char(0xc0 | (cp >> 6)); out += char(0x80 | (cp & 0x3f)); }
                    else if (cp < 0x10000) { out += char(0xe0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3f)); out += char(0x80 | (cp & 0x3f)); }
                } catch (...) {
                }
            }
            break;
        }
        case '*': takeName(s, i); break;                                      // string register
        case 'n': if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i; takeName(s, i); break;
        case 'N': case 'h': case 'v': case 'w': case 'l': case 'L': case 'o': case 'x': case 'b':
        case 'D': case 'X': case 'Z': case 'A': case 'B': case 'R': case 'S': case 'H':
            skipDelimited(s, i);
            break;
        case 'k': case 'z': case 'm': case 'M': case 'g': case 'V': case 'Y': case '$':
            takeName(s, i);
            break;
        default: out += e; break;
        }
    }
    return out;
}

// Splits a macro line's arguments, honouring double quotes.
std::vector<std::string> macroArgs(std::string_view s)
{
    std::vector<std::string> args;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        if (i >= s.size())
            break;
        std::string a;
        if (s[i] == '"') {
            ++i;
            while (i < s.size()) {
                if (s[i] == '"') {
                    if (i + 1 < s.size() && s[i + 1] == '"') { a += '"'; i += 2; continue; }
                    ++i;
                    break;
                }
                a += s[i++];
            }
        } else {
            while (i < s.size() && s[i] != ' ' && s[i] != '\t')
                a += s[i++];
        }
        args.push_back(std::move(a));
    }
    return args;
}

} // namespace

std::string roffToText(std::string_view roff)
{
    std::string out;
    std::string para;
    bool skipping = false; // inside .de ... .. or .ig ... ..
    auto flush = [&] {
        if (!para.empty()) {
            // collapse runs of spaces
            std::string clean;
            bool sp = false;
            for (char c : para) {
                if (c == ' ' || c == '\t') {
                    if (!sp && !clean.empty())
                        clean += ' ';
                    sp = true;
                } else {
                    clean += c;
                    sp = false;
                }
            }
            while (!clean.empty() && clean.back() == ' ')
                clean.pop_back();
            if (!clean.empty()) {
                if (!out.empty())
                    out += '\n';
                out += clean;
            }
        }
        para.clear();
    };
    auto addText = [&](const std::string &t) {
        if (t.empty())
            return;
        if (!para.empty())
            para += ' ';
        para += t;
    };

    size_t pos = 0;
    while (pos <= roff.size()) {
        size_t end = roff.find('\n', pos);
        if (end == std::string_view::npos)
            end = roff.size();
        std::string_view line = roff.substr(pos, end - pos);
        pos = end + 1;
        if (skipping) {
            if (line.substr(0, 2) == "..")
                skipping = false;
            if (end == roff.size())
                break;
            continue;
        }
        if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
            std::string_view rest = line.substr(1);
            while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t'))
                rest.remove_prefix(1);
            size_t nameEnd = 0;
            while (nameEnd < rest.size() && rest[nameEnd] != ' ' && rest[nameEnd] != '\t')
                ++nameEnd;
            const std::string name(rest.substr(0, nameEnd));
            const std::string_view argText = rest.substr(nameEnd);
            if (name.empty() || name.rfind("\\\"", 0) == 0 || name.rfind("\\#", 0) == 0) {
                // comment or empty request
            } else if (name == "de" || name == "de1" || name == "ig" || name == "am" || name == "ds") {
                skipping = name != "ds";
            } else if (name == "SH" || name == "SS") {
                flush();
                std::string h;
                for (const auto &a : macroArgs(argText))
                    h += (h.empty() ? "" : " ") + unescape(a);
                addText(h);
                flush();
            } else if (name == "B" || name == "I" || name == "SM" || name == "SB") {
                std::string t;
                for (const auto &a : macroArgs(argText))
                    t += (t.empty() ? "" : " ") + unescape(a);
                addText(t);
            } else if (name.size() == 2 && std::strchr("BIR", name[0]) && std::strchr("BIR", name[1])) {
                std::string t; // alternating fonts: arguments joined without spaces
                for (const auto &a : macroArgs(argText))
                    t += unescape(a);
                addText(t);
            } else if (name == "PP" || name == "P" || name == "LP" || name == "sp" || name == "br" ||
                       name == "TP" || name == "TQ" || name == "HP" || name == "RS" || name == "RE" ||
                       name == "nf" || name == "fi" || name == "EX" || name == "EE" || name == "TS" ||
                       name == "TE" || name == "in" || name == "ti" || name == "bp" || name == "PD") {
                flush();
            } else if (name == "IP") {
                flush();
                auto args = macroArgs(argText);
                if (!args.empty())
                    addText(unescape(args[0]));
            } else if (name == "UR" || name == "MT") {
                // link target: keep nothing; the link text follows on its own lines
            } else if (name == "UE" || name == "ME") {
                auto args = macroArgs(argText);
                if (!args.empty())
                    para += unescape(args[0]);
            }
            // everything else (TH, so, ft, ne, ad, na, hy, ...) is layout: dropped
        } else {
            std::string t = unescape(line);
            if (line.empty() || t.find_first_not_of(" \t") == std::string::npos)
                flush();
            else
                addText(t);
        }
        if (end == roff.size())
            break;
    }
    flush();
    return out;
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
