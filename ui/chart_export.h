// Saving any chart of the workbench as PNG, PDF or CSV: a context menu and a helper for tests.
#pragma once

#include <QFont>
#include <QString>

class QCustomPlot;

namespace polymoe::ui {

// Adds "Save as PNG/PDF/CSV..." to the plot's context menu; baseName is the suggested file name.
void installChartExport(QCustomPlot *plot, const QString &baseName);
// Writes the plot to `file`, the format by its suffix (.png, .pdf, .csv). Returns false with *error set.
bool saveChart(QCustomPlot *plot, const QString &file, QString *error = nullptr);
// Sets the fonts of the axes, tick labels and legend (presentation mode) and replots.
void setChartFont(QCustomPlot *plot, const QFont &font);
// Every plottable's data as CSV: "series,key,value" rows (graphs, bars) or "series,x,y,z" (colour maps).
QString chartCsv(QCustomPlot *plot);

} // namespace polymoe::ui
