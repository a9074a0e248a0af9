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
#include <string_view>
#include <utility>
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

// Whitespace policies, recorded with each stored tokenizer ("whitespace" in its settings) and applied
// by loadProjectTokenizer's encode: "collapse" (trained here: every whitespace run is one space, so the
// text encoded is the text trained on) or "verbatim" (imported tokenizers: the text as it is).
inline constexpr const char *kWhitespaceCollapse = "collapse";
inline constexpr const char *kWhitespaceVerbatim = "verbatim";

// The trainer's sentences for one document: the document with its whitespace collapsed, cut at
// spaces into units of at most maxBytes (SentencePiece skips longer sentences).
std::vector<std::string> tokenizerTrainingUnits(std::string_view document, int maxBytes);

// Trains on the train split of every language in the project (each document, whitespace collapsed,
// becomes the trainer's sentences: tokenizerTrainingUnits), stores the model with the "collapse"
// policy and makes it current. Throws ConfigError when the project has no documents.
TokenizerRecord trainProjectTokenizer(ProjectStore &store, const TokenizerTrainOptions &options,
                                      const ProgressFn &progress = {}, std::stop_token stop = {});
// Stores an existing SentencePiece model file (e.g. a checkpoint's tokenizer.model) and makes it current.
TokenizerRecord importTokenizerModel(ProjectStore &store, const std::filesystem::path &modelFile);
// Stores an existing tokenizer and makes it current: a Hugging Face tokenizer.json (backend
// "hf-tokenizers", with the tokenizer_config.json and special_tokens_map.json beside a file named
// tokenizer.json), a SentencePiece model file, or a folder holding either (tokenizer.json first).
// The file is validated by loading it: an unsupported component or a malformed file is an error
// naming the file, and nothing is stored.
TokenizerRecord importTokenizer(ProjectStore &store, const std::filesystem::path &fileOrFolder);
// The tokenizer of a model folder: tokenizer.json (Hugging Face) first, else tokenizer.model.
std::unique_ptr<ITokenizer> loadFolderTokenizer(const std::filesystem::path &modelDir);
// The files a model folder carries for the current tokenizer, (name, bytes): tokenizer.model for a
// SentencePiece one; tokenizer.json plus the imported tokenizer_config.json and
// special_tokens_map.json for a Hugging Face one.
std::vector<std::pair<std::string, std::string>> projectTokenizerFiles(const ProjectStore &store);

std::optional<TokenizerRecord> currentTokenizerRecord(const ProjectStore &store);
// The current tokenizer, encoding under its whitespace policy. ConfigError if none.
std::unique_ptr<ITokenizer> loadProjectTokenizer(const ProjectStore &store);
std::string projectWhitespacePolicy(const ProjectStore &store); // kWhitespaceCollapse or kWhitespaceVerbatim
// The model bytes of the current tokenizer (for writing tokenizer.model next to a checkpoint).
std::string projectTokenizerBytes(const ProjectStore &store);
// Its special ids, kept in the store so that training needs no tokenizer plugin.
SpecialTokens projectSpecialTokens(const ProjectStore &store);
// How documents are framed in training and evaluation streams: bos before each document (-1: none),
// eos after it. For a SentencePiece tokenizer, its BOS and EOS. For an imported tokenizer.json, as the
// model was pre-trained: bos = what its post-processor puts before a text (Llama-3's
// <|begin_of_text|>; nothing for GPT-2, Qwen2, SmolLM2), eos = the document separator
// <|endoftext|> or <|end_of_text|> when the vocabulary has one, else its eos token. A chat model's eos
// (<|im_end|>, <|eot_id|>) ends a turn, not a document: text framed with it is scored on a pattern the
// model never saw in pre-training, and any training lowers every perplexity by learning the frame.
SpecialTokens projectDocumentTokens(const ProjectStore &store);

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
