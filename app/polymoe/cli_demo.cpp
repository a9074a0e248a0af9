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
    const DemoProfile prof = demoProfile(a.get("--profile", "standard"));
    const std::string strategy = a.get("--strategy", "layermoe");
    if (strategy != "layermoe" && strategy != "uniform")
        throw UsageError("--strategy must be layermoe or uniform");
    const bool baseline = !a.has("--no-baseline");
    DemoSteps steps(ctx, [&](const std::string &s) { if (!ctx.json) std::cout << s << std::flush; }, baseline ? 11 : 10);

    DemoProject p = steps.prepare(prof, a.get("--out", "polymoe-demo"));
    const AllocationRecord alloc = steps.allocation(p, strategy, prof.newExperts);
    steps.step(strategy + " allocation '" + alloc.name + "': experts per layer " + formatExpertList(alloc.experts));
    if (baseline)
        steps.finetune(p, "finetuned", prof.finetuneSteps);
    const std::string s2Name = "stage2-" + strategy;
    steps.stages(p, alloc, "stage1-" + strategy, s2Name);

    // Hugging Face folders of the stage-2 model (the Mixtral one only for a uniform allocation).
    const std::filesystem::path exportDir = std::filesystem::path(a.get("--out", "polymoe-demo")) / ("export-" + strategy);
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
    steps.step("forgetting report");

    auto &store = p.store;
    nlohmann::json j = {{"profile", prof.name}, {"project", std::filesystem::absolute(p.path).string()}};
    std::ostringstream os;
    j["languages"] = nlohmann::json::array();
    os << "\nPolyMoE demo (" << prof.name << "): " << p.path.string() << "\n\n";
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
            j["plots"] = writeReportPlotFiles(report, std::filesystem::path(a.get("--out", "polymoe-demo")) / "plots",
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
                  "[--profile tiny|standard] [--out DIR] [--strategy layermoe|uniform] [--no-baseline]",
                  "Builds DIR/demo-PROFILE.polymoe step by step: corpus, tokenizer, shards, base model, layer\n"
                  "similarity, allocation, full fine-tuning baseline, MoE stage 1, stage 2, export of the stage-2\n"
                  "model (DIR/export-STRATEGY), forgetting report (METHOD.md section 9). A step whose output exists is reused, so an interrupted demo continues\n"
                  "where it stopped and a second strategy reuses the base model.",
                  {{"--profile", "NAME", "tiny (minutes, used by the tests) or standard (about 20 minutes)", "standard"},
                   {"--out", "DIR", "folder for the demo project", "polymoe-demo"},
                   {"--strategy", "NAME", "allocation: layermoe (by layer similarity) or uniform (MoE-LPR)", "layermoe"},
                   {"--no-baseline", "", "skip the full fine-tuning baseline", ""}},
                  0, 0, true, demo});

} // namespace
} // namespace polymoe::cli
