// Training (METHOD.md sections 4-6): stage 1 / stage 2 settings with the method's defaults, the
// equivalent `polymoe train` command line, Start / Cancel / Resume of a child run, progress, ETA,
// tokens/s, live loss and learning-rate curves, and the run's log. A stage run this window did not
// start (a terminal, an earlier window) is attached to from the store: settings shown read-only,
// curves from its recorded metrics then live, Cancel by SIGTERM to its process (same host); a run
// whose process is gone is shown as interrupted, with Resume.
#pragma once

#include "page.h"
#include "training_job.h"

#include <QList>
#include <QMap>
#include <QPointF>

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPGraph;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTimer;
class QGroupBox;

namespace polymoe::ui {

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
    QCustomPlot *plot() const { return m_plot; }
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
    void updateStageWidgets();
    void onStatus(const TrainingStatus &s);
    void onFinished(TrainingRunController::Outcome o, int code);
    void showStatus(const TrainingStatus &s);
    void appendPoints(const QVector<double> &steps, const QVector<double> &loss, const QVector<double> &lr);
    // The loss terms ("lm", "balance", "lpr"), one curve each on the loss axis, made on first use.
    void appendMetric(const QString &name, const QVector<double> &steps, const QVector<double> &values);
    void rescaleCurves();
    void clearCurves();
    void attach(const RunRecord &run);
    void showInterrupted(const RunRecord &run);
    void onAttachedEnded(const QString &status, const QString &message);
    void setSettingsEditable(bool on);

    TrainingRunController *m_job = nullptr;
    RunFollower *m_follower = nullptr;
    QTimer *m_scan = nullptr;
    QString m_followedProject;
    qint64 m_interruptedShown = 0;
    QGroupBox *m_settingsBox = nullptr;
    QComboBox *m_stage = nullptr, *m_model = nullptr, *m_allocation = nullptr, *m_dtype = nullptr,
              *m_device = nullptr;
    QSpinBox *m_steps = nullptr, *m_batch = nullptr, *m_seqLen = nullptr, *m_topK = nullptr, *m_statsEvery = nullptr,
             *m_checkpointEvery = nullptr, *m_threads = nullptr;
    QDoubleSpinBox *m_lr = nullptr, *m_balance = nullptr, *m_lpr = nullptr, *m_classifierShare = nullptr,
                   *m_oldShare = nullptr, *m_replay = nullptr;
    QCheckBox *m_classifier = nullptr;
    QLineEdit *m_name = nullptr, *m_command = nullptr;
    QPushButton *m_start = nullptr, *m_cancel = nullptr, *m_resume = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_state = nullptr;
    QCustomPlot *m_plot = nullptr;
    QMap<QString, QCPGraph *> m_metricGraphs;
    QPlainTextEdit *m_log = nullptr;
    QList<QWidget *> m_stage1Only, m_stage2Only;
};

} // namespace polymoe::ui
