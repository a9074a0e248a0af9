// Table model over corpusStats rows.
#include "corpus_stats_model.h"

namespace polymoe::ui {

CorpusStatsModel::CorpusStatsModel(QObject *parent) : QAbstractTableModel(parent) {}

void CorpusStatsModel::setStats(std::vector<LanguageStats> stats)
{
    beginResetModel();
    m_stats = std::move(stats);
    endResetModel();
}

int CorpusStatsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_stats.size());
}

int CorpusStatsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant CorpusStatsModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= int(m_stats.size()))
        return {};
    const LanguageStats &s = m_stats[size_t(index.row())];
    if (role == Qt::TextAlignmentRole)
        return index.column() >= Wave ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
    if (role == Qt::ToolTipRole && (index.column() == TrainTokens || index.column() == HeldoutTokens) &&
        (s.trainTokens < 0 || s.heldoutTokens < 0))
        return tr("Not tokenized with the project's current tokenizer");
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    const bool display = role == Qt::DisplayRole;
    auto tokens = [&](int64_t n) -> QVariant {
        if (n < 0)
            return display ? QVariant(QStringLiteral("–")) : QVariant(qlonglong(n));
        return qlonglong(n);
    };
    switch (index.column()) {
    case Code: return QString::fromStdString(s.language.code);
    case Name: return QString::fromStdString(s.language.name);
    case Group: return QString::fromStdString(toString(s.language.group));
    case Wave: return s.language.wave;
    case TrainDocuments: return qlonglong(s.trainDocuments);
    case HeldoutDocuments: return qlonglong(s.heldoutDocuments);
    case TrainTokens: return tokens(s.trainTokens);
    case HeldoutTokens: return tokens(s.heldoutTokens);
    case TokensPerWord:
        if (display)
            return s.tokensPerWord > 0 ? QString::number(s.tokensPerWord, 'f', 2) : QStringLiteral("–");
        return s.tokensPerWord;
    case TokensPerCharacter:
        if (display)
            return s.tokensPerCharacter > 0 ? QString::number(s.tokensPerCharacter, 'f', 3) : QStringLiteral("–");
        return s.tokensPerCharacter;
    case Characters: return qlonglong(s.characters);
    }
    return {};
}

QVariant CorpusStatsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Code: return tr("Language");
    case Name: return tr("Name");
    case Group: return tr("Group");
    case Wave: return tr("Wave");
    case TrainDocuments: return tr("Documents (train)");
    case HeldoutDocuments: return tr("Documents (held-out)");
    case TrainTokens: return tr("Tokens (train)");
    case HeldoutTokens: return tr("Tokens (held-out)");
    case TokensPerWord: return tr("Tokens/word");
    case TokensPerCharacter: return tr("Tokens/char");
    case Characters: return tr("Characters");
    }
    return {};
}

} // namespace polymoe::ui
