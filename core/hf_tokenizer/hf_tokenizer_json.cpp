// Reading tokenizer.json safely: a nesting limit checked before parsing, and typed accessors whose
// errors name the file and the JSON path but never echo the file's content.
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

namespace polymoe::detail::hf {

std::string shortQuote(std::string_view s)
{
    static const char *hex = "0123456789abcdef";
    std::string out = "'";
    const size_t n = std::min<size_t>(s.size(), 40);
    for (size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
            out.push_back(char(c));
        } else {
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    if (s.size() > n)
        out += "...";
    return out + "'";
}

Json parseJson(const std::string &text, const std::string &file, int maxDepth)
{
    // Count nesting outside strings first: nlohmann's parser is iterative, but deep values are
    // still costly to build and to destroy.
    int depth = 0;
    bool inString = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '[' || c == '{') {
            if (++depth > maxDepth)
                throw FormatError(file + ": JSON nested deeper than " + std::to_string(maxDepth) + " levels at byte " +
                                  std::to_string(i));
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    try {
        return Json::parse(text, nullptr, true, false);
    } catch (const Json::parse_error &e) {
        if (e.byte >= text.size())
            throw FormatError(file + ": not valid JSON: the file ends early (truncated?) at byte " +
                              std::to_string(text.size()));
        // nlohmann's message quotes the text it read: keep only the kind of error.
        std::string what = e.what();
        std::string kind = "syntax error";
        if (what.find("invalid string") != std::string::npos)
            kind = "invalid string";
        else if (what.find("invalid number") != std::string::npos)
            kind = "invalid number";
        else if (what.find("invalid literal") != std::string::npos)
            kind = "invalid literal";
        throw FormatError(file + ": not valid JSON: " + kind + " at byte " + std::to_string(e.byte == 0 ? 0 : e.byte - 1));
    } catch (const Json::exception &) { // out_of_range 406: a number beyond a double's range
        throw FormatError(file + ": not valid JSON: a number is out of range");
    }
}

bool Node::has(const char *key) const
{
    if (!m_value->is_object())
        return false;
    const auto it = m_value->find(key);
    return it != m_value->end() && !it->is_null();
}

Node Node::at(const char *key) const
{
    expectObject();
    const auto it = m_value->find(key);
    const std::string path = m_path.empty() ? key : m_path + "." + key;
    if (it == m_value->end())
        throw FormatError(*m_file + ": " + path + ": missing");
    return Node(*it, path, *m_file);
}

Node Node::operator[](size_t i) const
{
    expectArray();
    return Node((*m_value)[i], m_path + "[" + std::to_string(i) + "]", *m_file);
}

size_t Node::size() const
{
    if (!m_value->is_array() && !m_value->is_object())
        fail("expected an array or an object");
    return m_value->size();
}

std::string Node::asString() const
{
    if (!m_value->is_string())
        fail("expected a string");
    return m_value->get<std::string>();
}

int64_t Node::asInteger(int64_t lo, int64_t hi) const
{
    if (m_value->is_number_unsigned()) {
        const auto v = m_value->get<uint64_t>();
        if (v > uint64_t(hi))
            fail("value " + std::to_string(v) + " out of range (at most " + std::to_string(hi) + ")");
        return int64_t(v);
    }
    if (m_value->is_number_integer()) {
        const auto v = m_value->get<int64_t>();
        if (v < lo || v > hi)
            fail("value " + std::to_string(v) + " out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")");
        return v;
    }
    fail("expected an integer");
}

std::string Node::str(const char *key) const { return at(key).asString(); }

std::string Node::optStr(const char *key, const std::string &fallback) const
{
    return has(key) ? at(key).asString() : fallback;
}

bool Node::boolean(const char *key, bool fallback) const
{
    if (!has(key))
        return fallback;
    const Node n = at(key);
    if (!n.value().is_boolean())
        n.fail("expected true or false");
    return n.value().get<bool>();
}

int64_t Node::integer(const char *key, int64_t fallback, int64_t lo, int64_t hi) const
{
    return has(key) ? at(key).asInteger(lo, hi) : fallback;
}

char32_t Node::character(const char *key) const
{
    const Node n = at(key);
    const std::string s = n.asString();
    if (s.empty() || !isValidUtf8(s))
        n.fail("expected one character");
    char32_t cp = 0;
    if (decodeUtf8(s, 0, cp) != s.size())
        n.fail("expected one character");
    return cp;
}

std::string Node::type() const
{
    expectObject();
    if (!has("type"))
        fail("no \"type\"");
    const Node t = at("type");
    const std::string s = t.asString();
    bool name = !s.empty() && s.size() <= 40;
    for (const char c : s)
        name = name && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    if (!name)
        unsupported("type " + shortQuote(s) + " is not supported");
    return s;
}

void Node::expectObject() const
{
    if (!m_value->is_object())
        fail("expected an object");
}

void Node::expectArray() const
{
    if (!m_value->is_array())
        fail("expected an array");
}

void Node::fail(const std::string &problem) const
{
    throw FormatError(*m_file + ": " + (m_path.empty() ? std::string("top level") : m_path) + ": " + problem);
}

void Node::unsupported(const std::string &problem) const
{
    throw ConfigError(*m_file + ": " + (m_path.empty() ? std::string("top level") : m_path) + ": " + problem);
}

} // namespace polymoe::detail::hf
