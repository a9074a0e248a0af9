// The training view.
#include "training_page.h"

#include "chart_export.h"
#include "cli_process.h"

#include "polymoe/run_liveness.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QJsonDocument>
#include <QSplitter>
#include <QTimer>

namespace polymoe::ui {

namespace {
QString duration(double seconds)
{
    const int s = int(seconds + 0.5);
    return s >= 3600 ? QString("%1h%2m").arg(s / 3600).arg((s / 60) % 60, 2, 10, QChar('0'))
                     : QString("%1m%2s").arg(s / 60).arg(s % 60, 2, 10, QChar('0'));
}
} // namespace

TrainingPage::TrainingPage(QWidget *parent)
    : Page(tr("Training"),
           tr("Steps 3 and 4: stage 1 copies each MoE layer's FFN into new experts and trains only them and the "
              "routers on new-language text (LM + 0.01 balance loss). Stage 2 trains only the routers on new text "
              "plus a small replay of old text, with Language Priors Routing pulling old-language tokens back to the "
              "frozen expert 0 (LM + 0.1 LPR). Runs go through the polymoe command-line tool."),
           parent),
      m_job(new TrainingRunController(this)), m_follower(new RunFollower(this))
{
    const TrainingSettings d; // the engine's defaults (ExpansionStageSpec{})
    auto *settingsBox = m_settingsBox = new QGroupBox(tr("Settings"), this);
    auto *form = new QFormLayout(settingsBox);
    auto spin = [&](int lo, int hi, int v, const QString &tip) {
        auto *s = new QSpinBox(settingsBox);
        s->setRange(lo, hi);
        s->setValue(v);
        s->setToolTip(tip);
        connect(s, &QSpinBox::valueChanged, this, &TrainingPage::updateCommand);
        return s;
    };
    auto dspin = [&](double lo, double hi, double v, int decimals, const QString &tip) {
        auto *s = new QDoubleSpinBox(settingsBox);
        s->setRange(lo, hi);
        s->setDecimals(decimals);
        s->setValue(v);
        s->setSingleStep(hi / 100);
        s->setToolTip(tip);
        connect(s, &QDoubleSpinBox::valueChanged, this, &TrainingPage::updateCommand);
        return s;
    };
    m_stage = new QComboBox(settingsBox);
    m_stage->addItem(tr("1: new experts and routers on new text"), 1);
    m_stage->addItem(tr("2: routers with replay and LPR"), 2);
    m_model = new QComboBox(settingsBox);
    m_model->setToolTip(tr("Input model: stage 1 the dense base, stage 2 the stage-1 model (empty: the CLI chooses)"));
    m_allocation = new QComboBox(settingsBox);
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
    m_classifier = new QCheckBox(tr("old/new classifier in the most similar layers"), settingsBox);
    connect(m_classifier, &QCheckBox::toggled, this, &TrainingPage::updateCommand);
    m_classifierShare = dspin(0, 1, d.classifierShare, 2, tr("Share of the MoE layers that get the classifier"));
    m_oldShare = dspin(0, 1, d.oldShare, 3, tr("Stage 2: share of sequences of old-language text"));
    m_replay = dspin(0, 10, d.replay, 4, tr("Stage 2: replayed old tokens as a share of the stage-1 tokens (steps automatic)"));
    m_statsEvery = spin(0, 1000000, d.statsEvery, tr("Steps between router statistics on the probe set"));
    m_checkpointEvery = spin(0, 1000000, d.checkpointEvery, tr("Steps between checkpoints (Cancel keeps the last step anyway)"));
    m_dtype = new QComboBox(settingsBox);
    m_dtype->addItems({"auto", "fp32", "bf16"});
    m_device = new QComboBox(settingsBox);
    m_device->addItems({"cpu", "auto", "cuda"});
    m_device->setToolTip(tr("Where training runs: cpu; cuda needs PolyMoE built against a CUDA LibTorch "
                            "(Debian's is CPU-only and refuses it before the run starts); auto takes cuda when "
                            "a GPU is visible"));
    m_threads = spin(0, 256, 0, tr("Intra-op threads; 0 = all cores. On a machine busy with other work, 1 "
                                   "is much faster than all cores (docs/benchmarks.md)"));
    m_threads->setSpecialValueText(tr("all cores"));
    m_name = new QLineEdit(settingsBox);
    m_name->setPlaceholderText(tr("stage1 / stage2"));
    for (QComboBox *c : {m_stage, m_model, m_allocation, m_dtype, m_device})
        connect(c, &QComboBox::currentIndexChanged, this, &TrainingPage::updateCommand);
    connect(m_stage, &QComboBox::currentIndexChanged, this, &TrainingPage::updateStageWidgets);
    connect(m_name, &QLineEdit::textChanged, this, &TrainingPage::updateCommand);

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
    form->addRow(tr("Output model"), m_name);
    m_stage1Only = {m_allocation, m_balance};
    m_stage2Only = {m_lpr, m_classifier, m_classifierShare, m_oldShare, m_replay};

    m_command = new QLineEdit(this);
    m_command->setReadOnly(true);
    m_command->setObjectName("commandLine");
    m_command->setToolTip(tr("The same run from a terminal"));
    auto *copy = new QPushButton(tr("Copy"), this);
    copy->setToolTip(tr("Copy the command line to the clipboard"));
    connect(copy, &QPushButton::clicked, this, [this] { QApplication::clipboard()->setText(m_command->text()); });
    m_start = new QPushButton(tr("&Start"), this);
    m_start->setShortcut(QKeySequence("Ctrl+Return"));
    m_start->setToolTip(tr("Start the run (Ctrl+Return)"));
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setToolTip(tr("Stop at the next step; the checkpoint is kept and Resume continues"));
    m_cancel->setEnabled(false);
    m_resume = new QPushButton(tr("&Resume"), this);
    m_resume->setToolTip(tr("Continue the last unfinished run of this stage (--resume)"));
    connect(m_start, &QPushButton::clicked, this, [this] { start(false); });
    connect(m_resume, &QPushButton::clicked, this, [this] { start(true); });
    connect(m_cancel, &QPushButton::clicked, this, &TrainingPage::cancel);
    auto *cmdRow = new QHBoxLayout;
    cmdRow->addWidget(m_command, 1);
    cmdRow->addWidget(copy);
    cmdRow->addWidget(m_start);
    cmdRow->addWidget(m_cancel);
    cmdRow->addWidget(m_resume);

    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_state = new QLabel(tr("idle"), this);
    m_state->setObjectName("state");
    m_plot = new QCustomPlot(this);
    m_plot->setMinimumHeight(200);
    installChartExport(m_plot, "training-curves");
    m_plot->xAxis->setLabel(tr("step"));
    m_plot->yAxis->setLabel(tr("loss"));
    m_plot->yAxis2->setLabel(tr("learning rate"));
    m_plot->yAxis2->setVisible(true);
    m_plot->legend->setVisible(true);
    auto *loss = m_plot->addGraph(m_plot->xAxis, m_plot->yAxis);
    loss->setName(tr("loss"));
    loss->setPen(QPen(QColor("#1f4e9c"), 2));
    auto *lr = m_plot->addGraph(m_plot->xAxis, m_plot->yAxis2);
    lr->setName(tr("learning rate"));
    lr->setPen(QPen(QColor("#d9822b"), 1.5, Qt::DashLine));
    m_log = new QPlainTextEdit(this);
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    m_log->setPlaceholderText(tr("The run's log (stderr) appears here"));

    auto *right = new QWidget(this);
    auto *rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    rl->addWidget(m_progress);
    rl->addWidget(m_state);
    auto *vs = new QSplitter(Qt::Vertical, right);
    vs->addWidget(m_plot);
    vs->addWidget(m_log);
    vs->setStretchFactor(0, 3);
    rl->addWidget(vs, 1);
    auto *split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(settingsBox);
    split->addWidget(right);
    split->setStretchFactor(1, 2);
    contentLayout()->addLayout(cmdRow);
    contentLayout()->addWidget(split, 1);

    connect(m_job, &TrainingRunController::status, this, &TrainingPage::onStatus);
    connect(m_job, &TrainingRunController::progress, this, [this](const QString &stage, qint64 done, qint64 total) {
        m_state->setText(total > 0 ? tr("%1: %2 / %3").arg(stage).arg(done).arg(total) : stage);
    });
    connect(m_job, &TrainingRunController::log, this, [this](const QString &t) {
        m_log->moveCursor(QTextCursor::End);
        m_log->insertPlainText(t);
        m_log->moveCursor(QTextCursor::End);
    });
    connect(m_job, &TrainingRunController::finished, this, &TrainingPage::onFinished);
    connect(m_follower, &RunFollower::points, this, &TrainingPage::appendPoints);
    connect(m_follower, &RunFollower::metricPoints, this, &TrainingPage::appendMetric);
    connect(m_follower, &RunFollower::status, this, &TrainingPage::showStatus);
    connect(m_follower, &RunFollower::ended, this, &TrainingPage::onAttachedEnded);
    connect(m_follower, &RunFollower::error, this, [this](const QString &m) { showError(m); });
    m_scan = new QTimer(this);
    m_scan->setInterval(RunFollower::kPollMs);
    connect(m_scan, &QTimer::timeout, this, [this] {
        if (isVisible())
            scanForRuns();
    });
    m_scan->start();
    updateStageWidgets();
}

TrainingSettings TrainingPage::settings() const
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
    s.name = m_name->text().trimmed();
    return s;
}

