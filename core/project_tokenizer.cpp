// Training, storing and applying the project's tokenizer.
#include "polymoe/project_tokenizer.h"

#include "content_hash.h"
#include "file_read.h"
#include "hf_tokenizer.h"
#include "polymoe/error.h"
#include "sqlite_db.h"
#include "token_shard.h"
#include "utf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <unistd.h>

namespace polymoe {

using detail::Statement;
using detail::Transaction;

namespace {

TokenizerRecord recordFrom(Statement &st)
{
    TokenizerRecord r;
    r.id = st.int64(0);
    r.backend = st.text(1);
    r.modelType = st.text(2);
    r.vocabSize = int(st.int64(3));
    r.sha256 = st.text(4);
    r.source = st.text(5);
    r.current = st.int64(6) != 0;
    r.createdAt = st.text(7);
    return r;
}

// Encodes text as the tokenizer was trained on it: whitespace runs collapsed to one space.
class CollapsingTokenizer final : public ITokenizer {
public:
    explicit CollapsingTokenizer(std::unique_ptr<ITokenizer> inner) : m_inner(std::move(inner)) {}
    std::vector<int32_t> encode(std::string_view text) const override { return m_inner->encode(collapseWhitespace(text)); }
    std::string decode(const std::vector<int32_t> &ids) const override { return m_inner->decode(ids); }
    int32_t vocabSize() const override { return m_inner->vocabSize(); }
    std::string idToPiece(int32_t id) const override { return m_inner->idToPiece(id); }
    int32_t pieceToId(std::string_view piece) const override { return m_inner->pieceToId(piece); }
    SpecialTokens specialTokens() const override { return m_inner->specialTokens(); }
    std::string serialize() const override { return m_inner->serialize(); }
    std::string backend() const override { return m_inner->backend(); }

private:
    std::unique_ptr<ITokenizer> m_inner;
};

// (bos, eos) of a document as the model was pre-trained on it (projectDocumentTokens).
std::pair<int32_t, int32_t> pretrainingDocumentTokens(const HfTokenizer &hf)
{
    // What add_special_tokens puts before a text: the ids of the special encoding that precede the plain one.
    // (A template may add an end token too: the text's ids are looked for anywhere in the special encoding.)
    const auto plain = hf.encode("a", false), special = hf.encode("a", true);
    int32_t bos = -1;
    for (size_t k = 1; !plain.empty() && k + plain.size() <= special.size(); ++k)
        if (std::equal(plain.begin(), plain.end(), special.begin() + long(k))) {
            bos = special.front();
            break;
        }
    int32_t eos = hf.specialTokens().eos;
    for (const char *separator : {"<|endoftext|>", "<|end_of_text|>"})
        if (const int32_t id = hf.findPiece(separator); id >= 0) {
            eos = id;
            break;
        }
    return {bos, eos};
}

constexpr const char *kSelect =
    "SELECT id, backend, coalesce(model_type, ''), vocab_size, sha256, source, is_current, created_at FROM tokenizers";

TokenizerRecord storeModel(ProjectStore &store, const std::string &backend, const std::string &modelType,
                           const ITokenizer &tok, std::string settings, const std::string &bytes,
                           const std::string &source)
{
    // The special ids go with the settings, so training needs no tokenizer plugin (GPU machines).
    auto j = nlohmann::json::parse(settings);
    const SpecialTokens sp = tok.specialTokens();
    j["bos_id"] = sp.bos;
    j["eos_id"] = sp.eos;
    j["unk_id"] = sp.unk;
    j["pad_id"] = sp.pad;
    if (const auto *hf = dynamic_cast<const HfTokenizer *>(&tok)) {
        const auto [bos, eos] = pretrainingDocumentTokens(*hf);
        j["document_bos_id"] = bos;
        j["document_eos_id"] = eos;
    }
    settings = j.dump();
    const int vocabSize = tok.vocabSize();
    int64_t id = 0;
    store.transaction([&] {
        auto &db = store.db();
        db.exec("UPDATE tokenizers SET is_current = 0");
        Statement st(db, "INSERT INTO tokenizers(backend, model_type, vocab_size, settings, model, sha256, source, "
                         "is_current) VALUES (?, ?, ?, ?, ?, ?, ?, 1)");
        st.bind(1, backend).bind(2, modelType).bind(3, vocabSize).bind(4, settings)
            .bindBlob(5, bytes.data(), bytes.size()).bind(6, sha256Hex(bytes)).bind(7, source).run();
        id = db.lastInsertId();
    });
    Statement st(store.db(), std::string(kSelect) + " WHERE id = ?");
    st.bind(1, id);
    st.step();
    return recordFrom(st);
}

} // namespace

std::vector<std::string> tokenizerTrainingUnits(std::string_view document, int maxBytes)
{
    const std::string text = collapseWhitespace(document);
    std::vector<std::string> units;
    const size_t limit = size_t(std::max(maxBytes, 16));
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.size();
        if (end - start > limit) {
            // Cut at the last space that keeps the unit within the limit, else at a UTF-8 boundary.
            end = text.rfind(' ', start + limit);
            if (end == std::string::npos || end <= start) {
                end = start + limit;
                while (end > start && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
                    --end;
            }
        }
        units.push_back(text.substr(start, end - start));
        start = end;
        while (start < text.size() && text[start] == ' ')
            ++start;
    }
    return units;
}

TokenizerRecord trainProjectTokenizer(ProjectStore &store, const TokenizerTrainOptions &options,
                                      const ProgressFn &progress, std::stop_token stop)
{
    if (options.vocabSize < 16)
        throw ConfigError("tokenizer vocabulary size must be at least 16, not " + std::to_string(options.vocabSize));
    auto plugin = TokenizerPlugin::load("sentencepiece");

    // The trainer reads sentences from a file: each non-empty line of each train document.
    const auto dir = store.ensureDataDir("tokenizer");
    const auto input = dir / ("train-input-" + std::to_string(::getpid()) + ".txt");
    std::vector<std::string> langs;
    int64_t lines = 0;
    {
        std::ofstream out(input, std::ios::binary);
        if (!out)
            throw IoError(input.string() + ": cannot write the tokenizer's training text");
        Statement st(store.db(), "SELECT language, text FROM documents WHERE split = 'train' ORDER BY id");
        std::string last;
        while (st.step()) {
            if (st.text(0) != last) {
                last = st.text(0);
                langs.push_back(last);
            }
            // The units the tokenizer will encode: whole documents under the whitespace policy.
            for (const std::string &unit : tokenizerTrainingUnits(st.text(1), options.maxSentenceLength)) {
                out.write(unit.data(), std::streamsize(unit.size()));
                out.put('\n');
                ++lines;
            }
        }
    }
    struct Cleanup {
        std::filesystem::path p;
        ~Cleanup() { std::error_code ec; std::filesystem::remove(p, ec); }
    } cleanup{input};
    if (lines == 0)
        throw ConfigError(store.path().string() + ": no training documents to train a tokenizer on; add corpora first");
    throwIfStopped(stop);
    if (progress)
        progress({"train tokenizer", 0, 1, "models", std::to_string(lines) + " sentences"});
    const std::string bytes = plugin->train(input, options, stop);
    throwIfStopped(stop);

    nlohmann::json settings = {{"model_type", options.modelType}, {"vocab_size", options.vocabSize},
                               {"character_coverage", options.characterCoverage},
                               {"byte_fallback", options.byteFallback},
                               {"input_sentence_size", options.inputSentenceSize}, {"seed", options.seed},
                               {"sentences", lines}, {"whitespace", kWhitespaceCollapse}};
    std::string source = "trained on";
    for (size_t i = 0; i < langs.size(); ++i)
        source += (i ? "," : " ") + langs[i];
    auto rec = storeModel(store, plugin->name(), options.modelType, *plugin->loadBytes(bytes), settings.dump(),
                          bytes, source);
    if (progress)
        progress({"train tokenizer", 1, 1, "models", {}});
    return rec;
}

namespace {

constexpr const char *kHfBackend = "hf-tokenizers";
constexpr int64_t kCompanionLimit = 16 << 20; // tokenizer_config.json and special_tokens_map.json

std::string companionText(const std::filesystem::path &dir, const char *name)
{
    std::error_code ec;
    const auto p = dir / name;
    return std::filesystem::exists(p, ec) ? readRegularFile(p, kCompanionLimit) : std::string();
}

// A tokenizer.json and, beside it, its tokenizer_config.json and special_tokens_map.json.
TokenizerRecord importHfTokenizer(ProjectStore &store, const std::filesystem::path &file)
{
    const std::filesystem::path dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
    const bool companions = file.filename() == "tokenizer.json";
    const std::string config = companions ? companionText(dir, "tokenizer_config.json") : std::string();
    const std::string map = companions ? companionText(dir, "special_tokens_map.json") : std::string();
    std::string json = readRegularFile(file);
    auto tok = loadHfTokenizer(json, file.string(), config, map); // validates every component
    const auto parsed = nlohmann::json::parse(json, nullptr, false, true);
    std::string modelType = "bpe";
    if (parsed.is_object() && parsed.contains("model") && parsed["model"].is_object() &&
        parsed["model"].value("type", std::string()) != "")
        modelType = parsed["model"].value("type", std::string());
    std::transform(modelType.begin(), modelType.end(), modelType.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const nlohmann::json settings = {{"whitespace", kWhitespaceVerbatim}, {"tokenizer_config", config},
                                     {"special_tokens_map", map}};
    return storeModel(store, kHfBackend, modelType, *tok, settings.dump(), json,
                      std::filesystem::absolute(file).string());
}

// The current tokenizer's settings object (an empty object when unreadable). ConfigError if none.
nlohmann::json currentSettings(const ProjectStore &store)
{
    Statement st(store.db(), "SELECT settings FROM tokenizers WHERE is_current = 1");
    if (!st.step())
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    auto j = nlohmann::json::parse(st.text(0), nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
}

std::string storedSetting(const ProjectStore &store, const char *key)
{
    const auto j = currentSettings(store);
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

} // namespace

TokenizerRecord importTokenizer(ProjectStore &store, const std::filesystem::path &fileOrFolder)
{
    std::error_code ec;
    if (std::filesystem::is_directory(fileOrFolder, ec)) {
        if (std::filesystem::exists(fileOrFolder / "tokenizer.json", ec))
            return importHfTokenizer(store, fileOrFolder / "tokenizer.json");
        if (std::filesystem::exists(fileOrFolder / "tokenizer.model", ec))
            return importTokenizerModel(store, fileOrFolder / "tokenizer.model");
        throw ConfigError(fileOrFolder.string() + ": the folder has no tokenizer.json (Hugging Face) or tokenizer.model "
                          "(SentencePiece)");
    }
    if (fileOrFolder.extension() == ".json")
        return importHfTokenizer(store, fileOrFolder);
    return importTokenizerModel(store, fileOrFolder);
}

std::unique_ptr<ITokenizer> loadFolderTokenizer(const std::filesystem::path &modelDir)
{
    std::error_code ec;
    if (std::filesystem::exists(modelDir / "tokenizer.json", ec))
        return loadHfTokenizerFolder(modelDir);
    if (std::filesystem::exists(modelDir / "tokenizer.model", ec))
        return TokenizerPlugin::load("sentencepiece")->loadFile(modelDir / "tokenizer.model");
    throw ConfigError(modelDir.string() + ": no tokenizer.json or tokenizer.model in the model folder");
}

std::vector<std::pair<std::string, std::string>> projectTokenizerFiles(const ProjectStore &store)
{
    const auto rec = currentTokenizerRecord(store);
    if (!rec)
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    std::vector<std::pair<std::string, std::string>> files;
    if (rec->backend == kHfBackend) {
        files.emplace_back("tokenizer.json", projectTokenizerBytes(store));
        for (const char *key : {"tokenizer_config", "special_tokens_map"})
            if (const std::string text = storedSetting(store, key); !text.empty())
                files.emplace_back(std::string(key) + ".json", text);
    } else {
        files.emplace_back("tokenizer.model", projectTokenizerBytes(store));
    }
    return files;
}

TokenizerRecord importTokenizerModel(ProjectStore &store, const std::filesystem::path &modelFile)
{
    auto plugin = TokenizerPlugin::load("sentencepiece");
    auto tok = plugin->loadFile(modelFile); // validates
    return storeModel(store, plugin->name(), "", *tok, nlohmann::json{{"whitespace", kWhitespaceVerbatim}}.dump(),
                      tok->serialize(), std::filesystem::absolute(modelFile).string());
}

std::optional<TokenizerRecord> currentTokenizerRecord(const ProjectStore &store)
{
    Statement st(store.db(), std::string(kSelect) + " WHERE is_current = 1");
    if (!st.step())
        return std::nullopt;
    return recordFrom(st);
}

SpecialTokens projectSpecialTokens(const ProjectStore &store)
{
    const auto j = currentSettings(store);
    SpecialTokens sp;
    sp.bos = j.value("bos_id", -1);
    sp.eos = j.value("eos_id", -1);
    sp.unk = j.value("unk_id", -1);
    sp.pad = j.value("pad_id", -1);
    return sp;
}

SpecialTokens projectDocumentTokens(const ProjectStore &store)
{
    SpecialTokens sp = projectSpecialTokens(store);
    const auto j = currentSettings(store);
    sp.bos = j.value("document_bos_id", sp.bos);
    sp.eos = j.value("document_eos_id", sp.eos);
    return sp;
}

std::string projectTokenizerBytes(const ProjectStore &store)
{
    Statement st(store.db(), "SELECT model FROM tokenizers WHERE is_current = 1");
    if (!st.step())
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    return st.blob(0);
}

std::string projectWhitespacePolicy(const ProjectStore &store)
{
    // Tokenizers stored before the policy was recorded were imported or trained on lines: verbatim.
    const std::string policy = currentSettings(store).value("whitespace", std::string(kWhitespaceVerbatim));
    if (policy != kWhitespaceVerbatim && policy != kWhitespaceCollapse)
        throw FormatError(store.path().string() + ": the current tokenizer's whitespace policy '" + policy +
                          "' is unknown (verbatim or collapse)");
    return policy;
}

std::unique_ptr<ITokenizer> loadProjectTokenizer(const ProjectStore &store)
{
    const std::string bytes = projectTokenizerBytes(store);
    const auto rec = currentTokenizerRecord(store);
    if (rec && rec->backend == kHfBackend)
        return loadHfTokenizer(bytes, store.path().string() + ": tokenizer " + std::to_string(rec->id) + " (tokenizer.json)",
                               storedSetting(store, "tokenizer_config"), storedSetting(store, "special_tokens_map"));
    auto tok = TokenizerPlugin::load("sentencepiece")->loadBytes(bytes);
    if (projectWhitespacePolicy(store) == kWhitespaceCollapse)
        return std::make_unique<CollapsingTokenizer>(std::move(tok));
    return tok;
}

std::vector<ShardRecord> projectShards(const ProjectStore &store)
{
    std::vector<ShardRecord> out;
    Statement st(store.db(), "SELECT s.language, s.split, s.path, s.n_documents, s.n_tokens, s.n_words, "
                             "s.n_characters FROM token_shards s JOIN tokenizers t ON t.id = s.tokenizer_id "
                             "WHERE t.is_current = 1 ORDER BY s.language, s.split");
    while (st.step())
        out.push_back({st.text(0), st.text(1), store.insideDataDir(st.text(2)), st.int64(3), st.int64(4),
                       st.int64(5), st.int64(6)});
    return out;
}

std::vector<ShardRecord> tokenizeProject(ProjectStore &store, bool force, const ProgressFn &progress,
                                         std::stop_token stop)
{
    const auto rec = currentTokenizerRecord(store);
    if (!rec)
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    auto tok = loadProjectTokenizer(store);
    store.ensureDataDir("shards");
    auto &db = store.db();
    const int64_t totalDocs = db.queryInt("SELECT count(*) FROM documents");
    int64_t done = 0;
    for (const auto &lang : store.languages()) {
        for (const char *split : {"train", "heldout"}) {
            Statement have(db, "SELECT count(*) FROM token_shards WHERE tokenizer_id = ? AND language = ? AND split = ?");
            have.bind(1, rec->id).bind(2, lang.code).bind(3, split);
            have.step();
            Statement docs(db, "SELECT text, n_words, n_characters FROM documents WHERE language = ? AND split = ? ORDER BY id");
            docs.bind(1, lang.code).bind(2, split);
            if (have.int64(0) > 0 && !force) {
                Statement n(db, "SELECT count(*) FROM documents WHERE language = ? AND split = ?");
                n.bind(1, lang.code).bind(2, split);
                n.step();
                done += n.int64(0);
                continue;
            }
            TokenShard shard;
            shard.language = lang.code;
            shard.vocabSize = tok->vocabSize();
            int64_t words = 0, chars = 0;
            while (docs.step()) {
                shard.addDocument(tok->encode(docs.text(0)));
                words += docs.int64(1);
                chars += docs.int64(2);
                if ((++done & 255) == 0) {
                    throwIfStopped(stop);
                    if (progress)
                        progress({"tokenize " + lang.code, done, totalDocs, "documents", {}});
                }
            }
            const std::string rel = "shards/" + lang.code + "." + split + ".tok" + std::to_string(rec->id) + ".bin";
            writeTokenShard(store.dataDir() / rel, shard);
            Transaction tx(db);
            Statement ins(db, "INSERT OR REPLACE INTO token_shards(tokenizer_id, language, split, path, n_documents, "
                              "n_tokens, n_words, n_characters) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
            ins.bind(1, rec->id).bind(2, lang.code).bind(3, split).bind(4, rel).bind(5, int64_t(shard.documents()))
                .bind(6, int64_t(shard.tokens.size())).bind(7, words).bind(8, chars).run();
            tx.commit();
        }
    }
    if (progress)
        progress({"tokenize", totalDocs, totalDocs, "documents", {}});
    return projectShards(store);
}

} // namespace polymoe
