// Decoders of tokenizer.json: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece,
// BPEDecoder, CTC and Sequence, each a step on the list of token strings (tokenizers' decode_chain).
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

namespace polymoe::detail::hf {

namespace {

std::vector<char32_t> toChars(std::string_view s)
{
    std::vector<char32_t> out;
    for (size_t i = 0; i < s.size();) {
        char32_t c = 0;
        i += decodeUtf8(s, i, c);
        out.push_back(c);
    }
    return out;
}

void replaceAll(std::string &s, std::string_view from, std::string_view to)
{
    if (from.empty())
        return;
    std::string out;
    size_t last = 0;
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, last)) {
        out.append(s, last, pos - last);
        out.append(to);
        last = pos + from.size();
    }
    if (last == 0)
        return;
    out.append(s, last, std::string::npos);
    s.swap(out);
}

void wordPieceCleanup(std::string &s)
{
    static const std::pair<const char *, const char *> rules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto &[from, to] : rules)
        replaceAll(s, from, to);
}

class ByteLevelDecoder final : public Decoder {
public:
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        const ByteLevelTable &t = byteLevelTable();
        std::string bytes;
        for (const std::string &token : tokens) {
            const size_t mark = bytes.size();
            bool all = true;
            for (size_t i = 0; i < token.size() && all;) {
                char32_t c = 0;
                i += decodeUtf8(token, i, c);
                const auto it = t.charToByte.find(c);
                if (it == t.charToByte.end())
                    all = false;
                else
                    bytes.push_back(char(it->second));
            }
            if (!all) {
                bytes.resize(mark);
                bytes += token;
            }
        }
        tokens.assign(1, utf8Lossy(bytes));
    }
};

class MetaspaceDecoder final : public Decoder {
public:
    explicit MetaspaceDecoder(const Node &node) : m_replacement(node.character("replacement"))
    {
        const std::string scheme = node.optStr("prepend_scheme", "always");
        m_prepend = scheme != "never";
        if (node.has("add_prefix_space") && !node.boolean("add_prefix_space", true))
            m_prepend = false;
    }
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            const std::string &token = tokens[i];
            for (size_t k = 0; k < token.size();) {
                char32_t c = 0;
                const size_t n = decodeUtf8(token, k, c);
                if (c == m_replacement) {
                    if (!(i == 0 && m_prepend))
                        out.push_back(' ');
                } else {
                    out.append(token, k, n);
                }
                k += n;
            }
            tokens[i].swap(out);
        }
    }

private:
    char32_t m_replacement;
    bool m_prepend = true;
};

class ByteFallbackDecoder final : public Decoder {
public:
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        std::vector<std::string> out;
        std::string pending;
        auto flush = [&] {
            if (pending.empty())
                return;
            if (isValidUtf8(pending))
                out.push_back(pending);
            else
                for (size_t i = 0; i < pending.size(); ++i)
                    out.emplace_back("\xEF\xBF\xBD");
            pending.clear();
        };
        for (std::string &token : tokens) {
            int byte = -1;
            if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>')
                byte = parseHexByte(token[3], token[4]);
            if (byte >= 0) {
                pending.push_back(char(byte));
            } else {
                flush();
                out.push_back(std::move(token));
            }
        }
        flush();
        tokens.swap(out);
    }

private:
    static int hexValue(char c)
    {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    // Rust's u8::from_str_radix(.., 16) on two bytes: a leading '+' is allowed.
    static int parseHexByte(char a, char b)
    {
        const int hb = hexValue(b);
        if (hb < 0)
            return -1;
        if (a == '+')
            return hb;
        const int ha = hexValue(a);
        return ha < 0 ? -1 : ha * 16 + hb;
    }
};

class FuseDecoder final : public Decoder {
public:
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        std::string all;
        for (const std::string &t : tokens)
            all += t;
        tokens.assign(1, std::move(all));
    }
};

