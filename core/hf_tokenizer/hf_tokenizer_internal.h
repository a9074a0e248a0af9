// Internals of the tokenizer.json implementation: the pipeline's pieces (normalizers,
// pre-tokenizers, BPE, added tokens, post-processors, decoders) and the helpers they share.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

typedef struct pcre2_real_code_8 pcre2_code_8;

namespace polymoe::detail::hf {

using Json = nlohmann::json;

// ---- Reading JSON with a path for the messages --------------------------------------------------

// A JSON value together with where it is ("pre_tokenizer.pretokenizers[1]") and the file it came
// from. Accessors throw FormatError "FILE: PATH: problem"; nothing of the file's content goes into a
// message except through shortQuote(), which escapes and shortens.
class Node {
public:
    Node(const Json &value, std::string path, const std::string &file)
        : m_value(&value), m_path(std::move(path)), m_file(&file) {}

    const Json &value() const { return *m_value; }
    const std::string &path() const { return m_path; }
    const std::string &file() const { return *m_file; }

    bool has(const char *key) const; // present and not null
    Node at(const char *key) const;  // must be present (may be null)
    Node operator[](size_t i) const;
    size_t size() const; // array or object length

    std::string str(const char *key) const;
    std::string optStr(const char *key, const std::string &fallback = {}) const;
    bool boolean(const char *key, bool fallback) const;
    int64_t integer(const char *key, int64_t fallback, int64_t lo, int64_t hi) const;
    char32_t character(const char *key) const; // a string holding exactly one character
    std::string type() const;                  // the "type" field, checked to be a short name
    void expectObject() const;
    void expectArray() const;
    std::string asString() const;
    int64_t asInteger(int64_t lo, int64_t hi) const;

