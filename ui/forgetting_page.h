// Forgetting comparison (METHOD.md section 8): the engine's forgetting report (the numbers
// `polymoe report` prints) as charts — held-out perplexity per language as grouped bars per model,
// the old/new group ratios per model, the expert-0 share per layer and language of an expanded
// model — drawn by the chart code `polymoe report --plots` uses, and the same numbers as tables.
#pragma once

#include "page.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QTabWidget;
class QTableView;
class QTableWidget;

namespace polymoe::ui {

class ForgettingModel;
class ForgettingSummaryModel;

class ForgettingPage : public Page {
    Q_OBJECT
public:
    explicit ForgettingPage(QWidget *parent = nullptr);
    void reload() override;
    ForgettingModel *model() const { return m_model; }
    ForgettingSummaryModel *summaryModel() const { return m_summaryModel; }
    QCustomPlot *plot() const { return m_plot; }              // perplexity per language
    QCustomPlot *ratioPlot() const { return m_ratioPlot; }    // old/new group ratio per model
    QCustomPlot *routingPlot() const { return m_routingPlot; } // expert-0 share of one expanded model
    QTableWidget *samplesTable() const { return m_samples; }   // generation samples: prompt, model, continuation
    QStringList routedModels() const;                        // the models the routing chart can show
    void showRouting(const QString &model);
    QString summaryText() const;

private:
    void draw();

    ForgettingModel *m_model = nullptr;
    ForgettingSummaryModel *m_summaryModel = nullptr;
    QTabWidget *m_tabs = nullptr;
    QCustomPlot *m_plot = nullptr, *m_ratioPlot = nullptr, *m_routingPlot = nullptr;
    QComboBox *m_routingModel = nullptr;
    QTableView *m_table = nullptr, *m_summaryTable = nullptr;
    QLabel *m_summary = nullptr;
    QTableWidget *m_samples = nullptr;
};

} // namespace polymoe::ui
