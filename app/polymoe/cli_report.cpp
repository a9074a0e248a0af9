// polymoe report: the forgetting report (METHOD.md section 8) of a project, as text, JSON and, with
// --plots, PNG charts drawn by the workbench's chart code (ui/report_charts) offscreen.
#include "cli.h"

#include "polymoe/error.h"
#include "polymoe/forgetting_report.h"
#include "polymoe/project_store.h"

#include <cstdio>

#ifdef POLYMOE_HAVE_PLOTS
#include "report_charts.h"
#endif

namespace polymoe::cli {

bool reportPlotsAvailable()
{
#ifdef POLYMOE_HAVE_PLOTS
    return true;
#else
    return false;
#endif
}

nlohmann::json writeReportPlotFiles(const ForgettingReport &report, const std::filesystem::path &dir, int width,
                                    int height, std::string *text)
{
    nlohmann::json files = nlohmann::json::array();
#ifdef POLYMOE_HAVE_PLOTS
    for (const auto &f : ui::writeReportPlots(report, dir, width, height)) {
        files.push_back(f.file.string());
        if (text)
            *text += "  " + f.file.string() + "  (" + f.what + ")\n";
    }
#else
    (void)report, (void)width, (void)height, (void)text;
    throw ConfigError(std::string(kNoPlotsMessage) + " (asked for " + dir.string() + ")");
#endif
    return files;
}

namespace {

int report(const Args &a, Context &ctx)
{
    // Refuse before reading anything: a headless build cannot draw.
    if (a.has("--plots") && !reportPlotsAvailable())
        throw ConfigError(kNoPlotsMessage);
    int width = 0, height = 0;
    if (a.has("--plots")) {
        const std::string s = a.get("--size", "1000x560");
        if (std::sscanf(s.c_str(), "%dx%d", &width, &height) != 2 || width < 16 || height < 16 || width > 10000 ||
            height > 10000)
            throw UsageError("--size must be WIDTHxHEIGHT in pixels (16 to 10000 each), not '" + s + "'");
    }
    const auto store = ProjectStore::open(a.positionals[0], /*readOnly=*/true);
    const auto r = buildForgettingReport(store, a.get("--base"));
    auto j = nlohmann::json::parse(forgettingReportJson(r));
    std::string text = forgettingReportText(r);
    if (a.has("--plots")) {
        std::string lines;
        j["plots"] = writeReportPlotFiles(r, a.get("--plots"), width, height, &lines);
        text += "\nplots (PNG, " + std::to_string(width) + "x" + std::to_string(height) + "):\n" + lines;
    }
    ctx.print(j, text);
    return kExitOk;
}

Register reportCmd({"report", "the forgetting report: perplexity per language before and after each stage",
                    "PROJECT [--base NAME] [--plots DIR [--size WxH]]",
                    "Held-out perplexity per language for the base model and every model trained from it (full\n"
                    "fine-tuning, MoE stage 1, stage 2), each as a ratio to the base, the geometric mean per group\n"
                    "(old: forgetting, new: gain), added and active parameters, and the share of each language's\n"
                    "tokens whose top-1 expert is the frozen original (METHOD.md section 8), and the perplexities'\n"
                    "95% intervals over the held-out documents where they were recorded. Reads the project only.\n"
                    "With --plots DIR it also writes the workbench's Forgetting charts as PNG files into DIR:\n"
                    "perplexity.png (held-out perplexity per language, a bar per model), group-ratio.png (the old and\n"
                    "new group ratios per model) and expert0-MODEL.png per expanded model (the share of tokens whose\n"
                    "top-1 is expert 0, per layer and language). No display is needed; a build without Qt (the\n"
                    "headless preset) refuses --plots and still prints the report without it.",
                    {{"--base", "NAME", "the model to compare against (default: the project's first model)", ""},
                     {"--plots", "DIR", "also write the charts as PNG files into DIR (made if missing)", ""},
                     {"--size", "WxH", "size of each PNG in pixels", "1000x560"}},
                    1, 1, true, report});

} // namespace
} // namespace polymoe::cli
