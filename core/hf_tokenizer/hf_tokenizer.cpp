// HfTokenizer: reads tokenizer.json into the pipeline and runs it (added tokens, normalizer,
// pre-tokenizer, model, truncation, post-processor, padding; decoders back), plus file loading.
#include "hf_tokenizer.h"

#include "file_read.h" // core/file_read.cpp, compiled into this library

#include "hf_tokenizer_internal.h"

#include "polymoe/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace polymoe {

namespace detail::hf {

struct Truncation {
    bool enabled = false;
    bool left = false;           // direction Left: keep the end
    bool onlySecond = false;     // strategy OnlySecond: an error for a single sequence
    size_t maxLength = 0;        // tokens
};

struct Padding {
    bool enabled = false;
    bool left = false;
    size_t fixed = 0;            // 0: BatchLongest (its own length for one sequence)
    size_t multipleOf = 0;       // 0: none
    int32_t padId = 0;
};

struct TokenizerState {
    std::string json;
    std::string where;
    std::unique_ptr<Normalizer> normalizer;
    std::unique_ptr<PreTokenizer> preTokenizer;
    std::unique_ptr<Model> model;
    std::unique_ptr<PostProcessor> postProcessor;
    std::unique_ptr<Decoder> decoder;
    AddedVocabulary added;
    Truncation truncation;
    Padding padding;
    SpecialTokens specials;

    // Word caches, one per thread in flight: taken at the start of an encode, given back at its end.
    mutable std::mutex cacheMutex;
    mutable std::vector<std::unique_ptr<WordCache>> caches;

    std::unique_ptr<WordCache> takeCache() const
    {
        {
            std::lock_guard lock(cacheMutex);
            if (!caches.empty()) {
                auto c = std::move(caches.back());
                caches.pop_back();
                return c;
            }
        }
        return std::make_unique<WordCache>();
    }
    void giveBack(std::unique_ptr<WordCache> c) const
    {
        std::lock_guard lock(cacheMutex);
        if (caches.size() < 8)
            caches.push_back(std::move(c));
    }

