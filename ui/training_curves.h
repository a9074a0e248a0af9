// The Training view's curves: the loss and the learning rate (its own axis) per step, and each loss
// term ("lm", "balance", "lpr") on the loss axis, added as points arrive (from the child's progress
// or from a followed run's recorded metrics); a point at or before a curve's last step is skipped.
#pragma once

#include <qcustomplot.h>

#include <QList>
#include <QMap>
#include <QPointF>
#include <QVector>

namespace polymoe::ui {

class TrainingCurves : public QCustomPlot {
    Q_OBJECT
public:
    explicit TrainingCurves(QWidget *parent = nullptr);

    void appendPoints(const QVector<double> &steps, const QVector<double> &loss, const QVector<double> &lr);
    // A loss term's curve, made on first use.
    void appendMetric(const QString &name, const QVector<double> &steps, const QVector<double> &values);
    void clearCurves();

    int lossPoints() const;
    QList<QPointF> lossCurve() const;                      // (step, loss) as drawn
    QList<QPointF> metricCurve(const QString &name) const; // empty if none

private:
    void rescaleCurves();

    QMap<QString, QCPGraph *> m_metricGraphs;
};

} // namespace polymoe::ui
