// The forgetting report (METHOD.md section 8) as tables, the engine's numbers shown as they are
// (polymoe::buildForgettingReport, the same report `polymoe report` prints): ForgettingModel has one
// row per language (then one per out-of-domain probe) and one column per model (base, fine-tuning,
// stage 1, stage 2...);
// ForgettingSummaryModel one row per model with its group ratios (geometric means) and parameters.
#pragma once

#include "polymoe/forgetting_report.h"
#include "polymoe/project_store.h"

#include <QAbstractTableModel>
#include <QStringList>

namespace polymoe::ui {

class ForgettingModel : public QAbstractTableModel {
    Q_OBJECT
public:
    static constexpr int kFirstModelColumn = 2; // Language, Group, then the models

    explicit ForgettingModel(QObject *parent = nullptr);
    // The report of the project's base and its descendants. Throws ConfigError (from the engine)
    // when there is nothing to report yet: no model, or the base is not evaluated.
    void load(const ProjectStore &store);
    void setReport(const ForgettingReport &report);
    void clear();

    const ForgettingReport &report() const { return m_report; }
    const QStringList &modelNames() const { return m_models; }
    const QStringList &languages() const { return m_languages; }
    bool isNew(int row) const { return m_isNew.value(row); }
    double perplexity(int row, int model) const; // NaN if not evaluated
    // The report's group summary: geometric mean over the group of ppl(model) / ppl(base); NaN without data.
    double groupRatio(int model, bool newGroup) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVariant probeData(int probe, int col, int role) const;

    ForgettingReport m_report;
    QStringList m_models, m_languages;
    QList<bool> m_isNew;
};

class ForgettingSummaryModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Model, Role, OldRatio, NewRatio, Parameters, Added, ActivePerToken, Experts, ColumnCount };

    explicit ForgettingSummaryModel(QObject *parent = nullptr);
    void setReport(const ForgettingReport &report);
    void clear() { setReport({}); }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    double groupRatio(const std::string &model, const char *group) const;

    ForgettingReport m_report;
};

} // namespace polymoe::ui
