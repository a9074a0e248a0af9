// The forgetting tables over polymoe::ForgettingReport: nothing is recomputed here.
#include "forgetting_model.h"
#include "chart_style.h"

#include <QColor>
#include <QLocale>

#include <cmath>

namespace polymoe::ui {

namespace {
QString ratioText(double v)
{
    return std::isfinite(v) ? QString("×%1").arg(v, 0, 'f', 3) : QStringLiteral("–");
}
} // namespace

ForgettingModel::ForgettingModel(QObject *parent) : QAbstractTableModel(parent) {}

void ForgettingModel::clear()
{
    setReport({});
}

void ForgettingModel::load(const ProjectStore &store)
{
    setReport(buildForgettingReport(store));
}

void ForgettingModel::setReport(const ForgettingReport &report)
{
    beginResetModel();
    m_report = report;
    m_models.clear();
    m_languages.clear();
    m_isNew.clear();
    for (const auto &m : m_report.models)
        m_models << QString::fromStdString(m.name);
    for (const auto &l : m_report.languages) { // old ones first (the report's order)
        m_languages << QString::fromStdString(l.code);
        m_isNew << (l.group == LanguageGroup::New);
    }
    endResetModel();
}

double ForgettingModel::perplexity(int row, int model) const
{
    if (row < 0 || row >= m_languages.size() || model < 0 || model >= m_models.size())
        return std::nan("");
    const auto &ppl = m_report.models[size_t(model)].perplexity;
    const auto it = ppl.find(m_languages[row].toStdString());
    return it == ppl.end() ? std::nan("") : it->second;
}

double ForgettingModel::groupRatio(int model, bool newGroup) const
{
    if (model < 0 || model >= m_models.size())
        return std::nan("");
    for (const auto &g : m_report.groups)
        if (g.model == m_report.models[size_t(model)].name && g.group == (newGroup ? "new" : "old"))
            return g.ratio;
    return std::nan("");
}

int ForgettingModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_languages.size() + m_report.probes.size());
}

// A row below the languages: an out-of-domain probe (text outside the corpus, never trained on).
QVariant ForgettingModel::probeData(int probe, int col, int role) const
{
    const ReportProbe &q = m_report.probes[size_t(probe)];
    if (col == 0 && role == Qt::DisplayRole)
        return tr("%1 · %2 (probe)").arg(QString::fromStdString(q.language), QString::fromStdString(q.name));
    if (col == 1 && role == Qt::DisplayRole)
        return tr("probe");
    if (col < kFirstModelColumn) {
        if (role == Qt::ToolTipRole)
            return tr("Out-of-domain probe '%1': %2 text from outside the corpus, never trained on, scored as "
                      "held-out text is; forgetting that the held-out set (the training text's domain) can hide")
                .arg(QString::fromStdString(q.name), QString::fromStdString(q.language));
        return {};
    }
    const ReportModel &m = m_report.models[size_t(col - kFirstModelColumn)];
    const auto it = m.probes.find(q.name);
    if (it == m.probes.end())
        return role == Qt::DisplayRole ? QVariant(QStringLiteral("–")) : QVariant();
    const double v = it->second.perplexity, r = m_report.probeRatio(m.name, q.name);
    const bool isBase = m.name == m_report.base;
    const QString bits = std::isfinite(it->second.bitsPerCharacter)
                             ? QString("  %1 b/c").arg(it->second.bitsPerCharacter, 0, 'f', 3) : QString();
    switch (role) {
    case Qt::DisplayRole:
        if (!isBase && std::isfinite(r))
            return QString("%1 (×%2)").arg(v, 0, 'f', 2).arg(r, 0, 'f', 3) + bits;
        return QString::number(v, 'f', 2) + bits;
    case Qt::EditRole: return v;
    case Qt::TextAlignmentRole: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        if (!isBase && std::isfinite(r))
            return toneColor(r > 1 ? Tone::Bad : Tone::Good);
        return {};
    case Qt::ToolTipRole:
        return tr("Perplexity on probe '%1'; ×: relative to %2")
            .arg(QString::fromStdString(q.name), QString::fromStdString(m_report.base));
    }
    return {};
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
    if (row >= m_languages.size())
        return probeData(row - int(m_languages.size()), col, role);
    if (col == 0 && role == Qt::DisplayRole)
        return m_languages[row];
    if (col == 1 && role == Qt::DisplayRole)
        return m_isNew[row] ? tr("new") : tr("old");
    if (col < kFirstModelColumn)
        return {};
    const int model = col - kFirstModelColumn;
    const double v = perplexity(row, model);
    const double q = m_report.ratio(m_models[model].toStdString(), m_languages[row].toStdString());
    const bool isBase = m_models[model].toStdString() == m_report.base;
    const auto &bpcs = m_report.models[size_t(model)].bitsPerCharacter;
    const auto bpc = bpcs.find(m_languages[row].toStdString());
    const QString bits = bpc == bpcs.end() ? QString() : QString("  %1 b/c").arg(bpc->second, 0, 'f', 3);
    switch (role) {
    case Qt::DisplayRole:
        if (!std::isfinite(v))
            return QStringLiteral("–");
        if (!isBase && std::isfinite(q))
            return QString("%1 (×%2)").arg(v, 0, 'f', 1).arg(q, 0, 'f', 2) + bits;
        return QString::number(v, 'f', 1) + bits;
    case Qt::EditRole: return std::isfinite(v) ? QVariant(v) : QVariant();
    case Qt::TextAlignmentRole: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        if (!isBase && std::isfinite(q))
            return toneColor(q > 1 ? Tone::Bad : Tone::Good); // higher perplexity is worse in both groups
        return {};
    case Qt::ToolTipRole: {
        QString tip = !isBase ? tr("Held-out perplexity; ×: relative to %1 (old: forgetting, new: gain)")
                                    .arg(QString::fromStdString(m_report.base))
                              : tr("Held-out perplexity of the base model");
        const auto &ci = m_report.models[size_t(model)].perplexityInterval;
        if (const auto it = ci.find(m_languages[row].toStdString()); it != ci.end())
            tip += tr("\n95% interval over the held-out documents: %1 – %2")
                       .arg(it->second.first, 0, 'f', 1)
                       .arg(it->second.second, 0, 'f', 1);
        if (bpc != bpcs.end()) {
            tip += tr("\nb/c: %1 bits per character").arg(bpc->second, 0, 'f', 3);
            const auto &bpbs = m_report.models[size_t(model)].bitsPerByte;
            if (const auto b = bpbs.find(m_languages[row].toStdString()); b != bpbs.end())
                tip += tr(", %1 per UTF-8 byte").arg(b->second, 0, 'f', 3);
            tip += tr(" (unlike per-token perplexity, comparable across languages and tokenizers)");
        }
        return tip;
    }
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

ForgettingSummaryModel::ForgettingSummaryModel(QObject *parent) : QAbstractTableModel(parent) {}

void ForgettingSummaryModel::setReport(const ForgettingReport &report)
{
    beginResetModel();
    m_report = report;
    endResetModel();
}

double ForgettingSummaryModel::groupRatio(const std::string &model, const char *group) const
{
    for (const auto &g : m_report.groups)
        if (g.model == model && g.group == group)
            return g.ratio;
    return std::nan("");
}

int ForgettingSummaryModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_report.models.size());
}

int ForgettingSummaryModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ForgettingSummaryModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const ReportModel &m = m_report.models[size_t(index.row())];
    const bool isBase = m.name == m_report.base;
    const QLocale loc;
    if (role == Qt::TextAlignmentRole)
        return index.column() >= OldRatio ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
    if (role != Qt::DisplayRole && role != Qt::EditRole && role != Qt::ToolTipRole)
        return {};
    const bool edit = role == Qt::EditRole;
    switch (Column(index.column())) {
    case Model: return role == Qt::ToolTipRole ? QVariant() : QVariant(QString::fromStdString(m.name));
    case Role: return role == Qt::ToolTipRole ? QVariant() : QVariant(QString::fromStdString(m.role));
    case OldRatio:
    case NewRatio: {
        const double v = groupRatio(m.name, index.column() == OldRatio ? "old" : "new");
        if (role == Qt::ToolTipRole)
            return tr("Geometric mean over the group's languages of perplexity / %1's").arg(QString::fromStdString(m_report.base));
        if (edit)
            return std::isfinite(v) ? QVariant(v) : QVariant();
        return isBase ? QStringLiteral("×1") : ratioText(v);
    }
    case Parameters:
        if (role == Qt::ToolTipRole)
            return tr("All weights of the model");
        return edit ? QVariant(qlonglong(m.parameters)) : QVariant(loc.toString(qlonglong(m.parameters)));
    case Added:
        if (role == Qt::ToolTipRole)
            return tr("Weights added to the base (new experts and routers)");
        return edit ? QVariant(qlonglong(m.addedParameters)) : QVariant(loc.toString(qlonglong(m.addedParameters)));
    case ActivePerToken:
        if (role == Qt::ToolTipRole)
            return tr("Weights one token uses: the top-k experts of each MoE layer");
        return edit ? QVariant(qlonglong(m.activeParametersPerToken))
                    : QVariant(loc.toString(qlonglong(m.activeParametersPerToken)));
    case Experts: {
        if (role == Qt::ToolTipRole)
            return m.experts.empty() ? tr("Dense model") : tr("Experts per layer, top-%1 routing").arg(m.topK);
        QStringList parts;
        for (int n : m.experts)
            parts << QString::number(n);
        return parts.isEmpty() ? QStringLiteral("dense") : parts.join(',');
    }
    case ColumnCount: break;
    }
    return {};
}

QVariant ForgettingSummaryModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (Column(section)) {
    case Model: return tr("Model");
    case Role: return tr("Role");
    case OldRatio: return tr("Old ×");
    case NewRatio: return tr("New ×");
    case Parameters: return tr("Parameters");
    case Added: return tr("Added");
    case ActivePerToken: return tr("Active per token");
    case Experts: return tr("Experts per layer");
    case ColumnCount: break;
    }
    return {};
}

} // namespace polymoe::ui
