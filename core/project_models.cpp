// Project models: lookup, saving, recorded evaluation (see project_models.h).
#include "project_models.h"

#include <fstream>
#include <iterator>

#include "evaluation.h"
#include "model_io.h"
#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "project_data.h"

namespace polymoe {

ModelRecord requireModel(const ProjectStore &store, const std::string &name)
{
    auto m = store.model(name);
    if (!m)
        throw ConfigError(store.path().string() + ": no model named '" + name + "'");
    return *m;
}

void checkVocabularyFits(int64_t modelVocab, int64_t tokenizerVocab, const std::string &where)
{
    if (tokenizerVocab > modelVocab)
        throw ConfigError(where + ": the model's vocabulary (" + std::to_string(modelVocab) +
                          " tokens) is smaller than the project tokenizer's (" + std::to_string(tokenizerVocab) +
                          "): ids past the model's embedding would have no row");
}

ModelRecord saveProjectModel(ProjectStore &store, CausalLMImpl &model, const std::string &name, const std::string &kind,
                             std::optional<int64_t> parentId, std::optional<int64_t> tokenizerId,
                             const std::string &provenanceJson)
{
    checkSafeName(name, "model name");
    if (store.model(name))
        throw ConfigError(store.path().string() + ": a model named '" + name + "' already exists");
    const std::string rel = "models/" + name;
    saveModelFolder(model, store.dataDir() / rel, projectTokenizerFiles(store), provenanceJson);
    ModelRecord rec;
    rec.name = name;
    rec.kind = kind;
    rec.path = rel;
    // config.json as written: an expanded model's carries its MoE layout ("polymoe").
    std::ifstream configFile(store.dataDir() / rel / "config.json");
    rec.config.assign(std::istreambuf_iterator<char>(configFile), std::istreambuf_iterator<char>());
    if (rec.config.empty())
        rec.config = modelConfigToJson(model.config());
    rec.parentId = parentId;
    rec.tokenizerId = tokenizerId;
    rec.parameters = countParameters(model);
    rec.id = store.addModel(rec);
    return rec;
}

namespace {

std::vector<LanguageStream> heldoutStreams(ProjectStore &store)
{
    auto heldout = projectStreams(store, "heldout");
    attachDocumentSizes(store, "heldout", heldout);
    return heldout;
}

} // namespace

std::vector<PerplexityRow> evaluateAndRecord(ProjectStore &store, CausalLMImpl &model, std::optional<int64_t> modelId,
                                             std::optional<int64_t> runId, int64_t seqLen, int64_t maxTokens,
                                             int64_t batchSize, const ProgressFn &progress, std::stop_token stop)
{
    return evaluateAndRecordStreams(store, model, modelId, runId, heldoutStreams(store), "heldout", seqLen, maxTokens,
                                    batchSize, progress, stop);
}

std::vector<PerplexityRow> evaluateHeldout(ProjectStore &store, CausalLMImpl &model, int64_t seqLen, int64_t maxTokens,
                                           int64_t batchSize, const ProgressFn &progress, std::stop_token stop,
                                           bool acrossRanks)
{
    return evaluatePerplexity(model, heldoutStreams(store), seqLen, maxTokens, batchSize, progress, stop, acrossRanks);
}

void recordEvaluation(ProjectStore &store, const std::vector<PerplexityRow> &rows, int64_t modelId,
                      std::optional<int64_t> runId, const std::string &split)
{
    std::vector<EvaluationRecord> recs;
    for (const auto &r : rows) {
        if (r.tokens == 0)
            continue; // a language without held-out text has no figure to record (its loss is NaN)
        EvaluationRecord e{modelId, runId, r.language, split, r.tokens, r.loss, r.perplexity, {}};
        e.documents = r.documents;
        e.perplexityLow = r.perplexityLow;
        e.perplexityHigh = r.perplexityHigh;
        e.characters = r.characters;
        e.bytes = r.bytes;
        recs.push_back(e);
    }
    store.addEvaluations(recs);
}

std::vector<PerplexityRow> evaluateAndRecordStreams(ProjectStore &store, CausalLMImpl &model,
                                                    std::optional<int64_t> modelId, std::optional<int64_t> runId,
                                                    const std::vector<LanguageStream> &streams, const std::string &split,
                                                    int64_t seqLen, int64_t maxTokens, int64_t batchSize,
                                                    const ProgressFn &progress, std::stop_token stop)
{
    auto rows = evaluatePerplexity(model, streams, seqLen, maxTokens, batchSize, progress, stop);
    if (modelId)
        recordEvaluation(store, rows, *modelId, runId, split);
    return rows;
}

} // namespace polymoe
