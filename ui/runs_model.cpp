// The runs table.
#include "runs_model.h"
#include "chart_style.h"

#include "polymoe/run_liveness.h"

#include <QColor>

#include <algorithm>
#include <cmath>

namespace polymoe::ui {

namespace {
// "2026-12-01T20:15:05.312Z" -> "2026-12-01 20:15:05" (UTC, as stored).
QString timestamp(const std::string &iso)
{
    return QString::fromStdString(iso.substr(0, 19)).replace('T', ' ');
}
} // namespace

RunsModel::RunsModel(QObject *parent) : QAbstractTableModel(parent) {}

void RunsModel::clear()
{
    beginResetModel();
    m_runs.clear();
    m_finalLoss.clear();
    m_status.clear();
    endResetModel();
}

void RunsModel::load(const ProjectStore &store)
{
    auto runs = store.runs();
    std::vector<double> loss;
    std::vector<QString> status;
    for (const auto &r : runs) {
        const auto s = store.metricSeries(r.id, "loss");
        loss.push_back(s.empty() ? std::nan("") : s.back().second);
        status.push_back(QString::fromStdString(polymoe::displayStatus(r)));
    }
    beginResetModel();
    m_runs = std::move(runs);
    m_finalLoss = std::move(loss);
    m_status = std::move(status);
    endResetModel();
}

QString RunsModel::displayStatus(int row) const
{
    return row >= 0 && size_t(row) < m_status.size() ? m_status[size_t(row)] : QString();
}

bool RunsModel::anyRunning() const
{
    return std::find(m_status.begin(), m_status.end(), QStringLiteral("running")) != m_status.end();
}

double RunsModel::finalLoss(int row) const
{
    return row >= 0 && size_t(row) < m_finalLoss.size() ? m_finalLoss[size_t(row)] : std::nan("");
}

int RunsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_runs.size());
}

int RunsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant RunsModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount())
        return {};
    const RunRecord &r = m_runs[size_t(index.row())];
    const QString status = displayStatus(index.row());
    if (role == Qt::ForegroundRole && index.column() == Status) {
        if (status == "failed")
            return toneColor(Tone::Bad);
        if (status == "interrupted")
            return toneColor(Tone::Warning);
        if (status == "running")
            return toneColor(Tone::Active);
        return {};
    }
    if (role == Qt::ToolTipRole && index.column() == Status) {
        const QString proc = r.pid ? tr("process %1 on %2").arg(*r.pid).arg(r.host.empty() ? tr("this host")
                                                                                          : QString::fromStdString(r.host))
                                   : tr("no process recorded");
        if (status == "interrupted")
            return tr("Recorded as running, but its %1 is gone: resume it from the Training view or with --resume").arg(proc);
        if (status == "running")
            return tr("Running: %1; last logged step at %2 UTC").arg(proc, QString::fromStdString(r.heartbeatAt.substr(0, 19)).replace('T', ' '));
        return {};
    }
    if (role == Qt::ToolTipRole && index.column() == Message && !r.message.empty())
        return QString::fromStdString(r.message);
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    switch (index.column()) {
    case Id: return qlonglong(r.id);
    case Kind: return QString::fromStdString(r.kind);
    case Status: return status;
    case Started: return timestamp(r.startedAt);
    case Finished: return timestamp(r.finishedAt);
    case FinalLoss: {
        const double l = finalLoss(index.row());
        if (!std::isfinite(l))
            return role == Qt::DisplayRole ? QVariant(QStringLiteral("–")) : QVariant();
        return role == Qt::DisplayRole ? QVariant(QString::number(l, 'f', 4)) : QVariant(l);
    }
    case Message: return QString::fromStdString(r.message);
    }
    return {};
}

QVariant RunsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Id: return tr("Run");
    case Kind: return tr("Kind");
    case Status: return tr("Status");
    case Started: return tr("Started");
    case Finished: return tr("Finished");
    case FinalLoss: return tr("Final loss");
    case Message: return tr("Message");
    }
    return {};
}

} // namespace polymoe::ui
