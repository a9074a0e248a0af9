// Regular expressions for tokenizer.json patterns: Oniguruma syntax translated to PCRE2 (JIT), the
// onig crate's match iteration, and tokenizers' split behaviours over the matches.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

#include <algorithm>
#include <cstdio>

namespace polymoe::detail::hf {

namespace {

// White_Space as Onig and Rust define \s in Unicode mode; PCRE2's own \s adds U+180E in 10.42.
constexpr const char *kSpace = "\\p{White_Space}";
constexpr const char *kNotSpace = "\\P{White_Space}";
// The code points Oniguruma's \p{name} holds beyond PCRE2's, as class items ("\x{105C0}-\x{105F3}...").
std::string categoryExtras(std::string_view name)
{
    for (size_t i = 0; i < kOnigCategoryExtraCount; ++i) {
        if (name != kOnigCategoryExtras[i].name)
            continue;
        std::string out;
        const RangeTable &t = kOnigCategoryExtras[i].extra;
        char buffer[40];
        for (size_t k = 0; k < t.count; ++k) {
            if (t.ranges[k].first == t.ranges[k].last)
                std::snprintf(buffer, sizeof buffer, "\\x{%X}", unsigned(t.ranges[k].first));
            else
                std::snprintf(buffer, sizeof buffer, "\\x{%X}-\\x{%X}", unsigned(t.ranges[k].first), unsigned(t.ranges[k].last));
            out += buffer;
        }
        return out;
    }
    return {};
}

// \p{name} as class items with Oniguruma's extra code points.
std::string categoryItems(std::string_view name) { return "\\p{" + std::string(name) + "}" + categoryExtras(name); }

// [items] or [^items] (built by appending: GCC 12 warns on "[" + std::string temporaries).
std::string bracket(const std::string &items, bool negated = false)
{
    std::string out(negated ? "[^" : "[");
    out += items;
    out += ']';
    return out;
}

// Onig's Unicode \w: Letter, Mark, Decimal_Number, Connector_Punctuation.
std::string onigWordItems() { return categoryItems("L") + categoryItems("M") + categoryItems("Nd") + categoryItems("Pc"); }

// Per-thread match state: PCRE2 match data (only the whole match is read) and a JIT stack.
struct MatchScratch {
    pcre2_match_data *data = nullptr;
    pcre2_match_context *context = nullptr;
    pcre2_jit_stack *stack = nullptr;
    MatchScratch()
    {
        data = pcre2_match_data_create(1, nullptr);
        context = pcre2_match_context_create(nullptr);
        stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
        if (!data || !context || !stack)
            throw std::bad_alloc();
        pcre2_jit_stack_assign(context, nullptr, stack);
    }
    ~MatchScratch()
    {
        pcre2_jit_stack_free(stack);
        pcre2_match_context_free(context);
        pcre2_match_data_free(data);
    }
};

MatchScratch &scratch()
{
    thread_local MatchScratch s;
    return s;
}

} // namespace

std::string onigToPcre2(std::string_view p, const std::string &where)
{
    std::string out;
    out.reserve(p.size() + 32);
    bool inClass = false;
    for (size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            const char d = p[++i];
            switch (d) {
            case 's': out += kSpace; break;
            case 'S': out += kNotSpace; break;
            case 'w':
                out += inClass ? onigWordItems() : bracket(onigWordItems());
                break;
            case 'W':
                if (inClass)
                    throw ConfigError(where + ": \\W inside a character class is not supported");
                out += bracket(onigWordItems(), true);
                break;
            case 'd':
                out += inClass ? categoryItems("Nd") : bracket(categoryItems("Nd"));
                break;
            case 'p':
            case 'P': {
                // A general category gets Oniguruma's newer code points (tokenizers' onig is Unicode 16,
                // PCRE2 here may be older); other properties go through unchanged.
                std::string name;
                size_t end = i;
                if (i + 1 < p.size() && p[i + 1] == '{') {
                    const auto close = p.find('}', i + 2);
                    if (close != std::string_view::npos) {
                        name = std::string(p.substr(i + 2, close - i - 2));
                        end = close;
                    }
                } else if (i + 1 < p.size()) {
                    name = std::string(1, p[i + 1]);
                    end = i + 1;
                }
                bool negated = d == 'P';
                if (!name.empty() && name[0] == '^') {
                    negated = !negated;
                    name.erase(0, 1);
                }
                const std::string extras = name.empty() ? std::string() : categoryExtras(name);
                if (extras.empty() || (negated && inClass)) {
                    out.push_back('\\');
                    out.push_back(d);
                    break;
                }
                const std::string items = categoryItems(name);
                out += inClass ? items : bracket(items, negated);
                i = end;
                break;
            }
            case 'h': out += inClass ? "0-9a-fA-F" : "[0-9a-fA-F]"; break; // Onig: a hexadecimal digit
            case 'H':
                if (inClass)
                    throw ConfigError(where + ": \\H inside a character class is not supported");
                out += "[^0-9a-fA-F]";
                break;
            default:
                out.push_back('\\');
                out.push_back(d);
            }
            continue;
        }
        if (inClass) {
            if (c == '[') {
                if (i + 1 < p.size() && p[i + 1] == ':') { // a POSIX class [:alpha:]
                    const auto close = p.find(":]", i + 2);
                    if (close == std::string_view::npos)
                        throw ConfigError(where + ": unterminated POSIX class in the pattern");
                    out.append(p.substr(i, close + 2 - i));
                    i = close + 1;
                    continue;
                }
                throw ConfigError(where + ": nested character classes are not supported");
            }
            if (c == '&' && i + 1 < p.size() && p[i + 1] == '&')
                throw ConfigError(where + ": character class intersection (&&) is not supported");
            if (c == ']')
                inClass = false;
            out.push_back(c);
            continue;
        }
        if (c == '[') {
            inClass = true;
            out.push_back(c);
            if (i + 1 < p.size() && p[i + 1] == '^')
                out.push_back(p[++i]);
            if (i + 1 < p.size() && p[i + 1] == ']') // a leading ] is literal
                out.push_back(p[++i]);
            continue;
        }
        if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
            // Inline options: Ruby's (?m) is PCRE2's (?s) (dot matches newline).
            out += "(?";
            size_t j = i + 2;
            while (j < p.size() && (p[j] == 'i' || p[j] == 'm' || p[j] == 'x' || p[j] == '-')) {
                out.push_back(p[j] == 'm' ? 's' : p[j]);
                ++j;
            }
            i = j - 1;
            continue;
        }
        out.push_back(c);
    }
    return out;
}

