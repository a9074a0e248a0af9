// polymoe report: the forgetting report (METHOD.md section 8) of a project, as text or JSON.
#include "cli.h"

#include "polymoe/forgetting_report.h"
#include "polymoe/project_store.h"

namespace polymoe::cli {
namespace {

int report(const Args &a, Context &ctx)
{
    const auto store = ProjectStore::open(a.positionals[0], /*readOnly=*/true);
    const auto r = buildForgettingReport(store, a.get("--base"));
    ctx.print(nlohmann::json::parse(forgettingReportJson(r)), forgettingReportText(r));
    return kExitOk;
}

Register reportCmd({"report", "the forgetting report: perplexity per language before and after each stage",
                    "PROJECT [--base NAME]",
                    "Held-out perplexity per language for the base model and every model trained from it (full\n"
                    "fine-tuning, MoE stage 1, stage 2), each as a ratio to the base, the geometric mean per group\n"
                    "(old: forgetting, new: gain), added and active parameters, and the share of each language's\n"
                    "tokens whose top-1 expert is the frozen original (METHOD.md section 8). Reads the project only.",
                    {{"--base", "NAME", "the model to compare against (default: the project's first model)", ""}},
                    1, 1, true, report});

} // namespace
} // namespace polymoe::cli
