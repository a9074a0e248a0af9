// Chart colours from the palette, and the dark palette.
#include "chart_style.h"

#include <QGuiApplication>

#include <qcustomplot.h>

#include <QWidget>

namespace polymoe::ui {

namespace {

QColor mix(const QColor &a, const QColor &b, double t)
{
    return QColor::fromRgbF(float(a.redF() * (1 - t) + b.redF() * t), float(a.greenF() * (1 - t) + b.greenF() * t),
                            float(a.blueF() * (1 - t) + b.blueF() * t));
}

void styleAxis(QCPAxis *axis, const QColor &text, const QColor &line, const QColor &grid, const QColor &subGrid)
{
    axis->setBasePen(QPen(line, 0));
    axis->setTickPen(QPen(line, 0));
    axis->setSubTickPen(QPen(line, 0));
    axis->setLabelColor(text);
    axis->setTickLabelColor(text);
    axis->grid()->setPen(QPen(grid, 0, Qt::DotLine));
    axis->grid()->setSubGridPen(QPen(subGrid, 0, Qt::DotLine));
    axis->grid()->setZeroLinePen(QPen(grid, 0, Qt::SolidLine));
}

constexpr char kTextColorProperty[] = "polymoeChartText";
constexpr char kInstalledProperty[] = "polymoeChartStyle";

} // namespace

void applyChartPalette(QCustomPlot *plot, const QPalette &palette)
{
    const QColor base = palette.color(QPalette::Base), text = palette.color(QPalette::Text);
    const QColor line = mix(base, text, 0.85), grid = mix(base, text, 0.30), subGrid = mix(base, text, 0.15);
    // Text items the views left at QCustomPlot's default (black), or at the previous palette's text colour.
    const QColor previous = plot->property(kTextColorProperty).value<QColor>();
    const auto isDefaultText = [&](const QColor &c) { return c == QColor(Qt::black) || (previous.isValid() && c == previous); };

    plot->setBackground(base);
    for (QCPAxisRect *rect : plot->axisRects()) {
        rect->setBackground(Qt::NoBrush);
        for (QCPAxis *axis : rect->axes())
            styleAxis(axis, text, line, grid, subGrid);
    }
    for (int i = 0; i < plot->plotLayout()->elementCount(); ++i) {
        QCPLayoutElement *el = plot->plotLayout()->elementAt(i);
        if (auto *scale = qobject_cast<QCPColorScale *>(el))
            styleAxis(scale->axis(), text, line, grid, subGrid);
        else if (auto *title = qobject_cast<QCPTextElement *>(el); title && isDefaultText(title->textColor()))
            title->setTextColor(text);
    }
    plot->legend->setBrush(base);
    plot->legend->setBorderPen(QPen(line, 0));
    plot->legend->setTextColor(text);
    for (int i = 0; i < plot->legend->itemCount(); ++i)
        plot->legend->item(i)->setTextColor(text);
    for (int i = 0; i < plot->itemCount(); ++i)
        if (auto *t = qobject_cast<QCPItemText *>(plot->item(i)); t && isDefaultText(t->color()))
            t->setColor(text);
    plot->setProperty(kTextColorProperty, text);
}

void installChartStyle(QCustomPlot *plot)
{
    if (plot->property(kInstalledProperty).toBool())
        return;
    plot->setProperty(kInstalledProperty, true);
    // Before every replot: colour scales, legend items and text the views add later are covered too.
    QObject::connect(plot, &QCustomPlot::beforeReplot, plot, [plot] { applyChartPalette(plot, plot->palette()); });
}

void styleCharts(QWidget *root)
{
    for (QCustomPlot *plot : root->findChildren<QCustomPlot *>()) {
        installChartStyle(plot);
        plot->replot();
    }
}

QPalette darkPalette()
{
    QPalette p;
    const QColor window(45, 45, 48), base(30, 30, 32), text(222, 222, 222), button(56, 56, 60), disabled(128, 128, 128);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, QColor(40, 40, 44));
    p.setColor(QPalette::ToolTipBase, QColor(60, 60, 64));
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, QColor(150, 150, 150));
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, button);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, QColor(255, 90, 90));
    p.setColor(QPalette::Link, QColor(90, 160, 255));
    p.setColor(QPalette::LinkVisited, QColor(170, 130, 255));
    p.setColor(QPalette::Highlight, QColor(42, 120, 210));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Light, QColor(75, 75, 80));
    p.setColor(QPalette::Midlight, QColor(62, 62, 66));
    p.setColor(QPalette::Mid, QColor(40, 40, 42));
    p.setColor(QPalette::Dark, QColor(25, 25, 26));
    p.setColor(QPalette::Shadow, QColor(10, 10, 10));
    for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        p.setColor(QPalette::Disabled, role, disabled);
    p.setColor(QPalette::Disabled, QPalette::Highlight, QColor(70, 70, 74));
    p.setColor(QPalette::Disabled, QPalette::HighlightedText, disabled);
    return p;
}

QColor toneColor(Tone tone)
{
    const bool dark = QGuiApplication::palette().color(QPalette::Base).lightness() < 128;
    switch (tone) {
    case Tone::Bad:
        return dark ? QColor("#ff7b7b") : QColor("#a01818");
    case Tone::Good:
        return dark ? QColor("#6fdc8c") : QColor("#17703a");
    case Tone::Warning:
        return dark ? QColor("#ffb454") : QColor("#b35c00");
    case Tone::Active:
        return dark ? QColor("#82b4ff") : QColor("#1f4e9c");
    }
    return {};
}

} // namespace polymoe::ui
