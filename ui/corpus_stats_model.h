// Per-language corpus statistics (core's corpusStats) as a table model.
#pragma once

#include "polymoe/corpus.h"

#include <QAbstractTableModel>

#include <vector>

namespace polymoe::ui {

class CorpusStatsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Code, Name, Group, Wave, TrainDocuments, HeldoutDocuments, TrainTokens, HeldoutTokens, TokensPerWord, TokensPerCharacter, Characters, ColumnCount };

    explicit CorpusStatsModel(QObject *parent = nullptr);
    void setStats(std::vector<LanguageStats> stats);
    const std::vector<LanguageStats> &stats() const { return m_stats; }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<LanguageStats> m_stats;
};

} // namespace polymoe::ui
