// Normalizers of tokenizer.json: Unicode forms, Lowercase, Replace, Prepend, Strip, StripAccents,
// Nmt, BertNormalizer, ByteLevel and Sequence. Each rewrites one piece of text (no offsets kept).
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

namespace polymoe::detail::hf {

namespace {

template <typename Keep, typename Map>
void filterMap(std::string &s, Keep keep, Map map)
{
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        char32_t c = 0;
        const size_t n = decodeUtf8(s, i, c);
        if (keep(c))
            appendUtf8(out, map(c));
        i += n;
    }
    s.swap(out);
}

class UnicodeNormalizer final : public Normalizer {
public:
    explicit UnicodeNormalizer(UnicodeForm form) : m_form(form) {}
    void normalize(std::string &s) const override
    {
        if (!isAscii(s))
            s = unicodeNormalize(s, m_form);
    }

private:
    UnicodeForm m_form;
};

void lowercase(std::string &s)
{
    if (isAscii(s)) {
        for (char &c : s)
            if (c >= 'A' && c <= 'Z')
                c = char(c + 32);
        return;
    }
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        char32_t c = 0;
        i += decodeUtf8(s, i, c);
        appendLowercase(out, c);
    }
    s.swap(out);
}

class Lowercase final : public Normalizer {
public:
    void normalize(std::string &s) const override { lowercase(s); }
};

class Replace final : public Normalizer {
public:
    Replace(const Node &node)
    {
        m_regex = patternRegex(node.at("pattern"));
        m_content = node.str("content");
    }
    void normalize(std::string &s) const override
    {
        std::vector<Span> matches;
        m_regex->findAll(s, matches);
        if (matches.empty())
            return;
        std::string out;
        out.reserve(s.size() + matches.size() * m_content.size());
        size_t last = 0;
        for (const Span &m : matches) {
            out.append(s, last, m.begin - last);
            out += m_content;
            last = m.end;
        }
        out.append(s, last, std::string::npos);
        s.swap(out);
    }

private:
    std::unique_ptr<Regex> m_regex;
    std::string m_content;
};

class Prepend final : public Normalizer {
public:
    explicit Prepend(std::string prefix) : m_prefix(std::move(prefix)) {}
    void normalize(std::string &s) const override
    {
        if (!s.empty())
            s.insert(0, m_prefix);
    }

private:
    std::string m_prefix;
};

class Strip final : public Normalizer {
public:
    Strip(bool left, bool right) : m_left(left), m_right(right) {}
    void normalize(std::string &s) const override
    {
        size_t begin = 0, end = s.size();
        if (m_left)
            begin = leadingSpaceLength(s);
        if (m_right)
            end = begin + trailingSpaceStart(std::string_view(s).substr(begin));
        s = s.substr(begin, end - begin);
    }

private:
    bool m_left, m_right;
};

class StripAccents final : public Normalizer {
public:
    void normalize(std::string &s) const override
    {
        if (!isAscii(s))
            filterMap(s, [](char32_t c) { return !isMark(c); }, [](char32_t c) { return c; });
    }
};

class Nmt final : public Normalizer {
public:
    void normalize(std::string &s) const override
    {
        filterMap(
            s,
            [](char32_t c) {
                return !((c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                         c == 0x8F || c == 0x9F);
            },
            [](char32_t c) -> char32_t {
                switch (c) {
                case 0x09: case 0x0A: case 0x0C: case 0x0D: case 0x1680: case 0x2028: case 0x2029:
                case 0x2581: case 0xFEFF: case 0xFFFD:
                    return ' ';
                default:
                    return c >= 0x200B && c <= 0x200F ? char32_t(' ') : c;
                }
            });
    }
};

class BertNormalizer final : public Normalizer {
public:
    explicit BertNormalizer(const Node &node)
        : m_cleanText(node.boolean("clean_text", true)), m_chinese(node.boolean("handle_chinese_chars", true)),
          m_lowercase(node.boolean("lowercase", true))
    {
        m_stripAccents = node.boolean("strip_accents", m_lowercase);
    }
    void normalize(std::string &s) const override
    {
        if (m_cleanText) {
            filterMap(
                s,
                [](char32_t c) {
                    if (c == '\t' || c == '\n' || c == '\r')
                        return true;
                    return !(c == 0 || c == 0xFFFD || isOther(c));
                },
                [](char32_t c) { return c == '\t' || c == '\n' || c == '\r' || isWhiteSpace(c) ? char32_t(' ') : c; });
        }
        if (m_chinese && !isAscii(s)) {
            std::string out;
            for (size_t i = 0; i < s.size();) {
                char32_t c = 0;
                i += decodeUtf8(s, i, c);
                const bool cjk = (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
                                 (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
                                 (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
                                 (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
                if (cjk)
                    out.push_back(' ');
                appendUtf8(out, c);
                if (cjk)
                    out.push_back(' ');
            }
            s.swap(out);
        }
        if (m_stripAccents && !isAscii(s)) {
            s = unicodeNormalize(s, UnicodeForm::NFD);
            filterMap(s, [](char32_t c) { return !isNonspacingMark(c); }, [](char32_t c) { return c; });
        }
        if (m_lowercase)
            lowercase(s);
    }

private:
    bool m_cleanText, m_chinese, m_lowercase, m_stripAccents;
};

class ByteLevelNormalizer final : public Normalizer {
public:
    void normalize(std::string &s) const override
    {
        const ByteLevelTable &t = byteLevelTable();
        std::string out;
        out.reserve(s.size() * 2);
        for (const char c : s)
            out += t.byteToUtf8[static_cast<unsigned char>(c)];
        s.swap(out);
    }
};

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : m_steps(std::move(steps)) {}
    void normalize(std::string &s) const override
    {
        for (const auto &step : m_steps)
            step->normalize(s);
    }

private:
    std::vector<std::unique_ptr<Normalizer>> m_steps;
};

} // namespace

std::unique_ptr<Normalizer> makeNormalizer(const Node &node)
{
    const std::string type = node.type();
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFC);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFD);
    if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKC);
    if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::NFKD);
    if (type == "Lowercase") return std::make_unique<Lowercase>();
    if (type == "Replace") return std::make_unique<Replace>(node);
    if (type == "Prepend") return std::make_unique<Prepend>(node.str("prepend"));
    if (type == "Strip") return std::make_unique<Strip>(node.boolean("strip_left", false), node.boolean("strip_right", false));
    if (type == "StripAccents") return std::make_unique<StripAccents>();
    if (type == "Nmt") return std::make_unique<Nmt>();
    if (type == "BertNormalizer") return std::make_unique<BertNormalizer>(node);
    if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
    if (type == "Sequence") {
        const Node list = node.at("normalizers");
        list.expectArray();
        std::vector<std::unique_ptr<Normalizer>> steps;
        for (size_t i = 0; i < list.size(); ++i)
            steps.push_back(makeNormalizer(list[i]));
        return std::make_unique<SequenceNormalizer>(std::move(steps));
    }
    node.unsupported("type " + shortQuote(type) + " is not supported");
}

} // namespace polymoe::detail::hf