    [[noreturn]] void fail(const std::string &problem) const;       // FormatError
    [[noreturn]] void unsupported(const std::string &problem) const; // ConfigError

private:
    const Json *m_value;
    std::string m_path;
    const std::string *m_file;
};

// At most 40 bytes of s between quotes, control and non-ASCII bytes as \xHH.
std::string shortQuote(std::string_view s);

// Parses JSON, refusing nesting deeper than maxDepth before the parser sees it.
Json parseJson(const std::string &text, const std::string &file, int maxDepth = 64);

// ---- UTF-8 and Unicode properties ---------------------------------------------------------------

// Decodes the code point at s[i] (s valid UTF-8) and returns its length in bytes.
inline size_t decodeUtf8(std::string_view s, size_t i, char32_t &cp)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    if (b0 < 0xE0) {
        cp = (char32_t(b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
        return 2;
    }
    if (b0 < 0xF0) {
        cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
             (static_cast<unsigned char>(s[i + 2]) & 0x3F);
        return 3;
    }
    cp = (char32_t(b0 & 0x07) << 18) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
         (char32_t(static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) | (static_cast<unsigned char>(s[i + 3]) & 0x3F);
    return 4;
}
inline size_t utf8Length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }
void appendUtf8(std::string &out, char32_t cp);
bool isValidUtf8(std::string_view s);
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8Lossy(std::string_view s);
bool isAscii(std::string_view s);

bool isWhiteSpace(char32_t c);   // the White_Space property (Rust char::is_whitespace)
size_t trailingSpaceStart(std::string_view s); // start of the whitespace that ends s (Rust \s*$)
size_t leadingSpaceLength(std::string_view s); // length of the whitespace that starts s (Rust ^\s*)
bool isNumeric(char32_t c);      // Nd, Nl, No (Rust char::is_numeric)
bool isPunctuation(char32_t c);  // ASCII punctuation or a P* category (tokenizers' is_punc)
bool isOther(char32_t c);        // Cc, Cf, Co as BertNormalizer's clean_text sees them
bool isMark(char32_t c);         // Mn, Mc, Me in Unicode 9.0 (tokenizers' is_combining_mark)
bool isNonspacingMark(char32_t c);
void appendLowercase(std::string &out, char32_t c); // Rust char::to_lowercase
enum class UnicodeForm { NFC, NFD, NFKC, NFKD };
std::string unicodeNormalize(std::string_view s, UnicodeForm form);
// Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control.
bool isRustWordChar(char32_t c);

// Tables measured from the Python library (hf_tokenizer_unicode_tables.cpp, generated).
struct CodeRange {
    char32_t first, last;
};
struct CodePair {
    char32_t from, to;
};
struct RangeTable {
    const CodeRange *ranges;
    size_t count;
    bool contains(char32_t c) const;
};
struct OnigCategoryExtra {
    const char *name;  // a general category as \p{..} names it: "L", "Lu", "N", ...
    RangeTable extra;  // code points Oniguruma (Unicode 16 in tokenizers) puts there and PCRE2 does not
};
extern const OnigCategoryExtra kOnigCategoryExtras[];
extern const size_t kOnigCategoryExtraCount;
extern const RangeTable kNumericTable;     // Rust char::is_numeric
extern const RangeTable kPunctuationTable; // tokenizers' is_punc (unicode_categories)
extern const RangeTable kRustWordTable;    // Rust regex \w
extern const RangeTable kPost9Table;       // assigned after Unicode 9.0 (left alone by tokenizers' NFx)
extern const RangeTable kCombiningMarkTable; // marks of Unicode 9.0 (StripAccents)
extern const RangeTable kBertOtherTable;     // BertNormalizer's is_other, non-ASCII (unicode_categories)
extern const RangeTable kBertNonspacingMarkTable; // BertNormalizer's is_mark_nonspacing
extern const CodePair *const kLowercaseTable; // Rust char::to_lowercase, single characters, sorted
extern const size_t kLowercaseCount;

// The GPT-2 byte <-> character table (printable bytes map to themselves, others to U+0100...).
struct ByteLevelTable {
    char32_t byteToChar[256];
    std::string byteToUtf8[256];
    std::unordered_map<char32_t, uint8_t> charToByte;
    ByteLevelTable();
};
const ByteLevelTable &byteLevelTable();

// ---- Regular expressions (PCRE2, JIT) -----------------------------------------------------------

struct Span {
    uint32_t begin;
    uint32_t end;
};

// A pattern in Oniguruma syntax (what tokenizers uses), translated for PCRE2, or a literal string.
class Regex {
public:
    enum class Syntax { Oniguruma, Pcre2, Literal };
    // Throws ConfigError naming `where` when the pattern does not compile.
    Regex(std::string_view pattern, Syntax syntax, const std::string &where);
    ~Regex();
    Regex(const Regex &) = delete;
    Regex &operator=(const Regex &) = delete;

    // The successive matches in text (valid UTF-8), iterated as the onig crate does: an empty
    // match right after the previous match is skipped by one character.
    void findAll(std::string_view text, std::vector<Span> &out) const;

private:
    pcre2_code_8 *m_code = nullptr;
    bool m_jit = false;
};

// A tokenizer.json "pattern" object: {"String": literal} or {"Regex": Oniguruma pattern}; anything
// else fails naming the node.
std::unique_ptr<Regex> patternRegex(const Node &pattern);

// Oniguruma (Ruby syntax) to PCRE2: \s \S \w \W \h \H rewritten to Onig's Unicode meaning.
std::string onigToPcre2(std::string_view pattern, const std::string &where);

// ---- The string being tokenized -----------------------------------------------------------------

// A piece of the text: a range of Pieces::text, or a token already found (an added token).
struct Piece {
    uint32_t begin = 0;
    uint32_t end = 0;
    int32_t id = -1;        // >= 0: an added token, no further processing
    bool atOrigin = false;  // starts at byte 0 of the original input (Metaspace prepend_scheme first)
};
struct Pieces {
    std::string text;
    std::vector<Piece> list;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
SplitBehavior parseSplitBehavior(const Node &node, const char *key);

// One match or gap of a pattern inside a piece (offsets relative to the piece).
struct Segment {
    uint32_t begin;
    uint32_t end;
    bool isMatch;
};
// tokenizers' NormalizedString::split: segments -> the ranges kept, by behaviour.
void applySplitBehavior(const std::vector<Segment> &segments, SplitBehavior behavior, std::vector<Span> &kept);
// Regex matches -> segments covering the whole text (tokenizers' Pattern::find_matches).
void segmentsFromMatches(const std::vector<Span> &matches, uint32_t length, bool invert, std::vector<Segment> &out);

// ---- Normalizers ---------------------------------------------------------------------------------

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string &s) const = 0;
};
std::unique_ptr<Normalizer> makeNormalizer(const Node &node);

// ---- Pre-tokenizers ------------------------------------------------------------------------------

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    virtual void preTokenize(Pieces &pieces) const = 0;
};
// deferByteLevel: the last ByteLevel step leaves the bytes unmapped (the BPE maps them itself).
std::unique_ptr<PreTokenizer> makePreTokenizer(const Node &node, bool deferByteLevel);
bool endsWithByteLevel(const Node &node); // the last step of the pre-tokenizer is ByteLevel

// ---- Models --------------------------------------------------------------------------------------

