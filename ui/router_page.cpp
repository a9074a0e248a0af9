// The router monitor.
#include "router_page.h"

#include "chart_export.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QTimer>

#include <cmath>
#include <map>
#include <set>

namespace polymoe::ui {

namespace {
QDateTime storeStamp(const QString &path)
{
    QDateTime t = QFileInfo(path).lastModified();
    const QFileInfo wal(path + "-wal");
    if (wal.exists()) {
        t = std::max(t, wal.lastModified());
        // The WAL's size changes with every commit even within one timestamp tick.
        t = t.addMSecs(wal.size() % 1000);
    }
    return t;
}

QColor layerColor(int i)
{
    static const QColor c[] = {"#1f4e9c", "#d9822b", "#2b9d55", "#b01c1c", "#7a4fb0", "#8c564b", "#e377c2", "#17becf"};
    return c[i % 8];
}
} // namespace

RouterPage::RouterPage(QWidget *parent)
    : Page(tr("Router monitor"),
           tr("Router statistics on the probe set, recorded during stage 1 and stage 2: where each language's tokens "
              "go. Stage 2's Language Priors Routing should drive the share of old-language tokens whose first "
              "choice is the frozen expert 0 close to 1, while new-language tokens keep using the new experts."),
           parent)
{
    auto *row = new QHBoxLayout;
    m_run = new QComboBox(this);
    m_run->setToolTip(tr("The training run whose router statistics are shown"));
    m_language = new QComboBox(this);
    m_step = new QComboBox(this);
    m_step->setToolTip(tr("Step of the heatmap (latest by default)"));
    row->addWidget(new QLabel(tr("Run:"), this));
    row->addWidget(m_run, 1);
    row->addWidget(new QLabel(tr("Language:"), this));
    row->addWidget(m_language);
    row->addWidget(new QLabel(tr("Step:"), this));
    row->addWidget(m_step);
    m_info = new QLabel(this);
    m_heat = new QCustomPlot(this);
    m_top1 = new QCustomPlot(this);
    m_entropy = new QCustomPlot(this);
    for (QCustomPlot *p : {m_heat, m_top1, m_entropy})
        p->setMinimumHeight(160);
    installChartExport(m_heat, "router-slot-shares");
    installChartExport(m_top1, "router-expert0-top1");
    installChartExport(m_entropy, "router-entropy");
    auto *bottom = new QSplitter(Qt::Horizontal, this);
    bottom->addWidget(m_top1);
    bottom->addWidget(m_entropy);
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_heat);
    split->addWidget(bottom);
    contentLayout()->addLayout(row);
    contentLayout()->addWidget(m_info);
    contentLayout()->addWidget(split, 1);

    connect(m_run, &QComboBox::currentIndexChanged, this, [this] {
        if (!m_loading)
            loadRun();
    });
    connect(m_language, &QComboBox::currentIndexChanged, this, [this] {
        if (!m_loading)
            draw();
    });
    connect(m_step, &QComboBox::currentIndexChanged, this, [this] {
        if (!m_loading)
            draw();
    });
    m_poll = new QTimer(this);
    m_poll->setInterval(1000);
    connect(m_poll, &QTimer::timeout, this, [this] {
        if (isVisible())
            pollOnce();
    });
    m_poll->start();
}

bool RouterPage::pollOnce()
{
    if (projectPath().isEmpty())
        return false;
    const QDateTime t = storeStamp(projectPath());
    if (t == m_stamp)
        return false;
    reload();
    return true;
}

void RouterPage::reload()
{
    clearError();
    const qlonglong keep = m_run->currentData().toLongLong();
    m_loading = true;
    m_run->clear();
    readProject(tr("the runs"), [&](ProjectStore &store) {
        for (const auto &r : store.runs())
            if (r.kind == "stage1" || r.kind == "stage2")
                m_run->addItem(QString("%1: %2 (%3)").arg(r.id).arg(QString::fromStdString(r.kind),
                                                                    QString::fromStdString(r.status)),
                               qlonglong(r.id));
    });
    const int i = m_run->findData(keep);
    m_run->setCurrentIndex(i >= 0 ? i : m_run->count() - 1);
    m_loading = false;
    loadRun();
    // After reading: opening the store may create its -wal file.
    m_stamp = projectPath().isEmpty() ? QDateTime() : storeStamp(projectPath());
}

void RouterPage::selectRun(qint64 runId)
{
    const int i = m_run->findData(qlonglong(runId));
    if (i >= 0)
        m_run->setCurrentIndex(i);
}

void RouterPage::selectLanguage(const QString &code)
{
    const int i = m_language->findData(code);
    if (i >= 0)
        m_language->setCurrentIndex(i);
}

void RouterPage::selectStep(qint64 step)
{
    const int i = step < 0 ? m_step->count() - 1 : m_step->findData(qlonglong(step));
    if (i >= 0)
        m_step->setCurrentIndex(i);
}

qint64 RouterPage::currentStep() const
{
    return m_step->currentData().toLongLong();
}

