// The charts of the forgetting report (METHOD.md section 8), built once for the Forgetting view and
// for `polymoe report --plots`: the same data, drawn by the same QCustomPlot code, is the same figure.
// No Qt and no LibTorch in this header, so the command-line tool includes it as it is.
//
// Usage:
//   const auto chart = polymoe::ui::perplexityChart(report);   // plain data, one value per bar
//   polymoe::ui::drawBarChart(plot, chart);                    // into a QCustomPlot widget
//   polymoe::ui::writeReportPlots(report, "plots/");           // every chart as PNG (offscreen if needed)
#pragma once

#include "polymoe/forgetting_report.h"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

class QCustomPlot;

namespace polymoe::ui {

// One bar series: its value at each category, NaN where it has no bar.
struct ChartSeries {
    std::string name;                     // a model or a language group / language
    std::vector<double> values;           // one per category
    std::string color{};                  // "#rrggbb"; empty: the chart palette's next colour
};

// A grouped bar chart: categories along x, one bar per series in each.
struct BarChart {
    std::string title;
    std::string yLabel;
    std::vector<std::string> categories;  // x tick labels
    std::vector<ChartSeries> series;
    double reference = std::nan("");      // a dashed horizontal line (the base's 1.0); NaN for none
    double yMax = std::nan("");           // fixed upper end of y (shares: 1); NaN: from the data
};

// (a) Held-out perplexity per language (old first), one series per model of the report.
BarChart perplexityChart(const ForgettingReport &report);
// (b) Geometric-mean ratio to the base per model (the base left out), series "old" and "new".
BarChart groupRatioChart(const ForgettingReport &report);
// (c) For one expanded model: per MoE layer (categories "L<i>", 0-based as in the text report) and
// language (one series each), the share of tokens whose top-1 is expert 0.
BarChart expert0Chart(const ForgettingReport &report, const std::string &model);
// The models with routing statistics, in report order (those expert0Chart draws).
std::vector<std::string> routedModels(const ForgettingReport &report);

// Replaces the plot's content with the chart (bars, ticks, legend, title) and replots. Bars have
// key = category index; a NaN value has no bar.
void drawBarChart(QCustomPlot *plot, const BarChart &chart);

struct ReportPlotFile {
    std::filesystem::path file;
    std::string what;                     // one line: which chart
};

// Writes every chart of the report as a width x height PNG into dir (made if missing):
// perplexity.png, group-ratio.png and expert0-MODEL.png per routed model. Each file goes to a
// temporary name first and is renamed into place. Without a QApplication in the process, one is
// made for the call on the offscreen platform (no display needed). Throws IoError naming the file.
std::vector<ReportPlotFile> writeReportPlots(const ForgettingReport &report, const std::filesystem::path &dir,
                                             int width = 1000, int height = 560);

} // namespace polymoe::ui
