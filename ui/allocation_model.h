// The expert allocation being edited (METHOD.md section 2): N_i per layer with the layer scores
// S_i beside, the uniform comparison, and the counts from summarizeAllocation. Every change goes
// through a QUndoStack, so table edits, bar drags and strategy changes undo alike.
#pragma once

#include "polymoe/allocation.h"

#include <QAbstractTableModel>
#include <QUndoCommand>

#include <vector>

class QUndoStack;

namespace polymoe::ui {

class AllocationModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Layer, Score, Experts, NewExperts, Uniform, ColumnCount };

    explicit AllocationModel(QObject *parent = nullptr);

    QUndoStack *undoStack() const { return m_undo; }
    // Shape of the dense model (for the parameter counts) and the layer scores (may be empty).
    void setShape(int layers, int64_t dModel, int64_t dFfn, int topK = 2);
    void setScores(std::vector<double> scores);
    const std::vector<double> &scores() const { return m_scores; }
    int layers() const { return int(m_experts.size()); }
    int64_t dModel() const { return m_dModel; }
    int64_t dFfn() const { return m_dFfn; }

    const std::vector<int> &experts() const { return m_experts; }
    // Pushes an undoable change (no-op when equal); `text` names it in the undo history.
    void changeExperts(const std::vector<int> &experts, const QString &text);
    void changeLayer(int layer, int n);
    // Without undo history (the page uses it while a bar is dragged, then pushes the result).
    void applyExperts(const std::vector<int> &experts);
    // Replaces the allocation and forgets the undo history (a new project or model).
    void resetExperts(const std::vector<int> &experts);

    // The uniform allocation with (about) the same number of new experts, MoE-LPR's comparison.
    std::vector<int> uniformComparison() const;
    // summarizeAllocation of the current list; zeros when the shape is unknown.
    AllocationSummary summary() const;
    AllocationSummary summaryOf(const std::vector<int> &experts) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex &index, const QVariant &value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

Q_SIGNALS:
    void expertsChanged();
    void editedByHand(); // a table edit or a drag: the strategy becomes manual

private:
    QUndoStack *m_undo = nullptr;
    std::vector<int> m_experts;
    std::vector<double> m_scores;
    int64_t m_dModel = 0, m_dFfn = 0;
    int m_topK = 2;
};

// One undoable allocation change.
class SetExpertsCommand : public QUndoCommand {
public:
    SetExpertsCommand(AllocationModel *model, std::vector<int> before, std::vector<int> after, const QString &text);
    void undo() override;
    void redo() override;

private:
    AllocationModel *m_model;
    std::vector<int> m_before, m_after;
};

} // namespace polymoe::ui