void RouterPage::loadRun()
{
    m_rows.clear();
    const qlonglong runId = m_run->currentData().toLongLong();
    if (runId > 0)
        readProject(tr("the router statistics"), [&](ProjectStore &store) { m_rows = store.routerStats(runId); });
    const QString keepLang = m_language->currentData().toString();
    const qlonglong keepStep = m_step->currentData().toLongLong();
    const bool wasLatest = m_step->currentIndex() == m_step->count() - 1;
    std::set<std::string> langs;
    std::set<int64_t> steps;
    for (const auto &r : m_rows) {
        langs.insert(r.language);
        steps.insert(r.step);
    }
    m_loading = true;
    m_language->clear();
    for (const auto &l : langs)
        m_language->addItem(QString::fromStdString(l), QString::fromStdString(l));
    m_step->clear();
    for (int64_t s : steps)
        m_step->addItem(QString::number(s), qlonglong(s));
    int li = m_language->findData(keepLang);
    m_language->setCurrentIndex(li >= 0 ? li : 0);
    // Follow the latest step while a run writes, unless the user picked an earlier one.
    int si = wasLatest ? -1 : m_step->findData(keepStep);
    m_step->setCurrentIndex(si >= 0 ? si : m_step->count() - 1);
    m_loading = false;
    m_info->setText(m_rows.empty() ? tr("No router statistics for this run yet (recorded every few steps in stages 1 and 2).")
                                   : tr("%1 steps recorded, %2 languages").arg(steps.size()).arg(langs.size()));
    draw();
}

double RouterPage::slotShare(int layer, int expert) const
{
    const std::string lang = m_language->currentData().toString().toStdString();
    const int64_t step = currentStep();
    for (const auto &r : m_rows)
        if (r.step == step && r.layer == layer && r.expert == expert && r.language == lang)
            return r.slotShare;
    return std::nan("");
}

std::vector<std::pair<qint64, double>> RouterPage::expert0Top1(int layer) const
{
    const std::string lang = m_language->currentData().toString().toStdString();
    std::vector<std::pair<qint64, double>> out;
    for (const auto &r : m_rows)
        if (r.layer == layer && r.expert == 0 && r.language == lang)
            out.emplace_back(r.step, r.top1Share);
    return out;
}

void RouterPage::draw()
{
    const std::string lang = m_language->currentData().toString().toStdString();
    const int64_t step = currentStep();
    int layers = 0, experts = 0;
    for (const auto &r : m_rows) {
        layers = std::max(layers, r.layer + 1);
        experts = std::max(experts, r.expert + 1);
    }

    m_heat->clearPlottables();
    for (int i = m_heat->plotLayout()->elementCount() - 1; i > 0; --i)
        if (qobject_cast<QCPColorScale *>(m_heat->plotLayout()->elementAt(i)))
            m_heat->plotLayout()->removeAt(i);
    m_heat->plotLayout()->simplify();
    m_heat->xAxis->setLabel(tr("expert (0 = the frozen original)"));
    m_heat->yAxis->setLabel(tr("layer"));
    if (layers > 0 && experts > 0) {
        auto *map = new QCPColorMap(m_heat->xAxis, m_heat->yAxis);
        map->setName(tr("slot share, %1, step %2").arg(QString::fromStdString(lang)).arg(step));
        map->data()->setSize(experts, layers);
        map->data()->setRange(QCPRange(0, experts - 1), QCPRange(0, layers - 1));
        map->data()->fill(std::nan(""));
        for (const auto &r : m_rows)
            if (r.step == step && r.language == lang)
                map->data()->setCell(r.expert, r.layer, r.slotShare);
        auto *scale = new QCPColorScale(m_heat);
        m_heat->plotLayout()->addElement(0, 1, scale);
        scale->axis()->setLabel(tr("share of routing slots"));
        map->setColorScale(scale);
        map->setGradient(QCPColorGradient::gpHot);
        map->setInterpolate(false);
        map->setDataRange(QCPRange(0, 1));
        for (QCPAxis *a : {m_heat->xAxis, m_heat->yAxis}) {
            QSharedPointer<QCPAxisTickerFixed> t(new QCPAxisTickerFixed);
            t->setTickStep(1);
            t->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
            a->setTicker(t);
        }
        m_heat->xAxis->setRange(-0.5, experts - 0.5);
        m_heat->yAxis->setRange(-0.5, layers - 0.5);
    }
    m_heat->replot();

    auto curves = [&](QCustomPlot *plot, const QString &ylabel, auto value, bool expert0Only) {
        plot->clearGraphs();
        plot->legend->setVisible(layers > 0);
        plot->xAxis->setLabel(tr("step"));
        plot->yAxis->setLabel(ylabel);
        std::map<int, std::pair<QVector<double>, QVector<double>>> byLayer;
        for (const auto &r : m_rows)
            if (r.language == lang && (!expert0Only || r.expert == 0) && (expert0Only || r.expert == 0)) {
                byLayer[r.layer].first << double(r.step);
                byLayer[r.layer].second << value(r);
            }
        for (auto &[layer, xy] : byLayer) {
            QCPGraph *g = plot->addGraph();
            g->setName(tr("layer %1").arg(layer));
            g->setPen(QPen(layerColor(layer), 2));
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
            g->setData(xy.first, xy.second, true);
        }
        plot->rescaleAxes();
        if (plot->xAxis->range().size() == 0)
            plot->xAxis->setRange(plot->xAxis->range().lower - 1, plot->xAxis->range().upper + 1);
        plot->replot();
    };
    curves(m_top1, tr("tokens with top-1 = expert 0"), [](const RouterStatRecord &r) { return r.top1Share; }, true);
    m_top1->yAxis->setRange(0, 1.05);
    m_top1->replot();
    // The entropy is the same on every expert's row: take expert 0's.
    curves(m_entropy, tr("router entropy (nats)"), [](const RouterStatRecord &r) { return r.entropy; }, false);
}

} // namespace polymoe::ui
