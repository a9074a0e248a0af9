// The forgetting report's charts: plain data from the report, one QCustomPlot drawing, and the PNG
// writer behind `polymoe report --plots`. See report_charts.h.
#include "report_charts.h"

#include "polymoe/error.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QSaveFile>

#include <algorithm>
#include <cstdio>
#include <cctype>
#include <iterator>
#include <memory>
#include <set>

namespace polymoe::ui {

namespace {

// Models: the base grey, then the later models. Groups and languages: old in blues, new in oranges.
const char *const kPalette[] = {"#7f7f7f", "#d9822b", "#1f4e9c", "#2b9d55", "#b01c1c", "#7a4fb0", "#3c9fb5", "#9c6b1f"};
const char *const kOldColors[] = {"#1f4e9c", "#5b8fd6", "#9cc0ef", "#17375e"};
const char *const kNewColors[] = {"#d9822b", "#f0b070", "#a85a10", "#6e3a08"};

QColor seriesColor(const BarChart &chart, size_t i)
{
    const std::string &c = chart.series[i].color;
    return c.empty() ? QColor(kPalette[i % std::size(kPalette)]) : QColor(QString::fromStdString(c));
}

std::string fileSafe(const std::string &name)
{
    std::string s = name;
    for (char &c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            c = '_';
    return s.empty() ? std::string("model") : s;
}

} // namespace

BarChart perplexityChart(const ForgettingReport &r)
{
    BarChart c;
    c.title = "Held-out perplexity per language";
    c.yLabel = "held-out perplexity";
    for (const auto &l : r.languages)
        c.categories.push_back(l.code + "\n(" + toString(l.group) + ")");
    for (const auto &m : r.models) {
        ChartSeries s{m.name, {}};
        for (const auto &l : r.languages) {
            const auto it = m.perplexity.find(l.code);
            s.values.push_back(it == m.perplexity.end() ? std::nan("") : it->second);
        }
        c.series.push_back(std::move(s));
    }
    return c;
}

BarChart groupRatioChart(const ForgettingReport &r)
{
    BarChart c;
    c.title = "Perplexity relative to " + r.base + " (geometric mean per group; old > 1: forgetting, new < 1: gain)";
    c.yLabel = "ratio to " + r.base;
    c.reference = 1.0;
    ChartSeries old{"old", {}, kOldColors[0]}, fresh{"new", {}, kNewColors[0]};
    for (const auto &m : r.models) {
        if (m.name == r.base)
            continue;
        c.categories.push_back(m.role == m.name || m.role.empty() ? m.name : m.name + "\n(" + m.role + ")");
        double o = std::nan(""), n = std::nan("");
        for (const auto &g : r.groups)
            if (g.model == m.name)
                (g.group == "old" ? o : n) = g.ratio;
        old.values.push_back(o);
        fresh.values.push_back(n);
    }
    c.series = {std::move(old), std::move(fresh)};
    return c;
}

BarChart expert0Chart(const ForgettingReport &r, const std::string &model)
{
    BarChart c;
    c.title = "Share of tokens whose top-1 is expert 0 (the frozen original): " + model;
    c.yLabel = "top-1 share of expert 0";
    c.yMax = 1.0;
    std::set<int> layers;
    for (const auto &x : r.routing)
        if (x.model == model)
            layers.insert(x.layer);
    const std::vector<int> layerList(layers.begin(), layers.end());
    for (int l : layerList)
        c.categories.push_back("L" + std::to_string(l));
    size_t olds = 0, news = 0;
    for (const auto &lang : r.languages) {
        const bool isNew = lang.group == LanguageGroup::New;
        ChartSeries s{lang.code + " (" + toString(lang.group) + ")", std::vector<double>(layerList.size(), std::nan("")),
                      isNew ? kNewColors[news++ % std::size(kNewColors)] : kOldColors[olds++ % std::size(kOldColors)]};
        bool any = false;
        for (const auto &x : r.routing)
            if (x.model == model && x.language == lang.code) {
                const auto at = std::lower_bound(layerList.begin(), layerList.end(), x.layer) - layerList.begin();
                s.values[size_t(at)] = x.expert0Top1;
                any = true;
            }
        if (any)
            c.series.push_back(std::move(s));
    }
    return c;
}

std::vector<std::string> routedModels(const ForgettingReport &r)
{
    std::vector<std::string> out;
    for (const auto &m : r.models)
        for (const auto &x : r.routing)
            if (x.model == m.name) {
                out.push_back(m.name);
                break;
            }
    return out;
}

void drawBarChart(QCustomPlot *plot, const BarChart &chart)
{
    plot->clearPlottables();
    plot->clearItems();
    // The title: a text element in a row above the axis rect, made once per plot.
    QCPTextElement *title = nullptr;
    if (plot->plotLayout()->rowCount() > 1)
        title = qobject_cast<QCPTextElement *>(plot->plotLayout()->element(0, 0));
    if (!title) {
        plot->plotLayout()->insertRow(0);
        title = new QCPTextElement(plot, QString(), QFont(plot->font().family(), plot->font().pointSize() + 1, QFont::Bold));
        plot->plotLayout()->addElement(0, 0, title);
    }
    title->setText(QString::fromStdString(chart.title));

    auto *group = plot->findChild<QCPBarsGroup *>("reportBarsGroup");
    if (!group) {
        group = new QCPBarsGroup(plot);
        group->setObjectName("reportBarsGroup");
        group->setSpacing(1);
    }
    const int n = int(chart.series.size()), cats = int(chart.categories.size());
    const double width = 0.8 / std::max(1, n);
    double top = std::isfinite(chart.reference) ? chart.reference : 0.0;
    for (int i = 0; i < n; ++i) {
        const auto &s = chart.series[size_t(i)];
        const QColor color = seriesColor(chart, size_t(i));
        auto *bars = new QCPBars(plot->xAxis, plot->yAxis);
        bars->setName(QString::fromStdString(s.name));
        bars->setWidth(width);
        bars->setBrush(color);
        bars->setPen(QPen(color.darker(130)));
        QVector<double> keys, values;
        for (size_t k = 0; k < s.values.size(); ++k)
            if (std::isfinite(s.values[k])) {
                keys << double(k);
                values << s.values[k];
                top = std::max(top, s.values[k]);
            }
        bars->setData(keys, values, true);
        bars->setBarsGroup(group);
    }
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int k = 0; k < cats; ++k)
        ticks->addTick(k, QString::fromStdString(chart.categories[size_t(k)]));
    plot->xAxis->setTicker(ticks);
    plot->xAxis->grid()->setVisible(false); // categories: no vertical lines through the bars
    plot->xAxis->setRange(-0.6, std::max(1, cats) - 0.4);
    plot->yAxis->setLabel(QString::fromStdString(chart.yLabel));
    plot->yAxis->setRange(0, std::isfinite(chart.yMax) ? chart.yMax : std::max(1.0, top * 1.15));
    if (std::isfinite(chart.reference)) {
        auto *line = new QCPItemStraightLine(plot);
        line->point1->setCoords(0, chart.reference);
        line->point2->setCoords(1, chart.reference);
        line->setPen(QPen(QColor("#404040"), 1, Qt::DashLine));
    }
    plot->legend->setVisible(n > 0);
    plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
    plot->replot();
}

std::vector<ReportPlotFile> writeReportPlots(const ForgettingReport &r, const std::filesystem::path &dir, int width,
                                             int height)
{
    if (width < 16 || height < 16)
        throw ConfigError("plot size " + std::to_string(width) + "x" + std::to_string(height) + " is too small");
    // Widgets need a QApplication; the command-line tool has none, so it gets one on the offscreen
    // platform (no display) for the length of this call. Qt's own chatter there ("XDG_RUNTIME_DIR
    // not set") is not the tool's output: only critical messages reach stderr meanwhile.
    struct QuietQt {
        bool installed = false;
        QtMessageHandler previous = nullptr; // nullptr: Qt's default handler
        void install()
        {
            installed = true;
            previous = qInstallMessageHandler([](QtMsgType type, const QMessageLogContext &, const QString &msg) {
                if (type == QtCriticalMsg || type == QtFatalMsg)
                    std::fprintf(stderr, "Qt: %s\n", qPrintable(msg));
            });
        }
        ~QuietQt()
        {
            if (installed)
                qInstallMessageHandler(previous);
        }
    } quiet;
    std::unique_ptr<QApplication> own;
    if (!QCoreApplication::instance()) {
        quiet.install();
        static int argc = 3;
        static char a0[] = "polymoe", a1[] = "-platform", a2[] = "offscreen";
        static char *argv[] = {a0, a1, a2, nullptr};
        own = std::make_unique<QApplication>(argc, argv);
    } else if (!qobject_cast<QApplication *>(QCoreApplication::instance())) {
        throw Error("plots: this process has a QCoreApplication, not the QApplication that drawing needs");
    }

    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw IoError(dir.string() + ": cannot create the plot folder: " + ec.message());

    std::vector<std::pair<ReportPlotFile, BarChart>> charts;
    charts.push_back({{dir / "perplexity.png", "held-out perplexity per language and model"}, perplexityChart(r)});
    if (r.models.size() > 1)
        charts.push_back({{dir / "group-ratio.png", "old/new group ratio to the base per model"}, groupRatioChart(r)});
    for (const auto &m : routedModels(r))
        charts.push_back({{dir / ("expert0-" + fileSafe(m) + ".png"), "expert-0 top-1 share per layer and language: " + m},
                          expert0Chart(r, m)});

    std::vector<ReportPlotFile> written;
    for (const auto &[file, chart] : charts) {
        QCustomPlot plot;
        plot.resize(width, height);
        drawBarChart(&plot, chart);
        const QImage image = plot.toPixmap(width, height, 1.0).toImage();
        // QSaveFile writes to a temporary file beside the target and renames it on commit.
        QSaveFile out(QString::fromStdString(file.file.string()));
        if (image.isNull() || !out.open(QIODevice::WriteOnly) || !image.save(&out, "PNG") || !out.commit())
            throw IoError(file.file.string() + ": cannot write the PNG" +
                          (out.errorString().isEmpty() ? std::string() : ": " + out.errorString().toStdString()));
        written.push_back(file);
    }
    return written;
}

} // namespace polymoe::ui
