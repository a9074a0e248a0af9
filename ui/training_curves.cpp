// The Training view's curves (see training_curves.h).
#include "training_curves.h"

#include "chart_export.h"

namespace polymoe::ui {

TrainingCurves::TrainingCurves(QWidget *parent) : QCustomPlot(parent)
{
    setMinimumHeight(200);
    installChartExport(this, "training-curves");
    xAxis->setLabel(tr("step"));
    yAxis->setLabel(tr("loss"));
    yAxis2->setLabel(tr("learning rate"));
    yAxis2->setVisible(true);
    legend->setVisible(true);
    auto *loss = addGraph(xAxis, yAxis);
    loss->setName(tr("loss"));
    loss->setPen(QPen(QColor("#1f4e9c"), 2));
    auto *lr = addGraph(xAxis, yAxis2);
    lr->setName(tr("learning rate"));
    lr->setPen(QPen(QColor("#d9822b"), 1.5, Qt::DashLine));
}

int TrainingCurves::lossPoints() const
{
    return graph(0)->dataCount();
}

static QList<QPointF> curveOf(const QCPGraph *g)
{
    QList<QPointF> out;
    if (g)
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
            out << QPointF(it->key, it->value);
    return out;
}

QList<QPointF> TrainingCurves::lossCurve() const
{
    return curveOf(graph(0));
}

QList<QPointF> TrainingCurves::metricCurve(const QString &name) const
{
    return curveOf(m_metricGraphs.value(name));
}

void TrainingCurves::appendMetric(const QString &name, const QVector<double> &steps, const QVector<double> &values)
{
    QCPGraph *g = m_metricGraphs.value(name);
    if (!g) {
        static const QMap<QString, QPair<QString, QColor>> kStyle = {
            {"lm", {QT_TR_NOOP("LM loss"), QColor("#2e9e4f")}},
            {"balance", {QT_TR_NOOP("balance loss"), QColor("#8e44ad")}},
            {"lpr", {QT_TR_NOOP("LPR loss"), QColor("#c0392b")}}};
        g = addGraph(xAxis, yAxis);
        const auto style = kStyle.value(name, {name, QColor("#555555")});
        g->setName(tr(style.first.toUtf8().constData()));
        g->setPen(QPen(style.second, 1.2));
        m_metricGraphs.insert(name, g);
    }
    bool added = false;
    for (qsizetype i = 0; i < steps.size() && i < values.size(); ++i) {
        if (!g->data()->isEmpty() && (g->data()->constEnd() - 1)->key >= steps[i])
            continue;
        g->addData(steps[i], values[i]);
        added = true;
    }
    if (added)
        rescaleCurves();
}

void TrainingCurves::rescaleCurves()
{
    // Every curve on the loss axis (loss and its terms) stays in view, the lr on its own axis.
    xAxis->rescale();
    yAxis->rescale();
    yAxis2->rescale();
    replot(QCustomPlot::rpQueuedReplot);
}

void TrainingCurves::appendPoints(const QVector<double> &steps, const QVector<double> &loss, const QVector<double> &lr)
{
    bool added = false;
    for (qsizetype i = 0; i < steps.size(); ++i) {
        if (!graph(0)->data()->isEmpty() && (graph(0)->data()->constEnd() - 1)->key >= steps[i])
            continue;
        graph(0)->addData(steps[i], loss[i]);
        graph(1)->addData(steps[i], i < lr.size() ? lr[i] : qQNaN());
        added = true;
    }
    if (added)
        rescaleCurves();
}

void TrainingCurves::clearCurves()
{
    graph(0)->data()->clear();
    graph(1)->data()->clear();
    for (QCPGraph *g : std::as_const(m_metricGraphs))
        g->data()->clear();
    replot();
}

} // namespace polymoe::ui
