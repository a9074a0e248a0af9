// Added tokens: ids assigned as tokenizers' add_tokens does, and the leftmost-longest search with
// single_word, lstrip and rstrip (tokenizers' AddedVocabulary::find_matches).
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

#include <algorithm>

namespace polymoe::detail::hf {

void TokenTrie::add(std::string_view pattern, int32_t value)
{
    if (pattern.empty())
        return;
    int32_t node = 0;
    for (const char ch : pattern) {
        const auto c = static_cast<unsigned char>(ch);
        auto &next = m_nodes[size_t(node)].next;
        auto it = std::lower_bound(next.begin(), next.end(), c,
                                   [](const std::pair<unsigned char, int32_t> &e, unsigned char b) { return e.first < b; });
        if (it != next.end() && it->first == c) {
            node = it->second;
        } else {
            const auto created = int32_t(m_nodes.size());
            next.insert(it, {c, created});
            m_nodes.emplace_back();
            node = created;
        }
    }
    m_nodes[size_t(node)].value = value;
    m_first[static_cast<unsigned char>(pattern[0])] = true;
}

size_t TokenTrie::longestAt(std::string_view s, size_t pos, int32_t &value) const
{
    size_t best = 0;
    int32_t node = 0;
    for (size_t i = pos; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        const auto &next = m_nodes[size_t(node)].next;
        auto it = std::lower_bound(next.begin(), next.end(), c,
                                   [](const std::pair<unsigned char, int32_t> &e, unsigned char b) { return e.first < b; });
        if (it == next.end() || it->first != c)
            break;
        node = it->second;
        if (m_nodes[size_t(node)].value >= 0) {
            best = i + 1 - pos;
            value = m_nodes[size_t(node)].value;
        }
    }
    return best;
}

int32_t AddedVocabulary::add(const AddedToken &token, const Model &model, const Normalizer *normalizer)
{
    if (token.content.empty())
        return -1;
    if (m_nextId < 0) // tokenizers starts after the model's vocabulary size (its entry count)
        m_nextId = int32_t(model.vocab().size());
    if (const auto it = m_byContent.find(token.content); it != m_byContent.end()) {
        if (const auto t = m_byId.find(it->second); t != m_byId.end() && t->second == token)
            return it->second;
    }
    int32_t id = idOf(token.content);
    if (id < 0) {
        const auto it = model.vocab().find(token.content);
        id = it != model.vocab().end() ? it->second : m_nextId++;
    }
    if (token.normalized && normalizer) {
        std::string normed = token.content;
        normalizer->normalize(normed);
        if (normed != token.content)
            m_normalizedForm[id] = std::move(normed);
    }
    m_byContent[token.content] = id;
    if (token.special)
        m_special[token.content] = true;
    m_byId[id] = token;
    m_maxId = std::max(m_maxId, id);
    return id;
}

void AddedVocabulary::build()
{
    m_rawTrie = TokenTrie();
    m_normTrie = TokenTrie();
    // Sorted by id so that two tokens with the same pattern resolve the same way every run.
    std::vector<int32_t> ids;
    for (const auto &[id, token] : m_byId)
        ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (const int32_t id : ids) {
        const AddedToken &token = m_byId.at(id);
        if (token.normalized) {
            const auto it = m_normalizedForm.find(id);
            m_normTrie.add(it != m_normalizedForm.end() ? std::string_view(it->second) : std::string_view(token.content), id);
        } else {
            m_rawTrie.add(token.content, id);
        }
    }
}

const AddedToken *AddedVocabulary::token(int32_t id) const
{
    const auto it = m_byId.find(id);
    return it == m_byId.end() ? nullptr : &it->second;
}

const std::string *AddedVocabulary::decodeForm(int32_t id) const
{
    const auto n = m_normalizedForm.find(id);
    if (n != m_normalizedForm.end())
        return &n->second;
    const auto it = m_byId.find(id);
    return it == m_byId.end() ? nullptr : &it->second.content;
}

int32_t AddedVocabulary::idOf(std::string_view content) const
{
    const auto it = m_byContent.find(content);
    return it == m_byContent.end() ? -1 : it->second;
}

bool AddedVocabulary::isSpecialContent(std::string_view content) const { return m_special.find(content) != m_special.end(); }

namespace {

char32_t lastChar(std::string_view s)
{
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
        --start;
    char32_t c = 0;
    decodeUtf8(s, start, c);
    return c;
}


} // namespace

void AddedVocabulary::split(std::string_view s, bool normalizedSet, std::vector<Match> &out) const
{
    out.clear();
    const TokenTrie &trie = normalizedSet ? m_normTrie : m_rawTrie;
    const auto length = uint32_t(s.size());
    if (s.empty() || trie.empty()) {
        out.push_back({0, length, -1});
        return;
    }
    uint32_t startOffset = 0;
    size_t pos = 0;
    while (pos < s.size()) {
        if (!trie.mayStartWith(static_cast<unsigned char>(s[pos]))) {
            ++pos;
            continue;
        }
        int32_t id = -1;
        const size_t n = trie.longestAt(s, pos, id);
        if (n == 0) {
            ++pos;
            continue;
        }
        size_t start = pos, stop = pos + n;
        pos = stop; // the search goes on after the match, whatever happens to it
        const AddedToken &token = m_byId.at(id);
        if (token.singleWord) {
            const bool spaceBefore = start == 0 || !isRustWordChar(lastChar(s.substr(0, start)));
            bool spaceAfter = stop == s.size();
            if (!spaceAfter) {
                char32_t c = 0;
                decodeUtf8(s, stop, c);
                spaceAfter = !isRustWordChar(c);
            }
            if (!spaceBefore || !spaceAfter)
                continue;
        }
        if (token.lstrip)
            start = std::max<size_t>(trailingSpaceStart(s.substr(0, start)), startOffset);
        if (token.rstrip)
            stop += leadingSpaceLength(s.substr(stop));
        if (startOffset < start)
            out.push_back({startOffset, uint32_t(start), -1});
        out.push_back({uint32_t(start), uint32_t(stop), id});
        startOffset = uint32_t(stop);
    }
    if (startOffset != length)
        out.push_back({startOffset, length, -1});
}

} // namespace polymoe::detail::hf
