// Charts that follow the window's palette. QCustomPlot draws black on white whatever the palette
// says; installChartStyle() re-colours a plot from its own palette before every replot (axes, tick
// labels, grid, legend, colour scales, text), so a dark palette and new colour scales need nothing
// from the views. Also the workbench's dark palette (--dark).
#pragma once

#include <QPalette>

class QCustomPlot;
class QWidget;

namespace polymoe::ui {

// Colours one plot's background, axes, grid, legend and text from `palette`. Data colours stay.
void applyChartPalette(QCustomPlot *plot, const QPalette &palette);
// Makes the plot apply its palette before each replot (once per plot; repeated calls do nothing).
void installChartStyle(QCustomPlot *plot);
// installChartStyle() on every QCustomPlot under root, then replots them.
void styleCharts(QWidget *root);

// A dark palette for the Fusion style (window, base, text, buttons, highlight, disabled roles).
QPalette darkPalette();

// Text colours with a meaning (worse / better / warning / in progress), readable on the
// application palette's base colour: dark tones on a light base, light tones on a dark one.
enum class Tone { Bad, Good, Warning, Active };
QColor toneColor(Tone tone);

} // namespace polymoe::ui
