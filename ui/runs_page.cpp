// The runs view.
#include "runs_page.h"

#include "chart_export.h"
#include "runs_model.h"

#include <qcustomplot.h>

#include <QHeaderView>
#include <QItemSelectionModel>
#include <QSplitter>
#include <QTableView>
#include <QTimer>

namespace polymoe::ui {

RunsPage::RunsPage(QWidget *parent)
    : Page(tr("Runs"),
           tr("Every training run of the project (pre-training, fine-tuning, stage 1, stage 2) with its status and "
              "final loss. Select two or more runs (Ctrl+click) to overlay their loss curves."),
           parent),
      m_model(new RunsModel(this))
{
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->setVisible(false);
    m_plot = new QCustomPlot(this);
    m_plot->setMinimumHeight(220);
    installChartExport(m_plot, "run-losses");
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_table);
    split->addWidget(m_plot);
    contentLayout()->addWidget(split, 1);
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, &RunsPage::drawSelected);
    m_poll = new QTimer(this);
    m_poll->setInterval(1000);
    connect(m_poll, &QTimer::timeout, this, [this] {
        if (isVisible() && m_model->anyRunning())
            reload(); // until the last running run has ended, which this shows too
    });
    m_poll->start();
}

void RunsPage::reload()
{
    clearError();
    QList<qint64> keep;
    for (const QModelIndex &i : m_table->selectionModel()->selectedRows())
        keep << m_model->run(i.row()).id;
    if (!readProject(tr("the runs"), [&](ProjectStore &store) { m_model->load(store); }))
        m_model->clear();
    if (keep.isEmpty() && m_model->rowCount() > 0)
        keep << m_model->run(m_model->rowCount() - 1).id; // the newest
    selectRuns(keep);
}

void RunsPage::selectRuns(const QList<qint64> &ids)
{
    QItemSelection sel;
    for (int r = 0; r < m_model->rowCount(); ++r)
        if (ids.contains(m_model->run(r).id))
            sel.select(m_model->index(r, 0), m_model->index(r, RunsModel::ColumnCount - 1));
    m_table->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect);
    drawSelected();
}

void RunsPage::drawSelected()
{
    static const QColor colors[] = {"#1f4e9c", "#d9822b", "#2b9d55", "#b01c1c", "#7a4fb0", "#8c564b"};
    m_plot->clearGraphs();
    m_plot->xAxis->setLabel(tr("step"));
    m_plot->yAxis->setLabel(tr("loss"));
    int n = 0;
    readProject(tr("the metric series"), [&](ProjectStore &store) {
        for (const QModelIndex &i : m_table->selectionModel()->selectedRows()) {
            const RunRecord &r = m_model->run(i.row());
            QVector<double> x, y;
            for (const auto &[step, v] : store.metricSeries(r.id, "loss")) {
                x << double(step);
                y << v;
            }
            QCPGraph *g = m_plot->addGraph();
            g->setName(QString("%1 %2").arg(r.id).arg(QString::fromStdString(r.kind)));
            g->setPen(QPen(colors[n++ % 6], 2));
            g->setData(x, y, true);
        }
    });
    m_plot->legend->setVisible(n > 0);
    m_plot->rescaleAxes();
    m_plot->replot();
}

} // namespace polymoe::ui
