// Training (METHOD.md sections 4-6): stage 1 / stage 2 settings with the method's defaults, the
// equivalent `polymoe train` command line, Start / Cancel / Resume of a child run, progress, ETA,
// tokens/s, live loss and learning-rate curves, and the run's log.
#pragma once

#include "page.h"
#include "training_job.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace polymoe::ui {

class TrainingPage : public Page {
    Q_OBJECT
public:
    explicit TrainingPage(QWidget *parent = nullptr);
    void reload() override;

    TrainingSettings settings() const;
    void applySettings(const TrainingSettings &s);
    QString commandLine() const;
    TrainingJob *job() const { return m_job; }
    QCustomPlot *plot() const { return m_plot; }
    int lossPoints() const;
    QString stateText() const;

    void start(bool resume = false);
    void cancel();

Q_SIGNALS:
    void runFinished(polymoe::ui::TrainingJob::Outcome outcome);

private:
    void updateCommand();
    void updateStageWidgets();
    void onStatus(const TrainingStatus &s);
    void onFinished(TrainingJob::Outcome o, int code);

    TrainingJob *m_job = nullptr;
    QComboBox *m_stage = nullptr, *m_model = nullptr, *m_allocation = nullptr, *m_dtype = nullptr;
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
    QPlainTextEdit *m_log = nullptr;
    QList<QWidget *> m_stage1Only, m_stage2Only;
};

} // namespace polymoe::ui