    int32_t exactId(std::string_view piece) const
    {
        const int32_t id = added.idOf(piece);
        if (id >= 0)
            return id;
        const auto it = model->vocab().find(piece);
        return it == model->vocab().end() ? -1 : it->second;
    }
    const std::string *tokenOf(int32_t id) const
    {
        if (const std::string *s = added.decodeForm(id))
            return s;
        return model->idToToken(id);
    }
};

namespace {

void appendPiece(Pieces &p, std::string_view text, int32_t id, bool atOrigin)
{
    const auto begin = uint32_t(p.text.size());
    if (id < 0)
        p.text.append(text);
    p.list.push_back({begin, uint32_t(p.text.size()), id, atOrigin});
}

void parseTruncation(const Node &top, Truncation &t)
{
    if (!top.has("truncation"))
        return;
    const Node n = top.at("truncation");
    n.expectObject();
    t.enabled = true;
    t.maxLength = size_t(n.integer("max_length", 512, 0, int64_t(1) << 40));
    const std::string direction = n.optStr("direction", "Right");
    if (direction != "Right" && direction != "Left")
        n.at("direction").fail("expected Right or Left");
    t.left = direction == "Left";
    const std::string strategy = n.optStr("strategy", "LongestFirst");
    if (strategy != "LongestFirst" && strategy != "OnlyFirst" && strategy != "OnlySecond")
        n.at("strategy").fail("unknown truncation strategy " + shortQuote(strategy));
    t.onlySecond = strategy == "OnlySecond";
}

void parsePadding(const Node &top, Padding &p)
{
    if (!top.has("padding"))
        return;
    const Node n = top.at("padding");
    n.expectObject();
    p.enabled = true;
    if (n.has("strategy")) {
        const Node s = n.at("strategy");
        if (s.value().is_object() && s.has("Fixed"))
            p.fixed = size_t(s.at("Fixed").asInteger(0, int64_t(1) << 40));
        else if (!(s.value().is_string() && s.asString() == "BatchLongest"))
            s.fail("expected \"BatchLongest\" or {\"Fixed\": n}");
    }
    const std::string direction = n.optStr("direction", "Right");
    if (direction != "Right" && direction != "Left")
        n.at("direction").fail("expected Right or Left");
    p.left = direction == "Left";
    p.multipleOf = size_t(n.integer("pad_to_multiple_of", 0, 0, int64_t(1) << 40));
    p.padId = int32_t(n.integer("pad_id", 0, 0, (int64_t(1) << 24) - 1));
}

void readAddedTokens(const Node &top, TokenizerState &s)
{
    if (top.has("added_tokens")) {
        const Node list = top.at("added_tokens");
        list.expectArray();
        for (size_t i = 0; i < list.size(); ++i) {
            const Node t = list[i];
            t.expectObject();
            t.at("id").asInteger(0, (int64_t(1) << 24) - 1); // checked; tokenizers assigns its own
            AddedToken token;
            token.content = t.str("content");
            token.special = t.boolean("special", false);
            token.singleWord = t.boolean("single_word", false);
            token.lstrip = t.boolean("lstrip", false);
            token.rstrip = t.boolean("rstrip", false);
            token.normalized = t.boolean("normalized", !token.special);
            s.added.add(token, *s.model, s.normalizer.get());
        }
    }
    s.added.build();
}

// bos_token etc. of tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}.
// Returns false when the file does not name it; id is -1 when the token is not in the vocabulary.
bool configToken(const TokenizerState &s, const Node &config, const char *key, int32_t &id)
{
    if (!config.has(key))
        return false;
    const Node n = config.at(key);
    std::string content;
    if (n.value().is_string())
        content = n.asString();
    else if (n.value().is_object())
        content = n.str("content");
    else
        n.fail("expected a string or an object with \"content\"");
    id = s.exactId(content);
    return true;
}

// The config files first (tokenizer_config.json before special_tokens_map.json), then what the
// tokenizer itself says: unk from the model, bos/eos around the post-processor's sequence, pad.
void readSpecialTokens(TokenizerState &s, const std::string &configJson, const std::string &mapJson)
{
    const std::filesystem::path folder = std::filesystem::path(s.where).parent_path();
    struct Field {
        const char *key;
        int32_t *id;
        bool found = false;
    } fields[] = {{"bos_token", &s.specials.bos}, {"eos_token", &s.specials.eos},
                  {"unk_token", &s.specials.unk}, {"pad_token", &s.specials.pad}};
    const std::pair<const std::string *, const char *> files[] = {{&configJson, "tokenizer_config.json"},
                                                                  {&mapJson, "special_tokens_map.json"}};
    for (const auto &[text, name] : files) {
        if (text->empty())
            continue;
        const std::string file = (folder / name).string();
        const Json root = parseJson(*text, file);
        const Node config(root, "", file);
        config.expectObject();
        for (Field &f : fields)
            if (!f.found)
                f.found = configToken(s, config, f.key, *f.id);
    }
    std::vector<int32_t> before, after;
    if (s.postProcessor)
        s.postProcessor->specialsAround(before, after);
    if (!fields[0].found)
        s.specials.bos = before.empty() ? -1 : before.front();
    if (!fields[1].found)
        s.specials.eos = after.empty() ? -1 : after.back();
    if (!fields[2].found)
        s.specials.unk = s.model->unkId();
    if (!fields[3].found)
        s.specials.pad = s.padding.enabled ? s.padding.padId : -1;
}


} // namespace
} // namespace detail::hf

using namespace detail::hf;

HfTokenizer::HfTokenizer(std::unique_ptr<TokenizerState> state) : m_state(std::move(state)) {}
HfTokenizer::~HfTokenizer() = default;