Regex::Regex(std::string_view pattern, Syntax syntax, const std::string &where)
{
    uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    std::string compiled;
    switch (syntax) {
    case Syntax::Literal:
        options |= PCRE2_LITERAL;
        compiled = std::string(pattern);
        break;
    case Syntax::Oniguruma:
        // Ruby syntax, as the onig crate's default: ^ and $ are line anchors.
        options |= PCRE2_UCP | PCRE2_MULTILINE;
        compiled = onigToPcre2(pattern, where);
        break;
    case Syntax::Pcre2:
        options |= PCRE2_UCP;
        compiled = std::string(pattern);
        break;
    }
    if (!isValidUtf8(compiled))
        throw FormatError(where + ": the pattern is not valid UTF-8");
    int error = 0;
    PCRE2_SIZE offset = 0;
    m_code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(), options, &error,
                           &offset, nullptr);
    if (!m_code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        throw ConfigError(where + ": the pattern does not compile (" + reinterpret_cast<const char *>(message) +
                          " at offset " + std::to_string(offset) + ")");
    }
    m_jit = pcre2_jit_compile(m_code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(m_code); }

void Regex::findAll(std::string_view text, std::vector<Span> &out) const
{
    MatchScratch &s = scratch();
    const auto *subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    const size_t length = text.size();
    size_t lastEnd = 0;
    bool haveLast = false;
    size_t lastMatchEnd = 0;
    while (lastEnd <= length) {
        int rc = m_jit ? pcre2_jit_match(m_code, subject, length, lastEnd, PCRE2_NO_UTF_CHECK, s.data, s.context)
                       : PCRE2_ERROR_JIT_BADOPTION;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION)
            rc = pcre2_match(m_code, subject, length, lastEnd, PCRE2_NO_UTF_CHECK, s.data, s.context);
        if (rc == PCRE2_ERROR_NOMATCH)
            return;
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof message);
            throw ConfigError(std::string("regular expression failed: ") + reinterpret_cast<const char *>(message));
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s.data);
        const size_t start = ov[0], end = ov[1];
        if (start == end && haveLast && lastMatchEnd == end) {
            lastEnd += lastEnd < length ? utf8Length(static_cast<unsigned char>(text[lastEnd])) : 1;
            continue;
        }
        lastEnd = end;
        lastMatchEnd = end;
        haveLast = true;
        out.push_back({uint32_t(start), uint32_t(end)});
    }
}

