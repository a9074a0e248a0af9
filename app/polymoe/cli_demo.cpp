// polymoe demo: the whole demo pipeline, headless, with its report: project, real multilingual
// corpus, tokenizer, shards, dense base model, layer similarity, expert allocation, the full
// fine-tuning baseline, MoE stage 1, stage 2 and the forgetting report (METHOD.md section 9).
#include "cli.h"
#include "demo_pipeline.h"

#include "polymoe/allocation.h"
#include "polymoe/corpus.h"
#include "polymoe/export.h"
#include "polymoe/forgetting_report.h"

#include <iostream>
#include <sstream>

namespace polymoe::cli {

namespace {

int demo(const Args &a, Context &ctx)
{
    const DemoProfile prof = demoProfile(a.get("--profile", "standard"), a.get("--model"),
                                         a.has("--smoke"));
    const std::string strategy = a.get("--strategy", "layermoe");
    if (strategy != "layermoe" && strategy != "uniform")
        throw UsageError("--strategy must be layermoe or uniform");
    const bool baseline = !a.has("--no-baseline");
    // prepare: 5 steps (corpus, tokenizer, shards, base, similarity); then allocation(s), baselines,
    // stages, export, samples, probe, report.
    const int total = prof.allBaselines ? 5 + 2 + (baseline ? 2 : 0) + 4 + 4 : 5 + 1 + (baseline ? 1 : 0) + 2 + 4;
    DemoSteps steps(ctx, [&](const std::string &s) { if (!ctx.json) std::cout << s << std::flush; }, total);

    const std::filesystem::path outDir = a.get("--out", "polymoe-demo");
    DemoProject p = steps.prepare(prof, outDir);
    const int64_t finetunes = baseline ? (prof.allBaselines ? 2 : 1) : 0, allocations = prof.allBaselines ? 2 : 1;
    steps.planTrainingSteps(finetunes * prof.finetuneSteps + allocations * (prof.stage1Steps + prof.stage2Steps));
    std::vector<std::string> trained;
    AllocationRecord alloc;
    if (prof.allBaselines) {
        // Every baseline of METHOD.md section 8 on the same data: uniform MoE-LPR (newExperts spread
        // over the layers) and LayerMoE with 40% of its new experts.
        const AllocationRecord uniform = steps.allocation(p, "uniform", prof.newExperts);
        steps.step("uniform allocation '" + uniform.name + "': experts per layer " + formatExpertList(uniform.experts));
        const AllocationRecord layer = steps.layerMoeAt40Percent(p, uniform);
        steps.step("layermoe allocation '" + layer.name + "' (40% of the uniform new experts): experts per layer " +
                   formatExpertList(layer.experts));
        if (baseline) {
            steps.finetune(p, "finetuned", prof.finetuneSteps);
            steps.finetune(p, "finetuned-replay", prof.finetuneSteps,
                           DemoSteps::replayWeights(p, prof.stage2OldShare * double(prof.stage2Steps) /
                                                           double(prof.stage1Steps + prof.stage2Steps)));
            trained = {"finetuned", "finetuned-replay"};
        }
        for (const auto &[name, a2] : {std::pair{std::string("uniform"), uniform}, std::pair{std::string("layermoe"), layer}}) {
            steps.stages(p, a2, "stage1-" + name, "stage2-" + name);
            trained.push_back("stage1-" + name);
            trained.push_back("stage2-" + name);
        }
        alloc = strategy == "uniform" ? uniform : layer;
    } else {
        alloc = steps.allocation(p, strategy, prof.newExperts);
        steps.step(strategy + " allocation '" + alloc.name + "': experts per layer " + formatExpertList(alloc.experts));
        if (baseline) {
            steps.finetune(p, "finetuned", prof.finetuneSteps);
            trained.push_back("finetuned");
        }
        steps.stages(p, alloc, "stage1-" + strategy, "stage2-" + strategy);
        trained.push_back("stage1-" + strategy);
        trained.push_back("stage2-" + strategy);
    }
    const std::string s2Name = "stage2-" + strategy;

    // Hugging Face folders of the stage-2 model (the Mixtral one only for a uniform allocation).
    const std::filesystem::path exportDir = outDir / ("export-" + strategy);
    nlohmann::json exported = nlohmann::json::array();
    if (std::filesystem::exists(exportDir) && !std::filesystem::is_empty(exportDir)) {
        steps.step("export: reusing " + exportDir.string());
        // In the order exportModel writes them: polymoe first, then mixtral.
        for (const char *format : {"polymoe", "mixtral"})
            if (std::filesystem::is_directory(exportDir / format))
                exported.push_back((exportDir / format).string());
    } else {
        steps.step("export of '" + s2Name + "' for Hugging Face transformers to " + exportDir.string());
        ExportSpec spec;
        spec.model = s2Name;
        spec.outDir = exportDir;
        const ExportOutcome o = exportModel(p.store, spec, ctx.progressFn, ctx.stop);
        for (const auto &f : o.folders)
            exported.push_back(f.dir.string());
        if (!o.mixtralReason.empty() && !ctx.json)
            std::cout << "  no stock Mixtral folder: " << o.mixtralReason << "\n";
    }
    trained.insert(trained.begin(), "base");
    steps.samples(p, trained);
    steps.probes(p, trained);
    steps.step("forgetting report");

    auto &store = p.store;
    nlohmann::json j = {{"profile", prof.name}, {"project", std::filesystem::absolute(p.path).string()}};
    std::ostringstream os;
    j["languages"] = nlohmann::json::array();
    os << "\nPolyMoE demo (" << prof.name << "): " << p.path.string() << "\n\n";
    os << "language  group  documents  held out  train tokens  tokens/word  tokens/char\n";
    for (const auto &s : corpusStats(store)) {
        j["languages"].push_back({{"language", s.language.code}, {"group", toString(s.language.group)},
                                  {"train_documents", s.trainDocuments}, {"heldout_documents", s.heldoutDocuments},
                                  {"train_tokens", s.trainTokens}, {"tokens_per_word", s.tokensPerWord},
                                  {"tokens_per_character", s.tokensPerCharacter}});
        char line[160];
        std::snprintf(line, sizeof line, "%-9s %-5s %10lld %9lld %13lld %12.3f %12.3f\n", s.language.code.c_str(),
                      toString(s.language.group).c_str(), (long long)s.trainDocuments, (long long)s.heldoutDocuments,
                      (long long)s.trainTokens, s.tokensPerWord, s.tokensPerCharacter);
        os << line;
    }
    os << "\nlayer score S_i of the base (section 1):";
    nlohmann::json scores = nlohmann::json::array();
    for (const auto &s : store.layerScores(p.analysisId)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " %.3f", s.score);
        os << buf;
        scores.push_back(s.score);
    }
    os << "\nallocation '" << alloc.name << "' (" << strategy << "): experts per layer "
       << formatExpertList(alloc.experts) << "\n\n";
    j["layer_scores"] = scores;
    j["allocation"] = {{"name", alloc.name}, {"strategy", strategy}, {"experts", alloc.experts}};
    const auto report = buildForgettingReport(store, "base");
    os << forgettingReportText(report);
    j["report"] = nlohmann::json::parse(forgettingReportJson(report));
    if (reportPlotsAvailable()) { // the report's charts as PNG (DIR/plots); a plot failure keeps the report
        std::string lines;
        try {
            j["plots"] = writeReportPlotFiles(report, outDir / "plots",
                                              1000, 560, &lines);
            os << "\nplots (PNG):\n" << lines;
        } catch (const std::exception &e) {
            os << "\nplots not written: " << e.what() << "\n";
            j["plots_error"] = e.what();
        }
    }
    j["exported"] = exported;
    os << "\nexported (Hugging Face folders):";
    for (const auto &e : exported)
        os << " " << e.get<std::string>();
    os << "\n";
    ctx.print(j, os.str());
    return kExitOk;
}

Register demoCmd({"demo", "run the whole demo pipeline headless and print its forgetting report",
                  "[--profile tiny|standard|smollm2] [--model DIR] [--out DIR] [--strategy layermoe|uniform] [--no-baseline]",
                  "Builds DIR/demo-PROFILE.polymoe step by step: corpus, tokenizer, shards, base model, layer\n"
                  "similarity, allocation, full fine-tuning baseline, MoE stage 1, stage 2, export of the stage-2\n"
                  "model (DIR/export-STRATEGY), forgetting report (METHOD.md section 9). A step whose output exists is reused, so an interrupted demo continues\n"
                  "where it stopped and a second strategy reuses the base model. Every model's greedy continuations\n"
                  "of the same prompts in each language are part of the report.\n"
                  "The smollm2 profile expands a real pretrained model (SmolLM2-135M; fetch it first with\n"
                  "'bash installer/fetch-smollm2.sh'): its own tokenizer, old = en, new = de, ru, and every baseline:\n"
                  "fine-tuning with and without replay, uniform MoE-LPR and LayerMoE (40% of its new experts).",
                  {{"--profile", "NAME", "tiny (minutes, used by the tests), standard (about 25 minutes) or smollm2 (about an hour)", "standard"},
                   {"--model", "DIR", "smollm2: the pretrained model folder (default: models/smollm2-135m)", ""},
                   {"--smoke", "", "every step on a few sequences: checks the pipeline, learns nothing", ""},
                   {"--out", "DIR", "folder for the demo project", "polymoe-demo"},
                   {"--strategy", "NAME", "allocation: layermoe (by layer similarity) or uniform (MoE-LPR)", "layermoe"},
                   {"--no-baseline", "", "skip the full fine-tuning baseline", ""}},
                  0, 0, true, demo});

} // namespace
} // namespace polymoe::cli
