// The forgetting table.
#include "forgetting_model.h"

#include <QColor>

#include <cmath>

namespace polymoe::ui {

ForgettingModel::ForgettingModel(QObject *parent) : QAbstractTableModel(parent) {}

void ForgettingModel::clear()
{
    beginResetModel();
    m_models.clear();
    m_languages.clear();
    m_isNew.clear();
    m_ppl.clear();
    endResetModel();
}

void ForgettingModel::load(const ProjectStore &store)
{
    std::vector<std::pair<QString, std::vector<EvaluationRecord>>> evaluated;
    for (const auto &m : store.models()) {
        auto ev = store.evaluations(m.id);
        std::erase_if(ev, [](const EvaluationRecord &e) { return e.split != "heldout"; });
        if (ev.empty())
            continue;
        auto item = std::make_pair(QString::fromStdString(m.name), std::move(ev));
        if (m.kind == "base" || m.kind == "imported")
            evaluated.insert(evaluated.begin(), std::move(item));
        else
            evaluated.push_back(std::move(item));
    }
    beginResetModel();
    m_models.clear();
    m_languages.clear();
    m_isNew.clear();
    m_ppl.clear();
    // Old languages first, then new, in the project's order.
    const auto langs = store.languages();
    for (bool wantNew : {false, true})
        for (const auto &l : langs)
            if ((l.group == LanguageGroup::New) == wantNew) {
                m_languages << QString::fromStdString(l.code);
                m_isNew << wantNew;
            }
    for (const auto &[name, _] : evaluated)
        m_models << name;
    m_ppl.assign(size_t(m_languages.size()), std::vector<double>(evaluated.size(), std::nan("")));
    for (size_t m = 0; m < evaluated.size(); ++m)
        for (const auto &e : evaluated[m].second) {
            const int row = int(m_languages.indexOf(QString::fromStdString(e.language)));
            if (row >= 0)
                m_ppl[size_t(row)][m] = e.perplexity;
        }
    endResetModel();
}

double ForgettingModel::perplexity(int row, int model) const
{
    if (row < 0 || row >= int(m_ppl.size()) || model < 0 || model >= m_models.size())
        return std::nan("");
    return m_ppl[size_t(row)][size_t(model)];
}

double ForgettingModel::groupRatio(int model, bool newGroup) const
{
    double sum = 0;
    int n = 0;
    for (int r = 0; r < m_languages.size(); ++r) {
        if (m_isNew[r] != newGroup)
            continue;
        const double base = perplexity(r, 0), v = perplexity(r, model);
        if (std::isfinite(base) && std::isfinite(v) && base > 0) {
            sum += v / base;
            ++n;
        }
    }
    return n ? sum / n : std::nan("");
}

int ForgettingModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_languages.size());
}

int ForgettingModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : kFirstModelColumn + int(m_models.size());
}

QVariant ForgettingModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount())
        return {};
    const int row = index.row(), col = index.column();
    if (col == 0 && role == Qt::DisplayRole)
        return m_languages[row];
    if (col == 1 && role == Qt::DisplayRole)
        return m_isNew[row] ? tr("new") : tr("old");
    if (col < kFirstModelColumn)
        return {};
    const int model = col - kFirstModelColumn;
    const double v = perplexity(row, model), base = perplexity(row, 0);
    switch (role) {
    case Qt::DisplayRole:
        if (!std::isfinite(v))
            return QStringLiteral("–");
        if (model > 0 && std::isfinite(base) && base > 0)
            return QString("%1 (×%2)").arg(v, 0, 'f', 1).arg(v / base, 0, 'f', 2);
        return QString::number(v, 'f', 1);
    case Qt::EditRole: return std::isfinite(v) ? QVariant(v) : QVariant();
    case Qt::TextAlignmentRole: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        if (model > 0 && std::isfinite(v) && std::isfinite(base))
            return v > base ? QColor("#a01818") : QColor("#17703a"); // higher perplexity is worse in both groups
        return {};
    case Qt::ToolTipRole:
        return model > 0 ? tr("Held-out perplexity; ×: relative to %1 (old: forgetting, new: gain)").arg(m_models.value(0))
                         : tr("Held-out perplexity of the base model");
    }
    return {};
}

QVariant ForgettingModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (section == 0)
        return tr("Language");
    if (section == 1)
        return tr("Group");
    return m_models.value(section - kFirstModelColumn);
}

} // namespace polymoe::ui
