// The allocation editor.
#include "allocation_page.h"

#include "allocation_model.h"
#include "worker_job.h"
#include "chart_export.h"

#include "polymoe/allocation.h"
#include "polymoe/expansion_jobs.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QUndoStack>

#include <cmath>

namespace polymoe::ui {

AllocationPage::AllocationPage(QWidget *parent)
    : Page(tr("Expert allocation"),
           tr("Step 2 of LayerMoE: how many experts each layer gets (N_i counts the frozen original FFN). LayerMoE "
              "gives layers with a low similarity S_i more new experts, N_i ∝ 1/S_i, within a budget of new experts; "
              "MoE-LPR puts the same number in every layer. Drag a bar or type in the table to edit by hand."),
           parent),
      m_model(new AllocationModel(this))
{
    auto *form = new QHBoxLayout;
    m_strategy = new QComboBox(this);
    m_strategy->addItem(tr("LayerMoE (1/S_i)"), "layermoe");
    m_strategy->addItem(tr("uniform (MoE-LPR)"), "uniform");
    m_strategy->addItem(tr("manual"), "manual");
    m_strategy->setToolTip(tr("How the experts are spread over the layers"));
    m_budget = new QSpinBox(this);
    m_budget->setRange(0, 4096);
    m_budget->setValue(8);
    m_budget->setToolTip(tr("LayerMoE: new experts in all; uniform: experts in every layer"));
    m_name = new QLineEdit(this);
    m_name->setPlaceholderText(tr("name (default: strategy-new experts)"));
    auto *undo = new QPushButton(tr("Undo"), this);
    auto *redo = new QPushButton(tr("Redo"), this);
    undo->setShortcut(QKeySequence::Undo);
    redo->setShortcut(QKeySequence::Redo);
    undo->setToolTip(tr("Undo the last change (Ctrl+Z)"));
    redo->setToolTip(tr("Redo (Ctrl+Shift+Z)"));
    connect(undo, &QPushButton::clicked, m_model->undoStack(), &QUndoStack::undo);
    connect(redo, &QPushButton::clicked, m_model->undoStack(), &QUndoStack::redo);
    connect(m_model->undoStack(), &QUndoStack::canUndoChanged, undo, &QPushButton::setEnabled);
    connect(m_model->undoStack(), &QUndoStack::canRedoChanged, redo, &QPushButton::setEnabled);
    undo->setEnabled(false);
    redo->setEnabled(false);
    m_save = new QPushButton(tr("&Save allocation"), this);
    m_save->setToolTip(tr("Store this allocation in the project (stage 1 uses the latest one)"));
    form->addWidget(new QLabel(tr("Strategy:"), this));
    form->addWidget(m_strategy);
    form->addWidget(new QLabel(tr("Budget:"), this));
    form->addWidget(m_budget);
    form->addWidget(undo);
    form->addWidget(redo);
    form->addWidget(m_name, 1);
    form->addWidget(m_save);
    m_counts = new QLabel(this);
    m_counts->setObjectName("counts");
    m_counts->setWordWrap(true);

    m_plot = new QCustomPlot(this);
    m_plot->setMinimumHeight(240);
    installChartExport(m_plot, "allocation");
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->verticalHeader()->setVisible(false);
    auto *split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_plot);
    split->addWidget(m_table);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);

    contentLayout()->addLayout(form);
    contentLayout()->addWidget(m_counts);
    contentLayout()->addWidget(split, 1);

    connect(m_strategy, &QComboBox::currentIndexChanged, this, [this] {
        if (!m_updating)
            recomputeFromStrategy();
    });
    connect(m_budget, &QSpinBox::valueChanged, this, [this] {
        if (!m_updating)
            recomputeFromStrategy();
    });
    connect(m_model, &AllocationModel::expertsChanged, this, [this] {
        draw();
        updateCounts();
    });
    connect(m_model, &AllocationModel::editedByHand, this, [this] { setStrategy("manual"); });
    connect(m_save, &QPushButton::clicked, this, [this] { save(m_name->text()); });
    m_worker = new WorkerJob(QStringLiteral("allocation-save"), this);
    connect(m_worker, &WorkerJob::failed, this, [this](const QString &m) {
        updateCounts();
        showError(tr("Cannot save the allocation: %1").arg(m));
    });
    connect(m_plot, &QCustomPlot::mousePress, this, &AllocationPage::plotPressed);
    connect(m_plot, &QCustomPlot::mouseMove, this, &AllocationPage::plotMoved);
    connect(m_plot, &QCustomPlot::mouseRelease, this, &AllocationPage::plotReleased);
}

QString AllocationPage::strategy() const
{
    return m_strategy->currentData().toString();
}

void AllocationPage::setStrategy(const QString &s)
{
    const int i = m_strategy->findData(s);
    if (i >= 0 && i != m_strategy->currentIndex()) {
        m_updating = s == "manual"; // switching to manual keeps the list
        m_strategy->setCurrentIndex(i);
        m_updating = false;
    }
    m_budget->setEnabled(s != "manual");
}

