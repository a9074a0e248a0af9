// An expansion stage (METHOD.md sections 4-6) run as `polymoe train PROJECT --stage 1|2 ... --progress
// json` in a child process: the settings with the method's defaults, the command line they make,
// and the parsed progress (step, ETA, tokens/s, loss, lr). A run this window did not start (from a
// terminal, or by an earlier window) is followed through the project store instead (RunFollower).
#pragma once

#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"

#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QStringList>
#include <QVector>

class QTimer;

namespace polymoe::ui {

class CliProcess;

// The engine's defaults for a stage (ExpansionStageSpec{}), which the CLI's options apply too.
inline const ExpansionStageSpec &stageDefaults()
{
    static const ExpansionStageSpec d;
    return d;
}

struct TrainingSettings {
    int stage = 1;                // 1 or 2
    QString model;                // empty: the CLI picks (stage 1 the base, stage 2 the newest stage-1 model)
    qint64 allocationId = 0;      // stage 1; 0 = the latest
    qint64 steps = stageDefaults().train.steps; // 0: automatic (stage 1 one epoch, stage 2 from the replay share)
    double lr = stageDefaults().train.lr;       // 0: 1e-3 (stage 1) / 1e-2 (stage 2)
    int batchSize = int(stageDefaults().train.batchSize); // sequences per step
    int seqLen = int(stageDefaults().train.seqLen);       // tokens per sequence
    int topK = stageDefaults().topK;                      // experts per token
    double balance = stageDefaults().balanceCoef;         // stage 1: balance-loss coefficient
    double lpr = stageDefaults().lprCoef;                 // stage 2: LPR coefficient
    bool classifier = stageDefaults().classifier;         // stage 2: the old/new classifier
    double classifierShare = stageDefaults().classifierShare; // of the MoE layers
    double oldShare = stageDefaults().oldShare;           // stage 2: share of old-language sequences
    double replay = stageDefaults().replayShare;          // stage 2: replayed old tokens / stage-1 tokens
    int statsEvery = int(stageDefaults().routerStatsEvery); // steps between router statistics
    int checkpointEvery = int(stageDefaults().train.checkpointEvery); // steps between checkpoints
    QString dtype = QString::fromStdString(stageDefaults().train.dtype);   // auto, fp32, bf16
    QString device = QString::fromStdString(stageDefaults().train.device); // cpu, cuda (a CUDA LibTorch build), auto (cuda when visible)
    int threads = stageDefaults().train.threads;          // 0: all cores
    int processes = 1;            // > 1: that many data-parallel processes on this machine (polymoe launch)
    QString name;                 // output model name; empty: stage1 / stage2
    bool resume = false;
};

// The CLI arguments (after "polymoe"); only settings that differ from the CLI's defaults are given,
// and only those of the chosen stage. With processes > 1: `launch --nproc N -- train ...`.
QStringList trainArguments(const QString &projectPath, const TrainingSettings &s);
// A copyable shell command line for those arguments.
QString shellCommand(const QString &program, const QStringList &arguments);

struct TrainingStatus {
    QString kind;
    qint64 step = 0, total = 0;
    double loss = 0, lr = 0, tokensPerSecond = 0, elapsed = 0, eta = 0;
    QMap<QString, double> metrics;
};
// Parses a {"event": "train", ...} line; false for other events.
bool parseTrainingStatus(const QJsonObject &event, TrainingStatus *out);

// The settings of a stage-1/2 run from its stored configuration (runs.config: "train",
// "expansion", "model_in", "output_name"); threads are not stored and stay 0.
TrainingSettings settingsFromRunConfig(const std::string &config);

// Starts, cancels or detaches one `polymoe train` child process and reports its progress, log and
// outcome (the controller of a run this window started).
class TrainingRunController : public QObject {
    Q_OBJECT
public:
    enum class Outcome { Completed, Cancelled, Failed };
    Q_ENUM(Outcome)

    explicit TrainingRunController(QObject *parent = nullptr);
    void start(const QString &projectPath, const TrainingSettings &settings);
    void cancel(); // the CLI stops at its next step and keeps a checkpoint
    void detach(); // the run goes on without this job (the window is closing); see CliProcess::detach
    bool isRunning() const;
    qint64 processId() const; // of the child; 0 when none
    QStringList lastArguments() const { return m_arguments; }

Q_SIGNALS:
    void status(const polymoe::ui::TrainingStatus &status);
    void progress(const QString &stage, qint64 done, qint64 total);
    void log(const QString &text);
    void finished(polymoe::ui::TrainingRunController::Outcome outcome, int exitCode);

private:
    CliProcess *m_process = nullptr;
    QStringList m_arguments;
};

// Follows a run through the store: reads what it has recorded, then polls read-only each second
// (WAL: the writer is never blocked). Metrics become the same status the child's JSON lines give:
// step of the last logged step, total from the config, tokens/s and ETA over the last logged steps.
// Ends when the run is no longer alive (run_liveness.h): completed, cancelled, failed or interrupted.
class RunFollower : public QObject {
    Q_OBJECT
public:
    explicit RunFollower(QObject *parent = nullptr);
    void follow(const QString &projectPath, const RunRecord &run);
    void stop();
    bool isFollowing() const;
    const RunRecord &run() const { return m_run; }
    // One poll; false when the store cannot be read (error() says why).
    bool pollOnce();
    // SIGTERM to the run's process (same host only); empty when sent, else why not.
    QString cancel();

    static constexpr int kPollMs = 1000;

Q_SIGNALS:
    void points(const QVector<double> &steps, const QVector<double> &loss, const QVector<double> &lr);
    // A loss term's recorded series since the last poll ("lm", "balance", "lpr").
    void metricPoints(const QString &name, const QVector<double> &steps, const QVector<double> &values);
    void status(const polymoe::ui::TrainingStatus &status);
    // displayStatus: "completed", "cancelled", "failed" or "interrupted".
    void ended(const QString &displayStatus, const QString &message);
    void error(const QString &message);

private:
    QTimer *m_timer = nullptr;
    QString m_path;
    RunRecord m_run;
    qint64 m_total = 0;
    int64_t m_lastStep = -1;
    QVector<double> m_steps, m_tokens, m_seconds; // the last logged steps, for the rates
};

} // namespace polymoe::ui
