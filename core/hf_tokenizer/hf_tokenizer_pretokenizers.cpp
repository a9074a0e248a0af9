// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit,
// Punctuation, BertPreTokenizer, CharDelimiterSplit and Sequence, splitting the pieces of a Pieces.
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

namespace polymoe::detail::hf {

namespace {

// Splits every piece not yet tokenized: findSegments(text, segments) describes it, the behaviour
// picks the ranges kept, empty ranges are dropped (tokenizers' PreTokenizedString::split).
template <typename FindSegments>
void splitPieces(Pieces &p, SplitBehavior behavior, FindSegments findSegments)
{
    std::vector<Piece> out;
    out.reserve(p.list.size() * 2 + 8);
    std::vector<Segment> segments;
    std::vector<Span> kept;
    for (const Piece &piece : p.list) {
        if (piece.id >= 0) {
            out.push_back(piece);
            continue;
        }
        const std::string_view text(p.text.data() + piece.begin, piece.end - piece.begin);
        findSegments(text, segments);
        applySplitBehavior(segments, behavior, kept);
        for (const Span &k : kept)
            if (k.end > k.begin)
                out.push_back({piece.begin + k.begin, piece.begin + k.end, -1, piece.atOrigin && k.begin == 0});
    }
    p.list.swap(out);
}

// tokenizers' Pattern for Fn(char) -> bool: every matching character is its own match.
template <typename Predicate>
auto charSegments(Predicate predicate)
{
    return [predicate](std::string_view text, std::vector<Segment> &out) {
        out.clear();
        if (text.empty()) {
            out.push_back({0, 0, false});
            return;
        }
        uint32_t last = 0;
        for (size_t i = 0; i < text.size();) {
            char32_t c = 0;
            const size_t n = decodeUtf8(text, i, c);
            if (predicate(c)) {
                if (last < i)
                    out.push_back({last, uint32_t(i), false});
                out.push_back({uint32_t(i), uint32_t(i + n), true});
                last = uint32_t(i + n);
            }
            i += n;
        }
        if (text.size() > last)
            out.push_back({last, uint32_t(text.size()), false});
    };
}

auto regexSegments(const Regex &regex, bool invert)
{
    return [&regex, invert](std::string_view text, std::vector<Segment> &out) {
        thread_local std::vector<Span> matches;
        matches.clear();
        if (!text.empty())
            regex.findAll(text, matches);
        segmentsFromMatches(matches, uint32_t(text.size()), invert, out);
    };
}

// Rewrites every piece not yet tokenized into a new text buffer.
template <typename Rewrite>
void rewritePieces(Pieces &p, Rewrite rewrite)
{
    std::string text;
    text.reserve(p.text.size() + p.text.size() / 4 + 16);
    for (Piece &piece : p.list) {
        if (piece.id >= 0) {
            piece.begin = piece.end = uint32_t(text.size());
            continue;
        }
        const std::string_view old(p.text.data() + piece.begin, piece.end - piece.begin);
        const auto begin = uint32_t(text.size());
        rewrite(old, piece, text);
        piece.begin = begin;
        piece.end = uint32_t(text.size());
    }
    p.text.swap(text);
}

constexpr const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevel final : public PreTokenizer {
public:
    ByteLevel(const Node &node, bool defer)
        : m_addPrefixSpace(node.boolean("add_prefix_space", true)), m_useRegex(node.boolean("use_regex", true)),
          m_defer(defer)
    {
        if (m_useRegex) {
            static const Regex gpt2(kGpt2Pattern, Regex::Syntax::Oniguruma, "ByteLevel");
            m_regex = &gpt2;
        }
    }
    void preTokenize(Pieces &p) const override
    {
        if (m_addPrefixSpace) {
            bool needed = false;
            for (const Piece &piece : p.list)
                needed = needed || (piece.id < 0 && p.text[piece.begin] != ' ');
            if (needed)
                rewritePieces(p, [](std::string_view old, Piece &, std::string &out) {
                    if (old.front() != ' ')
                        out.push_back(' ');
                    out.append(old);
                });
        }
        if (m_regex)
            splitPieces(p, SplitBehavior::Isolated, regexSegments(*m_regex, false));
        if (!m_defer) {
            const ByteLevelTable &t = byteLevelTable();
            rewritePieces(p, [&t](std::string_view old, Piece &, std::string &out) {
                for (const char c : old)
                    out += t.byteToUtf8[static_cast<unsigned char>(c)];
            });
        }
    }

private:
    bool m_addPrefixSpace, m_useRegex, m_defer;
    const Regex *m_regex = nullptr;
};

class Split final : public PreTokenizer {
public:
    explicit Split(const Node &node)
    {
        m_regex = patternRegex(node.at("pattern"));
        m_behavior = parseSplitBehavior(node, "behavior");
        m_invert = node.boolean("invert", false);
    }
    void preTokenize(Pieces &p) const override { splitPieces(p, m_behavior, regexSegments(*m_regex, m_invert)); }

private:
    std::unique_ptr<Regex> m_regex;
    SplitBehavior m_behavior = SplitBehavior::Isolated;
    bool m_invert = false;
};

class Metaspace final : public PreTokenizer {
public:
    explicit Metaspace(const Node &node) : m_replacement(node.character("replacement"))
    {
        appendUtf8(m_rep, m_replacement);
        const std::string scheme = node.optStr("prepend_scheme", "always");
        if (scheme == "always") m_scheme = Scheme::Always;
        else if (scheme == "first") m_scheme = Scheme::First;
        else if (scheme == "never") m_scheme = Scheme::Never;
        else node.at("prepend_scheme").fail("unknown prepend scheme " + shortQuote(scheme));
        if (node.has("add_prefix_space") && !node.boolean("add_prefix_space", true)) {
            if (m_scheme != Scheme::Never)
                node.at("add_prefix_space").fail("add_prefix_space does not match declared prepend_scheme");
        }
        m_split = node.boolean("split", true);
    }
    void preTokenize(Pieces &p) const override
    {
        rewritePieces(p, [this](std::string_view old, Piece &piece, std::string &out) {
            const bool starts = old.substr(0, m_rep.size()) == m_rep || (old.front() == ' ');
            if (!starts && (m_scheme == Scheme::Always || (m_scheme == Scheme::First && piece.atOrigin)))
                out += m_rep;
            for (const char c : old) {
                if (c == ' ')
                    out += m_rep;
                else
                    out.push_back(c);
            }
        });
        if (m_split) {
            const char32_t r = m_replacement;
            splitPieces(p, SplitBehavior::MergedWithNext, charSegments([r](char32_t c) { return c == r; }));
        }
    }

private:
    enum class Scheme { Always, First, Never };
    char32_t m_replacement;
    std::string m_rep;
    Scheme m_scheme = Scheme::Always;
    bool m_split = true;
};

class CharSplit final : public PreTokenizer {
public:
    enum class Kind { Digits, Whitespace, Punctuation, Delimiter };
    CharSplit(Kind kind, SplitBehavior behavior, char32_t delimiter = 0)
        : m_kind(kind), m_behavior(behavior), m_delimiter(delimiter) {}
    void preTokenize(Pieces &p) const override
    {
        switch (m_kind) {
        case Kind::Digits: splitPieces(p, m_behavior, charSegments(isNumeric)); break;
        case Kind::Whitespace: splitPieces(p, m_behavior, charSegments(isWhiteSpace)); break;
        case Kind::Punctuation: splitPieces(p, m_behavior, charSegments(isPunctuation)); break;
        case Kind::Delimiter: {
            const char32_t d = m_delimiter;
            splitPieces(p, m_behavior, charSegments([d](char32_t c) { return c == d; }));
            break;
        }
        }
    }

private:
    Kind m_kind;
    SplitBehavior m_behavior;
    char32_t m_delimiter;
};

// Rust regex \w+|[^\w\s]+, kept; the rest removed: runs of word characters and runs of other
// non-space characters.
class Whitespace final : public PreTokenizer {
public:
    void preTokenize(Pieces &p) const override
    {
        splitPieces(p, SplitBehavior::Removed, [](std::string_view text, std::vector<Segment> &out) {
            out.clear();
            if (text.empty()) {
                out.push_back({0, 0, true});
                return;
            }
            int runClass = -1; // 0 word, 1 other, 2 space
            uint32_t runStart = 0;
            for (size_t i = 0; i < text.size();) {
                char32_t c = 0;
                const size_t n = decodeUtf8(text, i, c);
                const int cls = isRustWordChar(c) ? 0 : isWhiteSpace(c) ? 2 : 1;
                if (cls != runClass) {
                    if (runClass >= 0)
                        out.push_back({runStart, uint32_t(i), runClass == 2});
                    runClass = cls;
                    runStart = uint32_t(i);
                }
                i += n;
            }
            out.push_back({runStart, uint32_t(text.size()), runClass == 2});
        });
    }
};

class Sequence final : public PreTokenizer {
public:
    explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : m_steps(std::move(steps)) {}
    void preTokenize(Pieces &p) const override
    {
        for (const auto &step : m_steps)
            step->preTokenize(p);
    }

private:
    std::vector<std::unique_ptr<PreTokenizer>> m_steps;
};

} // namespace

bool endsWithByteLevel(const Node &node)
{
    const std::string type = node.type();
    if (type == "ByteLevel")
        return true;
    if (type == "Sequence") {
        const Node list = node.at("pretokenizers");
        return list.value().is_array() && list.size() > 0 && endsWithByteLevel(list[list.size() - 1]);
    }
    return false;
}

std::unique_ptr<PreTokenizer> makePreTokenizer(const Node &node, bool deferByteLevel)
{
    const std::string type = node.type();
    if (type == "ByteLevel")
        return std::make_unique<ByteLevel>(node, deferByteLevel);
    if (type == "Split")
        return std::make_unique<Split>(node);
    if (type == "Metaspace")
        return std::make_unique<Metaspace>(node);
    if (type == "Digits")
        return std::make_unique<CharSplit>(CharSplit::Kind::Digits, node.boolean("individual_digits", false)
                                                                        ? SplitBehavior::Isolated
                                                                        : SplitBehavior::Contiguous);
    if (type == "Whitespace")
        return std::make_unique<Whitespace>();
    if (type == "WhitespaceSplit")
        return std::make_unique<CharSplit>(CharSplit::Kind::Whitespace, SplitBehavior::Removed);
    if (type == "Punctuation")
        return std::make_unique<CharSplit>(CharSplit::Kind::Punctuation,
                                           node.has("behavior") ? parseSplitBehavior(node, "behavior")
                                                                : SplitBehavior::Isolated);
    if (type == "CharDelimiterSplit")
        return std::make_unique<CharSplit>(CharSplit::Kind::Delimiter, SplitBehavior::Removed, node.character("delimiter"));
    if (type == "BertPreTokenizer") {
        std::vector<std::unique_ptr<PreTokenizer>> steps;
        steps.push_back(std::make_unique<CharSplit>(CharSplit::Kind::Whitespace, SplitBehavior::Removed));
        steps.push_back(std::make_unique<CharSplit>(CharSplit::Kind::Punctuation, SplitBehavior::Isolated));
        return std::make_unique<Sequence>(std::move(steps));
    }
    if (type == "Sequence") {
        const Node list = node.at("pretokenizers");
        list.expectArray();
        std::vector<std::unique_ptr<PreTokenizer>> steps;
        for (size_t i = 0; i < list.size(); ++i)
            steps.push_back(makePreTokenizer(list[i], deferByteLevel && i + 1 == list.size()));
        return std::make_unique<Sequence>(std::move(steps));
    }
    node.unsupported("type " + shortQuote(type) + " is not supported");
}

} // namespace polymoe::detail::hf