void AllocationPage::setBudget(int budget)
{
    m_budget->setValue(budget);
}

void AllocationPage::reload()
{
    clearError();
    m_modelName.clear();
    m_analysisId.reset();
    const bool read = readProject(tr("the project"), [&](ProjectStore &store) {
        int layers = 0;
        int64_t dModel = 0, dFfn = 0;
        for (const auto &m : store.models())
            if (m.kind == "base" || m.kind == "imported" || m.kind == "finetuned") {
                const QJsonObject c = QJsonDocument::fromJson(QByteArray::fromStdString(m.config)).object();
                if (c.contains("polymoe"))
                    continue; // an expanded model is not the dense shape
                m_modelName = QString::fromStdString(m.name);
                layers = c.value("num_hidden_layers").toInt();
                dModel = c.value("hidden_size").toInteger();
                dFfn = c.value("intermediate_size").toInteger();
                if (m.kind == "base")
                    break;
            }
        std::vector<double> scores;
        const auto analyses = store.similarityAnalyses();
        if (!analyses.empty()) {
            m_analysisId = analyses.back().id;
            for (const auto &s : store.layerScores(analyses.back().id))
                scores.push_back(s.score);
        }
        if (layers == 0)
            layers = int(scores.size());
        if (!scores.empty() && int(scores.size()) != layers)
            showError(tr("The latest similarity analysis has %1 layers, the model %2").arg(scores.size()).arg(layers));
        m_model->setScores(scores);
        m_model->setShape(layers, dModel, dFfn);
        // Start from the latest stored allocation when it fits, else from the strategy.
        const auto allocs = store.allocations();
        if (!allocs.empty() && int(allocs.back().experts.size()) == layers) {
            const auto &a = allocs.back();
            m_updating = true;
            const int i = m_strategy->findData(QString::fromStdString(a.strategy));
            if (i >= 0)
                m_strategy->setCurrentIndex(i);
            if (a.budget)
                m_budget->setValue(int(*a.budget));
            m_updating = false;
            m_budget->setEnabled(strategy() != "manual");
            m_model->resetExperts(a.experts);
        } else {
            if (scores.empty() && strategy() == "layermoe")
                setStrategy("uniform"), m_budget->setValue(3);
            m_model->resetExperts(m_model->experts());
            recomputeFromStrategy();
            m_model->undoStack()->clear();
        }
    });
    if (!read) {
        m_model->setScores({});
        m_model->setShape(0, 0, 0);
        return;
    }
    draw();
    updateCounts();
}

void AllocationPage::recomputeFromStrategy()
{
    const QString s = strategy();
    m_budget->setEnabled(s != "manual");
    if (s == "manual" || m_model->layers() == 0)
        return;
    clearError();
    try {
        std::vector<int> e;
        if (s == "layermoe") {
            if (m_model->scores().size() != size_t(m_model->layers())) {
                showError(tr("LayerMoE needs a similarity analysis of this model: run it in the Layer similarity view"));
                return;
            }
            std::vector<int> nonPositive;
            e = layerMoeAllocationForBudget(scoresForLayerMoe(m_model->scores(), &nonPositive), m_budget->value());
            if (!nonPositive.empty()) {
                QStringList layers;
                for (int l : nonPositive)
                    layers << QString::number(l);
                showError(tr("Layer score S_i <= 0 in layer %1: 1/S_i is undefined there, so it is allocated as the "
                             "least similar layer.").arg(layers.join(", ")));
            }
        } else {
            e = uniformAllocation(m_model->layers(), std::max(1, m_budget->value()));
        }
        validateAllocation(e, m_model->layers());
        m_model->changeExperts(e, tr("%1, budget %2").arg(s).arg(m_budget->value()));
    } catch (const std::exception &ex) {
        showError(QString::fromStdString(ex.what()));
    }
}

QString AllocationPage::countsText() const
{
    return m_counts->text();
}

void AllocationPage::updateCounts()
{
    const AllocationSummary a = m_model->summary();
    const AllocationSummary u = m_model->summaryOf(m_model->uniformComparison());
    const QLocale loc;
    QString text = tr("%1 new experts in %2 MoE layers (%3 experts in all): %4 added parameters, %5 more active per token.")
                       .arg(a.newExperts)
                       .arg(a.moeLayers)
                       .arg(a.totalExperts)
                       .arg(loc.toString(qlonglong(a.addedParameters)))
                       .arg(loc.toString(qlonglong(a.addedActiveParametersPerToken)));
    if (u.newExperts > 0)
        text += tr("  Uniform beside it: %1 new experts, %2 added parameters.")
                    .arg(u.newExperts)
                    .arg(loc.toString(qlonglong(u.addedParameters)));
    m_counts->setText(text);
    m_save->setEnabled(m_model->layers() > 0 && !projectPath().isEmpty() && !(m_worker && m_worker->isRunning()));
}

