// The Training view's settings form (see training_settings_form.h).
#include "training_settings_form.h"

#include "polymoe/distributed.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLineEdit>
#include <QSpinBox>

namespace polymoe::ui {

TrainingSettingsForm::TrainingSettingsForm(QWidget *parent) : QGroupBox(tr("Settings"), parent)
{
    const TrainingSettings d; // the engine's defaults (ExpansionStageSpec{})
    auto *form = new QFormLayout(this);
    auto spin = [&](int lo, int hi, int v, const QString &tip) {
        auto *s = new QSpinBox(this);
        s->setRange(lo, hi);
        s->setValue(v);
        s->setToolTip(tip);
        connect(s, &QSpinBox::valueChanged, this, &TrainingSettingsForm::changed);
        return s;
    };
    auto dspin = [&](double lo, double hi, double v, int decimals, const QString &tip) {
        auto *s = new QDoubleSpinBox(this);
        s->setRange(lo, hi);
        s->setDecimals(decimals);
        s->setValue(v);
        s->setSingleStep(hi / 100);
        s->setToolTip(tip);
        connect(s, &QDoubleSpinBox::valueChanged, this, &TrainingSettingsForm::changed);
        return s;
    };
    m_stage = new QComboBox(this);
    m_stage->addItem(tr("1: new experts and routers on new text"), 1);
    m_stage->addItem(tr("2: routers with replay and LPR"), 2);
    m_model = new QComboBox(this);
    m_model->setToolTip(tr("Input model: stage 1 the dense base, stage 2 the stage-1 model (empty: the CLI chooses)"));
    m_allocation = new QComboBox(this);
    m_allocation->setToolTip(tr("Stage 1: the expert allocation (default: the latest)"));
    m_steps = spin(0, 10000000, 0, tr("Optimiser steps; 0 = automatic (stage 1: one epoch; stage 2: the replay budget)"));
    m_steps->setSpecialValueText(tr("automatic"));
    m_lr = dspin(0, 1, 0, 5, tr("Peak learning rate; 0 = 1e-3 for stage 1, 1e-2 for stage 2 (the demo's values)"));
    m_lr->setSpecialValueText(tr("default"));
    m_batch = spin(1, 4096, d.batchSize, tr("Sequences per optimiser step"));
    m_seqLen = spin(8, 8192, d.seqLen, tr("Tokens per sequence"));
    m_topK = spin(1, 8, d.topK, tr("Experts per token (k)"));
    m_balance = dspin(0, 1, d.balance, 4, tr("Stage 1: weight of the Switch-style balance loss"));
    m_lpr = dspin(0, 10, d.lpr, 3, tr("Stage 2: weight of the language-priors loss on old-language tokens"));
    m_classifier = new QCheckBox(tr("old/new classifier in the most similar layers"), this);
    connect(m_classifier, &QCheckBox::toggled, this, &TrainingSettingsForm::changed);
    m_classifierShare = dspin(0, 1, d.classifierShare, 2, tr("Share of the MoE layers that get the classifier"));
    m_oldShare = dspin(0, 1, d.oldShare, 3, tr("Stage 2: share of sequences of old-language text"));
    m_replay = dspin(0, 10, d.replay, 4, tr("Stage 2: replayed old tokens as a share of the stage-1 tokens (steps automatic)"));
    m_statsEvery = spin(0, 1000000, d.statsEvery, tr("Steps between router statistics on the probe set"));
    m_checkpointEvery = spin(0, 1000000, d.checkpointEvery, tr("Steps between checkpoints (Cancel keeps the last step anyway)"));
    m_dtype = new QComboBox(this);
    m_dtype->addItems({"auto", "fp32", "bf16"});
    m_device = new QComboBox(this);
    m_device->addItems({"cpu", "auto", "cuda"});
    m_device->setToolTip(tr("Where training runs: cpu; cuda needs PolyMoE built against a CUDA LibTorch "
                            "(Debian's is CPU-only and refuses it before the run starts); auto takes cuda when "
                            "a GPU is visible"));
    m_threads = spin(0, 256, 0, tr("Intra-op threads; 0 = all cores. On a machine busy with other work, 1 "
                                   "is much faster than all cores (docs/benchmarks.md)"));
    m_threads->setSpecialValueText(tr("all cores"));
    m_processes = spin(1, 64, d.processes, tr("Data-parallel processes on this machine (polymoe launch): each "
                                              "step's batch is split between them; give each a share of the "
                                              "cores with Threads"));
    if (!distributedAvailable()) {
        m_processes->setEnabled(false);
        m_processes->setToolTip(tr("This build has no c10d Gloo (LibTorch's data-parallel runtime): one process only"));
    }
    m_name = new QLineEdit(this);
    m_name->setPlaceholderText(tr("stage1 / stage2"));
    for (QComboBox *c : {m_stage, m_model, m_allocation, m_dtype, m_device})
        connect(c, &QComboBox::currentIndexChanged, this, &TrainingSettingsForm::changed);
    connect(m_stage, &QComboBox::currentIndexChanged, this, &TrainingSettingsForm::updateStageWidgets);
    connect(m_name, &QLineEdit::textChanged, this, &TrainingSettingsForm::changed);

    form->addRow(tr("Stage"), m_stage);
    form->addRow(tr("Input model"), m_model);
    form->addRow(tr("Allocation"), m_allocation);
    form->addRow(tr("Steps"), m_steps);
    form->addRow(tr("Learning rate"), m_lr);
    form->addRow(tr("Batch size"), m_batch);
    form->addRow(tr("Sequence length"), m_seqLen);
    form->addRow(tr("Top-k"), m_topK);
    form->addRow(tr("Balance loss"), m_balance);
    form->addRow(tr("LPR loss"), m_lpr);
    form->addRow(QString(), m_classifier);
    form->addRow(tr("Classifier share"), m_classifierShare);
    form->addRow(tr("Old-language share"), m_oldShare);
    form->addRow(tr("Replay share"), m_replay);
    form->addRow(tr("Router stats every"), m_statsEvery);
    form->addRow(tr("Checkpoint every"), m_checkpointEvery);
    form->addRow(tr("Data type"), m_dtype);
    form->addRow(tr("Device"), m_device);
    form->addRow(tr("Threads"), m_threads);
    form->addRow(tr("Processes"), m_processes);
    form->addRow(tr("Output model"), m_name);
    m_stage1Only = {m_allocation, m_balance};
    m_stage2Only = {m_lpr, m_classifier, m_classifierShare, m_oldShare, m_replay};
    updateStageWidgets();
}

TrainingSettings TrainingSettingsForm::settings() const
{
    TrainingSettings s;
    s.stage = m_stage->currentData().toInt();
    s.model = m_model->currentData().toString();
    s.allocationId = m_allocation->currentData().toLongLong();
    s.steps = m_steps->value();
    s.lr = m_lr->value();
    s.batchSize = m_batch->value();
    s.seqLen = m_seqLen->value();
    s.topK = m_topK->value();
    s.balance = m_balance->value();
    s.lpr = m_lpr->value();
    s.classifier = m_classifier->isChecked();
    s.classifierShare = m_classifierShare->value();
    // The box shows 3 decimals: its rounding of the default stands for the default itself.
    const double defaultOldShare = TrainingSettings{}.oldShare;
    s.oldShare = m_oldShare->value() == QString::number(defaultOldShare, 'f', 3).toDouble() ? defaultOldShare : m_oldShare->value();
    s.replay = m_replay->value();
    s.statsEvery = m_statsEvery->value();
    s.checkpointEvery = m_checkpointEvery->value();
    s.dtype = m_dtype->currentText();
    s.device = m_device->currentText();
    s.threads = m_threads->value();
    s.processes = m_processes->value();
    s.name = m_name->text().trimmed();
    return s;
}

void TrainingSettingsForm::applySettings(const TrainingSettings &s)
{
    m_stage->setCurrentIndex(m_stage->findData(s.stage));
    const int mi = m_model->findData(s.model);
    if (mi >= 0)
        m_model->setCurrentIndex(mi);
    const int ai = m_allocation->findData(qlonglong(s.allocationId));
    if (ai >= 0)
        m_allocation->setCurrentIndex(ai);
    m_steps->setValue(int(s.steps));
    m_lr->setValue(s.lr);
    m_batch->setValue(s.batchSize);
    m_seqLen->setValue(s.seqLen);
    m_topK->setValue(s.topK);
    m_balance->setValue(s.balance);
    m_lpr->setValue(s.lpr);
    m_classifier->setChecked(s.classifier);
    m_classifierShare->setValue(s.classifierShare);
    m_oldShare->setValue(s.oldShare);
    m_replay->setValue(s.replay);
    m_statsEvery->setValue(s.statsEvery);
    m_checkpointEvery->setValue(s.checkpointEvery);
    m_dtype->setCurrentText(s.dtype);
    m_device->setCurrentText(s.device);
    m_threads->setValue(s.threads);
    m_processes->setValue(s.processes);
    m_name->setText(s.name);
    Q_EMIT changed();
}

void TrainingSettingsForm::updateStageWidgets()
{
    const bool one = m_stage->currentData().toInt() == 1;
    for (QWidget *w : m_stage1Only)
        w->setEnabled(one);
    for (QWidget *w : m_stage2Only)
        w->setEnabled(!one);
    Q_EMIT changed();
}

void TrainingSettingsForm::setChoices(const std::vector<ModelRecord> &models,
                                      const std::vector<AllocationRecord> &allocations)
{
    const QString keepModel = m_model->currentData().toString();
    const qlonglong keepAlloc = m_allocation->currentData().toLongLong();
    m_model->blockSignals(true);
    m_allocation->blockSignals(true);
    m_model->clear();
    m_allocation->clear();
    m_model->addItem(tr("(automatic)"), QString());
    m_allocation->addItem(tr("(the latest)"), qlonglong(0));
    for (const auto &m : models)
        m_model->addItem(QString::fromStdString(m.name + " (" + m.kind + ")"), QString::fromStdString(m.name));
    for (const auto &a : allocations)
        m_allocation->addItem(QString::fromStdString(std::to_string(a.id) + ": " + a.name), qlonglong(a.id));
    if (m_model->findData(keepModel) >= 0)
        m_model->setCurrentIndex(m_model->findData(keepModel));
    if (m_allocation->findData(keepAlloc) >= 0)
        m_allocation->setCurrentIndex(m_allocation->findData(keepAlloc));
    m_model->blockSignals(false);
    m_allocation->blockSignals(false);
    Q_EMIT changed();
}

void TrainingSettingsForm::setEditable(bool on)
{
    setEnabled(on);
    setTitle(on ? tr("Settings") : tr("Settings (of the attached run, read-only)"));
}

} // namespace polymoe::ui