std::vector<int32_t> HfTokenizer::encode(std::string_view text) const { return encode(text, false); }

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool addSpecialTokens) const
{
    const TokenizerState &s = *m_state;
    std::string repaired;
    if (!isValidUtf8(text)) {
        repaired = utf8Lossy(text);
        text = repaired;
    }

    // 1. Added tokens matched on the raw text, then the normalizer and the normalized added tokens
    //    on each piece between them (tokenizers' extract_and_normalize).
    Pieces pieces;
    pieces.text.reserve(text.size() + 16);
    std::vector<AddedVocabulary::Match> raw, normalized;
    s.added.split(text, false, raw);
    std::string segment;
    for (const auto &m : raw) {
        if (m.end <= m.begin)
            continue;
        if (m.id >= 0) {
            appendPiece(pieces, {}, m.id, false);
            continue;
        }
        std::string_view piece = text.substr(m.begin, m.end - m.begin);
        if (s.normalizer) {
            segment.assign(piece);
            s.normalizer->normalize(segment);
            piece = segment;
        }
        if (piece.empty())
            continue;
        if (!s.added.hasNormalized()) {
            appendPiece(pieces, piece, -1, m.begin == 0);
            continue;
        }
        s.added.split(piece, true, normalized);
        for (const auto &n : normalized)
            if (n.end > n.begin)
                appendPiece(pieces, piece.substr(n.begin, n.end - n.begin), n.id, m.begin == 0 && n.begin == 0);
    }

    // 2. Pre-tokenizer, 3. model.
    if (s.preTokenizer)
        s.preTokenizer->preTokenize(pieces);
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 8);
    std::unique_ptr<WordCache> cache = s.takeCache();
    try {
        for (const Piece &p : pieces.list) {
            if (p.id >= 0)
                ids.push_back(p.id);
            else if (p.end > p.begin)
                s.model->tokenize(std::string_view(pieces.text.data() + p.begin, p.end - p.begin), ids, cache.get());
        }
    } catch (...) {
        s.giveBack(std::move(cache));
        throw;
    }
    s.giveBack(std::move(cache));

    // 4. Truncation (room left for the special tokens), post-processor, padding.
    if (s.truncation.enabled) {
        const size_t added = addSpecialTokens && s.postProcessor ? s.postProcessor->addedTokens() : 0;
        const size_t maxLength = s.truncation.maxLength > added ? s.truncation.maxLength - added : 0;
        if (ids.size() > maxLength) {
            if (s.truncation.onlySecond)
                throw ConfigError(s.where + ": truncation: strategy OnlySecond needs a pair of sequences");
            if (s.truncation.left)
                ids.erase(ids.begin(), ids.end() - ptrdiff_t(maxLength));
            else
                ids.resize(maxLength);
        }
    }
    if (addSpecialTokens && s.postProcessor)
        s.postProcessor->process(ids);
    if (s.padding.enabled) {
        size_t target = s.padding.fixed > 0 ? s.padding.fixed : ids.size();
        if (s.padding.multipleOf > 0 && target % s.padding.multipleOf != 0)
            target += s.padding.multipleOf - target % s.padding.multipleOf;
        if (ids.size() < target)
            ids.insert(s.padding.left ? ids.begin() : ids.end(), target - ids.size(), s.padding.padId);
    }
    return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t> &ids) const { return decode(ids, false); }

std::string HfTokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecialTokens) const
{
    const TokenizerState &s = *m_state;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int32_t id : ids) {
        const std::string *token = s.tokenOf(id);
        if (!token || (skipSpecialTokens && s.added.isSpecialContent(*token)))
            continue;
        tokens.push_back(*token);
    }
    std::string out;
    if (s.decoder) {
        s.decoder->decodeChain(tokens);
        for (const std::string &t : tokens)
            out += t;
    } else {
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0)
                out.push_back(' ');
            out += tokens[i];
        }
    }
    return out;
}

