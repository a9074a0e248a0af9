// The BPE model of tokenizer.json: vocabulary and merges, the merge loop (a heap of ranked pairs over a
// linked list of symbols, as tokenizers' Word::merge_all), byte fallback, unk fusing, the word cache.
#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

#include <cmath>
#include <cstring>
#include <sstream>
#include <algorithm>

namespace polymoe::detail::hf {

// ---- Hashing and the word cache ------------------------------------------------------------------

namespace {
inline uint64_t mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}
} // namespace

uint64_t hashBytes(std::string_view s)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
    const char *p = s.data();
    size_t n = s.size();
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix(h ^ w) + 0x632BE59BD9B4E019ULL;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0;
        std::memcpy(&w, p, n);
        h = mix(h ^ w);
    }
    return h | 1; // 0 marks an empty slot
}

WordCache::WordCache(size_t slots) : m_slots(slots) {}

void WordCache::clear()
{
    std::fill(m_slots.begin(), m_slots.end(), Slot{});
    m_keys.clear();
    m_ids.clear();
    m_count = 0;
}

bool WordCache::find(std::string_view word, std::vector<int32_t> &out) const
{
    const uint64_t h = hashBytes(word);
    const size_t mask = m_slots.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const Slot &s = m_slots[i];
        if (s.hash == 0)
            return false;
        if (s.hash == h && s.keyLength == word.size() &&
            std::memcmp(m_keys.data() + s.keyOffset, word.data(), word.size()) == 0) {
            out.insert(out.end(), m_ids.begin() + s.idsOffset, m_ids.begin() + s.idsOffset + s.idsLength);
            return true;
        }
    }
}

void WordCache::insert(std::string_view word, const int32_t *ids, size_t n)
{
    if (word.size() > kMaxWordBytes)
        return;
    if (m_count * 2 >= m_slots.size() || m_keys.size() > (size_t(1) << 24))
        clear();
    const uint64_t h = hashBytes(word);
    const size_t mask = m_slots.size() - 1;
    size_t i = h & mask;
    while (m_slots[i].hash != 0) {
        const Slot &s = m_slots[i];
        if (s.hash == h && s.keyLength == word.size() &&
            std::memcmp(m_keys.data() + s.keyOffset, word.data(), word.size()) == 0)
            return;
        i = (i + 1) & mask;
    }
    m_slots[i] = Slot{h, uint32_t(m_keys.size()), uint32_t(word.size()), uint32_t(m_ids.size()), uint32_t(n)};
    m_keys.append(word);
    m_ids.insert(m_ids.end(), ids, ids + n);
    ++m_count;
}

namespace {

constexpr int64_t kMaxId = (int64_t(1) << 24) - 1; // ids beyond this are refused (dense tables)

// (left id, right id) -> (rank, merged id), open addressing.
class PairMap {
public:
    struct Entry {
        uint64_t key = ~uint64_t(0);
        uint32_t rank = 0;
        int32_t merged = -1;
    };
    void reserve(size_t n)
    {
        size_t cap = 16;
        while (cap < n * 2)
            cap <<= 1;
        m_slots.assign(cap, Entry{});
        m_mask = cap - 1;
    }
    // A later merge of the same pair replaces the earlier one (tokenizers collects into a HashMap).
    void assign(int32_t a, int32_t b, uint32_t rank, int32_t merged)
    {
        const uint64_t k = key(a, b);
        for (size_t i = mix(k) & m_mask;; i = (i + 1) & m_mask) {
            if (m_slots[i].key == k || m_slots[i].key == ~uint64_t(0)) {
                m_slots[i] = Entry{k, rank, merged};
                return;
            }
        }
    }
    const Entry *find(int32_t a, int32_t b) const
    {
        const uint64_t k = key(a, b);
        for (size_t i = mix(k) & m_mask;; i = (i + 1) & m_mask) {
            const Entry &e = m_slots[i];
            if (e.key == k)
                return &e;
            if (e.key == ~uint64_t(0))
                return nullptr;
        }
    }

private:
    static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
    std::vector<Entry> m_slots;
    size_t m_mask = 0;
};

struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
};

struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
};
struct CandidateAfter {
    bool operator()(const Candidate &a, const Candidate &b) const
    {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    }
};

class Bpe final : public Model {
public:
    Bpe(const Node &node, bool rawBytes);

    void tokenize(std::string_view word, std::vector<int32_t> &out, WordCache *cache) const override
    {
        if (cache && cache->find(word, out))
            return;
        const size_t before = out.size();
        tokenizeUncached(word, out);
        if (cache)
            cache->insert(word, out.data() + before, out.size() - before);
    }
    const Vocab &vocab() const override { return m_vocab; }
    const std::string *idToToken(int32_t id) const override
    {
        return id >= 0 && size_t(id) < m_idToToken.size() && m_present[size_t(id)] ? &m_idToToken[size_t(id)] : nullptr;
    }
    int32_t maxId() const override { return int32_t(m_idToToken.size()) - 1; }
    int32_t unkId() const override
    {
        if (!m_hasUnk)
            return -1;
        const auto it = m_vocab.find(m_unk);
        return it == m_vocab.end() ? -1 : it->second;
    }
    std::string unkToken() const override { return m_hasUnk ? m_unk : std::string(); }

private:
    void tokenizeUncached(std::string_view word, std::vector<int32_t> &out) const;
    void initialSymbols(std::string_view w, std::vector<Symbol> &symbols) const;
    void mergeAll(std::vector<Symbol> &symbols) const;
    int32_t lookup(std::string_view s) const
    {
        const auto it = m_vocab.find(s);
        return it == m_vocab.end() ? -1 : it->second;
    }

    Vocab m_vocab;
    std::vector<std::string> m_idToToken;
    std::vector<uint8_t> m_present;
    PairMap m_merges;
    std::string m_unk, m_prefix, m_suffix;
    bool m_hasUnk = false, m_fuseUnk = false, m_byteFallback = false, m_ignoreMerges = false;
    bool m_raw = false;
    int32_t m_fallbackIds[256];
    int32_t m_byteIds[256]; // raw mode: the id of each byte's character, -1 when absent
    bool m_allBytesKnown = false;
    std::string m_where;
};

void readVocab(const Node &node, Vocab &vocab, std::vector<std::string> &idToToken, std::vector<uint8_t> &present)
{
    const Node v = node.at("vocab");
    v.expectObject();
    vocab.reserve(v.size());
    int64_t maxId = -1;
    for (auto it = v.value().begin(); it != v.value().end(); ++it) {
        const Node entry(it.value(), v.path() + "[" + shortQuote(it.key()) + "]", node.file());
        const int64_t id = entry.asInteger(0, kMaxId);
        vocab.emplace(it.key(), int32_t(id));
        maxId = std::max(maxId, id);
    }
    idToToken.assign(size_t(maxId + 1), std::string());
    present.assign(size_t(maxId + 1), 0);
    for (const auto &[token, id] : vocab) {
        if (present[size_t(id)]) {
            const auto &a = std::min(token, idToToken[size_t(id)]), &b = std::max(token, idToToken[size_t(id)]);
            v.fail("id " + std::to_string(id) + " is given to two tokens, " + shortQuote(a) + " and " + shortQuote(b));
        }
        present[size_t(id)] = 1;
        idToToken[size_t(id)] = token;
    }
}