// token -> id, with lookups by string_view.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// word -> ids of words already tokenized, for one thread at a time. Bounded: emptied when full.
class WordCache {
public:
    explicit WordCache(size_t slots = size_t(1) << 17);
    bool find(std::string_view word, std::vector<int32_t> &out) const; // appends on a hit
    void insert(std::string_view word, const int32_t *ids, size_t n);
    static constexpr size_t kMaxWordBytes = 256; // longer words are not cached

private:
    struct Slot {
        uint64_t hash = 0; // 0: empty
        uint32_t keyOffset = 0, keyLength = 0, idsOffset = 0, idsLength = 0;
    };
    void clear();
    std::vector<Slot> m_slots;
    std::string m_keys;
    std::vector<int32_t> m_ids;
    size_t m_count = 0;
};
uint64_t hashBytes(std::string_view s);

class Model {
public:
    virtual ~Model() = default;
    // Appends the ids of one pre-tokenized word (never empty); cache may be null.
    virtual void tokenize(std::string_view word, std::vector<int32_t> &out, WordCache *cache) const = 0;
    virtual const Vocab &vocab() const = 0;
    virtual const std::string *idToToken(int32_t id) const = 0;
    virtual int32_t maxId() const = 0;       // -1 for an empty vocabulary
    virtual int32_t unkId() const = 0;       // -1 when there is none
    virtual std::string unkToken() const = 0;
};
// rawBytes: words arrive as raw bytes, to be mapped by the byte-level table first.
std::unique_ptr<Model> makeModel(const Node &node, bool rawBytes);

// ---- Added tokens --------------------------------------------------------------------------------

struct AddedToken {
    std::string content;
    bool singleWord = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
    bool operator==(const AddedToken &) const = default;
};

// Longest-match-first search of several strings (tokenizers uses a leftmost-longest Aho-Corasick).
class TokenTrie {
public:
    void add(std::string_view pattern, int32_t value);
    bool empty() const { return m_nodes.size() <= 1; }
    // The longest pattern starting at s[pos]: its length, or 0; value set on success.
    size_t longestAt(std::string_view s, size_t pos, int32_t &value) const;
    bool mayStartWith(unsigned char c) const { return m_first[c]; }

private:
    struct TrieNode {
        std::vector<std::pair<unsigned char, int32_t>> next; // sorted by byte
        int32_t value = -1;
    };
    std::vector<TrieNode> m_nodes{1};
    bool m_first[256] = {};
};

class AddedVocabulary {
public:
    // Adds a token as tokenizers' add_tokens does: the id of an earlier added token or of the model
    // vocabulary, else the next one after the model's entry count. Returns the id (-1: ignored).
    int32_t add(const AddedToken &token, const Model &model, const Normalizer *normalizer);
    void build(); // after the last add

    // tokenizers' find_matches on s with the raw (normalized=false) or normalized tokens.
    struct Match {
        uint32_t begin;
        uint32_t end;
        int32_t id; // -1: text between tokens
    };
    void split(std::string_view s, bool normalizedSet, std::vector<Match> &out) const;
    bool hasNormalized() const { return !m_normTrie.empty(); }

    const AddedToken *token(int32_t id) const;
    const std::string *decodeForm(int32_t id) const; // the normalized form when it differs
    int32_t idOf(std::string_view content) const;    // -1 when absent
    bool isSpecialContent(std::string_view content) const;
    int32_t maxId() const { return m_maxId; }

private:
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> m_byContent;
    std::unordered_map<int32_t, AddedToken> m_byId;
    std::unordered_map<int32_t, std::string> m_normalizedForm;
    std::unordered_map<std::string, bool, StringHash, std::equal_to<>> m_special;
    int32_t m_nextId = -1;
    TokenTrie m_rawTrie;
    TokenTrie m_normTrie;
    int32_t m_maxId = -1;
};

// ---- Post-processors -----------------------------------------------------------------------------

class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    virtual size_t addedTokens() const = 0; // for a single sequence
    virtual void process(std::vector<int32_t> &ids) const = 0;
    // The special ids the single template puts before and after the sequence (bos/eos guesses).
    virtual void specialsAround(std::vector<int32_t> &before, std::vector<int32_t> &after) const = 0;
};
std::unique_ptr<PostProcessor> makePostProcessor(const Node &node);

// ---- Decoders ------------------------------------------------------------------------------------

class Decoder {
public:
    virtual ~Decoder() = default;
    virtual void decodeChain(std::vector<std::string> &tokens) const = 0;
};
std::unique_ptr<Decoder> makeDecoder(const Node &node);

} // namespace polymoe::detail::hf