class StripDecoder final : public Decoder {
public:
    explicit StripDecoder(const Node &node)
        : m_content(node.character("content")), m_start(size_t(node.integer("start", 0, 0, 1 << 20))),
          m_stop(size_t(node.integer("stop", 0, 0, 1 << 20))) {}
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        for (std::string &token : tokens) {
            const std::vector<char32_t> chars = toChars(token);
            size_t startCut = 0;
            for (size_t i = 0; i < m_start && i < chars.size() && chars[i] == m_content; ++i)
                startCut = i + 1;
            size_t stopCut = chars.size();
            for (size_t i = 0; i < m_stop && i < chars.size(); ++i) {
                const size_t index = chars.size() - i - 1;
                if (chars[index] != m_content)
                    break;
                stopCut = index;
            }
            std::string out;
            for (size_t i = startCut; i < stopCut; ++i)
                appendUtf8(out, chars[i]);
            token.swap(out);
        }
    }

private:
    char32_t m_content;
    size_t m_start, m_stop;
};

class ReplaceDecoder final : public Decoder {
public:
    explicit ReplaceDecoder(const Node &node)
    {
        m_regex = patternRegex(node.at("pattern"));
        m_content = node.str("content");
    }
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        std::vector<Span> matches;
        for (std::string &token : tokens) {
            matches.clear();
            if (token.empty())
                continue;
            m_regex->findAll(token, matches);
            if (matches.empty())
                continue;
            std::string out;
            size_t last = 0;
            for (const Span &m : matches) {
                out.append(token, last, m.begin - last);
                out += m_content;
                last = m.end;
            }
            out.append(token, last, std::string::npos);
            token.swap(out);
        }
    }

private:
    std::unique_ptr<Regex> m_regex;
    std::string m_content;
};

class WordPieceDecoder final : public Decoder {
public:
    explicit WordPieceDecoder(const Node &node)
        : m_prefix(node.optStr("prefix", "##")), m_cleanup(node.boolean("cleanup", true)) {}
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string &token = tokens[i];
            if (i != 0) {
                if (token.compare(0, m_prefix.size(), m_prefix) == 0)
                    token.erase(0, m_prefix.size());
                else
                    token = " " + token;
            }
            if (m_cleanup)
                wordPieceCleanup(token);
        }
    }

private:
    std::string m_prefix;
    bool m_cleanup;
};

class BpeDecoder final : public Decoder {
public:
    explicit BpeDecoder(const Node &node) : m_suffix(node.optStr("suffix", "</w>")) {}
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        for (size_t i = 0; i < tokens.size(); ++i)
            replaceAll(tokens[i], m_suffix, i + 1 == tokens.size() ? "" : " ");
    }

private:
    std::string m_suffix;
};

class CtcDecoder final : public Decoder {
public:
    explicit CtcDecoder(const Node &node)
        : m_pad(node.optStr("pad_token", "<pad>")), m_delimiter(node.optStr("word_delimiter_token", "|")),
          m_cleanup(node.boolean("cleanup", true)) {}
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        std::vector<std::string> out;
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0 && tokens[i] == tokens[i - 1])
                continue;
            std::string t = tokens[i];
            replaceAll(t, m_pad, "");
            if (m_cleanup) {
                wordPieceCleanup(t);
                replaceAll(t, m_delimiter, " ");
            }
            if (!t.empty())
                out.push_back(std::move(t));
        }
        tokens.swap(out);
    }

private:
    std::string m_pad, m_delimiter;
    bool m_cleanup;
};

class SequenceDecoder final : public Decoder {
public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : m_steps(std::move(steps)) {}
    void decodeChain(std::vector<std::string> &tokens) const override
    {
        for (const auto &s : m_steps)
            s->decodeChain(tokens);
    }

private:
    std::vector<std::unique_ptr<Decoder>> m_steps;
};

} // namespace

std::unique_ptr<Decoder> makeDecoder(const Node &node)
{
    const std::string type = node.type();
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Metaspace") return std::make_unique<MetaspaceDecoder>(node);
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") return std::make_unique<StripDecoder>(node);
    if (type == "Replace") return std::make_unique<ReplaceDecoder>(node);
    if (type == "WordPiece") return std::make_unique<WordPieceDecoder>(node);
    if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(node);
    if (type == "CTC") return std::make_unique<CtcDecoder>(node);
    if (type == "Sequence") {
        const Node list = node.at("decoders");
        list.expectArray();
        std::vector<std::unique_ptr<Decoder>> steps;
        for (size_t i = 0; i < list.size(); ++i)
            steps.push_back(makeDecoder(list[i]));
        return std::make_unique<SequenceDecoder>(std::move(steps));
    }
    node.unsupported("type " + shortQuote(type) + " is not supported");
}

} // namespace polymoe::detail::hf