Bpe::Bpe(const Node &node, bool rawBytes) : m_raw(rawBytes), m_where(node.file() + ": " + node.path())
{
    if (node.has("dropout")) {
        const Node d = node.at("dropout");
        if (!d.value().is_number())
            d.fail("expected a number or null");
        const double p = d.value().get<double>();
        if (!(p >= 0.0 && p <= 1.0))
            d.fail("dropout must be between 0 and 1");
        if (p != 0.0) {
            std::ostringstream value;
            value << p;
            d.unsupported("BPE dropout " + value.str() + " is not supported (encoding would be random); only null or 0");
        }
    }
    m_hasUnk = node.has("unk_token");
    m_unk = node.optStr("unk_token");
    m_prefix = node.optStr("continuing_subword_prefix");
    m_suffix = node.optStr("end_of_word_suffix");
    m_fuseUnk = node.boolean("fuse_unk", false);
    m_byteFallback = node.boolean("byte_fallback", false);
    m_ignoreMerges = node.boolean("ignore_merges", false);
    readVocab(node, m_vocab, m_idToToken, m_present);

    const Node merges = node.at("merges");
    merges.expectArray();
    m_merges.reserve(merges.size());
    uint32_t rank = 0;
    std::string joined;
    for (size_t i = 0; i < merges.size(); ++i) {
        const Node m = merges[i];
        std::string a, b;
        if (m.value().is_string()) {
            const std::string line = m.asString();
            if (line.rfind("#version", 0) == 0)
                continue;
            const auto space = line.find(' ');
            if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
                m.fail("expected two tokens separated by one space");
            a = line.substr(0, space);
            b = line.substr(space + 1);
        } else if (m.value().is_array() && m.value().size() == 2) {
            a = m[0].asString();
            b = m[1].asString();
        } else {
            m.fail("expected \"a b\" or [\"a\", \"b\"]");
        }
        const int32_t ia = lookup(a), ib = lookup(b);
        if (ia < 0)
            m.fail("token " + shortQuote(a) + " is not in the vocabulary");
        if (ib < 0)
            m.fail("token " + shortQuote(b) + " is not in the vocabulary");
        if (b.size() < m_prefix.size())
            m.fail("token " + shortQuote(b) + " is shorter than the continuing subword prefix");
        joined = a;
        joined.append(b, m_prefix.size(), std::string::npos);
        const int32_t merged = lookup(joined);
        if (merged < 0)
            m.fail("the merged token " + shortQuote(joined) + " is not in the vocabulary");
        m_merges.assign(ia, ib, rank++, merged);
    }

    static const char *hex = "0123456789ABCDEF";
    for (int byte = 0; byte < 256; ++byte) {
        const std::string code = std::string("<0x") + hex[byte >> 4] + hex[byte & 15] + ">";
        m_fallbackIds[byte] = m_byteFallback ? lookup(code) : -1;
    }
    const ByteLevelTable &t = byteLevelTable();
    m_allBytesKnown = m_prefix.empty() && m_suffix.empty();
    for (int byte = 0; byte < 256; ++byte) {
        m_byteIds[byte] = lookup(t.byteToUtf8[byte]);
        m_allBytesKnown = m_allBytesKnown && m_byteIds[byte] >= 0;
    }
}