SplitBehavior parseSplitBehavior(const Node &node, const char *key)
{
    const std::string b = node.str(key);
    if (b == "Removed") return SplitBehavior::Removed;
    if (b == "Isolated") return SplitBehavior::Isolated;
    if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
    if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
    if (b == "Contiguous") return SplitBehavior::Contiguous;
    node.at(key).fail("unknown split behavior " + shortQuote(b));
}

void segmentsFromMatches(const std::vector<Span> &matches, uint32_t length, bool invert, std::vector<Segment> &out)
{
    out.clear();
    if (length == 0) {
        out.push_back({0, 0, invert});
        return;
    }
    uint32_t prev = 0;
    for (const Span &m : matches) {
        if (prev != m.begin)
            out.push_back({prev, m.begin, invert});
        out.push_back({m.begin, m.end, !invert});
        prev = m.end;
    }
    if (prev != length)
        out.push_back({prev, length, invert});
}

void applySplitBehavior(const std::vector<Segment> &segs, SplitBehavior behavior, std::vector<Span> &kept)
{
    kept.clear();
    switch (behavior) {
    case SplitBehavior::Isolated:
        for (const Segment &s : segs)
            kept.push_back({s.begin, s.end});
        return;
    case SplitBehavior::Removed:
        for (const Segment &s : segs)
            if (!s.isMatch)
                kept.push_back({s.begin, s.end});
        return;
    case SplitBehavior::Contiguous: {
        bool previous = false;
        for (const Segment &s : segs) {
            if (s.isMatch == previous && !kept.empty())
                kept.back().end = s.end;
            else
                kept.push_back({s.begin, s.end});
            previous = s.isMatch;
        }
        return;
    }
    case SplitBehavior::MergedWithPrevious: {
        bool previous = false;
        for (const Segment &s : segs) {
            if (s.isMatch && !previous && !kept.empty())
                kept.back().end = s.end;
            else
                kept.push_back({s.begin, s.end});
            previous = s.isMatch;
        }
        return;
    }
    case SplitBehavior::MergedWithNext: {
        bool previous = false;
        for (size_t k = segs.size(); k-- > 0;) {
            const Segment &s = segs[k];
            if (s.isMatch && !previous && !kept.empty())
                kept.back().begin = s.begin;
            else
                kept.push_back({s.begin, s.end});
            previous = s.isMatch;
        }
        std::reverse(kept.begin(), kept.end());
        return;
    }
    }
}

std::unique_ptr<Regex> patternRegex(const Node &pattern)
{
    pattern.expectObject();
    const std::string where = pattern.file() + ": " + pattern.path();
    if (pattern.has("String"))
        return std::make_unique<Regex>(pattern.str("String"), Regex::Syntax::Literal, where);
    if (pattern.has("Regex"))
        return std::make_unique<Regex>(pattern.str("Regex"), Regex::Syntax::Oniguruma, where);
    pattern.fail("expected \"String\" or \"Regex\"");
}

} // namespace polymoe::detail::hf
