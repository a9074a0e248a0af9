// polymoe demo: the whole demo pipeline, headless, with its report: project, real multilingual
// corpus, tokenizer, shards, dense base model, layer similarity, expert allocation, the full
// fine-tuning baseline, MoE stage 1, stage 2 and the forgetting report (METHOD.md section 9).
#include "cli.h"

#include "polymoe/allocation.h"
#include "polymoe/corpus.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/demo_corpus.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/forgetting_report.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include <iostream>
#include <sstream>
#include <thread>

namespace polymoe::cli {

namespace {

// The settings of a profile. standard follows METHOD.md section 9's recipe: full fine-tuning and
// stage 1 on about 1M new-language tokens each (lr 1e-3), stage 2 on 0.43M tokens with half the
// sequences old-language replay (routers only, lr 1e-2, LPR 0.1, no classifier). The budget is
// section 9's: 8 new experts (uniform: 3 experts in each of the 4 layers).
struct DemoProfile {
    std::string baseRecipe;            // resources/demo/<name>.json
    int64_t characters = 0;            // per language in the corpus (0: the corpus default)
    int vocabSize = 8000;              // SentencePiece unigram
    int64_t similarityTokens = 100000; // per language (section 1)
    int newExperts = 8;                // new experts in all (uniform: spread evenly over the layers)
    int64_t finetuneSteps = 500;       // full fine-tuning baseline; batch x sequence of the base recipe
    int64_t stage1Steps = 500;
    int64_t stage2Steps = 210;
    int64_t statsEvery = 25;           // steps between router statistics on the probe set
};

DemoProfile demoProfile(bool tiny)
{
    if (!tiny)
        return {.baseRecipe = "demo-base"};
    return {.baseRecipe = "demo-base-tiny", .characters = 400'000, .vocabSize = 2000, .similarityTokens = 20000,
            .newExperts = 4, .finetuneSteps = 40, .stage1Steps = 40, .stage2Steps = 30, .statsEvery = 10};
}

bool hasUnfinishedRun(const ProjectStore &store, const std::string &kind)
{
    for (const auto &r : store.runs())
        if (r.kind == kind && r.status != "completed")
            return true;
    return false;
}

std::vector<PerplexityRow> storedEvaluation(const ProjectStore &store, int64_t modelId)
{
    std::vector<PerplexityRow> rows;
    for (const auto &e : store.evaluations(modelId)) {
        PerplexityRow r;
        r.language = e.language;
        r.group = toString(store.language(e.language)->group);
        r.tokens = e.tokens;
        r.loss = e.loss;
        r.perplexity = e.perplexity;
        rows.push_back(r);
    }
    return rows;
}

int demo(const Args &a, Context &ctx)
{
    const std::string profile = a.get("--profile", "standard");
    if (profile != "tiny" && profile != "standard")
        throw UsageError("--profile must be tiny or standard");
    const std::string strategy = a.get("--strategy", "layermoe");
    if (strategy != "layermoe" && strategy != "uniform")
        throw UsageError("--strategy must be layermoe or uniform");
    const bool tiny = profile == "tiny";
    const bool baseline = !a.has("--no-baseline");
    const DemoProfile prof = demoProfile(tiny);
    const std::filesystem::path out = a.get("--out", "polymoe-demo");
    std::filesystem::create_directories(out);
    const auto projectPath = out / ("demo-" + profile + ".polymoe");
    nlohmann::json j = {{"profile", profile}, {"project", std::filesystem::absolute(projectPath).string()}};
    std::ostringstream os;

    auto say = [&](const std::string &s) {
        if (!ctx.json)
            std::cout << s << std::flush;
    };
    const int totalSteps = baseline ? 10 : 9;
    int stepNo = 0;
    auto step = [&](const std::string &s) {
        say("step " + std::to_string(++stepNo) + "/" + std::to_string(totalSteps) + ": " + s + "\n");
    };
    // Resume-friendly: an existing project keeps what it has; each step runs if its output is missing.
    const bool fresh = !std::filesystem::exists(projectPath);
    auto store = fresh ? ProjectStore::create(projectPath) : ProjectStore::open(projectPath);
    say(std::string(fresh ? "created " : "reusing ") + projectPath.string() + "\n");

    step("demo corpus (en, es old; de, ru new) from Debian's fortunes and man pages");
    if (store.languages().empty()) {
        DemoCorpusOptions o;
        if (prof.characters > 0)
            o.maxCharactersPerLanguage = prof.characters;
        buildDemoCorpus(store, o, ctx.progressFn, ctx.stop);
    }
    step("SentencePiece unigram tokenizer");
    if (!currentTokenizerRecord(store)) {
        TokenizerTrainOptions t;
        t.vocabSize = prof.vocabSize; // METHOD.md section 9: unigram 8,000 on all four languages
        t.numThreads = int(std::max(1u, std::thread::hardware_concurrency()));
        trainProjectTokenizer(store, t, ctx.progressFn, ctx.stop);
    }
    step("token shards");
    tokenizeProject(store, false, ctx.progressFn, ctx.stop);

    // The base model is built once and reused (an unfinished run is resumed from its checkpoint).
    const Recipe baseRecipe = readRecipe(builtinRecipe(prof.baseRecipe));
    if (auto base = store.model("base")) {
        step("base model: reusing '" + base->name + "'");
    } else {
        DenseTrainSpec spec;
        spec.recipe = baseRecipe;
        spec.outputName = "base";
        spec.resume = hasUnfinishedRun(store, "pretrain");
        step("base model (" + std::to_string(spec.recipe.train.steps) + " steps of " +
             std::to_string(spec.recipe.train.batchSize) + " x " + std::to_string(spec.recipe.train.seqLen) +
             " tokens" + (spec.resume ? ", resuming" : "") + ")");
        trainDenseModel(store, spec, makeTrainStatus(ctx), ctx.progressFn, ctx.stop);
    }
    const ModelRecord base = *store.model("base");

    // Layer similarity of the base (section 1), then the allocation (section 2).
    std::optional<int64_t> analysisId;
    for (const auto &s : store.similarityAnalyses())
        if (s.modelId == base.id)
            analysisId = s.id;
    step("layer similarity of the base model (" + std::to_string(prof.similarityTokens) + " tokens per language)");
    if (!analysisId)
        analysisId = analyzeSimilarity(store, "base", prof.similarityTokens, ctx.progressFn, ctx.stop).id;
    std::optional<AllocationRecord> alloc;
    for (const auto &r : store.allocations())
        if (r.strategy == strategy && r.analysisId == analysisId)
            alloc = r;
    if (!alloc) {
        AllocationSpec spec;
        spec.strategy = strategy;
        const int layers = nlohmann::json::parse(base.config).at("num_hidden_layers").get<int>();
        spec.budget = strategy == "layermoe" ? prof.newExperts : 1 + std::max(1, prof.newExperts / layers);
        spec.analysisId = analysisId;
        spec.modelName = "base";
        alloc = store.allocation(allocateExperts(store, spec).id);
    }
    step(strategy + " allocation '" + alloc->name + "': experts per layer " + formatExpertList(alloc->experts));

    const auto trainSettings = [&](int64_t steps, double lr) {
        TrainConfig c = baseRecipe.train;
        c.steps = steps;
        c.lr = lr;
        c.warmupSteps = std::min<int64_t>(c.warmupSteps, std::max<int64_t>(1, steps / 10));
        c.checkpointEvery = tiny ? 0 : 100;
        c.languageWeights.clear(); // each job's own default mix
        return c;
    };
    if (baseline) {
        if (store.model("finetuned")) {
            step("full fine-tuning baseline: reusing 'finetuned'");
        } else {
            DenseTrainSpec spec;
            spec.recipe = baseRecipe;
            spec.recipe.train = trainSettings(prof.finetuneSteps, 1e-3);
            spec.recipe.train.kind = "finetune";
            spec.initModel = "base";
            spec.outputName = "finetuned";
            spec.resume = hasUnfinishedRun(store, "finetune");
            step("full fine-tuning baseline on the new languages (" + std::to_string(prof.finetuneSteps) + " steps" +
                 (spec.resume ? ", resuming" : "") + ")");
            trainDenseModel(store, spec, makeTrainStatus(ctx), ctx.progressFn, ctx.stop);
        }
    }
    const std::string s1Name = "stage1-" + strategy, s2Name = "stage2-" + strategy;
    for (int stage : {1, 2}) {
        const std::string name = stage == 1 ? s1Name : s2Name;
        if (store.model(name)) {
            step("MoE stage " + std::to_string(stage) + ": reusing '" + name + "'");
            continue;
        }
        ExpansionStageSpec spec;
        spec.stage = stage;
        spec.model = stage == 1 ? "base" : s1Name;
        if (stage == 1)
            spec.allocationId = alloc->id;
        spec.train = trainSettings(stage == 1 ? prof.stage1Steps : prof.stage2Steps, stage == 1 ? 1e-3 : 1e-2);
        spec.oldShare = 0.5; // section 9: the demo profiles replay half the stage-2 sequences
        spec.routerStatsEvery = prof.statsEvery;
        spec.outputName = name;
        spec.resume = hasUnfinishedRun(store, stage == 1 ? "stage1" : "stage2");
        step(stage == 1 ? "MoE stage 1: new experts and routers on new-language text (" +
                              std::to_string(spec.train.steps) + " steps)"
                        : "MoE stage 2: routers on new text with old-language replay and the LPR loss (" +
                              std::to_string(spec.train.steps) + " steps)");
        trainExpansionStage(store, spec, makeTrainStatus(ctx), ctx.progressFn, ctx.stop);
    }

    step("forgetting report");
    j["languages"] = nlohmann::json::array();
    os << "\nPolyMoE demo (" << profile << "): " << projectPath.string() << "\n\n";
    os << "language  group  documents  held out  train tokens  tokens/word\n";
    for (const auto &s : corpusStats(store)) {
        j["languages"].push_back({{"language", s.language.code}, {"group", toString(s.language.group)},
                                  {"train_documents", s.trainDocuments}, {"heldout_documents", s.heldoutDocuments},
                                  {"train_tokens", s.trainTokens}, {"tokens_per_word", s.tokensPerWord}});
        char line[160];
        std::snprintf(line, sizeof line, "%-9s %-5s %10lld %9lld %13lld %12.3f\n", s.language.code.c_str(),
                      toString(s.language.group).c_str(), (long long)s.trainDocuments, (long long)s.heldoutDocuments,
                      (long long)s.trainTokens, s.tokensPerWord);
        os << line;
    }
    os << "\nlayer score S_i of the base (section 1):";
    nlohmann::json scores = nlohmann::json::array();
    for (const auto &s : store.layerScores(*analysisId)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " %.3f", s.score);
        os << buf;
        scores.push_back(s.score);
    }
    os << "\nallocation '" << alloc->name << "' (" << strategy << "): experts per layer "
       << formatExpertList(alloc->experts) << "\n\n";
    j["base_model"] = {{"evaluation", perplexityJson(storedEvaluation(store, base.id))}};
    j["layer_scores"] = scores;
    j["allocation"] = {{"name", alloc->name}, {"strategy", strategy}, {"experts", alloc->experts}};
    const auto report = buildForgettingReport(store, "base");
    os << forgettingReportText(report);
    j["report"] = nlohmann::json::parse(forgettingReportJson(report));
    ctx.print(j, os.str());
    return kExitOk;
}

Register demoCmd({"demo", "run the whole demo pipeline headless and print its forgetting report",
                  "[--profile tiny|standard] [--out DIR] [--strategy layermoe|uniform] [--no-baseline]",
                  "Builds DIR/demo-PROFILE.polymoe step by step: corpus, tokenizer, shards, base model, layer\n"
                  "similarity, allocation, full fine-tuning baseline, MoE stage 1, stage 2, forgetting report\n"
                  "(METHOD.md section 9). A step whose output exists is reused, so an interrupted demo continues\n"
                  "where it stopped and a second strategy reuses the base model.",
                  {{"--profile", "NAME", "tiny (minutes, used by the tests) or standard (about 20 minutes)", "standard"},
                   {"--out", "DIR", "folder for the demo project", "polymoe-demo"},
                   {"--strategy", "NAME", "allocation: layermoe (by layer similarity) or uniform (MoE-LPR)", "layermoe"},
                   {"--no-baseline", "", "skip the full fine-tuning baseline", ""}},
                  0, 0, true, demo});

} // namespace
} // namespace polymoe::cli
