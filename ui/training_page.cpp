// The training view.
#include "training_page.h"

#include "cli_process.h"
#include "training_curves.h"
#include "training_settings_form.h"

#include "polymoe/run_liveness.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QClipboard>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
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
    m_form = new TrainingSettingsForm(this);
    connect(m_form, &TrainingSettingsForm::changed, this, &TrainingPage::updateCommand);

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
    m_curves = new TrainingCurves(this);
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
    vs->addWidget(m_curves);
    vs->addWidget(m_log);
    vs->setStretchFactor(0, 3);
    rl->addWidget(vs, 1);
    auto *split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_form);
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
    connect(m_follower, &RunFollower::points, m_curves, &TrainingCurves::appendPoints);
    connect(m_follower, &RunFollower::metricPoints, m_curves, &TrainingCurves::appendMetric);
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
    updateCommand();
}

TrainingSettings TrainingPage::settings() const
{
    return m_form->settings();
}

void TrainingPage::applySettings(const TrainingSettings &s)
{
    m_form->applySettings(s);
}

QCustomPlot *TrainingPage::plot() const
{
    return m_curves;
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
    return m_curves->lossPoints();
}

QList<QPointF> TrainingPage::lossCurve() const
{
    return m_curves->lossCurve();
}

QList<QPointF> TrainingPage::metricCurve(const QString &name) const
{
    return m_curves->metricCurve(name);
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
    std::vector<ModelRecord> models;
    std::vector<AllocationRecord> allocations;
    readProject(tr("the project"), [&](ProjectStore &store) {
        models = store.models();
        allocations = store.allocations();
    });
    m_form->setChoices(models, allocations);
    if (m_follower->isFollowing() && m_followedProject != projectPath()) {
        m_follower->stop(); // another project: the run goes on, this view leaves it
        setSettingsEditable(true);
        m_cancel->setEnabled(false);
        m_state->setText(tr("idle"));
        m_curves->clearCurves();
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
    return m_form->editable();
}

void TrainingPage::setSettingsEditable(bool on)
{
    m_form->setEditable(on);
}

void TrainingPage::scanForRuns()
{
    if (projectPath().isEmpty() || m_job->isRunning() || m_follower->isFollowing())
        return;
    std::optional<RunRecord> newest;
    const bool read = readProject(tr("the runs"), [&](ProjectStore &store) {
        for (const auto &r : store.runs())
            if (r.kind == "stage1" || r.kind == "stage2")
                newest = r;
    });
    if (!read || !newest)
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
    applySettings(settingsFromRunConfig(run.config));
    setSettingsEditable(false);
    m_curves->clearCurves();
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
    TrainingSettings s = settingsFromRunConfig(run.config);
    // Resume continues this run: the CLI picks the unfinished run of the stage making this model.
    applySettings(s);
    m_curves->clearCurves();
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
        m_curves->appendPoints(x, y, l);
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
        m_curves->clearCurves();
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
        m_curves->appendPoints({double(s.step)}, {s.loss}, {s.lr});
        for (const char *name : {"lm", "balance", "lpr"})
            if (s.metrics.contains(name))
                m_curves->appendMetric(name, {double(s.step)}, {s.metrics.value(name)});
    }
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
