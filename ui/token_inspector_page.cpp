// The token inspector view.
#include "token_inspector_page.h"

#include "worker_job.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>

namespace polymoe::ui {

QColor expertColor(int expert)
{
    if (expert == 0)
        return QColor("#c8c8c8");
    static const QColor c[] = {"#f4a259", "#5b8def", "#7bc67b", "#e06c75", "#b48ead", "#56b6c2", "#e5c07b", "#98c379"};
    return c[(expert - 1) % 8];
}

TokenInspectorPage::TokenInspectorPage(QWidget *parent)
    : Page(tr("Token inspector"),
           tr("Inspection: which experts an expanded model picks for each token of a text, in every MoE layer "
              "(top-k, weights summing to 1). Grey is the frozen original expert 0; after stage 2 old-language "
              "text should mostly go there, new-language text to the new experts. Layers with the old/new "
              "classifier show its decision for the whole text."),
           parent)
{
    auto *row = new QHBoxLayout;
    m_model = new QComboBox(this);
    m_model->setToolTip(tr("An expanded (MoE) model of the project"));
    m_text = new QLineEdit(this);
    m_text->setPlaceholderText(tr("Text to inspect, in any language of the project"));
    m_text->setText("Das ist ein kleiner Test. This is a small test.");
    m_go = new QPushButton(tr("&Inspect"), this);
    m_go->setToolTip(tr("Run the text through the model and show the routing"));
    row->addWidget(new QLabel(tr("Model:"), this));
    row->addWidget(m_model);
    row->addWidget(m_text, 1);
    row->addWidget(m_go);
    m_info = new QLabel(this);
    m_info->setWordWrap(true);
    m_grid = new QTableWidget(this);
    m_grid->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_grid->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    contentLayout()->addLayout(row);
    contentLayout()->addWidget(m_info);
    contentLayout()->addWidget(m_grid, 1);
    m_job = new WorkerJob(QStringLiteral("token-inspector"), this);
    connect(m_job, &WorkerJob::failed, this, [this](const QString &error) {
        m_go->setEnabled(m_model->count() > 0);
        showError(tr("Inspection failed: %1").arg(error));
        m_info->clear();
        Q_EMIT inspectionFailed(error);
    });
    connect(m_go, &QPushButton::clicked, this, [this] { inspect(m_model->currentText(), m_text->text()); });
    connect(m_text, &QLineEdit::returnPressed, m_go, &QPushButton::click);
}

void TokenInspectorPage::reload()
{
    clearError();
    const QString keep = m_model->currentText();
    m_model->clear();
    readProject(tr("the models"), [&](ProjectStore &store) {
        for (const auto &m : store.models())
            if (m.kind == "expanded")
                m_model->addItem(QString::fromStdString(m.name));
    });
    if (m_model->findText(keep) >= 0)
        m_model->setCurrentText(keep);
    else if (m_model->count() > 0)
        m_model->setCurrentIndex(m_model->count() - 1);
    m_go->setEnabled(m_model->count() > 0 && !busy());
    if (m_model->count() == 0)
        m_info->setText(tr("No expanded model yet: train stage 1 first."));
    else if (m_result.ids.empty())
        m_info->setText(tr("Type a text and press Inspect."));
}

void TokenInspectorPage::inspectCurrent()
{
    inspect(m_model->currentText(), m_text->text());
}

void TokenInspectorPage::inspect(const QString &model, const QString &text)
{
    if (busy() || projectPath().isEmpty())
        return;
    clearError();
    m_go->setEnabled(false);
    m_info->setText(tr("Running '%1'...").arg(model));
    m_job->run([this, path = projectPath().toStdString(), name = model.toStdString(),
                input = text.toStdString()](std::stop_token, const ProgressFn &) -> WorkerJob::Done {
        const auto store = ProjectStore::open(path, true);
        TokenInspection r = inspectTokens(store, name, input);
        return [this, r = std::move(r)] {
            m_go->setEnabled(m_model->count() > 0);
            showInspection(r);
        };
    });
}

bool TokenInspectorPage::busy() const
{
    return m_job->isRunning();
}

void TokenInspectorPage::showInspection(const TokenInspection &r)
{
    m_result = r;
    m_grid->clear();
    m_grid->setRowCount(int(r.ids.size()));
    m_grid->setColumnCount(int(r.layers.size()));
    QStringList cols, rows;
    QStringList decisions;
    for (const auto &l : r.layers) {
        QString h = tr("layer %1 (%2 experts)").arg(l.layer).arg(l.numExperts);
        if (l.judgedOld) {
            h += *l.judgedOld ? tr("\nclassifier: old") : tr("\nclassifier: new");
            decisions << tr("layer %1: %2").arg(l.layer).arg(*l.judgedOld ? tr("old") : tr("new"));
        }
        cols << h;
    }
    for (size_t t = 0; t < r.ids.size(); ++t)
        rows << (t < r.pieces.size() && !r.pieces[t].empty() ? QString::fromStdString(r.pieces[t]) : QString::number(r.ids[t]));
    m_grid->setHorizontalHeaderLabels(cols);
    m_grid->setVerticalHeaderLabels(rows);
    for (int c = 0; c < int(r.layers.size()); ++c)
        for (int t = 0; t < int(r.layers[size_t(c)].tokens.size()) && t < int(r.ids.size()); ++t) {
            const TokenRoute &route = r.layers[size_t(c)].tokens[size_t(t)];
            QStringList parts;
            for (size_t j = 0; j < route.experts.size(); ++j)
                parts << QString("e%1 %2").arg(route.experts[j]).arg(route.weights[j], 0, 'f', 2);
            auto *item = new QTableWidgetItem(parts.join("  "));
            if (!route.experts.empty())
                item->setBackground(expertColor(route.experts.front()));
            item->setToolTip(tr("Token '%1' (id %2), layer %3: %4")
                                 .arg(rows.value(t))
                                 .arg(r.ids[size_t(t)])
                                 .arg(r.layers[size_t(c)].layer)
                                 .arg(parts.join(", ")));
            m_grid->setItem(t, c, item);
        }
    int toExpert0 = 0, pairs = 0;
    for (const auto &l : r.layers)
        for (const auto &route : l.tokens)
            if (!route.experts.empty()) {
                ++pairs;
                toExpert0 += route.experts.front() == 0;
            }
    m_info->setText(tr("%1 tokens, %2 MoE layers of %3; top-1 = expert 0 for %4% of the token-layer pairs.%5")
                        .arg(r.ids.size())
                        .arg(r.layers.size())
                        .arg(r.numLayers)
                        .arg(pairs ? 100.0 * toExpert0 / pairs : 0.0, 0, 'f', 0)
                        .arg(decisions.isEmpty() ? QString() : tr(" Classifier: ") + decisions.join(", ")));
    Q_EMIT inspected();
}

} // namespace polymoe::ui
