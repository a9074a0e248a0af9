// Dense-model jobs: pre-training, full fine-tuning, evaluation, import, description, sampling.
#include "polymoe/dense_jobs.h"

#include "hf_tokenizer.h"

#include "distributed_ops.h"
#include "evaluation.h"
#include "polymoe/distributed.h"
#include "model_io.h"
#include "models/generate.h"
#include "polymoe/corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "polymoe/tokenizer.h"
#include "project_data.h"
#include "project_models.h"
#include "run_record.h"
#include "safetensors.h"
#include "trainer.h"
#include "utf8.h"

#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <fstream>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

std::string readText(const fs::path &p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in)
        throw IoError(p.string() + ": cannot open");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Pre-training: old languages share (1 - newShare) equally, new ones newShare equally.
// Fine-tuning: new languages only.
std::map<std::string, double> defaultWeights(const ProjectStore &store, const std::string &kind, double newShare)
{
    std::vector<std::string> olds, news;
    for (const auto &l : store.languages())
        (l.group == LanguageGroup::Old ? olds : news).push_back(l.code);
    std::map<std::string, double> w;
    if (kind == "finetune") {
        if (news.empty())
            throw ConfigError(store.path().string() + ": fine-tuning needs new-language text; the project has none");
        for (const auto &c : news)
            w[c] = 1.0 / double(news.size());
        return w;
    }
    if (olds.empty())
        throw ConfigError(store.path().string() + ": pre-training needs old-language text; the project has none");
    const double ns = news.empty() ? 0.0 : newShare;
    for (const auto &c : olds)
        w[c] = (1 - ns) / double(olds.size());
    for (const auto &c : news)
        w[c] = ns / double(news.size());
    return w;
}

} // namespace

