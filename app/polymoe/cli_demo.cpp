// polymoe demo and polymoe bench expansion: the options of core's demo jobs (polymoe/demo.h), and
// what they print: the demo's corpus, layer scores, allocation, forgetting report and plots; the
// baseline comparison's table.
#include "cli.h"

#include "polymoe/allocation.h"
#include "polymoe/corpus.h"
#include "polymoe/demo.h"
#include "polymoe/forgetting_report.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace polymoe::cli {

namespace {

// The demo's options as core's profile; wrong ones are usage errors (exit code 2).
DemoProfile profileFromOptions(const Args &a)
{
    const std::string name = a.get("--profile", "standard");
    const auto &names = demoProfileNames();
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw UsageError("--profile must be tiny, standard or smollm2");
    if (a.has("--model") && name != "smollm2")
        throw UsageError("--model is for the smollm2 profile (a pretrained model to expand)");
    return demoProfile(name, a.get("--model"), a.has("--smoke"));
}

DemoIo demoIo(Context &ctx, std::ostream &lines)
{
    DemoIo io;
    if (!ctx.json)
        io.say = [&lines](const std::string &s) { lines << s << std::flush; };
    io.progress = ctx.progressFn;
    io.trainStatus = makeTrainStatus(ctx);
    io.stop = ctx.stop;
    return io;
}

int demo(const Args &a, Context &ctx)
{
    const DemoProfile prof = profileFromOptions(a);
    DemoOptions options;
    options.strategy = a.get("--strategy", options.strategy);
    if (options.strategy != "layermoe" && options.strategy != "uniform")
        throw UsageError("--strategy must be layermoe or uniform");
    options.baseline = !a.has("--no-baseline");
    options.outDir = a.get("--out", options.outDir.string());
    const DemoOutcome out = runDemo(prof, options, demoIo(ctx, std::cout));
    if (!out.mixtralNote.empty() && !ctx.json)
        std::cout << "  no stock Mixtral folder: " << out.mixtralNote << "\n";

    const auto store = ProjectStore::open(out.project, true);
    nlohmann::json j = {{"profile", prof.name}, {"project", std::filesystem::absolute(out.project).string()}};
    std::ostringstream os;
    j["languages"] = nlohmann::json::array();
    os << "\nPolyMoE demo (" << prof.name << "): " << out.project.string() << "\n\n";
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
    for (const auto &s : store.layerScores(out.analysisId)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " %.3f", s.score);
        os << buf;
        scores.push_back(s.score);
    }
    const AllocationRecord &alloc = out.allocation;
    os << "\nallocation '" << alloc.name << "' (" << options.strategy << "): experts per layer "
       << formatExpertList(alloc.experts) << "\n\n";
    j["layer_scores"] = scores;
    j["allocation"] = {{"name", alloc.name}, {"strategy", options.strategy}, {"experts", alloc.experts}};
    os << forgettingReportText(out.report);
    j["report"] = nlohmann::json::parse(forgettingReportJson(out.report));
    if (reportPlotsAvailable()) { // the report's charts as PNG (DIR/plots); a plot failure keeps the report
        std::string lines;
        try {
            j["plots"] = writeReportPlotFiles(out.report, options.outDir / "plots", 1000, 560, &lines);
            os << "\nplots (PNG):\n" << lines;
        } catch (const std::exception &e) {
            os << "\nplots not written: " << e.what() << "\n";
            j["plots_error"] = e.what();
        }
    }
    j["exported"] = nlohmann::json::array();
    os << "\nexported (Hugging Face folders):";
    for (const auto &e : out.exported) {
        j["exported"].push_back(e.string());
        os << " " << e.string();
    }
    os << "\n";
    ctx.print(j, os.str());
    return kExitOk;
}

int benchExpansion(const Args &a, Context &ctx)
{
    const DemoProfile prof = profileFromOptions(a);
    const BaselineComparison c = runBaselineComparison(prof, a.get("--project-dir", "polymoe-demo"), demoIo(ctx, std::cerr));
    return ctx.printTable(a, nlohmann::json::parse(baselineComparisonJson(c)), baselineComparisonMarkdown(c));
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
Register benchExpansionCmd({"bench expansion", "the method against its baselines on the demo (same data and tokens)", "",
                            "Builds or reuses the demo project, then trains, on the same data and token budget: full\n"
                            "fine-tuning on new-language text, the same with old-language replay, MoE stage 1 only,\n"
                            "uniform MoE-LPR (stages 1 and 2), LayerMoE with 40% of the uniform method's new experts,\n"
                            "and (beyond the papers) uniform MoE-LPR whose stage 1 also trains the new-language tokens'\n"
                            "rows; prints one table (perplexity change per group and language, the share of full\n"
                            "fine-tuning's new-language gain and the old-language cost in log perplexity, added and\n"
                            "trained-row parameters, wall time). Every trained model stays in the project and is reused by a second run.",
                            {{"--profile", "NAME", "tiny, standard or smollm2", "standard"},
                             {"--model", "DIR", "smollm2: the pretrained model folder (default: models/smollm2-135m)", ""},
                             {"--smoke", "", "every step on a few sequences: checks the pipeline, learns nothing", ""},
                             {"--project-dir", "DIR", "folder of the demo project", "polymoe-demo"},
                             {"--out", "FILE", "also write the Markdown table there", ""}},
                            0, 0, true, benchExpansion});

} // namespace
} // namespace polymoe::cli
