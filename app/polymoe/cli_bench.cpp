// polymoe bench tokenize | train | moe: benchmarks as commands, each against a peer measured in the
// same run (bench expansion, the baseline comparison, is beside the demo in cli_demo.cpp).
#include "cli.h"

#include "polymoe/bench.h"
#include "polymoe/distributed.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace polymoe::cli {
namespace {

int print(const Args &a, Context &ctx, const BenchReport &rep)
{
    return ctx.printTable(a, nlohmann::json::parse(rep.json()), rep.markdown());
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
            for (const auto &[k, v] : r.items()) // the row's own columns, whatever rank 0 measured
                if (v.is_number() && k != "mean" && k != "sd" && k != "repetitions")
                    row.extra.emplace_back(k, v.get<double>());
            rep.rows.push_back(row);
        }
        rep.notes.push_back("The data-parallel row: " + std::to_string(nproc) + " processes of " + std::to_string(perRank) +
                            " thread(s) each on this machine (c10d over 127.0.0.1), the same global batch as the "
                            "one-process rows; wait for sums ms = the time a step waits, after its backward pass, for "
                            "the bucketed sums of every gradient (all of them after backward, or what is left when "
                            "the sums overlap it).");
    }
    return print(a, ctx, rep);
}

int benchMoe(const Args &a, Context &ctx)
{
    return print(a, ctx,
                 benchMoeBlock(a.getInt32("--repetitions", 5, 1, 1000000), a.getInt32("--threads", 0, 0, 4096),
                               a.get("--dtype", "float32"), a.get("--device", "cpu")));
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
                        "fine-tuning and stage-1 steps (one new expert per layer, top-2), fp32 and bf16, and\n"
                        "each in fp32 with activations checkpointed, beside transformers' full and FFN-only steps\n"
                        "of the same folder in the same run (--python).",
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


} // namespace
} // namespace polymoe::cli
