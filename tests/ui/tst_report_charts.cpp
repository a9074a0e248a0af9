// The forgetting report's charts (ui/report_charts), shared by the Forgetting view and
// `polymoe report --plots`: every bar carries the number the fixture inserted (or the geometric mean
// computed here from them), the view draws exactly the charts the CLI writes, and the PNG files, from
// the library and from the polymoe binary run without a display, decode at the size asked and are
// not blank.
// QCustomPlot's header uses Qt's keywords; this test includes no LibTorch header, so they can stay on.
#undef QT_NO_KEYWORDS

#include "ui_fixture.h"

#include "forgetting_model.h"
#include "forgetting_page.h"
#include "report_charts.h"

#include "polymoe/forgetting_report.h"

#include <qcustomplot.h>

#include <QDir>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace polymoe;
using namespace polymoe::ui;

namespace {

// Final routing statistics of a saved model (modelId set): expert 0's top-1 share per layer and
// language, a constant per cell so the test knows every bar.
double expert0Share(const std::string &model, int layer, size_t language)
{
    return (model == "stage2" ? 0.45 : 0.15) + 0.1 * layer + 0.03 * double(language);
}

void addFinalRouting(ProjectStore &store, const fixture::Ids &ids)
{
    for (const auto &[model, run] : {std::pair<std::string, int64_t>{"stage1", ids.stage1Run}, {"stage2", ids.stage2Run}}) {
        std::vector<RouterStatRecord> rows;
        for (int layer = 0; layer < fixture::kLayers; ++layer) {
            const int n = fixture::kAllocation[size_t(layer)];
            if (n < 2)
                continue;
            for (size_t li = 0; li < fixture::kLanguages.size(); ++li)
                for (int e = 0; e < n; ++e) {
                    const double top0 = expert0Share(model, layer, li);
                    rows.push_back({run, ids.models.at(model), 100, layer, fixture::kLanguages[li].code, e,
                                    e == 0 ? top0 : (1 - top0) / (n - 1), e == 0 ? top0 : (1 - top0) / (n - 1), 0.5});
                }
        }
        store.addRouterStats(rows);
    }
}

// Geometric mean over a group's languages of ppl(model) / ppl(base), from the fixture's constants.
double geometric(const std::string &model, bool newGroup)
{
    double logSum = 0;
    int n = 0;
    for (const auto &l : fixture::kLanguages)
        if ((l.group == LanguageGroup::New) == newGroup) {
            logSum += std::log(fixture::kPerplexity.at(model).at(l.code) / fixture::kPerplexity.at("base").at(l.code));
            ++n;
        }
    return std::exp(logSum / n);
}

// Bar values of a drawn plot: [series][key] (NaN where a series has no bar).
std::vector<std::vector<double>> drawnBars(QCustomPlot *plot, int categories)
{
    std::vector<std::vector<double>> out;
    for (int i = 0; i < plot->plottableCount(); ++i) {
        auto *bars = qobject_cast<QCPBars *>(plot->plottable(i));
        std::vector<double> v(size_t(categories), std::nan(""));
        if (bars)
            for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it)
                v.at(size_t(it->key)) = it->value;
        out.push_back(v);
    }
    return out;
}

std::vector<std::vector<double>> chartValues(const BarChart &c)
{
    std::vector<std::vector<double>> out;
    for (const auto &s : c.series)
        out.push_back(s.values);
    return out;
}

bool sameBars(const std::vector<std::vector<double>> &a, const std::vector<std::vector<double>> &b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].size() != b[i].size())
            return false;
        for (size_t k = 0; k < a[i].size(); ++k)
            if (!(a[i][k] == b[i][k] || (std::isnan(a[i][k]) && std::isnan(b[i][k]))))
                return false;
    }
    return true;
}

// A decoded PNG of the size asked with a drawing on it: many colours, and the given bar colour.
QString checkPng(const QString &file, QSize size, const QColor &barColor)
{
    QImage img(file);
    if (img.isNull())
        return file + ": does not decode";
    if (img.size() != size)
        return QString("%1: %2x%3, asked %4x%5").arg(file).arg(img.width()).arg(img.height()).arg(size.width()).arg(size.height());
    QSet<QRgb> colours;
    int barPixels = 0;
    for (int y = 0; y < img.height(); y += 2)
        for (int x = 0; x < img.width(); x += 2) {
            const QRgb p = img.pixel(x, y);
            colours.insert(p);
            if ((p & 0xffffff) == (barColor.rgb() & 0xffffff))
                ++barPixels;
        }
    if (colours.size() < 4)
        return QString("%1: blank (%2 colours)").arg(file).arg(colours.size());
    if (barPixels < 50)
        return QString("%1: only %2 pixels of the bar colour %3").arg(file).arg(barPixels).arg(barColor.name());
    return {};
}

} // namespace

