// Expert allocation editor (METHOD.md section 2): N_i per layer as bars (drag them) and a table (type
// in it), LayerMoE / uniform / manual with a budget and live recomputation, the added and active
// parameter counts, the uniform allocation beside, undo/redo, and "Save" into the project.
#pragma once

#include "page.h"

#include <vector>

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QMouseEvent;
class QPushButton;
class QSpinBox;
class QTableView;

namespace polymoe::ui {

class AllocationModel;
class WorkerJob;

class AllocationPage : public Page {
    Q_OBJECT
public:
    explicit AllocationPage(QWidget *parent = nullptr);
    void reload() override;

    AllocationModel *model() const { return m_model; }
    QCustomPlot *plot() const { return m_plot; }
    QString countsText() const;
    QString strategy() const;
    void setStrategy(const QString &strategy); // "layermoe", "uniform", "manual"
    void setBudget(int budget);
    // Stores the allocation in the project, in a worker: saved(id) when done, the error label when it
    // fails. False (nothing started) without a project or while a save runs.
    bool save(const QString &name = {});

Q_SIGNALS:
    void saved(qint64 allocationId);

private:
    void recomputeFromStrategy();
    void draw();
    void updateCounts();
    void plotPressed(QMouseEvent *e);
    void plotMoved(QMouseEvent *e);
    void plotReleased(QMouseEvent *e);

    AllocationModel *m_model = nullptr;
    QCustomPlot *m_plot = nullptr;
    QTableView *m_table = nullptr;
    QComboBox *m_strategy = nullptr;
    QSpinBox *m_budget = nullptr;
    QLineEdit *m_name = nullptr;
    QLabel *m_counts = nullptr;
    QPushButton *m_save = nullptr;
    WorkerJob *m_worker = nullptr;
    QString m_modelName;
    std::optional<qint64> m_analysisId;
    int m_dragLayer = -1;
    std::vector<int> m_dragStart;
    bool m_updating = false;
};

} // namespace polymoe::ui
