// polymoe bench train | moe: benchmarks as commands, each against a peer measured in the same run.
#include "cli.h"

#include "polymoe/bench.h"

#include <fstream>

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

int benchTrain(const Args &a, Context &ctx)
{
    return print(a, ctx, benchTrainStep(int(a.getInt("--repetitions", 5)), int(a.getInt("--threads", 0))));
}

int benchMoe(const Args &a, Context &ctx)
{
    return print(a, ctx,
                 benchMoeBlock(int(a.getInt("--repetitions", 5)), int(a.getInt("--threads", 0)),
                               a.get("--dtype", "float32"), a.get("--device", "cpu")));
}

Register benchTrainCmd({"bench train", "tokens/s of a demo-model training step and its share of the matmul rate", "",
                        "", {{"--repetitions", "N", "timed steps per dtype", "5"},
                             {"--threads", "N", "intra-op threads (0: all cores)", "0"},
                             {"--out", "FILE", "also write the Markdown table there", ""}},
                        0, 0, true, benchTrain});
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
