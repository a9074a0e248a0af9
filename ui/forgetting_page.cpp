// The forgetting view: polymoe::ForgettingReport drawn by report_charts and shown as two tables.
#include "forgetting_page.h"

#include "chart_export.h"
#include "forgetting_model.h"
#include "report_charts.h"

#include "polymoe/error.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>

#include <cmath>

namespace polymoe::ui {

ForgettingPage::ForgettingPage(QWidget *parent)
    : Page(tr("Forgetting"),
           tr("Evaluation: held-out perplexity per language for the base model and after each step. Forgetting is "
              "the relative perplexity increase on the old languages, gain the decrease on the new ones (per group: "
              "the geometric mean of the ratios to the base). Full fine-tuning learns fast and forgets; stage 1 "
              "forgets less; stage 2 should bring the old languages back close to the base while keeping most of "
              "the gain, by sending old-language tokens back to expert 0, the frozen original."),
           parent),
      m_model(new ForgettingModel(this)), m_summaryModel(new ForgettingSummaryModel(this))
{
    auto makePlot = [this](const QString &name) {
        auto *p = new QCustomPlot(this);
        p->setMinimumHeight(240);
        installChartExport(p, name);
        return p;
    };
    m_plot = makePlot("forgetting");
    m_ratioPlot = makePlot("forgetting-group-ratio");
    m_routingPlot = makePlot("forgetting-expert0");
    m_routingModel = new QComboBox(this);
    m_routingModel->setToolTip(tr("The expanded model whose routing is shown"));
    connect(m_routingModel, &QComboBox::currentTextChanged, this, [this](const QString &m) {
        if (!m.isEmpty())
            drawBarChart(m_routingPlot, expert0Chart(m_model->report(), m.toStdString()));
    });
    auto *routing = new QWidget(this);
    auto *routingLayout = new QVBoxLayout(routing);
    routingLayout->setContentsMargins(0, 0, 0, 0);
    auto *pick = new QHBoxLayout;
    pick->addWidget(new QLabel(tr("Model:"), routing));
    pick->addWidget(m_routingModel);
    pick->addStretch(1);
    routingLayout->addLayout(pick);
    routingLayout->addWidget(m_routingPlot, 1);

    m_tabs = new QTabWidget(this);
    m_tabs->addTab(m_plot, tr("Perplexity per language"));
    m_tabs->addTab(m_ratioPlot, tr("Old / new ratio"));
    m_tabs->addTab(routing, tr("Expert 0 per layer"));
    m_samples = new QTableWidget(0, 4, this);
    m_samples->setObjectName("samplesTable");
    m_samples->setHorizontalHeaderLabels({tr("Language"), tr("Prompt"), tr("Model"), tr("Greedy continuation")});
    m_samples->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_samples->verticalHeader()->setVisible(false);
    m_samples->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_samples->horizontalHeader()->setStretchLastSection(true);
    m_samples->setWordWrap(true);
    m_samples->setToolTip(tr("The same prompts in each language, continued greedily by every model (made by "
                             "'polymoe demo'): English answers should stay, German and Russian ones improve."));
    m_tabs->addTab(m_samples, tr("Generation samples"));

    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->verticalHeader()->setVisible(false);
    m_summaryTable = new QTableView(this);
    m_summaryTable->setObjectName("modelsTable");
    m_summaryTable->setModel(m_summaryModel);
    m_summaryTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_summaryTable->verticalHeader()->setVisible(false);
    m_summary = new QLabel(this);
    m_summary->setObjectName("summary");
    m_summary->setWordWrap(true);
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_tabs);
    split->addWidget(m_table);
    split->addWidget(m_summaryTable);
    split->setStretchFactor(0, 3);
    contentLayout()->addWidget(m_summary);
    contentLayout()->addWidget(split, 1);
}

QString ForgettingPage::summaryText() const
{
    return m_summary->text();
}

QStringList ForgettingPage::routedModels() const
{
    QStringList out;
    for (const auto &m : ui::routedModels(m_model->report()))
        out << QString::fromStdString(m);
    return out;
}

void ForgettingPage::showRouting(const QString &model)
{
    m_routingModel->setCurrentText(model);
    m_tabs->setCurrentIndex(2);
}

void ForgettingPage::reload()
{
    clearError();
    QString nothingYet;
    if (auto store = openStore()) {
        try {
            m_model->load(*store);
        } catch (const ConfigError &e) {
            // No model yet, or the base not evaluated: a state of the project, not a failure.
            m_model->clear();
            nothingYet = QString::fromStdString(e.what());
        } catch (const std::exception &e) {
            m_model->clear();
            showError(tr("Cannot read the forgetting report: %1").arg(QString::fromStdString(e.what())));
        }
    } else {
        m_model->clear();
    }
    m_summaryModel->setReport(m_model->report());
    QStringList parts;
    for (int m = 0; m < m_model->modelNames().size(); ++m) {
        if (m_model->modelNames()[m].toStdString() == m_model->report().base)
            continue;
        const double o = m_model->groupRatio(m, false), n = m_model->groupRatio(m, true);
        parts << tr("%1: old ×%2, new ×%3")
                     .arg(m_model->modelNames()[m])
                     .arg(std::isfinite(o) ? QString::number(o, 'f', 3) : "–")
                     .arg(std::isfinite(n) ? QString::number(n, 'f', 3) : "–");
    }
    const QString base = QString::fromStdString(m_model->report().base);
    if (m_model->modelNames().isEmpty())
        m_summary->setText(tr("No evaluations yet: models are evaluated when they are trained (or with 'polymoe eval').") +
                           (nothingYet.isEmpty() ? QString() : " (" + nothingYet + ")"));
    else if (parts.isEmpty())
        m_summary->setText(tr("Only %1 is in the report so far.").arg(base));
    else
        m_summary->setText(tr("Perplexity relative to %1, geometric mean per group — ").arg(base) + parts.join(";  "));
    draw();
}

void ForgettingPage::draw()
{
    const ForgettingReport &r = m_model->report();
    drawBarChart(m_plot, perplexityChart(r));
    drawBarChart(m_ratioPlot, groupRatioChart(r));
    const QString keep = m_routingModel->currentText();
    const QStringList routed = routedModels();
    {
        const QSignalBlocker block(m_routingModel);
        m_routingModel->clear();
        m_routingModel->addItems(routed);
        // The last expanded model (stage 2, usually) unless one was picked before.
        m_routingModel->setCurrentIndex(routed.contains(keep) ? int(routed.indexOf(keep)) : int(routed.size()) - 1);
    }
    m_routingModel->setEnabled(!routed.isEmpty());
    drawBarChart(m_routingPlot, expert0Chart(r, m_routingModel->currentText().toStdString()));

    m_samples->setRowCount(0);
    m_samples->setRowCount(int(r.samples.size()));
    int row = 0;
    std::string lastPrompt;
    for (const auto &x : r.samples) {
        const bool first = x.language + "\n" + x.prompt != lastPrompt; // the prompt once per group of rows
        lastPrompt = x.language + "\n" + x.prompt;
        const QStringList cells = {first ? QString::fromStdString(x.language) : QString(),
                                   first ? QString::fromStdString(x.prompt) : QString(), QString::fromStdString(x.model),
                                   QString::fromStdString(x.continuation).simplified()};
        for (int c = 0; c < cells.size(); ++c)
            m_samples->setItem(row, c, new QTableWidgetItem(cells[c]));
        ++row;
    }
    m_tabs->setTabEnabled(m_tabs->indexOf(m_samples), !r.samples.empty());
}

} // namespace polymoe::ui
