// The forgetting view.
#include "forgetting_page.h"

#include "chart_export.h"
#include "forgetting_model.h"

#include <qcustomplot.h>

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableView>

#include <cmath>

namespace polymoe::ui {

ForgettingPage::ForgettingPage(QWidget *parent)
    : Page(tr("Forgetting"),
           tr("Evaluation: held-out perplexity per language for the base model and after each step. Forgetting is "
              "the relative perplexity increase on the old languages, gain the decrease on the new ones. Full "
              "fine-tuning learns fast and forgets; stage 1 forgets less; stage 2 should bring the old languages "
              "back close to the base while keeping most of the gain."),
           parent),
      m_model(new ForgettingModel(this))
{
    m_plot = new QCustomPlot(this);
    m_plot->setMinimumHeight(240);
    installChartExport(m_plot, "forgetting");
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->verticalHeader()->setVisible(false);
    m_summary = new QLabel(this);
    m_summary->setObjectName("summary");
    m_summary->setWordWrap(true);
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_plot);
    split->addWidget(m_table);
    split->setStretchFactor(0, 3);
    contentLayout()->addWidget(m_summary);
    contentLayout()->addWidget(split, 1);
}

QString ForgettingPage::summaryText() const
{
    return m_summary->text();
}

void ForgettingPage::reload()
{
    clearError();
    if (auto store = openStore()) {
        try {
            m_model->load(*store);
        } catch (const std::exception &e) {
            m_model->clear();
            showError(tr("Cannot read the evaluations: %1").arg(QString::fromStdString(e.what())));
        }
    } else {
        m_model->clear();
    }
    QStringList parts;
    for (int m = 1; m < m_model->modelNames().size(); ++m) {
        const double o = m_model->groupRatio(m, false), n = m_model->groupRatio(m, true);
        parts << tr("%1: old ×%2, new ×%3")
                     .arg(m_model->modelNames()[m])
                     .arg(std::isfinite(o) ? QString::number(o, 'f', 3) : "–")
                     .arg(std::isfinite(n) ? QString::number(n, 'f', 3) : "–");
    }
    if (m_model->modelNames().isEmpty())
        m_summary->setText(tr("No evaluations yet: models are evaluated when they are trained (or with 'polymoe eval')."));
    else if (parts.isEmpty())
        m_summary->setText(tr("Only %1 is evaluated so far.").arg(m_model->modelNames().first()));
    else
        m_summary->setText(tr("Mean perplexity relative to %1 — ").arg(m_model->modelNames().first()) + parts.join(";  "));
    draw();
}

void ForgettingPage::draw()
{
    m_plot->clearPlottables();
    const int models = int(m_model->modelNames().size()), langs = int(m_model->languages().size());
    static const QColor colors[] = {"#7f7f7f", "#d9822b", "#1f4e9c", "#2b9d55", "#b01c1c", "#7a4fb0"};
    auto *group = new QCPBarsGroup(m_plot);
    group->setSpacing(1);
    const double width = 0.8 / std::max(1, models);
    for (int m = 0; m < models; ++m) {
        auto *bars = new QCPBars(m_plot->xAxis, m_plot->yAxis);
        bars->setName(m_model->modelNames()[m]);
        bars->setWidth(width);
        bars->setBrush(colors[m % 6]);
        bars->setPen(QPen(colors[m % 6].darker(130)));
        QVector<double> keys, values;
        for (int r = 0; r < langs; ++r) {
            const double v = m_model->perplexity(r, m);
            if (std::isfinite(v)) {
                keys << r;
                values << v;
            }
        }
        bars->setData(keys, values, true);
        bars->setBarsGroup(group);
    }
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int r = 0; r < langs; ++r)
        ticks->addTick(r, m_model->languages()[r] + (m_model->isNew(r) ? tr("\n(new)") : tr("\n(old)")));
    m_plot->xAxis->setTicker(ticks);
    m_plot->xAxis->setRange(-0.6, std::max(1, langs) - 0.4);
    m_plot->yAxis->setLabel(tr("held-out perplexity"));
    m_plot->legend->setVisible(models > 0);
    m_plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
    m_plot->rescaleAxes(true);
    m_plot->yAxis->setRangeLower(0);
    m_plot->yAxis->setRangeUpper(std::max(1.0, m_plot->yAxis->range().upper * 1.15));
    m_plot->xAxis->setRange(-0.6, std::max(1, langs) - 0.4);
    m_plot->replot();
}

} // namespace polymoe::ui
