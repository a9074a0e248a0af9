// Runs: every training run of the project, and the loss curves of the selected runs overlaid. While a
// run is running and the view is shown, the table is read again each second.
#pragma once

#include "page.h"

class QCustomPlot;
class QTableView;
class QTimer;

namespace polymoe::ui {

class RunsModel;

class RunsPage : public Page {
    Q_OBJECT
public:
    explicit RunsPage(QWidget *parent = nullptr);
    void reload() override;
    RunsModel *model() const { return m_model; }
    QCustomPlot *plot() const { return m_plot; }
    QTableView *table() const { return m_table; }
    void selectRuns(const QList<qint64> &ids);

private:
    void drawSelected();

    QTimer *m_poll = nullptr;
    RunsModel *m_model = nullptr;
    QTableView *m_table = nullptr;
    QCustomPlot *m_plot = nullptr;
};

} // namespace polymoe::ui