void TrainingPage::applySettings(const TrainingSettings &s)
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
    m_name->setText(s.name);
    updateCommand();
}

QString TrainingPage::commandLine() const
{
    return m_command->text();
}

QString TrainingPage::stateText() const
{
    return m_state->text();
}

int TrainingPage::lossPoints() const
{
    return m_plot->graph(0)->dataCount();
}

static QList<QPointF> curveOf(const QCPGraph *g)
{
    QList<QPointF> out;
    if (g)
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
            out << QPointF(it->key, it->value);
    return out;
}

QList<QPointF> TrainingPage::lossCurve() const
{
    return curveOf(m_plot->graph(0));
}

QList<QPointF> TrainingPage::metricCurve(const QString &name) const
{
    return curveOf(m_metricGraphs.value(name));
}

void TrainingPage::updateStageWidgets()
{
    const bool one = m_stage->currentData().toInt() == 1;
    for (QWidget *w : m_stage1Only)
        w->setEnabled(one);
    for (QWidget *w : m_stage2Only)
        w->setEnabled(!one);
    updateCommand();
}

void TrainingPage::updateCommand()
{
    if (!m_command)
        return;
    m_command->setText(shellCommand("polymoe", trainArguments(projectPath().isEmpty() ? "PROJECT" : projectPath(), settings())));
}

