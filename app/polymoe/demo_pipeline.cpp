// The demo's steps (see demo_pipeline.h): project, corpus, tokenizer, shards, base model, layer
// similarity, allocation, fine-tuning, the two expansion stages.
#include "demo_pipeline.h"

#include "polymoe/allocation.h"
#include "polymoe/demo_corpus.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_tokenizer.h"

#include <algorithm>
#include <thread>

namespace polymoe::cli {

DemoProfile demoProfile(const std::string &name)
{
    if (name == "standard")
        return {.name = name, .baseRecipe = "demo-base"};
    if (name == "tiny")
        return {.name = name, .baseRecipe = "demo-base-tiny", .characters = 400'000, .vocabSize = 2000,
                .similarityTokens = 20000, .newExperts = 4, .finetuneSteps = 40, .stage1Steps = 40, .stage2Steps = 30,
                .statsEvery = 10};
    throw UsageError("--profile must be tiny or standard");
}

DemoSteps::DemoSteps(Context &ctx, std::function<void(const std::string &)> say, int totalSteps)
    : m_ctx(ctx), m_say(std::move(say)), m_total(totalSteps)
{
}

void DemoSteps::step(const std::string &what)
{
    m_say("step " + std::to_string(++m_done) + "/" + std::to_string(m_total) + ": " + what + "\n");
}

DemoProject DemoSteps::prepare(const DemoProfile &prof, const std::filesystem::path &outDir)
{
    std::filesystem::create_directories(outDir);
    const auto path = outDir / ("demo-" + prof.name + ".polymoe");
    const bool fresh = !std::filesystem::exists(path);
    DemoProject p{prof, path, fresh ? ProjectStore::create(path) : ProjectStore::open(path),
                  readRecipe(builtinRecipe(prof.baseRecipe)), {}, 0};
    m_say(std::string(fresh ? "created " : "reusing ") + path.string() + "\n");
    auto &store = p.store;

    step("demo corpus (en, es old; de, ru new) from Debian's fortunes and man pages");
    if (store.languages().empty()) {
        DemoCorpusOptions o;
        if (prof.characters > 0)
            o.maxCharactersPerLanguage = prof.characters;
        buildDemoCorpus(store, o, m_ctx.progressFn, m_ctx.stop);
    }
    step("SentencePiece unigram tokenizer");
    if (!currentTokenizerRecord(store)) {
        TokenizerTrainOptions t;
        t.vocabSize = prof.vocabSize; // METHOD.md section 9: unigram 8,000 on all four languages
        t.numThreads = int(std::max(1u, std::thread::hardware_concurrency()));
        trainProjectTokenizer(store, t, m_ctx.progressFn, m_ctx.stop);
    }
    step("token shards");
    tokenizeProject(store, false, m_ctx.progressFn, m_ctx.stop);

    // The base model is built once and reused (an unfinished run is resumed from its checkpoint).
    if (auto base = store.model("base")) {
        step("base model: reusing '" + base->name + "'");
    } else {
        DenseTrainSpec spec;
        spec.recipe = p.baseRecipe;
        spec.outputName = "base";
        spec.resume = store.unfinishedRun("pretrain", "base").has_value();
        step("base model (" + std::to_string(spec.recipe.train.steps) + " steps of " +
             std::to_string(spec.recipe.train.batchSize) + " x " + std::to_string(spec.recipe.train.seqLen) +
             " tokens" + (spec.resume ? ", resuming" : "") + ")");
        trainDenseModel(store, spec, makeTrainStatus(m_ctx), m_ctx.progressFn, m_ctx.stop);
    }
    p.base = *store.model("base");

    step("layer similarity of the base model (" + std::to_string(prof.similarityTokens) + " tokens per language)");
    for (const auto &s : store.similarityAnalyses())
        if (s.modelId == p.base.id)
            p.analysisId = s.id;
    if (!p.analysisId)
        p.analysisId = analyzeSimilarity(store, "base", prof.similarityTokens, m_ctx.progressFn, m_ctx.stop).id;
    return p;
}

AllocationRecord DemoSteps::allocation(DemoProject &p, const std::string &strategy, int newExperts, const std::string &name)
{
    const int layers = nlohmann::json::parse(p.base.config).at("num_hidden_layers").get<int>();
    const int budget = strategy == "layermoe" ? newExperts : 1 + std::max(1, newExperts / layers);
    for (const auto &r : p.store.allocations())
        if (r.strategy == strategy && r.analysisId == p.analysisId && r.budget == budget && (name.empty() || r.name == name))
            return r;
    AllocationSpec spec;
    spec.strategy = strategy;
    spec.budget = budget;
    spec.analysisId = p.analysisId;
    spec.modelName = "base";
    spec.name = name;
    return *p.store.allocation(allocateExperts(p.store, spec).id);
}

TrainConfig DemoSteps::trainSettings(const DemoProject &p, int64_t steps, double lr) const
{
    TrainConfig c = p.baseRecipe.train;
    c.steps = steps;
    c.lr = lr;
    c.warmupSteps = std::min<int64_t>(c.warmupSteps, std::max<int64_t>(1, steps / 10));
    c.checkpointEvery = p.profile.name == "tiny" ? 0 : 100;
    c.languageWeights.clear(); // each job's own default mix
    return c;
}

void DemoSteps::finetune(DemoProject &p, const std::string &name, int64_t steps, const std::map<std::string, double> &weights)
{
    if (p.store.model(name)) {
        step("full fine-tuning '" + name + "': reusing it");
        return;
    }
    DenseTrainSpec spec;
    spec.recipe = p.baseRecipe;
    spec.recipe.train = trainSettings(p, steps, 1e-3);
    spec.recipe.train.kind = "finetune";
    spec.recipe.train.languageWeights = weights;
    spec.initModel = "base";
    spec.outputName = name;
    spec.resume = p.store.unfinishedRun("finetune", name).has_value();
    step("full fine-tuning '" + name + "' of the base (" + std::to_string(steps) + " steps" +
         (weights.empty() ? ", new languages only" : ", with old-language replay") + (spec.resume ? ", resuming" : "") + ")");
    trainDenseModel(p.store, spec, makeTrainStatus(m_ctx), m_ctx.progressFn, m_ctx.stop);
}

void DemoSteps::stages(DemoProject &p, const AllocationRecord &alloc, const std::string &s1Name, const std::string &s2Name)
{
    for (int stage : {1, 2}) {
        const std::string name = stage == 1 ? s1Name : s2Name;
        if (name.empty())
            continue;
        if (p.store.model(name)) {
            step("MoE stage " + std::to_string(stage) + ": reusing '" + name + "'");
            continue;
        }
        ExpansionStageSpec spec;
        spec.stage = stage;
        spec.model = stage == 1 ? "base" : s1Name;
        if (stage == 1)
            spec.allocationId = alloc.id;
        spec.train = trainSettings(p, stage == 1 ? p.profile.stage1Steps : p.profile.stage2Steps, stage == 1 ? 1e-3 : 1e-2);
        spec.oldShare = p.profile.stage2OldShare;
        spec.routerStatsEvery = p.profile.statsEvery;
        spec.outputName = name;
        spec.resume = p.store.unfinishedRun(stage == 1 ? "stage1" : "stage2", name).has_value();
        step(stage == 1 ? "MoE stage 1 '" + name + "': new experts and routers on new-language text (" +
                              std::to_string(spec.train.steps) + " steps, experts " + formatExpertList(alloc.experts) + ")"
                        : "MoE stage 2 '" + name + "': routers on new text with old-language replay and the LPR loss (" +
                              std::to_string(spec.train.steps) + " steps)");
        trainExpansionStage(p.store, spec, makeTrainStatus(m_ctx), m_ctx.progressFn, m_ctx.stop);
    }
}

} // namespace polymoe::cli
