// An expansion stage from start to end (METHOD.md sections 4-8): resume, the stage's set-up
// (expansion_stage1.cpp or expansion_stage2.cpp), the run's record, the batcher, training with
// router statistics on the probe set, saving the expanded model and its evaluation.
//
//   router statistics (section 8): per layer x language x expert the share of routing slots, the
//   top-1 share and the entropy, on a fixed probe set of held-out sequences; what to watch (section
//   5) is the share of old-language tokens whose top-1 is expert 0, rising towards 1 in stage 2
//   evaluation (section 8): held-out perplexity per language of the saved model
#include "expansion_stage.h"

#include "distributed_ops.h"
#include "polymoe/distributed.h"
#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "polymoe/recorded_run.h"
#include "project_models.h"
#include "router_stats.h"
#include "run_record.h"

#include <cmath>

namespace polymoe {

using namespace detail;
namespace fs = std::filesystem;

namespace {

nlohmann::json specToJson(const ExpansionStageSpec &s)
{
    nlohmann::json j = {{"stage", s.stage}, {"model", s.model}, {"top_k", s.topK}, {"router_seed", s.routerSeed},
                        {"train_new_token_rows", s.trainNewTokenRows},
                        {"balance_coef", s.balanceCoef}, {"lpr_coef", s.lprCoef}, {"classifier", s.classifier},
                        {"classifier_share", s.classifierShare}, {"classifier_coef", s.classifierCoef},
                        {"old_share", s.oldShare}, {"replay_share", s.replayShare},
                        {"router_stats_every", s.routerStatsEvery}, {"probe_sequences", s.probeSequences},
                        {"output_name", s.outputName}};
    if (s.allocationId)
        j["allocation_id"] = *s.allocationId;
    return j;
}

ExpansionStageSpec specFromJson(const nlohmann::json &j, const TrainConfig &train)
{
    ExpansionStageSpec s;
    s.stage = j.at("stage").get<int>();
    s.model = j.at("model").get<std::string>();
    if (j.contains("allocation_id"))
        s.allocationId = j["allocation_id"].get<int64_t>();
    s.train = train;
    s.topK = j.value("top_k", s.topK);
    s.routerSeed = j.value("router_seed", s.routerSeed);
    s.trainNewTokenRows = j.value("train_new_token_rows", s.trainNewTokenRows);
    s.balanceCoef = j.value("balance_coef", s.balanceCoef);
    s.lprCoef = j.value("lpr_coef", s.lprCoef);
    s.classifier = j.value("classifier", s.classifier);
    s.classifierShare = j.value("classifier_share", s.classifierShare);
    s.classifierCoef = j.value("classifier_coef", s.classifierCoef);
    s.oldShare = j.value("old_share", s.oldShare);
    s.replayShare = j.value("replay_share", s.replayShare);
    s.routerStatsEvery = j.value("router_stats_every", s.routerStatsEvery);
    s.probeSequences = j.value("probe_sequences", s.probeSequences);
    s.outputName = j.value("output_name", s.outputName);
    s.resume = true;
    return s;
}

// Resume: the unfinished run of this stage, with its own stored settings (spec is replaced by the
// run's).
int64_t findRunToResume(ProjectStore &store, const std::string &kind, ExpansionStageSpec &spec)
{
    const RunRecord run = runToResume(store, kind, spec.outputName);
    const auto runConfig = nlohmann::json::parse(run.config);
    spec = specFromJson(runConfig.at("expansion"),
                        trainConfigFromJson(runConfig.at("train").dump(), "run " + std::to_string(run.id)));
    return run.id;
}

// A new run row carrying everything the stage decided, so that a resume and the reports read it back.
int64_t beginStageRun(ProjectStore &store, const std::string &kind, const ExpansionStageSpec &spec,
                      const StagePlan &plan, const CausalLM &model, const ModelRecord &inRec, int64_t tokenizerId,
                      const ExpansionOutcome &out)
{
    nlohmann::json runConfig = {{"train", nlohmann::json::parse(trainConfigToJson(plan.cfg))},
                                {"expansion", specToJson(spec)},
                                {"model", nlohmann::json::parse(modelConfigToJson(model->config()))},
                                {"model_in", inRec.name}, {"parent_id", inRec.id}, {"tokenizer_id", tokenizerId},
                                {"wave", plan.wave.wave}, {"old_languages", plan.wave.old},
                                {"new_languages", plan.wave.fresh},
                                {"experts_per_layer", out.experts}, {"classifier_layers", out.classifierLayers},
                                {"old_share", spec.oldShare}, {"replay_share", spec.replayShare},
                                {"output_name", spec.outputName}};
    addDistributedSettings(runConfig);
    for (auto it = plan.details.begin(); it != plan.details.end(); ++it)
        runConfig[it.key()] = it.value();
    return store.beginRun(kind, runConfig.dump(), inRec.id);
}

std::vector<RouterStatRecord> toRecords(const std::vector<RouterStatRow> &rows, int64_t runId,
                                        std::optional<int64_t> modelId, int64_t step)
{
    std::vector<RouterStatRecord> out;
    out.reserve(rows.size());
    for (const auto &r : rows)
        out.push_back({runId, modelId, step, r.layer, r.language, r.expert, r.slotShare, r.top1Share, r.entropy});
    return out;
}

// The languages whose rows the stage treats as old (LPR mask, classifier label 0), from the very
// streams the batcher reads: recorded with the run.
std::vector<std::string> oldRowLanguages(const std::vector<LanguageStream> &streams)
{
    std::vector<std::string> asOld;
    for (const auto &st : streams)
        if (!st.isNew)
            asOld.push_back(st.language);
    return asOld;
}

// A stage whose run is recorded: what training, saving and the statistics read.
struct StageRun {
    ProjectStore &store;
    const ExpansionStageSpec &spec;
    const StagePlan &plan;
    const ModelRecord &inRec;
    int64_t tokenizerId = 0;
    int64_t runId = 0;
    CausalLM model;
};

// Trains the stage on the streams (router statistics before the first step, every
// routerStatsEvery steps and of the saved model, section 8), saves the expanded model with the
// run's completion and evaluates it (section 8).
void trainAndSave(const StageRun &r, std::vector<LanguageStream> trainStreams, const TrainStatusFn &status,
                  const ProgressFn &progress, std::stop_token stop, ExpansionOutcome &out)
{
    ProjectStore &store = r.store;
    CausalLM model = r.model;
    const TrainConfig &cfg = r.plan.cfg;
    const bool primary = isPrimaryRank(); // data-parallel: rank 0 alone writes the project
    const fs::path runDir = primary ? store.ensureDataDir("runs/" + std::to_string(r.runId))
                                    : store.dataDir() / "runs" / std::to_string(r.runId);

    // The batcher draws rows by the stage's language weights (0: a language the stage leaves out).
    std::vector<LanguageStream> streams;
    for (auto &s : trainStreams) {
        auto it = cfg.languageWeights.find(s.language);
        s.weight = it == cfg.languageWeights.end() ? 0.0 : it->second;
        streams.push_back(std::move(s));
    }
    trainStreams.clear();
    SequenceBatcher batcher(std::move(streams), cfg.seqLen, cfg.seed);
    // Router statistics on a fixed probe set of held-out sequences per language.
    auto heldout = projectStreams(store, "heldout");
    groupByWave(heldout, r.plan.wave);
    const auto probe = makeProbeSets(heldout, cfg.seqLen, r.spec.probeSequences);
    // Every rank computes them (the ranks stay in step), rank 0 records them.
    auto recordStats = [&](int64_t step, std::optional<int64_t> modelId) {
        auto rows = routerStatistics(*model, probe);
        if (primary)
            store.addRouterStats(toRecords(rows, r.runId, modelId, step));
        return rows;
    };

    TrainLoopSpec loop;
    loop.model = model;
    loop.trainable = r.plan.trainable;
    loop.trainableRows = r.plan.trainableRows;
    loop.batcher = &batcher;
    loop.config = cfg;
    loop.loss = r.plan.loss;
    loop.checkpointDir = runDir;
    loop.store = primary ? &store : nullptr;
    loop.runId = r.runId;
    loop.resume = r.spec.resume && hasCheckpoint(runDir);
    // Router statistics on step boundaries: before the first step, every N steps, at the end.
    const TrainStatusFn withStats = [&](const TrainStatus &s) {
        if (r.spec.routerStatsEvery > 0 && s.step % r.spec.routerStatsEvery == 0 && s.step < s.totalSteps)
            recordStats(s.step, std::nullopt);
        if (status)
            status(s);
    };

    // Section 8 on the trained weights, before rank 0 saves them: every rank scores its share.
    const auto evaluate = [&] {
        return evaluateHeldout(store, *model, cfg.seqLen, cfg.evalTokens, cfg.batchSize, progress, stop,
                               /*acrossRanks=*/true);
    };
    if (!primary) { // its share of every step and of the evaluation; rank 0 records and saves
        if (!loop.resume)
            recordStats(0, std::nullopt);
        out.train = runTraining(loop, withStats, stop);
        out.evaluation = evaluate();
        return;
    }
    recordRun(store, r.runId, runDir, [&] {
        if (!loop.resume)
            recordStats(0, std::nullopt);
        out.train = runTraining(loop, withStats, stop);
        out.evaluation = evaluate();
        nlohmann::json prov = {{"polymoe_version", POLYMOE_VERSION}, {"run_id", r.runId}, {"kind", cfg.kind},
                               {"project", fs::absolute(store.path()).string()}, {"steps", out.train.steps},
                               {"tokens", out.train.tokens}, {"dtype", out.train.dtype}, {"parent", r.inRec.name},
                               {"experts_per_layer", out.experts}};
        const ModelRecord rec = completeRun(store, r.runId, out.train.checkpoint, [&] {
            return saveProjectModel(store, *model, r.spec.outputName, "expanded", r.inRec.id, r.tokenizerId,
                                    prov.dump(2));
        });
        out.modelId = rec.id;
        out.modelName = rec.name;
        out.modelDir = store.modelPath(rec);
    });
    out.routerStats = recordStats(out.train.steps, out.modelId);
    recordEvaluation(store, out.evaluation, out.modelId, r.runId, "heldout");
}

// A run's stored settings as a JSON object, once per reader; FormatError naming `where` otherwise.
nlohmann::json runConfigObject(const std::string &runConfig, const std::string &where)
{
    auto j = nlohmann::json::parse(runConfig, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw FormatError(where + ": the run's settings are not a JSON object");
    return j;
}

TrainConfig trainConfigOf(const nlohmann::json &j, const std::string &where)
{
    return j.contains("train") ? trainConfigFromJson(j["train"].dump(), where + ": \"train\"") : TrainConfig{};
}

} // namespace

TrainConfig recordedTrainConfig(const std::string &runConfig, const std::string &where)
{
    return trainConfigOf(runConfigObject(runConfig, where), where);
}

int recordedWorldSize(const std::string &runConfig, const std::string &where)
{
    const auto j = runConfigObject(runConfig, where);
    if (!j.contains("world_size"))
        return 1;
    if (!j["world_size"].is_number_integer() || j["world_size"].get<int64_t>() < 1 || j["world_size"].get<int64_t>() > 1 << 20)
        throw FormatError(where + ": world_size is not a positive integer");
    return int(j["world_size"].get<int64_t>());
}

ExpansionStageSpec recordedStageSpec(const std::string &runConfig, const std::string &where)
{
    const auto j = runConfigObject(runConfig, where);
    const TrainConfig train = trainConfigOf(j, where);
    try {
        // What a run records may lack the stage (then its kind says it) or the model (model_in below).
        nlohmann::json e = j.contains("expansion") ? j["expansion"] : nlohmann::json::object();
        if (!e.is_object())
            throw FormatError(where + ": \"expansion\" is not a JSON object");
        if (!e.contains("stage"))
            e["stage"] = train.kind == "stage2" ? 2 : 1;
        if (!e.contains("model"))
            e["model"] = "";
        ExpansionStageSpec s = specFromJson(e, train);
        s.resume = false;
        // The stage records the model it started from by name beside its spec (beginStageRun).
        if (j.contains("model_in"))
            s.model = j["model_in"].get<std::string>();
        return s;
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(where + ": expansion settings: " + e.what());
    }
}

double expert0Top1Share(const std::vector<RouterStatRow> &rows, int layer, const std::string &language)
{
    for (const auto &r : rows)
        if (r.layer == layer && r.language == language && r.expert == 0)
            return r.top1Share;
    return std::nan("");
}

ExpansionOutcome trainExpansionStage(ProjectStore &store, const ExpansionStageSpec &specIn, const TrainStatusFn &status,
                                     const ProgressFn &progress, std::stop_token stop)
{
    const auto tokRec = currentTokenizerRecord(store);
    if (!tokRec)
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    ExpansionStageSpec spec = specIn;
    if (spec.stage != 1 && spec.stage != 2)
        throw ConfigError("expansion stage must be 1 or 2, not " + std::to_string(spec.stage));
    const std::string kind = spec.stage == 1 ? "stage1" : "stage2";

    int64_t runId = 0;
    if (spec.resume || resumeAfterRestart(store, kind, spec.outputName))
        runId = findRunToResume(store, kind, spec);
    StagePlan plan{.cfg = spec.train};
    plan.cfg.kind = kind;
    if (plan.cfg.lr <= 0)
        plan.cfg.lr = spec.stage == 1 ? 1e-3 : 1e-2; // the calibrated demo values (section 9)
    const std::string outName = spec.outputName.empty() ? store.uniqueModelName(kind) : spec.outputName;
    // It becomes a folder name; a resumed run's comes from the project file: checked either way.
    checkSafeName(outName, "output model name");
    if (!runId && store.model(outName))
        throw ConfigError(store.path().string() + ": a model named '" + outName + "' already exists");
    spec.outputName = outName;

    const ModelRecord inRec = requireModel(store, spec.model);
    CausalLM model = loadModelFolder(store.modelPath(inRec));
    checkVocabularyFits(model->config().vocabSize, tokRec->vocabSize, "model '" + inRec.name + "'");
    auto trainStreams = projectStreams(store, "train");

    // The set-up: stage 1 upcycles (or grows) the model, stage 2 budgets the replay; both choose
    // the trainable tensors and the loss.
    ExpansionOutcome out;
    const StageInputs in{store, inRec, model, moeLayoutOf(*model), trainStreams};
    if (spec.stage == 1)
        planStage1(in, spec, plan);
    else
        planStage2(in, spec, plan, out);
    groupByWave(trainStreams, plan.wave);
    plan.details["old_rows_languages"] = oldRowLanguages(trainStreams);
    out.experts = moeLayoutOf(*model).expertsPerLayer;
    if (out.classifierLayers.empty())
        out.classifierLayers = moeLayoutOf(*model).classifierLayers;

    checkTrainingDevice(plan.cfg); // a refused device or dtype records no run
    if (!runId)
        runId = dist::decideOnPrimary([&] { return beginStageRun(store, kind, spec, plan, model, inRec, tokRec->id, out); },
                                      "the run's id");
    else if (isPrimaryRank())
        store.resumeRun(runId); // the run row is reused: running again, in this process
    out.runId = runId;
    trainAndSave({store, spec, plan, inRec, tokRec->id, runId, model}, std::move(trainStreams), status, progress, stop, out);
    return out;
}

} // namespace polymoe