void TrainingPage::reload()
{
    clearError();
    const QString keepModel = m_model->currentData().toString();
    const qlonglong keepAlloc = m_allocation->currentData().toLongLong();
    m_model->blockSignals(true);
    m_allocation->blockSignals(true);
    m_model->clear();
    m_allocation->clear();
    m_model->addItem(tr("(automatic)"), QString());
    m_allocation->addItem(tr("(the latest)"), qlonglong(0));
    if (auto store = openStore()) {
        try {
            for (const auto &m : store->models())
                m_model->addItem(QString::fromStdString(m.name + " (" + m.kind + ")"), QString::fromStdString(m.name));
            for (const auto &a : store->allocations())
                m_allocation->addItem(QString::fromStdString(std::to_string(a.id) + ": " + a.name), qlonglong(a.id));
        } catch (const std::exception &e) {
            showError(tr("Cannot read the project: %1").arg(QString::fromStdString(e.what())));
        }
    }
    if (m_model->findData(keepModel) >= 0)
        m_model->setCurrentIndex(m_model->findData(keepModel));
    if (m_allocation->findData(keepAlloc) >= 0)
        m_allocation->setCurrentIndex(m_allocation->findData(keepAlloc));
    m_model->blockSignals(false);
    m_allocation->blockSignals(false);
    if (m_follower->isFollowing() && m_followedProject != projectPath()) {
        m_follower->stop(); // another project: the run goes on, this view leaves it
        setSettingsEditable(true);
        m_cancel->setEnabled(false);
        m_state->setText(tr("idle"));
        clearCurves();
    }
    const bool running = m_job->isRunning() || m_follower->isFollowing();
    m_start->setEnabled(!projectPath().isEmpty() && !running);
    m_resume->setEnabled(!projectPath().isEmpty() && !running);
    updateCommand();
    scanForRuns();
}

