// polymoe bench tokenize | train | moe | expansion: benchmarks as commands, each against a peer measured in the same run.
#include "cli.h"

#include "polymoe/distributed.h"

#include "demo_pipeline.h"

#include "polymoe/allocation.h"
#include "polymoe/bench.h"
#include "polymoe/forgetting_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace polymoe::cli {
namespace {

int print(const Args &a, Context &ctx, const BenchReport &rep)
{
    if (a.has("--out")) {
        std::ofstream out(a.get("--out"));
        out << rep.markdown();
        if (!out)
            throw IoError(a.get("--out") + ": cannot write");
    }
    ctx.print(nlohmann::json::parse(rep.json()), rep.markdown());
    return kExitOk;
}

// The Python that runs a bench's peer: --python, else the interop venv's when it exists.
std::string pythonPeer(const Args &a)
{
    std::string python = a.get("--python");
    if (python.empty() && std::filesystem::exists(".venv/bin/python"))
        python = ".venv/bin/python";
    return python;
}

int benchTokenizeCmd(const Args &a, Context &ctx)
{
    if (!a.has("--tokenizer"))
        throw UsageError("--tokenizer FILE (a tokenizer.json) is required");
    std::vector<std::filesystem::path> texts;
    for (const auto &t : a.getList("--text"))
        texts.emplace_back(t);
    if (texts.empty()) // every fortune file of English, German, Russian and Spanish (the demo's text)
        for (const char *dir : {"/usr/share/games/fortunes", "/usr/share/games/fortunes/de",
                                "/usr/share/games/fortunes/ru", "/usr/share/games/fortunes/es"}) {
            std::error_code ec;
            std::vector<std::filesystem::path> found;
            for (const auto &e : std::filesystem::directory_iterator(dir, ec))
                if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat" && e.path().extension() != ".u8")
                    found.push_back(e.path());
            std::sort(found.begin(), found.end());
            texts.insert(texts.end(), found.begin(), found.end());
        }
    return print(a, ctx, benchTokenize(a.get("--tokenizer"), texts, a.getInt32("--repetitions", 5, 1, 1000000), pythonPeer(a)));
}

// With --nproc N: the one-process rows, then the plain step as N ranks of a data-parallel run
// (started here as `polymoe launch` starts them), each with the threads divided among them.
int benchTrain(const Args &a, Context &ctx)
{
    const int repetitions = a.getInt32("--repetitions", a.has("--model") ? 3 : 5, 1, 1000000),
              threads = a.getInt32("--threads", 0, 0, 4096);
    if (distributedWorldSize() > 1 && a.has("--model"))
        throw UsageError("bench train --model runs in one process, not as a rank of 'polymoe launch'");
    if (distributedWorldSize() > 1) { // a rank started below
        const BenchReport r = benchTrainDataParallel(repetitions, threads);
        if (isPrimaryRank())
            std::cout << r.json() << std::endl;
        return kExitOk;
    }
    if (a.has("--model")) {
        if (a.getInt32("--nproc", 1, 1, 16) > 1)
            throw UsageError("--nproc is for the demo model's step; with --model the step runs in one process");
        return print(a, ctx, benchTrainModel(a.get("--model"), repetitions, threads, pythonPeer(a),
                                             a.getInt32("--batch-size", 4, 1, 4096), a.getInt32("--seq-len", 256, 2, 65536)));
    }
    BenchReport rep = benchTrainStep(repetitions, threads);
    const int nproc = a.getInt32("--nproc", 1, 1, 16);
    if (nproc > 1) {
        const int perRank = std::max(1, setTrainingThreads(threads) / nproc);
        std::string out;
        RankOptions o;
        o.nproc = nproc;
        const int rc = runRanks({"bench", "train", "--repetitions", std::to_string(repetitions), "--threads",
                                 std::to_string(perRank)}, o, ctx, &out);
        if (rc != kExitOk)
            throw Error("bench train: the data-parallel ranks failed (exit status " + std::to_string(rc) + ")");
        const auto j = nlohmann::json::parse(out, nullptr, false);
        if (j.is_discarded() || !j.contains("rows"))
            throw Error("bench train: rank 0 printed no report: " + out.substr(0, 400));
        for (const auto &r : j["rows"]) {
            BenchRow row;
            row.name = r.value("name", "");
            row.unit = r.value("unit", "");
            row.mean = r.value("mean", 0.0);
            row.sd = r.value("sd", 0.0);
            row.repetitions = r.value("repetitions", 0);
            for (const char *k : {"gradient sum ms", "gradient MB"})
                if (r.contains(k))
                    row.extra.emplace_back(k, r[k].get<double>());
            rep.rows.push_back(row);
        }
        rep.notes.push_back("The data-parallel row: " + std::to_string(nproc) + " processes of " + std::to_string(perRank) +
                            " thread(s) each on this machine (c10d Gloo over 127.0.0.1), the same global batch as the "
                            "one-process rows; gradient sum ms = the bucketed all-reduce of every gradient per step.");
    }
    return print(a, ctx, rep);
}

int benchMoe(const Args &a, Context &ctx)
{
    return print(a, ctx,
                 benchMoeBlock(a.getInt32("--repetitions", 5, 1, 1000000), a.getInt32("--threads", 0, 0, 4096),
                               a.get("--dtype", "float32"), a.get("--device", "cpu")));
}

// The baselines of METHOD.md section 8 on the demo, on the same data and token budget: S1 + S2 steps
// (stage 1 + stage 2 of the profile) for every method. Full fine-tuning sees new-language text only;
// with replay it sees the same old-language share as the MoE runs' stage 2 spread over the whole run.
int benchExpansion(const Args &a, Context &ctx)
{
    const DemoProfile prof = demoProfile(a.get("--profile", "standard"));
    DemoSteps steps(ctx, [&](const std::string &s) { if (!ctx.json) std::cerr << s << std::flush; }, 5 + 10 + 1);
    DemoProject p = steps.prepare(prof, a.get("--project-dir", "polymoe-demo"));
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

    const auto r = buildForgettingReport(p.store, "base");
    const auto model = [&](const std::string &name) -> const ReportModel & {
        for (const auto &m : r.models)
            if (m.name == name)
                return m;
        throw ConfigError(p.path.string() + ": no model '" + name + "' in the report");
    };
    const auto group = [&](const std::string &name, const std::string &g) {
        for (const auto &x : r.groups)
            if (x.model == name && x.group == g)
                return x.ratio;
        return std::nan("");
    };
    struct Method {
        std::string label, model;
        std::vector<std::string> runs; // models whose runs' time adds up
    };
    const std::vector<Method> methods = {
        {"full fine-tuning (new text only)", "bench-finetune", {"bench-finetune"}},
        {"full fine-tuning + replay", "bench-finetune-replay", {"bench-finetune-replay"}},
        {"MoE stage 1 only (uniform " + formatExpertList(uniform.experts) + ")", "bench-uniform-stage1", {"bench-uniform-stage1"}},
        {"MoE-LPR, uniform " + formatExpertList(uniform.experts), "bench-uniform-stage2",
         {"bench-uniform-stage1", "bench-uniform-stage2"}},
        {"LayerMoE " + formatExpertList(layer40.experts) + " (40% of the new experts)", "bench-layermoe40-stage2",
         {"bench-layermoe40-stage1", "bench-layermoe40-stage2"}},
        {"MoE-LPR, uniform " + formatExpertList(uniform.experts) + " + new-token rows (beyond the papers)",
         "bench-uniform-rows-stage2", {"bench-uniform-rows-stage1", "bench-uniform-rows-stage2"}}};
    // Parameters a method trains beyond the added ones: the new-language tokens' embedding and LM-head
    // rows, as its stage-1 run recorded them (0 for every other method).
    const auto runs = p.store.runs();
    const auto rowParameters = [&](const Method &m) -> int64_t {
        for (const auto &run : runs)
            if (run.kind == "stage1" && run.modelOut == model(m.runs.front()).id) {
                const auto c = nlohmann::json::parse(run.config, nullptr, false);
                return c.is_object() ? c.value("new_token_rows_parameters", int64_t(0)) : 0;
            }
        return 0;
    };
    // The trade-off in one line (log perplexity, so that gains add up): the share of full fine-tuning's
    // new-language gain a method reaches, and its old-language cost.
    const double ftGain = -std::log(group("bench-finetune", "new"));

    std::ostringstream md;
    md << "### Expansion baselines on the demo (" << prof.name << " profile)\n\n"
       << "- command: `polymoe bench expansion --profile " << prof.name << "`\n"
       << "- machine: " << machineDescription(setTrainingThreads(0)) << "\n"
       << "- data: " << p.path.filename().string() << " (old: en, es; new: de, ru); every method " << (s1 + s2) << " steps of "
       << p.baseRecipe.train.batchSize << " x " << p.baseRecipe.train.seqLen << " tokens (stage 1 " << s1 << " + stage 2 "
       << s2 << ", stage-2 old share " << prof.stage2OldShare << ")\n\n"
       << "| method | old ppl (x base) | new ppl (x base) | share of fine-tuning's new gain | old cost | en | es | de | ru | added parameters | trained rows' parameters | wall time (s) |\n"
       << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    nlohmann::json j = {{"profile", prof.name}, {"project", p.path.string()}, {"methods", nlohmann::json::array()}};
    char buf[512]; // a row starts with its method label
    md << "| base |  |  |  |  |";
    for (const char *l : {"en", "es", "de", "ru"}) {
        std::snprintf(buf, sizeof buf, " %.1f |", model("base").perplexity.count(l) ? model("base").perplexity.at(l) : std::nan(""));
        md << buf;
    }
    md << " 0 |  |  |\n";
    for (const auto &m : methods) {
        const auto &x = model(m.model);
        double seconds = 0;
        for (const auto &name : m.runs)
            seconds += model(name).seconds;
        const double share = -std::log(group(m.model, "new")) / ftGain, cost = std::log(group(m.model, "old"));
        std::snprintf(buf, sizeof buf, "| %s | x%.3f | x%.3f | %.0f%% | %+.3f |", m.label.c_str(), group(m.model, "old"),
                      group(m.model, "new"), 100 * share, cost);
        md << buf;
        nlohmann::json ppl = nlohmann::json::object();
        for (const char *l : {"en", "es", "de", "ru"}) {
            const double v = x.perplexity.count(l) ? x.perplexity.at(l) : std::nan("");
            std::snprintf(buf, sizeof buf, " %.1f |", v);
            md << buf;
            if (std::isfinite(v))
                ppl[l] = v;
        }
        const int64_t rows = rowParameters(m);
        md << " " << x.addedParameters << " | " << rows << " | " << std::lround(seconds) << " |\n";
        j["methods"].push_back({{"method", m.label}, {"model", m.model}, {"old_ratio", group(m.model, "old")},
                                {"new_ratio", group(m.model, "new")}, {"share_of_finetuning_new_gain", share},
                                {"old_log_cost", cost}, {"perplexity", ppl}, {"added_parameters", x.addedParameters},
                                {"trained_row_parameters", rows}, {"seconds", seconds}});
    }
    md << "\nold / new ppl: geometric mean over the group of each language's held-out perplexity divided by the base's.\n"
       << "share of fine-tuning's new gain: log(new ppl ratio) / log(full fine-tuning's new ppl ratio); old cost: "
          "log(old ppl ratio), 0 = no forgetting. Trained rows: the new-language tokens' embedding and LM-head rows "
          "that stage 1 trains with --train-new-token-rows (tied: one matrix).\n";
    if (a.has("--out")) {
        std::ofstream out(a.get("--out"));
        out << md.str();
        if (!out)
            throw IoError(a.get("--out") + ": cannot write");
    }
    ctx.print(j, md.str());
    return kExitOk;
}

Register benchTokenizeReg({"bench tokenize", "MB/s of PolyMoE's tokenizer.json encoder beside Hugging Face tokenizers", "",
                           "Encodes every non-empty line of the text files on its own with PolyMoE's reader and, in the\n"
                           "same run, with the Python tokenizers library (one thread; --python, default .venv/bin/python),\n"
                           "and compares the token counts. Default text: every English, German, Russian and Spanish fortune file.",
                           {{"--tokenizer", "FILE", "a tokenizer.json", ""},
                            {"--text", "LIST", "text files, comma-separated", ""},
                            {"--python", "PY", "Python with the tokenizers package", ".venv/bin/python"},
                            {"--repetitions", "N", "timed passes over the text", "5"},
                            {"--out", "FILE", "also write the Markdown table there", ""}},
                           0, 0, true, benchTokenizeCmd});
Register benchTrainCmd({"bench train", "tokens/s of a training step (the demo model, or --model DIR beside transformers)", "",
                        "Also: the step with activations checkpointed, each row's step memory, and stage 2 (routers\n"
                        "only) against inference on the same MoE model; with --nproc N the plain step as N\n"
                        "data-parallel processes sharing the threads (docs/benchmarks.md).\n"
                        "With --model DIR (a Hugging Face folder: config.json, model.safetensors): that model's full\n"
                        "fine-tuning and stage-1 steps (one new expert per layer, top-2), fp32 and bf16, beside\n"
                        "transformers' full and FFN-only steps of the same folder in the same run (--python).",
                        {{"--repetitions", "N", "timed steps per dtype (default 5; 3 with --model)", ""},
                             {"--threads", "N", "intra-op threads (0: all cores)", "0"},
                             {"--nproc", "N", "also run the plain step data-parallel in N processes", "1"},
                             {"--model", "DIR", "an imported model's folder instead of the demo model", ""},
                             {"--batch-size", "B", "sequences per step with --model", "4"},
                             {"--seq-len", "T", "tokens per sequence with --model", "256"},
                             {"--python", "PY", "Python with torch and transformers, for the peer", ".venv/bin/python"},
                             {"--out", "FILE", "also write the Markdown table there", ""}},
                        0, 0, true, benchTrain, /*dataParallel=*/true});
Register benchMoeCmd({"bench moe", "tokens/s of one MoE block (grouped dispatch vs a per-expert-mask loop)", "",
                      "Forward + backward of an MoE block at the demo shape and a larger one, with the share of a\n"
                      "dense matmul's FLOP rate measured in the same run (METHOD.md section 3).",
                      {{"--repetitions", "N", "timed passes per variant", "5"},
                       {"--threads", "N", "intra-op threads (0: all cores)", "0"},
                       {"--dtype", "TYPE", "float32, bfloat16 or float16", "float32"},
                       {"--device", "DEV", "cpu or cuda", "cpu"},
                       {"--out", "FILE", "also write the Markdown table there", ""}},
                      0, 0, true, benchMoe});
Register benchExpansionCmd({"bench expansion", "the method against its baselines on the demo (same data and tokens)", "",
                            "Builds or reuses the demo project, then trains, on the same data and token budget: full\n"
                            "fine-tuning on new-language text, the same with old-language replay, MoE stage 1 only,\n"
                            "uniform MoE-LPR (stages 1 and 2), LayerMoE with 40% of the uniform method's new experts,\n"
                            "and (beyond the papers) uniform MoE-LPR whose stage 1 also trains the new-language tokens'\n"
                            "rows; prints one table (perplexity change per group and language, the share of full\n"
                            "fine-tuning's new-language gain and the old-language cost in log perplexity, added and\n"
                            "trained-row parameters, wall time). Every trained model stays in the project and is reused by a second run.",
                            {{"--profile", "NAME", "tiny or standard", "standard"},
                             {"--project-dir", "DIR", "folder of the demo project", "polymoe-demo"},
                             {"--out", "FILE", "also write the Markdown table there", ""}},
                            0, 0, true, benchExpansion});

} // namespace
} // namespace polymoe::cli
