// Jobs on dense models, as the CLI and the GUI start them: pre-training a base model, full
// fine-tuning (continued pre-training, the baseline), held-out evaluation per language, importing
// a Hugging Face folder, describing one, and sampling text. No LibTorch types here.
#pragma once

#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "polymoe/training.h"

#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

// A recipe file: {"model": {config.json keys}, "train": {training settings}, "new_language_share": x}
struct Recipe {
    std::string modelConfigJson;   // vocab_size and special ids are filled in from the tokenizer
    TrainConfig train;
    double newLanguageShare = 0.05; // METHOD.md section 9 Decision: the demo base sees 5% new text
    std::string source;             // file it came from
};
Recipe readRecipe(const std::filesystem::path &file);
// The built-in demo recipes in resources/demo: "demo-base" (standard) and "demo-base-tiny".
std::filesystem::path builtinRecipe(const std::string &name);

struct DenseTrainSpec {
    Recipe recipe;
    std::optional<std::filesystem::path> init; // a model folder: continued pre-training / fine-tuning
    std::optional<std::string> initModel;      // or a model of the project, by name
    std::string outputName;                    // model name in the project; default by kind
    bool resume = false;                       // continue the last unfinished run of this kind
};

struct DenseTrainOutcome {
    TrainResult train;
    int64_t modelId = 0;
    std::string modelName;
    std::filesystem::path modelDir;
    std::vector<PerplexityRow> evaluation;
};

// Pre-trains (recipe.train.kind "pretrain") or fine-tunes ("finetune") on the project's token
// shards, saves the model into the project's data folder, records run, metrics, model and
// held-out evaluation. Language weights: the recipe's, else pretrain = old languages plus the
// recipe's new-language share, finetune = new languages only.
DenseTrainOutcome trainDenseModel(ProjectStore &store, const DenseTrainSpec &spec, const TrainStatusFn &status = {},
                                  const ProgressFn &progress = {}, std::stop_token stop = {});

// Held-out perplexity of a model (a project model's name, or a folder) on every project language;
// recorded when the model belongs to the project. seqLen 0: the sequence length its training run
// used, else 128.
std::vector<PerplexityRow> evaluateModel(ProjectStore &store, const std::string &modelNameOrDir, int64_t maxTokens,
                                         const ProgressFn &progress = {}, std::stop_token stop = {}, int64_t seqLen = 0);

// Perplexity of a model on text from outside the project's corpus: an out-of-domain probe (the old
// language in another domain: where the held-out text shares the training text's domain, forgetting
// can hide behind a domain gain). Each file is cut into documents at blank lines (as corpus import's
// "paragraphs"), tokenized with the project tokenizer as corpus documents are, scored as held-out
// text is, and recorded as the split "probe:NAME" of `language` (a language of the project) when the
// model belongs to the project. NAME: as checkSafeName allows. Throws ConfigError for a bad name
// or language, FormatError naming the file and line for text that is not UTF-8, IoError for a file
// that cannot be read.
std::vector<PerplexityRow> evaluateProbe(ProjectStore &store, const std::string &modelNameOrDir, const std::string &name,
                                         const std::string &language, const std::vector<std::filesystem::path> &files,
                                         int64_t maxTokens, const ProgressFn &progress = {}, std::stop_token stop = {},
                                         int64_t seqLen = 0);

// Adds an existing Hugging Face folder (validated by loading it) as an "imported" model.
ModelRecord importModelFolder(ProjectStore &store, const std::filesystem::path &dir, const std::string &name = {});

// A JSON description of a model folder: config, parameters, tensors, dtype, files.
std::string describeModelFolder(const std::filesystem::path &dir);

struct GenerateOptions {
    int64_t maxNewTokens = 64;
    double temperature = 0.8; // 0 = greedy
    int64_t topK = 40;        // 0 = all
    uint64_t seed = 1;
    std::stop_token stop;     // ends the generation between two tokens (Cancelled)
};
// Samples a continuation with the folder's tokenizer (tokenizer.json, else tokenizer.model); returns
// the new text.
std::string generateText(const std::filesystem::path &modelDir, const std::string &prompt, const GenerateOptions &o);

struct SamplePrompt {
    std::string language;
    std::string prompt;
};
// Greedy continuations (at most maxNewTokens each) of the prompts by a project model, with the
// project's tokenizer, recorded in the project (generation samples of the forgetting report).
std::vector<SampleRecord> recordSamples(ProjectStore &store, const std::string &modelName,
                                        const std::vector<SamplePrompt> &prompts, int64_t maxNewTokens,
                                        const ProgressFn &progress = {}, std::stop_token stop = {});

} // namespace polymoe
