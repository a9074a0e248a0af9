// Models kept in a project: finding one by name, saving a trained model into the data folder with
// its store row, and recording a held-out evaluation. Shared by the dense and the expansion jobs.
#pragma once

#include "models/llama.h"
#include "sequence_batcher.h"
#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "polymoe/training.h"

#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

// The model row by name; ConfigError naming the project when there is none.
ModelRecord requireModel(const ProjectStore &store, const std::string &name);

// A model can use the project tokenizer when every token id has an embedding row: the tokenizer's
// vocabulary may be smaller than the model's (embedding tables are often padded, as Qwen2's), never
// larger. ConfigError naming `where` otherwise.
void checkVocabularyFits(int64_t modelVocab, int64_t tokenizerVocab, const std::string &where);

// Writes the model folder to "<data>/models/NAME" (with the project tokenizer's model bytes) and adds
// its row; returns the row with its id. ConfigError when the name is taken.
ModelRecord saveProjectModel(ProjectStore &store, CausalLMImpl &model, const std::string &name, const std::string &kind,
                             std::optional<int64_t> parentId, std::optional<int64_t> tokenizerId,
                             const std::string &provenanceJson);

// Held-out perplexity of every project language, recorded for the model (and run) when modelId is set.
std::vector<PerplexityRow> evaluateAndRecord(ProjectStore &store, CausalLMImpl &model, std::optional<int64_t> modelId,
                                             std::optional<int64_t> runId, int64_t seqLen, int64_t maxTokens,
                                             int64_t batchSize, const ProgressFn &progress, std::stop_token stop);
// The same on the given streams, recorded under `split` ("heldout", or "probe:NAME" for a probe text).
std::vector<PerplexityRow> evaluateAndRecordStreams(ProjectStore &store, CausalLMImpl &model,
                                                    std::optional<int64_t> modelId, std::optional<int64_t> runId,
                                                    const std::vector<LanguageStream> &streams, const std::string &split,
                                                    int64_t seqLen, int64_t maxTokens, int64_t batchSize,
                                                    const ProgressFn &progress, std::stop_token stop);

// The two halves of evaluateAndRecord, for a training job: every rank of a data-parallel run
// scores its share of the held-out text (acrossRanks, evaluatePerplexity) before rank 0 saves the
// model, then rank 0 records the rows for the saved model.
std::vector<PerplexityRow> evaluateHeldout(ProjectStore &store, CausalLMImpl &model, int64_t seqLen, int64_t maxTokens,
                                           int64_t batchSize, const ProgressFn &progress, std::stop_token stop,
                                           bool acrossRanks);
void recordEvaluation(ProjectStore &store, const std::vector<PerplexityRow> &rows, int64_t modelId,
                      std::optional<int64_t> runId, const std::string &split);

} // namespace polymoe