int32_t HfTokenizer::vocabSize() const { return std::max(m_state->model->maxId(), m_state->added.maxId()) + 1; }

std::string HfTokenizer::idToPiece(int32_t id) const
{
    if (const std::string *token = m_state->tokenOf(id))
        return *token;
    throw ConfigError(m_state->where + ": id " + std::to_string(id) + " has no token (vocabulary size " +
                      std::to_string(vocabSize()) + ")");
}

int32_t HfTokenizer::pieceToId(std::string_view piece) const
{
    const int32_t id = m_state->exactId(piece);
    return id >= 0 ? id : m_state->model->unkId();
}

int32_t HfTokenizer::findPiece(std::string_view piece) const { return m_state->exactId(piece); }

bool HfTokenizer::isSpecial(int32_t id) const
{
    const AddedToken *t = m_state->added.token(id);
    return t && t->special;
}

SpecialTokens HfTokenizer::specialTokens() const { return m_state->specials; }

std::string HfTokenizer::serialize() const { return m_state->json; }

std::unique_ptr<HfTokenizer> loadHfTokenizer(std::string tokenizerJson, const std::string &where,
                                             std::string tokenizerConfigJson, std::string specialTokensMapJson)
{
    auto s = std::make_unique<TokenizerState>();
    s->where = where;
    {
        const Json root = parseJson(tokenizerJson, where);
        const Node top(root, "", s->where);
        top.expectObject();
        if (top.has("version") && top.str("version") != "1.0")
            top.at("version").fail("unknown tokenizer.json version " + shortQuote(top.str("version")));
        const Node model = top.at("model");
        model.expectObject();
        const bool bpe = model.has("type") ? model.value()["type"] == "BPE" : model.has("merges");
        const bool deferByteLevel = bpe && top.has("pre_tokenizer") && endsWithByteLevel(top.at("pre_tokenizer"));
        if (top.has("normalizer"))
            s->normalizer = makeNormalizer(top.at("normalizer"));
        if (top.has("pre_tokenizer"))
            s->preTokenizer = makePreTokenizer(top.at("pre_tokenizer"), deferByteLevel);
        s->model = makeModel(model, deferByteLevel);
        if (top.has("post_processor"))
            s->postProcessor = makePostProcessor(top.at("post_processor"));
        if (top.has("decoder"))
            s->decoder = makeDecoder(top.at("decoder"));
        readAddedTokens(top, *s);
        parseTruncation(top, s->truncation);
        parsePadding(top, s->padding);
    }
    readSpecialTokens(*s, tokenizerConfigJson, specialTokensMapJson);
    s->json = std::move(tokenizerJson);
    return std::make_unique<HfTokenizer>(std::move(s));
}

std::unique_ptr<HfTokenizer> loadHfTokenizerFolder(const std::filesystem::path &fileOrFolder)
{
    std::error_code ec;
    const auto status = std::filesystem::status(fileOrFolder, ec);
    if (ec || !std::filesystem::exists(status))
        throw IoError(fileOrFolder.string() + ": no such file or folder");
    if (!std::filesystem::is_directory(status)) {
        std::string json = readRegularFile(fileOrFolder);
        return loadHfTokenizer(std::move(json), fileOrFolder.string());
    }
    const auto main = fileOrFolder / "tokenizer.json";
    if (!std::filesystem::exists(std::filesystem::symlink_status(main, ec)))
        throw IoError(fileOrFolder.string() + ": no tokenizer.json in this folder");
    std::string json = readRegularFile(main);
    auto optional = [&ec](const std::filesystem::path &p) {
        return std::filesystem::exists(std::filesystem::status(p, ec)) ? readRegularFile(p) : std::string();
    };
    std::string config = optional(fileOrFolder / "tokenizer_config.json");
    std::string map = optional(fileOrFolder / "special_tokens_map.json");
    return loadHfTokenizer(std::move(json), main.string(), std::move(config), std::move(map));
}

} // namespace polymoe
