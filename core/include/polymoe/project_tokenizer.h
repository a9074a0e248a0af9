// The project's tokenizer: training one on the project's text (or importing an existing
// tokenizer.model), keeping it in the store, and tokenizing the corpora into shards with it.
#pragma once

#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "polymoe/tokenizer.h"

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

struct TokenizerRecord {
    int64_t id = 0;
    std::string backend;   // "sentencepiece"
    std::string modelType; // "unigram", "bpe", or "" when imported
    int vocabSize = 0;
    std::string sha256;    // of the model bytes
    std::string source;    // "trained on en,es,de,ru" or the imported file
    bool current = false;
    std::string createdAt;
};

// Trains on the train split of every language in the project (each document's lines become the
// trainer's sentences), stores the model and makes it current. Throws ConfigError when the project
// has no documents.
TokenizerRecord trainProjectTokenizer(ProjectStore &store, const TokenizerTrainOptions &options,
                                      const ProgressFn &progress = {}, std::stop_token stop = {});
// Stores an existing model file (e.g. a checkpoint's tokenizer.model) and makes it current.
TokenizerRecord importTokenizerModel(ProjectStore &store, const std::filesystem::path &modelFile);

std::optional<TokenizerRecord> currentTokenizerRecord(const ProjectStore &store);
std::unique_ptr<ITokenizer> loadProjectTokenizer(const ProjectStore &store); // ConfigError if none
// The model bytes of the current tokenizer (for writing tokenizer.model next to a checkpoint).
std::string projectTokenizerBytes(const ProjectStore &store);
// Its special ids, kept in the store so that training needs no tokenizer plugin.
SpecialTokens projectSpecialTokens(const ProjectStore &store);

struct ShardRecord {
    std::string language;
    std::string split; // "train" or "heldout"
    std::filesystem::path path;
    int64_t documents = 0, tokens = 0, words = 0, characters = 0;
};

// Tokenizes every language and split with the current tokenizer into shards under
// "<project>.d/shards/"; languages already done with this tokenizer are skipped unless force.
std::vector<ShardRecord> tokenizeProject(ProjectStore &store, bool force = false,
                                         const ProgressFn &progress = {}, std::stop_token stop = {});
// The shards of the current tokenizer.
std::vector<ShardRecord> projectShards(const ProjectStore &store);

} // namespace polymoe