void Bpe::initialSymbols(std::string_view w, std::vector<Symbol> &symbols) const
{
    auto add = [&symbols](int32_t id) {
        const auto n = int32_t(symbols.size());
        symbols.push_back({id, n - 1, -1, true});
        if (n > 0)
            symbols[size_t(n - 1)].next = n;
    };
    int32_t unkId = -1;
    bool unkPending = false;
    std::string key;
    for (size_t i = 0; i < w.size();) {
        const size_t n = utf8Length(static_cast<unsigned char>(w[i]));
        const bool first = i == 0, last = i + n >= w.size();
        std::string_view s = w.substr(i, n);
        if ((!first && !m_prefix.empty()) || (last && !m_suffix.empty())) {
            key.clear();
            if (!first)
                key += m_prefix;
            key.append(s);
            if (last)
                key += m_suffix;
            s = key;
        }
        i += n;
        const int32_t id = lookup(s);
        if (id >= 0) {
            if (unkPending) {
                add(unkId);
                unkPending = false;
            }
            add(id);
            continue;
        }
        if (m_byteFallback) {
            bool all = true;
            for (const char c : s)
                all = all && m_fallbackIds[static_cast<unsigned char>(c)] >= 0;
            if (all) {
                for (const char c : s)
                    add(m_fallbackIds[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        if (!m_hasUnk)
            continue; // tokenizers drops the character
        if (unkId < 0) {
            unkId = lookup(m_unk);
            if (unkId < 0)
                throw ConfigError(m_where + ": the unk token " + shortQuote(m_unk) + " is not in the vocabulary");
        }
        if (unkPending && !m_fuseUnk)
            add(unkId);
        unkPending = true;
    }
    if (unkPending)
        add(unkId);
}

void Bpe::mergeAll(std::vector<Symbol> &symbols) const
{
    if (symbols.size() < 2)
        return;
    thread_local std::vector<Candidate> heap;
    heap.clear();
    const CandidateAfter after;
    auto push = [&](const Candidate &c) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), after);
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i)
        if (const auto *m = m_merges.find(symbols[i].id, symbols[i + 1].id))
            heap.push_back({m->rank, uint32_t(i), m->merged});
    std::make_heap(heap.begin(), heap.end(), after);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), after);
        const Candidate top = heap.back();
        heap.pop_back();
        Symbol &cur = symbols[top.pos];
        if (!cur.alive || cur.next < 0)
            continue;
        Symbol &right = symbols[size_t(cur.next)];
        const auto *m = m_merges.find(cur.id, right.id);
        if (!m || m->merged != top.merged) // an outdated candidate
            continue;
        cur.id = top.merged;
        right.alive = false;
        cur.next = right.next;
        if (right.next >= 0)
            symbols[size_t(right.next)].prev = int32_t(top.pos);
        if (cur.prev >= 0)
            if (const auto *l = m_merges.find(symbols[size_t(cur.prev)].id, cur.id))
                push({l->rank, uint32_t(cur.prev), l->merged});
        if (cur.next >= 0)
            if (const auto *r = m_merges.find(cur.id, symbols[size_t(cur.next)].id))
                push({r->rank, top.pos, r->merged});
    }
}

void Bpe::tokenizeUncached(std::string_view word, std::vector<int32_t> &out) const
{
    thread_local std::vector<Symbol> symbols;
    thread_local std::string mapped;
    symbols.clear();
    std::string_view w = word;
    if (m_raw) {
        if (m_allBytesKnown && !m_ignoreMerges) {
            for (size_t i = 0; i < word.size(); ++i) {
                const auto n = int32_t(i);
                symbols.push_back({m_byteIds[static_cast<unsigned char>(word[i])], n - 1, n + 1, true});
            }
            symbols.back().next = -1;
            mergeAll(symbols);
            for (const Symbol &s : symbols)
                if (s.alive)
                    out.push_back(s.id);
            return;
        }
        const ByteLevelTable &t = byteLevelTable();
        mapped.clear();
        for (const char c : word)
            mapped += t.byteToUtf8[static_cast<unsigned char>(c)];
        w = mapped;
    }
    if (m_ignoreMerges) {
        const int32_t id = lookup(w);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    initialSymbols(w, symbols);
    mergeAll(symbols);
    for (const Symbol &s : symbols)
        if (s.alive)
            out.push_back(s.id);
}

} // namespace

std::unique_ptr<Model> makeModel(const Node &node, bool rawBytes)
{
    node.expectObject();
    std::string type;
    if (node.has("type"))
        type = node.type();
    else if (node.has("merges"))
        type = "BPE"; // files written before models carried a type
    else
        node.unsupported("the model has no type and no merges");
    if (type == "BPE")
        return std::make_unique<Bpe>(node, rawBytes);
    node.unsupported("model type " + shortQuote(type) + " is not supported (only BPE)");
}

} // namespace polymoe::detail::hf