Recipe readRecipe(const fs::path &file)
{
    const auto j = nlohmann::json::parse(readText(file), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw FormatError(file.string() + ": a recipe must be a JSON object");
    if (!j.contains("model") || !j["model"].is_object())
        throw ConfigError(file.string() + ": the recipe has no \"model\" object (config.json keys)");
    Recipe r;
    r.source = file.string();
    r.modelConfigJson = j["model"].dump();
    if (j.contains("train"))
        r.train = trainConfigFromJson(j["train"].dump(), file.string() + ": \"train\"");
    r.newLanguageShare = j.value("new_language_share", r.newLanguageShare);
    if (r.newLanguageShare < 0 || r.newLanguageShare >= 1)
        throw ConfigError(file.string() + ": new_language_share must be in [0, 1)");
    return r;
}

fs::path builtinRecipe(const std::string &name)
{
    // Installed data first, then the source tree the binary was built from.
    for (const fs::path &dir : {fs::path("/usr/share/polymoe/demo"), fs::path("/usr/local/share/polymoe/demo"),
                               fs::path(POLYMOE_RESOURCE_DIR) / "demo"}) {
        const fs::path p = dir / (name + ".json");
        if (fs::exists(p))
            return p;
    }
    throw ConfigError("built-in recipe '" + name + "' not found (looked in /usr/share/polymoe/demo and " +
                      std::string(POLYMOE_RESOURCE_DIR) + "/demo)");
}

DenseTrainOutcome trainDenseModel(ProjectStore &store, const DenseTrainSpec &spec, const TrainStatusFn &status,
                                  const ProgressFn &progress, std::stop_token stop)
{
    const auto tokRec = currentTokenizerRecord(store);
    if (!tokRec)
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    if (!spec.outputName.empty())
        checkSafeName(spec.outputName, "model name"); // before any training: it becomes a folder name
    TrainConfig cfg = spec.recipe.train;
    if (spec.init || spec.initModel) {
        if (cfg.kind == "pretrain")
            cfg.kind = "finetune";
    }
    if (cfg.kind != "pretrain" && cfg.kind != "finetune")
        throw ConfigError("dense training kind must be pretrain or finetune, not '" + cfg.kind + "'");
    if (cfg.languageWeights.empty())
        cfg.languageWeights = defaultWeights(store, cfg.kind, spec.recipe.newLanguageShare);

    // Resume: the unfinished run of this kind, with its own stored settings.
    int64_t runId = 0;
    std::optional<int64_t> parentId;
    fs::path initDir;
    nlohmann::json runConfig;
    const bool primary = isPrimaryRank(); // data-parallel: rank 0 alone writes the project
    const bool resume = spec.resume || resumeAfterRestart(store, cfg.kind, spec.outputName);
    if (resume) {
        const RunRecord run = runToResume(store, cfg.kind, spec.outputName);
        runId = run.id;
        runConfig = nlohmann::json::parse(run.config);
        cfg = trainConfigFromJson(runConfig["train"].dump(), "run " + std::to_string(runId));
        if (runConfig.contains("init_dir"))
            initDir = runConfig["init_dir"].get<std::string>();
        if (runConfig.contains("parent_id"))
            parentId = runConfig["parent_id"].get<int64_t>();
    } else if (spec.initModel) {
        auto m = store.model(*spec.initModel);
        if (!m)
            throw ConfigError(store.path().string() + ": no model named '" + *spec.initModel + "'");
        initDir = store.modelPath(*m);
        parentId = m->id;
    } else if (spec.init) {
        initDir = fs::absolute(*spec.init);
    }

    // The model: a fresh one from the recipe, seeded, or the init folder's.
    CausalLM model{nullptr};
    if (!initDir.empty()) {
        model = loadModelFolder(initDir);
        checkVocabularyFits(model->config().vocabSize, tokRec->vocabSize, initDir.string());
    } else {
        auto mj = runId ? runConfig["model"] : nlohmann::json::parse(spec.recipe.modelConfigJson);
        const SpecialTokens sp = projectSpecialTokens(store);
        mj["vocab_size"] = tokRec->vocabSize;
        mj["bos_token_id"] = sp.bos;
        mj["eos_token_id"] = sp.eos;
        const ModelConfig mc = parseModelConfig(mj.dump(), spec.recipe.source.empty() ? "recipe" : spec.recipe.source);
        torch::manual_seed(cfg.seed);
        model = CausalLM(mc);
    }

    checkTrainingDevice(cfg); // a refused device or dtype records no run
    if (!runId) {
        runId = dist::decideOnPrimary([&] {
            runConfig = {{"train", nlohmann::json::parse(trainConfigToJson(cfg))},
                         {"model", nlohmann::json::parse(modelConfigToJson(model->config()))},
                         {"recipe", spec.recipe.source}, {"tokenizer_id", tokRec->id}};
            if (!spec.outputName.empty())
                runConfig["output_name"] = spec.outputName;
            if (!initDir.empty())
                runConfig["init_dir"] = initDir.string();
            if (parentId)
                runConfig["parent_id"] = *parentId;
            addDistributedSettings(runConfig);
            return store.beginRun(cfg.kind, runConfig.dump(), parentId);
        }, "the run's id");
    } else if (primary) {
        store.resumeRun(runId); // the run row is reused: running again, in this process
    }
    const fs::path runDir = primary ? store.ensureDataDir("runs/" + std::to_string(runId))
                                    : store.dataDir() / "runs" / std::to_string(runId);

    auto trainStreams = projectStreams(store, "train", cfg.languageWeights);
    SequenceBatcher batcher(trainStreams, cfg.seqLen, cfg.seed);
    TrainLoopSpec job;
    job.model = model;
    for (const auto &item : model->named_parameters())
        job.trainable.emplace_back(item.key(), item.value());
    job.batcher = &batcher;
    job.config = cfg;
    job.checkpointDir = runDir;
    job.store = primary ? &store : nullptr;
    job.runId = runId;
    job.resume = resume && hasCheckpoint(runDir);

    DenseTrainOutcome out;
    // Section 8 on the trained weights, before rank 0 saves them: every rank scores its share.
    const auto evaluate = [&] {
        return evaluateHeldout(store, *model, cfg.seqLen, cfg.evalTokens, cfg.batchSize, progress, stop,
                               /*acrossRanks=*/true);
    };
    if (!primary) { // its share of every step and of the evaluation; rank 0 records and saves
        out.train = runTraining(job, status, stop);
        out.evaluation = evaluate();
        return out;
    }
    recordRun(store, runId, runDir, [&] {
        out.train = runTraining(job, status, stop);
        out.evaluation = evaluate();
        const std::string name = spec.outputName.empty() ? store.uniqueModelName(cfg.kind == "pretrain" ? "base" : "finetuned")
                                                         : spec.outputName;
        if (store.model(name))
            throw ConfigError(store.path().string() + ": a model named '" + name + "' already exists");
        nlohmann::json prov = {{"polymoe_version", POLYMOE_VERSION}, {"run_id", runId}, {"kind", cfg.kind},
                               {"project", fs::absolute(store.path()).string()}, {"steps", out.train.steps},
                               {"tokens", out.train.tokens}, {"dtype", out.train.dtype}};
        const ModelRecord rec = completeRun(store, runId, out.train.checkpoint, [&] {
            return saveProjectModel(store, *model, name, cfg.kind == "pretrain" ? "base" : "finetuned", parentId,
                                    tokRec->id, prov.dump(2));
        });
        out.modelId = rec.id;
        out.modelName = name;
        out.modelDir = store.modelPath(rec);
    });

    recordEvaluation(store, out.evaluation, out.modelId, runId, "heldout");
    return out;
}

namespace {

// The model an evaluation scores (a project model's name, or a folder: recorded when it is one of
// the project's), with the sequence length to score in: seqLenAsked, else its training run's, else 128.
struct EvaluationTarget {
    CausalLM model{nullptr};
    std::optional<ModelRecord> record;
    int64_t seqLen = 128;
};

EvaluationTarget evaluationTarget(ProjectStore &store, const std::string &modelNameOrDir, int64_t seqLenAsked)
{
    EvaluationTarget t;
    t.record = store.model(modelNameOrDir);
    fs::path dir = t.record ? store.modelPath(*t.record) : fs::path(modelNameOrDir);
    if (!t.record)
        for (const auto &m : store.models())
            if (fs::exists(store.modelPath(m)) && fs::exists(dir) && fs::equivalent(store.modelPath(m), dir))
                t.record = m;
    t.model = loadModelFolder(dir);
    setTrainingThreads(0);
    t.seqLen = seqLenAsked > 0 ? seqLenAsked : 128;
    if (t.record && seqLenAsked <= 0) {
        // Evaluate with the sequence length the model was trained with, when known.
        for (const auto &r : store.runs())
            if (r.modelOut == t.record->id) {
                const auto j = nlohmann::json::parse(r.config, nullptr, false);
                if (j.is_object() && j.contains("train"))
                    t.seqLen = j["train"].value("seq_len", t.seqLen);
            }
    }
    t.seqLen = std::min<int64_t>(t.seqLen, t.model->config().maxPositionEmbeddings);
    return t;
}

} // namespace

std::vector<PerplexityRow> evaluateModel(ProjectStore &store, const std::string &modelNameOrDir, int64_t maxTokens,
                                         const ProgressFn &progress, std::stop_token stop, int64_t seqLenAsked)
{
    EvaluationTarget t = evaluationTarget(store, modelNameOrDir, seqLenAsked);
    return evaluateAndRecord(store, *t.model, t.record ? std::optional<int64_t>(t.record->id) : std::nullopt,
                             std::nullopt, t.seqLen, maxTokens, 16, progress, stop);
}

std::vector<PerplexityRow> evaluateProbe(ProjectStore &store, const std::string &modelNameOrDir, const std::string &name,
                                         const std::string &language, const std::vector<fs::path> &files,
                                         int64_t maxTokens, const ProgressFn &progress, std::stop_token stop,
                                         int64_t seqLenAsked)
{
    checkSafeName(name, "probe name");
    const auto lang = store.language(language);
    if (!lang)
        throw ConfigError(store.path().string() + ": no language '" + language + "' in the project (a probe is "
                          "scored as text of one of its languages)");
    if (files.empty())
        throw ConfigError("probe '" + name + "': no text files");
    // The text first, so that a bad file is refused before the model is loaded.
    std::vector<RawDocument> docs;
    for (const auto &f : files) {
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        auto got = readDocuments(f, TextFormat::Paragraphs, issues, empty);
        // Paragraphs have two problems, invalid UTF-8 and control characters: either means the file is no text.
        if (!issues.empty())
            throw FormatError(issues.front().origin + ": " + issues.front().problem + " (a probe must be UTF-8 text)");
        for (auto &d : got)
            docs.push_back(std::move(d));
    }
    if (docs.empty())
        throw ConfigError("probe '" + name + "': the files hold no text");
    const auto tokenizer = loadProjectTokenizer(store);
    const SpecialTokens sp = projectDocumentTokens(store);
    TokenShard shard;
    shard.language = language;
    shard.vocabSize = tokenizer->vocabSize();
    std::vector<int64_t> chars, bytes;
    for (const auto &d : docs) {
        throwIfStopped(stop);
        shard.addDocument(tokenizer->encode(d.text));
        chars.push_back(countCodePoints(d.text));
        bytes.push_back(int64_t(d.text.size()));
    }
    LanguageStream stream = makeStream(shard, lang->group == LanguageGroup::New, 1.0, sp.bos, sp.eos);
    stream.documentCharacters = std::move(chars);
    stream.documentBytes = std::move(bytes);

    EvaluationTarget t = evaluationTarget(store, modelNameOrDir, seqLenAsked);
    checkVocabularyFits(t.model->config().vocabSize, tokenizer->vocabSize(), "probe '" + name + "'");
    return evaluateAndRecordStreams(store, *t.model, t.record ? std::optional<int64_t>(t.record->id) : std::nullopt,
                                    std::nullopt, {stream}, probeSplit(name), t.seqLen, maxTokens, 16, progress, stop);
}

ModelRecord importModelFolder(ProjectStore &store, const fs::path &dir, const std::string &name)
{
    CausalLM model = loadModelFolder(dir); // validates config and every tensor
    ModelRecord rec;
    rec.name = name.empty() ? store.uniqueModelName(fs::absolute(dir).filename().string()) : name;
    rec.kind = "imported";
    rec.path = fs::absolute(dir).string();
    rec.config = modelConfigToJson(model->config());
    rec.parameters = countParameters(*model);
    if (auto t = currentTokenizerRecord(store); t && t->vocabSize <= model->config().vocabSize)
        rec.tokenizerId = t->id;
    rec.id = store.addModel(rec);
    return rec;
}

std::string describeModelFolder(const fs::path &dir)
{
    const ModelConfig cfg = readModelConfig((dir / "config.json").string());
    nlohmann::json j;
    j["folder"] = fs::absolute(dir).string();
    j["config"] = nlohmann::json::parse(modelConfigToJson(cfg));
    const auto tensors = loadCheckpointFolder(dir);
    int64_t params = 0;
    std::map<std::string, int64_t> byDtype;
    for (const auto &[name, t] : tensors) {
        params += t.numel();
        byDtype[std::string(c10::toString(t.scalar_type()))] += t.numel();
    }
    j["parameters"] = params;
    j["tensors"] = tensors.size();
    j["dtypes"] = byDtype;
    j["files"] = nlohmann::json::array();
    for (const auto &e : fs::directory_iterator(dir))
        if (e.is_regular_file())
            j["files"].push_back({{"name", e.path().filename().string()}, {"bytes", e.file_size()}});
    j["has_tokenizer"] = fs::exists(dir / "tokenizer.model") || fs::exists(dir / "tokenizer.json");
    j["tokenizer_file"] = fs::exists(dir / "tokenizer.json") ? "tokenizer.json"
                          : fs::exists(dir / "tokenizer.model") ? "tokenizer.model" : "";
    return j.dump(2);
}

namespace {

// A continuation of `prompt`, encoded as transformers encodes a prompt (a tokenizer.json's
// post-processor adds what it adds; otherwise BOS, then the text), without a final EOS.
std::string continuePrompt(CausalLM &model, const ITokenizer &tok, const std::string &prompt, const GenerateOptions &o)
{
    std::vector<int64_t> ids;
    const SpecialTokens sp = tok.specialTokens();
    if (const auto *hf = dynamic_cast<const HfTokenizer *>(&tok)) {
        for (int32_t id : hf->encode(prompt, true))
            ids.push_back(id);
    } else {
        if (sp.bos >= 0)
            ids.push_back(sp.bos);
        for (int32_t id : tok.encode(prompt))
            ids.push_back(id);
    }
    const auto out = generate(model, ids, o.maxNewTokens, o.temperature, o.topK, o.seed, sp.eos, o.stop);
    std::vector<int32_t> newIds(out.begin(), out.end());
    if (!newIds.empty() && newIds.back() == sp.eos)
        newIds.pop_back();
    return tok.decode(newIds);
}

} // namespace

std::string generateText(const fs::path &modelDir, const std::string &prompt, const GenerateOptions &o)
{
    auto tok = loadFolderTokenizer(modelDir); // tokenizer.json, else tokenizer.model
    CausalLM model = loadModelFolder(modelDir);
    setTrainingThreads(0);
    return continuePrompt(model, *tok, prompt, o);
}

std::vector<SampleRecord> recordSamples(ProjectStore &store, const std::string &modelName,
                                        const std::vector<SamplePrompt> &prompts, int64_t maxNewTokens,
                                        const ProgressFn &progress, std::stop_token stop)
{
    const ModelRecord rec = requireModel(store, modelName);
    auto tok = loadProjectTokenizer(store);
    CausalLM model = loadModelFolder(store.modelPath(rec));
    setTrainingThreads(0);
    GenerateOptions o;
    o.maxNewTokens = maxNewTokens;
    o.temperature = 0; // greedy: the same text on every run
    o.stop = stop;
    std::vector<SampleRecord> out;
    for (const auto &p : prompts) {
        throwIfStopped(stop);
        out.push_back({rec.id, p.language, p.prompt, continuePrompt(model, *tok, p.prompt, o), maxNewTokens});
        if (progress)
            progress({"samples " + modelName, int64_t(out.size()), int64_t(prompts.size()), "prompts", p.language});
    }
    store.addSamples(out);
    return out;
}

} // namespace polymoe
