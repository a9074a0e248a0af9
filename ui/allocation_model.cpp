// The editable allocation and its undo commands.
#include "allocation_model.h"

#include <QUndoStack>

#include <cmath>
#include <numeric>

namespace polymoe::ui {

SetExpertsCommand::SetExpertsCommand(AllocationModel *model, std::vector<int> before, std::vector<int> after, const QString &text)
    : QUndoCommand(text), m_model(model), m_before(std::move(before)), m_after(std::move(after))
{
}

void SetExpertsCommand::undo()
{
    m_model->applyExperts(m_before);
}

void SetExpertsCommand::redo()
{
    m_model->applyExperts(m_after);
}

AllocationModel::AllocationModel(QObject *parent) : QAbstractTableModel(parent), m_undo(new QUndoStack(this)) {}

void AllocationModel::setShape(int layers, int64_t dModel, int64_t dFfn, int topK)
{
    m_dModel = dModel;
    m_dFfn = dFfn;
    m_topK = topK;
    if (layers != int(m_experts.size()))
        resetExperts(std::vector<int>(size_t(std::max(0, layers)), 1));
    else
        Q_EMIT expertsChanged();
}

void AllocationModel::setScores(std::vector<double> scores)
{
    m_scores = std::move(scores);
    if (!m_experts.empty())
        Q_EMIT dataChanged(index(0, Score), index(rowCount() - 1, Score));
}

void AllocationModel::changeExperts(const std::vector<int> &experts, const QString &text)
{
    if (experts == m_experts)
        return;
    m_undo->push(new SetExpertsCommand(this, m_experts, experts, text));
}

void AllocationModel::changeLayer(int layer, int n)
{
    if (layer < 0 || layer >= layers())
        return;
    std::vector<int> e = m_experts;
    e[size_t(layer)] = std::clamp(n, 1, kMaxExpertsPerLayer);
    changeExperts(e, tr("Layer %1: %2 experts").arg(layer).arg(e[size_t(layer)]));
}

void AllocationModel::applyExperts(const std::vector<int> &experts)
{
    if (experts.size() != m_experts.size()) {
        beginResetModel();
        m_experts = experts;
        endResetModel();
    } else {
        m_experts = experts;
        if (!m_experts.empty())
            Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
    }
    Q_EMIT expertsChanged();
}

void AllocationModel::resetExperts(const std::vector<int> &experts)
{
    m_undo->clear();
    applyExperts(experts);
}

std::vector<int> AllocationModel::uniformComparison() const
{
    if (m_experts.empty())
        return {};
    const int added = std::accumulate(m_experts.begin(), m_experts.end(), 0) - layers();
    const int perLayer = 1 + int(std::lround(double(added) / double(layers())));
    return uniformAllocation(layers(), std::max(1, perLayer));
}

AllocationSummary AllocationModel::summaryOf(const std::vector<int> &experts) const
{
    if (m_dModel <= 0 || m_dFfn <= 0 || experts.empty()) {
        AllocationSummary s;
        s.layers = int(experts.size());
        for (int n : experts) {
            s.totalExperts += n;
            s.newExperts += n - 1;
            s.moeLayers += n >= 2;
        }
        return s;
    }
    try {
        return summarizeAllocation(experts, m_dModel, m_dFfn, m_topK);
    } catch (const std::exception &) {
        return {};
    }
}

AllocationSummary AllocationModel::summary() const
{
    return summaryOf(m_experts);
}

int AllocationModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_experts.size());
}

int AllocationModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant AllocationModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount())
        return {};
    const size_t layer = size_t(index.row());
    if (role == Qt::TextAlignmentRole)
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole && index.column() == Experts)
        return tr("Experts in layer %1, the frozen original included (1 = the layer stays dense). Type to edit.").arg(layer);
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    switch (index.column()) {
    case Layer: return int(layer);
    case Score:
        if (layer < m_scores.size())
            return role == Qt::DisplayRole ? QVariant(QString::number(m_scores[layer], 'f', 4)) : QVariant(m_scores[layer]);
        return role == Qt::DisplayRole ? QVariant(QStringLiteral("–")) : QVariant();
    case Experts: return m_experts[layer];
    case NewExperts: return m_experts[layer] - 1;
    case Uniform: {
        const auto u = uniformComparison();
        return layer < u.size() ? QVariant(u[layer]) : QVariant();
    }
    }
    return {};
}

bool AllocationModel::setData(const QModelIndex &index, const QVariant &value, int role)
{
    if (!index.isValid() || index.column() != Experts || role != Qt::EditRole)
        return false;
    bool ok = false;
    const int n = value.toInt(&ok);
    if (!ok || n < 1 || n > kMaxExpertsPerLayer)
        return false;
    if (n == m_experts[size_t(index.row())])
        return true;
    Q_EMIT editedByHand();
    changeLayer(index.row(), n);
    return true;
}

Qt::ItemFlags AllocationModel::flags(const QModelIndex &index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() == Experts)
        f |= Qt::ItemIsEditable;
    return f;
}

QVariant AllocationModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Layer: return tr("Layer");
    case Score: return tr("S_i");
    case Experts: return tr("N_i");
    case NewExperts: return tr("New experts");
    case Uniform: return tr("Uniform");
    }
    return {};
}

} // namespace polymoe::ui
