// The tokenizer interface core and its users see; implementations come from plugins
// (plugins/sentencepiece) loaded at run time with deep binding. No plugin type leaks here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe {

struct TokenizerTrainOptions {
    std::string modelType = "unigram"; // "unigram" or "bpe"
    int vocabSize = 8000;              // pieces, special tokens included
    float characterCoverage = 0.9995f; // share of characters the vocabulary must cover
    bool byteFallback = true;          // unknown characters become byte pieces
    int maxSentenceLength = 16384;     // bytes; longer training lines are skipped
    int64_t inputSentenceSize = 0;     // sentences sampled for training; 0 = all
    int numThreads = 2;                // trainer threads
    uint64_t seed = 1;                 // sampling seed
};

struct SpecialTokens {
    int32_t bos = -1; // -1: the model has none
    int32_t eos = -1;
    int32_t unk = -1;
    int32_t pad = -1;
};

class ITokenizer {
public:
    virtual ~ITokenizer() = default;
    virtual std::vector<int32_t> encode(std::string_view text) const = 0; // no BOS/EOS
    virtual std::string decode(const std::vector<int32_t> &ids) const = 0;
    virtual int32_t vocabSize() const = 0;
    virtual std::string idToPiece(int32_t id) const = 0; // throws ConfigError when out of range
    virtual int32_t pieceToId(std::string_view piece) const = 0; // unk id when absent
    virtual SpecialTokens specialTokens() const = 0;
    virtual std::string serialize() const = 0; // model bytes, as in a tokenizer.model file
    virtual std::string backend() const = 0;   // "sentencepiece"
};

// Finds and loads the tokenizer plugin of a backend ("sentencepiece"). Search order: the
// POLYMOE_PLUGIN_DIR environment variable (absolute folders separated by ':'; relative entries are
// ignored), the folder of the running executable's ../lib/polymoe/plugins, the build tree (only for a
// binary that runs from it), the install prefix. Throws PluginError naming the folders searched, or
// both API versions on a mismatch.
class TokenizerPlugin {
public:
    static std::shared_ptr<TokenizerPlugin> load(const std::string &backend = "sentencepiece");
    virtual ~TokenizerPlugin() = default;

    virtual std::string name() const = 0;
    virtual std::string version() const = 0;
    virtual std::filesystem::path libraryPath() const = 0;

    // Trains on a text file (one sentence or document per line) and returns the model bytes. With a
    // stop token that can be stopped, the trainer runs in a child process, and a stop request ends
    // it at once with Cancelled (a trainer cannot be interrupted otherwise).
    virtual std::string train(const std::filesystem::path &input, const TokenizerTrainOptions &options,
                              std::stop_token stop = {}) const = 0;
    virtual std::unique_ptr<ITokenizer> loadFile(const std::filesystem::path &model) const = 0;
    virtual std::unique_ptr<ITokenizer> loadBytes(const std::string &modelBytes) const = 0;
};

} // namespace polymoe
