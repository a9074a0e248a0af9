// Forgetting comparison (METHOD.md section 8): grouped bars of held-out perplexity per language for
// the base and every later model, the old/new group summaries, and the same numbers as a table.
#pragma once

#include "page.h"

class QCustomPlot;
class QLabel;
class QTableView;

namespace polymoe::ui {

class ForgettingModel;

class ForgettingPage : public Page {
    Q_OBJECT
public:
    explicit ForgettingPage(QWidget *parent = nullptr);
    void reload() override;
    ForgettingModel *model() const { return m_model; }
    QCustomPlot *plot() const { return m_plot; }
    QString summaryText() const;

private:
    void draw();

    ForgettingModel *m_model = nullptr;
    QCustomPlot *m_plot = nullptr;
    QTableView *m_table = nullptr;
    QLabel *m_summary = nullptr;
};

} // namespace polymoe::ui
