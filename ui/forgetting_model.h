// Held-out perplexity per language and model (METHOD.md section 8) as a table: one row per language,
// one column per model (base, stage 1, stage 2, fine-tuned...), and the old/new group summaries.
#pragma once

#include "polymoe/project_store.h"

#include <QAbstractTableModel>
#include <QStringList>

#include <map>
#include <vector>

namespace polymoe::ui {

class ForgettingModel : public QAbstractTableModel {
    Q_OBJECT
public:
    static constexpr int kFirstModelColumn = 2; // Language, Group, then the models

    explicit ForgettingModel(QObject *parent = nullptr);
    // Reads every model with evaluations; the base (kind "base" or "imported") first.
    void load(const ProjectStore &store);
    void clear();

    const QStringList &modelNames() const { return m_models; }
    const QStringList &languages() const { return m_languages; }
    bool isNew(int row) const { return m_isNew.value(row); }
    double perplexity(int row, int model) const; // NaN if not evaluated
    // Mean of perplexity(model) / perplexity(base) over a group's languages (NaN without data).
    double groupRatio(int model, bool newGroup) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QStringList m_models, m_languages;
    QList<bool> m_isNew;
    std::vector<std::vector<double>> m_ppl; // [row][model]
};

} // namespace polymoe::ui
