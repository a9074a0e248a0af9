// The project's runs (store.runs()) as a table: id, kind, status, start, finish, final loss. The
// status is the one to show (run_liveness.h): running, interrupted (its process is gone),
// cancelled, completed, failed; judged when the runs are loaded.
#pragma once

#include "polymoe/project_store.h"

#include <QAbstractTableModel>

#include <vector>

namespace polymoe::ui {

class RunsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Id, Kind, Status, Started, Finished, FinalLoss, Message, ColumnCount };

    explicit RunsModel(QObject *parent = nullptr);
    void load(const ProjectStore &store);
    void clear();
    const RunRecord &run(int row) const { return m_runs[size_t(row)]; }
    double finalLoss(int row) const; // NaN without a "loss" series
    QString displayStatus(int row) const;
    bool anyRunning() const;         // some run is alive: worth reloading soon

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<RunRecord> m_runs;
    std::vector<double> m_finalLoss;
    std::vector<QString> m_status;
};

} // namespace polymoe::ui