qint64 TrainingPage::attachedRunId() const
{
    return m_follower->isFollowing() ? m_follower->run().id : 0;
}

bool TrainingPage::settingsEditable() const
{
    return m_settingsBox->isEnabled();
}

void TrainingPage::setSettingsEditable(bool on)
{
    m_settingsBox->setEnabled(on);
    m_settingsBox->setTitle(on ? tr("Settings") : tr("Settings (of the attached run, read-only)"));
}

void TrainingPage::clearCurves()
{
    m_plot->graph(0)->data()->clear();
    m_plot->graph(1)->data()->clear();
    for (QCPGraph *g : std::as_const(m_metricGraphs))
        g->data()->clear();
    m_plot->replot();
}

void TrainingPage::scanForRuns()
{
    if (projectPath().isEmpty() || m_job->isRunning() || m_follower->isFollowing())
        return;
    std::optional<RunRecord> newest;
    try {
        const auto store = ProjectStore::open(projectPath().toStdString(), true);
        for (const auto &r : store.runs())
            if (r.kind == "stage1" || r.kind == "stage2")
                newest = r;
    } catch (const std::exception &e) {
        showError(tr("Cannot read the runs: %1").arg(QString::fromStdString(e.what())));
        return;
    }
    if (!newest)
        return;
    const RunLiveness live = runLiveness(*newest);
    if (live == RunLiveness::Alive || live == RunLiveness::Remote)
        attach(*newest);
    else if (live == RunLiveness::Dead && m_interruptedShown != newest->id)
        showInterrupted(*newest);
}

void TrainingPage::attach(const RunRecord &run)
{
    clearError();
    m_interruptedShown = 0;
    const QJsonObject config = QJsonDocument::fromJson(QByteArray::fromStdString(run.config)).object();
    applySettings(settingsFromRunConfig(config));
    setSettingsEditable(false);
    clearCurves();
    m_start->setEnabled(false);
    m_resume->setEnabled(false);
    m_cancel->setEnabled(true);
    m_progress->setRange(0, 0);
    const QString where = runIsLocal(run) ? tr("process %1").arg(run.pid.value_or(0))
                                          : tr("process %1 on %2").arg(run.pid.value_or(0)).arg(QString::fromStdString(run.host));
    const QString text = tr("Attached to run %1 (%2, %3), started %4 UTC")
                             .arg(run.id)
                             .arg(QString::fromStdString(run.kind), where,
                                  QString::fromStdString(run.startedAt.substr(0, 19)).replace('T', ' '));
    m_state->setText(text);
    m_log->appendPlainText(text + tr("; following the project store"));
    m_followedProject = projectPath();
    m_follower->follow(projectPath(), run);
    Q_EMIT statusMessage(text);
}

