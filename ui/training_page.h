// Training (METHOD.md sections 4-6): stage 1 / stage 2 settings with the method's defaults
// (training_settings_form.*; N data-parallel processes run through `polymoe launch`), the
// equivalent `polymoe train` command line, Start / Cancel / Resume of a child run, progress, ETA,
// tokens/s, live loss and learning-rate curves (training_curves.*), and the run's log. A stage run
// this window did not start (a terminal, an earlier window) is attached to from the store: its
// settings (the world size among them) shown read-only,
// curves from its recorded metrics then live, Cancel by SIGTERM to its process (same host); a run
// whose process is gone is shown as interrupted, with Resume.
#pragma once

#include "page.h"
#include "training_job.h"

#include <QList>
#include <QPointF>

class QCustomPlot;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTimer;

namespace polymoe::ui {

class TrainingCurves;
class TrainingSettingsForm;

class TrainingPage : public Page {
    Q_OBJECT
public:
    explicit TrainingPage(QWidget *parent = nullptr);
    void reload() override;

    TrainingSettings settings() const;
    void applySettings(const TrainingSettings &s);
    QString commandLine() const;
    TrainingRunController *job() const { return m_job; }
    RunFollower *follower() const { return m_follower; }
    qint64 attachedRunId() const; // 0 when not attached
    bool settingsEditable() const;
    // Looks for a live stage run to attach to, or an interrupted one to offer Resume for; done on
    // reload and each second while the view is shown.
    void scanForRuns();
    QCustomPlot *plot() const;
    int lossPoints() const;
    QList<QPointF> lossCurve() const; // (step, loss) as drawn
    QList<QPointF> metricCurve(const QString &name) const; // a loss term's curve ("lm", "balance", "lpr"); empty if none
    QString stateText() const;

    void start(bool resume = false);
    void cancel();

Q_SIGNALS:
    void runFinished(polymoe::ui::TrainingRunController::Outcome outcome);
    void attachedRunEnded(const QString &displayStatus); // completed, cancelled, failed, interrupted

private:
    void updateCommand();
    void onStatus(const TrainingStatus &s);
    void onFinished(TrainingRunController::Outcome o, int code);
    void showStatus(const TrainingStatus &s);
    void attach(const RunRecord &run);
    void showInterrupted(const RunRecord &run);
    void onAttachedEnded(const QString &status, const QString &message);
    void setSettingsEditable(bool on);

    TrainingRunController *m_job = nullptr;
    RunFollower *m_follower = nullptr;
    QTimer *m_scan = nullptr;
    QString m_followedProject;
    qint64 m_interruptedShown = 0;
    TrainingSettingsForm *m_form = nullptr;
    QLineEdit *m_command = nullptr;
    QPushButton *m_start = nullptr, *m_cancel = nullptr, *m_resume = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_state = nullptr;
    TrainingCurves *m_curves = nullptr;
    QPlainTextEdit *m_log = nullptr;
};

} // namespace polymoe::ui