class TestReportCharts : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_path;
    fixture::Ids m_ids;
    ForgettingReport m_report;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_path = m_dir.filePath("charts.polymoe");
        auto store = ProjectStore::create(m_path.toStdString());
        m_ids = fixture::build(store);
        addFinalRouting(store, m_ids);
        m_report = buildForgettingReport(store);
    }

    void perplexityChartIsTheReportsNumbers()
    {
        const BarChart c = perplexityChart(m_report);
        QCOMPARE(c.categories.size(), size_t(4));
        QCOMPARE(c.categories[0], std::string("en\n(old)"));
        QCOMPARE(c.categories[2], std::string("de\n(new)"));
        QCOMPARE(c.series.size(), size_t(3));
        const std::vector<std::string> models = {"base", "stage1", "stage2"}, langs = {"en", "es", "de", "ru"};
        for (size_t m = 0; m < models.size(); ++m) {
            QCOMPARE(c.series[m].name, models[m]);
            for (size_t l = 0; l < langs.size(); ++l)
                QCOMPARE(c.series[m].values[l], fixture::kPerplexity.at(models[m]).at(langs[l]));
        }
    }

    void groupRatioChartIsTheGeometricMean()
    {
        const BarChart c = groupRatioChart(m_report);
        QCOMPARE(c.categories.size(), size_t(2)); // the base is left out
        QCOMPARE(c.categories[0], std::string("stage1\n(MoE stage 1)"));
        QCOMPARE(c.series.size(), size_t(2));
        QCOMPARE(c.series[0].name, std::string("old"));
        QCOMPARE(c.series[1].name, std::string("new"));
        QCOMPARE(c.reference, 1.0);
        for (size_t m = 0; m < 2; ++m) {
            const std::string model = m == 0 ? "stage1" : "stage2";
            QVERIFY(std::abs(c.series[0].values[m] - geometric(model, false)) < 1e-12);
            QVERIFY(std::abs(c.series[1].values[m] - geometric(model, true)) < 1e-12);
        }
        // Hand-computed: stage 1 old sqrt(87.9/63.5 * 127.6/61.3) = 1.697472, new 0.488379 (1e-6).
        QVERIFY(std::abs(c.series[0].values[0] - 1.697472) < 1e-6);
        QVERIFY(std::abs(c.series[1].values[0] - 0.488379) < 1e-6);
    }

    void expert0ChartIsTheRouting()
    {
        QCOMPARE(routedModels(m_report), (std::vector<std::string>{"stage1", "stage2"}));
        for (const std::string model : {"stage1", "stage2"}) {
            const BarChart c = expert0Chart(m_report, model);
            QCOMPARE(c.categories, (std::vector<std::string>{"L1", "L2", "L3"})); // layer 0 is dense
            QCOMPARE(c.series.size(), size_t(4));
            QCOMPARE(c.series[3].name, std::string("ru (new)"));
            QCOMPARE(c.series[0].color, std::string("#1f4e9c")); // old languages in blues, new in oranges
            QCOMPARE(c.series[2].color, std::string("#d9822b"));
            QCOMPARE(c.yMax, 1.0);
            for (size_t li = 0; li < 4; ++li)
                for (size_t k = 0; k < 3; ++k)
                    QCOMPARE(c.series[li].values[k], expert0Share(model, int(k) + 1, li));
        }
        QVERIFY(expert0Chart(m_report, "base").series.empty());
    }

    void drawnBarsEqualTheChart()
    {
        QCustomPlot plot;
        for (const BarChart &c : {perplexityChart(m_report), groupRatioChart(m_report), expert0Chart(m_report, "stage2")}) {
            drawBarChart(&plot, c);
            QCOMPARE(plot.plottableCount(), int(c.series.size()));
            QVERIFY(sameBars(drawnBars(&plot, int(c.categories.size())), chartValues(c)));
            QCOMPARE(plot.plottable(0)->name(), QString::fromStdString(c.series[0].name));
        }
        // Redrawing replaces the chart; one title element stays.
        QCOMPARE(plot.plotLayout()->rowCount(), 2);
        QCOMPARE(qobject_cast<QCPTextElement *>(plot.plotLayout()->element(0, 0))->text(),
                 QString::fromStdString(expert0Chart(m_report, "stage2").title));
    }

    void forgettingViewDrawsTheSameCharts()
    {
        ForgettingPage page;
        page.setProjectPath(m_path);
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
        QVERIFY(sameBars(drawnBars(page.plot(), 4), chartValues(perplexityChart(m_report))));
        QVERIFY(sameBars(drawnBars(page.ratioPlot(), 2), chartValues(groupRatioChart(m_report))));
        QCOMPARE(page.routedModels(), (QStringList{"stage1", "stage2"}));
        // The last expanded model first; the other one on request.
        QVERIFY(sameBars(drawnBars(page.routingPlot(), 3), chartValues(expert0Chart(m_report, "stage2"))));
        page.showRouting("stage1");
        QVERIFY(sameBars(drawnBars(page.routingPlot(), 3), chartValues(expert0Chart(m_report, "stage1"))));
        QCOMPARE(page.routingPlot()->plottableCount(), 4);
    }

    void pngsFromTheLibrary()
    {
        QTemporaryDir out;
        const QString dir = out.filePath("plots/nested"); // made if missing
        const auto files = writeReportPlots(m_report, dir.toStdString(), 640, 360);
        QCOMPARE(files.size(), size_t(4));
        const QStringList names = {"perplexity.png", "group-ratio.png", "expert0-stage1.png", "expert0-stage2.png"};
        for (size_t i = 0; i < files.size(); ++i)
            QCOMPARE(QString::fromStdString(files[i].file.filename().string()), names[int(i)]);
        // Bar colours: the base's grey, the old group's blue, the first (old) language's blue.
        const QColor colours[] = {QColor("#7f7f7f"), QColor("#1f4e9c"), QColor("#1f4e9c"), QColor("#1f4e9c")};
        for (int i = 0; i < names.size(); ++i) {
            const QString err = checkPng(QDir(dir).filePath(names[i]), {640, 360}, colours[i]);
            QVERIFY2(err.isEmpty(), qPrintable(err));
        }
        // Nothing but the four files: the temporary names were renamed into place.
        QCOMPARE(QDir(dir).entryList(QDir::Files | QDir::Hidden), (QStringList{"expert0-stage1.png", "expert0-stage2.png",
                                                                               "group-ratio.png", "perplexity.png"}));
        // A file where the folder should be: an error naming it.
        QFile blocker(out.filePath("file"));
        QVERIFY(blocker.open(QIODevice::WriteOnly));
        blocker.close();
        try {
            writeReportPlots(m_report, (out.filePath("file") + "/plots").toStdString());
            QFAIL("expected an error");
        } catch (const std::exception &e) {
            QVERIFY2(QString(e.what()).contains(out.filePath("file")), e.what());
        }
    }

    void pngsFromTheCliWithoutADisplay()
    {
        const QString binary = QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe");
        if (!QFileInfo::exists(binary))
            QSKIP("the polymoe binary is not built");
        QTemporaryDir out;
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.remove("DISPLAY");
        env.remove("WAYLAND_DISPLAY");
        env.remove("QT_QPA_PLATFORM"); // the CLI picks the offscreen platform itself
        p.setProcessEnvironment(env);
        p.start(binary, {"report", m_path, "--plots", out.filePath("plots"), "--size", "800x450", "--json"});
        QVERIFY(p.waitForFinished(120000));
        const QByteArray err = p.readAllStandardError();
        QVERIFY2(p.exitCode() == 0, err.constData());
        QVERIFY2(err.isEmpty(), err.constData()); // Qt's own warnings stay out of the tool's output
        const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        const QJsonArray plots = j["plots"].toArray();
        QCOMPARE(plots.size(), 4);
        QVERIFY(plots[0].toString().endsWith("perplexity.png"));
        for (int i = 0; i < plots.size(); ++i) {
            const QString err = checkPng(plots[i].toString(), {800, 450}, QColor(i == 0 ? "#7f7f7f" : "#1f4e9c"));
            QVERIFY2(err.isEmpty(), qPrintable(err));
        }
        // The report itself is unchanged by --plots.
        QCOMPARE(j["models"].toArray().size(), 3);
        QVERIFY(std::abs(j["models"].toArray()[1].toObject()["group_ratio"].toObject()["old"].toDouble() -
                         geometric("stage1", false)) < 1e-12);

        // Text mode lists the files; a malformed size is a usage error naming it.
        p.start(binary, {"report", m_path, "--plots", out.filePath("text"), "--size", "800x450"});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        QVERIFY(QString(p.readAllStandardOutput()).contains(out.filePath("text") + "/perplexity.png"));
        p.start(binary, {"report", m_path, "--plots", out.filePath("bad"), "--size", "800"});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 2);
        QVERIFY(QString(p.readAllStandardError()).contains("--size must be WIDTHxHEIGHT"));
        QVERIFY(!QFileInfo::exists(out.filePath("bad")));
    }
};

QTEST_MAIN(TestReportCharts)
#include "tst_report_charts.moc"