void TrainingPage::showInterrupted(const RunRecord &run)
{
    m_interruptedShown = run.id;
    TrainingSettings s = settingsFromRunConfig(QJsonDocument::fromJson(QByteArray::fromStdString(run.config)).object());
    // Resume continues this run: the CLI picks the unfinished run of the stage making this model.
    applySettings(s);
    clearCurves();
    try {
        const auto store = ProjectStore::open(projectPath().toStdString(), true);
        QVector<double> x, y, l;
        const auto lr = store.metricSeries(run.id, "lr");
        for (const auto &[step, v] : store.metricSeries(run.id, "loss")) {
            x << double(step);
            y << v;
        }
        for (const auto &[step, v] : lr)
            l << v;
        l.resize(x.size(), qQNaN());
        appendPoints(x, y, l);
    } catch (const std::exception &) {
        // The curve is a courtesy; the state below is what matters.
    }
    const QString text = tr("Run %1 (%2) was interrupted: its process %3 is gone. Resume continues it from its last "
                            "checkpoint")
                             .arg(run.id)
                             .arg(QString::fromStdString(run.kind))
                             .arg(run.pid.value_or(0));
    m_state->setText(text);
    m_resume->setEnabled(true);
    Q_EMIT statusMessage(text);
}

void TrainingPage::onAttachedEnded(const QString &status, const QString &message)
{
    const RunRecord run = m_follower->run();
    setSettingsEditable(true);
    m_cancel->setEnabled(false);
    m_start->setEnabled(true);
    m_resume->setEnabled(true);
    if (m_progress->maximum() == 0)
        m_progress->setRange(0, 1);
    QString text;
    if (status == "completed") {
        m_progress->setValue(m_progress->maximum());
        text = tr("run %1 completed: %2").arg(run.id).arg(m_state->text());
    } else if (status == "cancelled") {
        text = tr("run %1 cancelled; the checkpoint is kept, Resume continues").arg(run.id);
    } else if (status == "interrupted") {
        m_interruptedShown = run.id;
        text = tr("run %1 was interrupted: its process %2 is gone. Resume continues it from its last checkpoint")
                   .arg(run.id)
                   .arg(run.pid.value_or(0));
    } else {
        text = tr("run %1 %2: %3").arg(run.id).arg(status, message);
        showError(text);
    }
    m_state->setText(text);
    m_log->appendPlainText(text);
    Q_EMIT statusMessage(text);
    Q_EMIT projectModified();
    Q_EMIT attachedRunEnded(status);
}

void TrainingPage::start(bool resume)
{
    if (m_job->isRunning() || m_follower->isFollowing() || projectPath().isEmpty())
        return;
    m_interruptedShown = 0;
    clearError();
    TrainingSettings s = settings();
    s.resume = resume;
    if (!resume)
        clearCurves();
    m_log->appendPlainText("$ " + shellCommand(CliProcess::executable(), trainArguments(projectPath(), s) << "--progress" << "json"));
    m_start->setEnabled(false);
    m_resume->setEnabled(false);
    m_cancel->setEnabled(true);
    m_progress->setRange(0, 0);
    m_state->setText(resume ? tr("resuming...") : tr("starting..."));
    m_job->start(projectPath(), s);
    Q_EMIT statusMessage(tr("Stage %1 started").arg(s.stage));
}

void TrainingPage::cancel()
{
    if (m_follower->isFollowing()) {
        const QString why = m_follower->cancel();
        if (!why.isEmpty()) {
            showError(tr("Cannot cancel: %1").arg(why));
            return;
        }
        m_state->setText(tr("stopping run %1 at the next step...").arg(m_follower->run().id));
        return;
    }
    if (!m_job->isRunning())
        return;
    m_state->setText(tr("stopping at the next step..."));
    m_job->cancel();
}

void TrainingPage::onStatus(const TrainingStatus &s)
{
    showStatus(s);
    if (s.step > 0) {
        appendPoints({double(s.step)}, {s.loss}, {s.lr});
        for (const char *name : {"lm", "balance", "lpr"})
            if (s.metrics.contains(name))
                appendMetric(name, {double(s.step)}, {s.metrics.value(name)});
    }
}