void AllocationPage::draw()
{
    m_plot->clearPlottables();
    const auto &e = m_model->experts();
    const auto u = m_model->uniformComparison();
    QVector<double> keys, values, uvalues;
    for (size_t i = 0; i < e.size(); ++i) {
        keys << double(i);
        values << e[i];
        uvalues << (i < u.size() ? u[i] : 0);
    }
    auto *group = new QCPBarsGroup(m_plot);
    auto *bars = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    bars->setName(tr("N_i (%1)").arg(strategy()));
    bars->setBrush(QColor("#3b6fc4"));
    bars->setPen(QPen(QColor("#1f4e9c")));
    bars->setWidth(0.4);
    bars->setData(keys, values, true);
    auto *ubars = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    ubars->setName(tr("uniform, same budget"));
    ubars->setBrush(QColor(180, 180, 180, 160));
    ubars->setPen(QPen(QColor("#888888")));
    ubars->setWidth(0.4);
    ubars->setData(keys, uvalues, true);
    bars->setBarsGroup(group);
    ubars->setBarsGroup(group);
    m_plot->legend->setVisible(true);
    m_plot->xAxis->setLabel(tr("layer"));
    m_plot->yAxis->setLabel(tr("experts N_i (original included)"));
    QSharedPointer<QCPAxisTickerFixed> xt(new QCPAxisTickerFixed);
    xt->setTickStep(1);
    xt->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_plot->xAxis->setTicker(xt);
    QSharedPointer<QCPAxisTickerFixed> yt(new QCPAxisTickerFixed);
    yt->setTickStep(1);
    yt->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_plot->yAxis->setTicker(yt);
    int top = 1;
    for (int n : e)
        top = std::max(top, n);
    for (int n : u)
        top = std::max(top, n);
    m_plot->xAxis->setRange(-0.6, std::max<double>(1, double(e.size())) - 0.4);
    // While a bar is dragged the scale stays put, or the bar would run away from the mouse.
    if (m_dragLayer < 0)
        m_plot->yAxis->setRange(0, top + 1.5);
    m_plot->replot();
}

void AllocationPage::plotPressed(QMouseEvent *e)
{
    if (e->button() != Qt::LeftButton || m_model->layers() == 0)
        return;
    const double key = m_plot->xAxis->pixelToCoord(e->position().x());
    const int layer = int(std::lround(key));
    if (layer < 0 || layer >= m_model->layers() || std::abs(key - layer) > 0.45)
        return;
    m_dragLayer = layer;
    m_dragStart = m_model->experts();
}

void AllocationPage::plotMoved(QMouseEvent *e)
{
    if (m_dragLayer < 0)
        return;
    const int n = std::clamp(int(std::lround(m_plot->yAxis->pixelToCoord(e->position().y()))), 1, kMaxExpertsPerLayer);
    if (n == m_model->experts()[size_t(m_dragLayer)])
        return;
    auto v = m_model->experts();
    v[size_t(m_dragLayer)] = n;
    m_model->applyExperts(v); // no history while dragging; one command on release
}

void AllocationPage::plotReleased(QMouseEvent *e)
{
    if (m_dragLayer < 0)
        return;
    plotMoved(e);
    const auto after = m_model->experts();
    const int layer = m_dragLayer;
    m_dragLayer = -1;
    if (after == m_dragStart)
        return;
    m_model->applyExperts(m_dragStart);
    setStrategy("manual");
    m_model->changeExperts(after, tr("Drag layer %1 to %2 experts").arg(layer).arg(after[size_t(layer)]));
}

bool AllocationPage::save(const QString &name)
{
    clearError();
    if (projectPath().isEmpty() || m_worker->isRunning())
        return false;
    AllocationSpec spec;
    spec.strategy = strategy().toStdString();
    if (spec.strategy == "manual")
        spec.experts = m_model->experts();
    else
        spec.budget = m_budget->value();
    if (spec.strategy == "layermoe")
        spec.analysisId = m_analysisId;
    spec.modelName = m_modelName.toStdString();
    spec.name = name.toStdString();
    // The engine validates, counts the parameters and writes the store in the worker.
    const std::string path = projectPath().toStdString();
    m_save->setEnabled(false);
    return m_worker->run([this, path, spec](std::stop_token, const ProgressFn &) -> WorkerJob::Done {
        auto store = ProjectStore::open(path, false);
        const AllocationOutcome o = allocateExperts(store, spec);
        return [this, o] {
            updateCounts(); // re-enables Save
            if (o.experts != m_model->experts())
                m_model->resetExperts(o.experts);
            Q_EMIT statusMessage(tr("Allocation '%1' saved (id %2): %3")
                                     .arg(QString::fromStdString(o.name))
                                     .arg(o.id)
                                     .arg(QString::fromStdString(formatExpertList(o.experts))));
            Q_EMIT projectModified();
            Q_EMIT saved(o.id);
        };
    });
}

} // namespace polymoe::ui
