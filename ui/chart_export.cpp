// Chart export: PNG and PDF through QCustomPlot, CSV from the plottables' data.
#include "chart_export.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QSaveFile>

namespace polymoe::ui {

namespace {
QString csvField(QString s)
{
    if (s.contains(',') || s.contains('"'))
        s = '"' + s.replace('"', "\"\"") + '"';
    return s;
}
} // namespace

QString chartCsv(QCustomPlot *plot)
{
    QString out = "series,key,value,z\n";
    for (int i = 0; i < plot->plottableCount(); ++i) {
        QCPAbstractPlottable *p = plot->plottable(i);
        const QString name = csvField(p->name().isEmpty() ? QString("series %1").arg(i) : p->name());
        if (auto *g = qobject_cast<QCPGraph *>(p)) {
            for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
                out += QString("%1,%2,%3,\n").arg(name).arg(it->key, 0, 'g', 10).arg(it->value, 0, 'g', 10);
        } else if (auto *b = qobject_cast<QCPBars *>(p)) {
            for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it)
                out += QString("%1,%2,%3,\n").arg(name).arg(it->key, 0, 'g', 10).arg(it->value, 0, 'g', 10);
        } else if (auto *m = qobject_cast<QCPColorMap *>(p)) {
            QCPColorMapData *d = m->data();
            for (int x = 0; x < d->keySize(); ++x)
                for (int y = 0; y < d->valueSize(); ++y) {
                    double k, v;
                    d->cellToCoord(x, y, &k, &v);
                    out += QString("%1,%2,%3,%4\n").arg(name).arg(k).arg(v).arg(d->cell(x, y), 0, 'g', 10);
                }
        }
    }
    return out;
}

bool saveChart(QCustomPlot *plot, const QString &file, QString *error)
{
    bool ok = false;
    const QString suffix = QFileInfo(file).suffix().toLower();
    if (suffix == "png") {
        ok = plot->savePng(file, 0, 0, 2.0);
    } else if (suffix == "pdf") {
        ok = plot->savePdf(file);
    } else if (suffix == "csv") {
        QSaveFile f(file);
        ok = f.open(QIODevice::WriteOnly | QIODevice::Text) && f.write(chartCsv(plot).toUtf8()) >= 0 && f.commit();
    } else {
        if (error)
            *error = QObject::tr("unknown chart format '%1' (png, pdf or csv)").arg(suffix);
        return false;
    }
    if (!ok && error)
        *error = QObject::tr("could not write %1").arg(file);
    return ok;
}

void setChartFont(QCustomPlot *plot, const QFont &font)
{
    plot->setFont(font);
    for (QCPAxisRect *rect : plot->axisRects())
        for (QCPAxis *axis : rect->axes()) {
            axis->setLabelFont(font);
            axis->setTickLabelFont(font);
        }
    for (int i = 0; i < plot->plotLayout()->elementCount(); ++i)
        if (auto *scale = qobject_cast<QCPColorScale *>(plot->plotLayout()->elementAt(i))) {
            scale->axis()->setLabelFont(font);
            scale->axis()->setTickLabelFont(font);
        }
    plot->legend->setFont(font);
    for (int i = 0; i < plot->legend->itemCount(); ++i)
        plot->legend->item(i)->setFont(font); // new items take the legend font
    plot->replot();
}

void installChartExport(QCustomPlot *plot, const QString &baseName)
{
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    plot->setToolTip(QObject::tr("Right-click to save this chart as PNG, PDF or CSV"));
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, baseName](const QPoint &pos) {
        QMenu menu(plot);
        for (const QString &fmt : {QString("png"), QString("pdf"), QString("csv")}) {
            menu.addAction(QObject::tr("Save as %1...").arg(fmt.toUpper()), plot, [plot, baseName, fmt] {
                const QString file = QFileDialog::getSaveFileName(plot, QObject::tr("Save chart"), baseName + "." + fmt,
                                                                  QString("%1 (*.%2)").arg(fmt.toUpper(), fmt));
                if (file.isEmpty())
                    return;
                QString error;
                if (!saveChart(plot, file, &error))
                    QMessageBox::warning(plot, QObject::tr("Save chart"), error);
            });
        }
        menu.exec(plot->mapToGlobal(pos));
    });
}

} // namespace polymoe::ui