void TrainingPage::appendMetric(const QString &name, const QVector<double> &steps, const QVector<double> &values)
{
    QCPGraph *g = m_metricGraphs.value(name);
    if (!g) {
        static const QMap<QString, QPair<QString, QColor>> kStyle = {
            {"lm", {QT_TR_NOOP("LM loss"), QColor("#2e9e4f")}},
            {"balance", {QT_TR_NOOP("balance loss"), QColor("#8e44ad")}},
            {"lpr", {QT_TR_NOOP("LPR loss"), QColor("#c0392b")}}};
        g = m_plot->addGraph(m_plot->xAxis, m_plot->yAxis);
        const auto style = kStyle.value(name, {name, QColor("#555555")});
        g->setName(tr(style.first.toUtf8().constData()));
        g->setPen(QPen(style.second, 1.2));
        m_metricGraphs.insert(name, g);
    }
    bool added = false;
    for (qsizetype i = 0; i < steps.size() && i < values.size(); ++i) {
        if (!g->data()->isEmpty() && (g->data()->constEnd() - 1)->key >= steps[i])
            continue;
        g->addData(steps[i], values[i]);
        added = true;
    }
    if (added)
        rescaleCurves();
}

void TrainingPage::rescaleCurves()
{
    // Every curve on the loss axis (loss and its terms) stays in view, the lr on its own axis.
    m_plot->xAxis->rescale();
    m_plot->yAxis->rescale();
    m_plot->yAxis2->rescale();
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void TrainingPage::appendPoints(const QVector<double> &steps, const QVector<double> &loss, const QVector<double> &lr)
{
    bool added = false;
    for (qsizetype i = 0; i < steps.size(); ++i) {
        if (!m_plot->graph(0)->data()->isEmpty() && (m_plot->graph(0)->data()->constEnd() - 1)->key >= steps[i])
            continue;
        m_plot->graph(0)->addData(steps[i], loss[i]);
        m_plot->graph(1)->addData(steps[i], i < lr.size() ? lr[i] : qQNaN());
        added = true;
    }
    if (added)
        rescaleCurves();
}

void TrainingPage::showStatus(const TrainingStatus &s)
{
    if (s.total > 0) {
        m_progress->setRange(0, int(s.total));
        m_progress->setValue(int(s.step));
    }
    QString text = tr("%1 step %2 / %3   loss %4   lr %5   %6 tokens/s   elapsed %7   ETA %8")
                       .arg(s.kind)
                       .arg(s.step)
                       .arg(s.total)
                       .arg(s.loss, 0, 'f', 4)
                       .arg(s.lr, 0, 'e', 2)
                       .arg(s.tokensPerSecond, 0, 'f', 0)
                       .arg(duration(s.elapsed), duration(s.eta));
    for (auto it = s.metrics.begin(); it != s.metrics.end(); ++it)
        text += QString("   %1 %2").arg(it.key()).arg(it.value(), 0, 'f', 4);
    if (m_follower->isFollowing())
        text = tr("run %1: ").arg(m_follower->run().id) + text;
    m_state->setText(text);
}

void TrainingPage::onFinished(TrainingRunController::Outcome o, int code)
{
    m_cancel->setEnabled(false);
    m_start->setEnabled(true);
    m_resume->setEnabled(true);
    if (m_progress->maximum() == 0)
        m_progress->setRange(0, 1);
    switch (o) {
    case TrainingRunController::Outcome::Completed:
        m_progress->setValue(m_progress->maximum());
        m_state->setText(tr("completed: ") + m_state->text());
        Q_EMIT statusMessage(tr("Training run completed"));
        break;
    case TrainingRunController::Outcome::Cancelled:
        m_state->setText(tr("cancelled; the checkpoint is kept, Resume continues"));
        Q_EMIT statusMessage(tr("Training run cancelled"));
        break;
    case TrainingRunController::Outcome::Failed:
        showError(tr("The run failed (exit code %1); see the log").arg(code));
        m_state->setText(tr("failed"));
        break;
    }
    Q_EMIT projectModified();
    Q_EMIT runFinished(o);
}

} // namespace polymoe::ui
