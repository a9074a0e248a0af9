// UTF-8 decoding and repair, and the Unicode properties tokenizers takes from Rust's char methods
// (White_Space, numeric, punctuation, lowercase) and the unicode-normalization crate (utf8proc here).
#include "hf_tokenizer_internal.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace polymoe::detail::hf {

void appendUtf8(std::string &out, char32_t cp)
{
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

namespace {

// Length of the valid sequence at s[i], or 0 with `bad` set to the length of the maximal invalid
// subpart (Unicode's "U+FFFD substitution of maximal subparts", as Rust and Python do).
size_t validSequenceAt(std::string_view s, size_t i, size_t &bad)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80)
        return 1;
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0)
            lo = 0xA0;
        else if (b0 == 0xED)
            hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0)
            lo = 0x90;
        else if (b0 == 0xF4)
            hi = 0x8F;
    } else {
        bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; ++k) {
        if (i + k >= s.size()) {
            bad = k;
            return 0;
        }
        const auto b = static_cast<unsigned char>(s[i + k]);
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            bad = k;
            return 0;
        }
    }
    return need + 1;
}

} // namespace

bool isAscii(std::string_view s)
{
    for (const char c : s)
        if (static_cast<unsigned char>(c) >= 0x80)
            return false;
    return true;
}

bool isValidUtf8(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        size_t bad = 0;
        const size_t n = validSequenceAt(s, i, bad);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

std::string utf8Lossy(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 8);
    size_t i = 0;
    while (i < s.size()) {
        size_t bad = 0;
        const size_t n = validSequenceAt(s, i, bad);
        if (n > 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out.append("\xEF\xBF\xBD");
            i += bad;
        }
    }
    return out;
}

bool isWhiteSpace(char32_t c)
{
    if (c < 0x80)
        return (c >= 0x09 && c <= 0x0D) || c == 0x20;
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

bool RangeTable::contains(char32_t c) const
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (ranges[mid].last < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < count && ranges[lo].first <= c;
}

bool isNumeric(char32_t c)
{
    return c < 0x80 ? c >= '0' && c <= '9' : kNumericTable.contains(c);
}

bool isPunctuation(char32_t c)
{
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
               (c >= 0x7B && c <= 0x7E);
    return kPunctuationTable.contains(c);
}

bool isRustWordChar(char32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    return kRustWordTable.contains(c);
}

bool isOther(char32_t c)
{
    if (c < 0x80)
        return c < 0x20 || c == 0x7F;
    return kBertOtherTable.contains(c);
}

bool isMark(char32_t c) { return c >= 0x300 && kCombiningMarkTable.contains(c); }

bool isNonspacingMark(char32_t c) { return c >= 0x80 && kBertNonspacingMarkTable.contains(c); }

void appendLowercase(std::string &out, char32_t c)
{
    if (c < 0x80) {
        out.push_back(char(c >= 'A' && c <= 'Z' ? c + 32 : c));
        return;
    }
    if (c == 0x130) { // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
        out.append("i\xCC\x87");
        return;
    }
    const CodePair *end = kLowercaseTable + kLowercaseCount;
    const CodePair *it = std::lower_bound(kLowercaseTable, end, c, [](const CodePair &p, char32_t v) { return p.from < v; });
    appendUtf8(out, it != end && it->from == c ? it->to : c);
}

namespace {

std::string utf8procNormalize(std::string_view s, UnicodeForm form)
{
    int options = UTF8PROC_STABLE;
    switch (form) {
    case UnicodeForm::NFC: options |= UTF8PROC_COMPOSE; break;
    case UnicodeForm::NFD: options |= UTF8PROC_DECOMPOSE; break;
    case UnicodeForm::NFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case UnicodeForm::NFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *result = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(s.data()), utf8proc_ssize_t(s.size()),
                                &result, utf8proc_option_t(options));
    if (n < 0) {
        std::free(result);
        if (n == UTF8PROC_ERROR_NOMEM)
            throw std::bad_alloc();
        return std::string(s); // cannot happen on valid UTF-8
    }
    std::string out(reinterpret_cast<const char *>(result), size_t(n));
    std::free(result);
    return out;
}

} // namespace

// tokenizers normalizes with Unicode 9.0 tables: a character assigned later has combining class 0
// and no decomposition there, so it splits the text into parts normalized on their own.
std::string unicodeNormalize(std::string_view s, UnicodeForm form)
{
    if (isAscii(s))
        return std::string(s);
    std::string out;
    size_t start = 0;
    for (size_t i = 0; i < s.size();) {
        char32_t c = 0;
        const size_t n = decodeUtf8(s, i, c);
        if (c >= kPost9Table.ranges[0].first && kPost9Table.contains(c)) {
            if (i > start)
                out += utf8procNormalize(s.substr(start, i - start), form);
            out.append(s, i, n);
            start = i + n;
        }
        i += n;
    }
    if (start == 0)
        return utf8procNormalize(s, form);
    if (start < s.size())
        out += utf8procNormalize(s.substr(start), form);
    return out;
}

ByteLevelTable::ByteLevelTable()
{
    bool direct[256] = {};
    for (int b = '!'; b <= '~'; ++b)
        direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b)
        direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b)
        direct[b] = true;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        byteToChar[b] = direct[b] ? char32_t(b) : next++;
        appendUtf8(byteToUtf8[b], byteToChar[b]);
        charToByte[byteToChar[b]] = uint8_t(b);
    }
}

const ByteLevelTable &byteLevelTable()
{
    static const ByteLevelTable table;
    return table;
}

// Start of the whitespace that ends s (Rust regex \s*$).
size_t trailingSpaceStart(std::string_view s)
{
    size_t end = s.size();
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
            --start;
        char32_t c = 0;
        decodeUtf8(s, start, c);
        if (!isWhiteSpace(c))
            break;
        end = start;
    }
    return end;
}

// Length of the whitespace that starts s (Rust regex ^\s*).
size_t leadingSpaceLength(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        char32_t c = 0;
        const size_t n = decodeUtf8(s, i, c);
        if (!isWhiteSpace(c))
            break;
        i += n;
    }
    return i;
}

} // namespace polymoe::detail::hf
