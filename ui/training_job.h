// An expansion stage (METHOD.md sections 4-6) run as `polymoe train PROJECT --stage 1|2 ... --progress
// json` in a child process: the settings with the method's defaults, the command line they make,
// and the parsed progress (step, ETA, tokens/s, loss, lr).
#pragma once

#include <QJsonObject>
#include <QMap>
#include <QObject>
#include <QStringList>

namespace polymoe::ui {

class CliProcess;

struct TrainingSettings {
    int stage = 1;                // 1 or 2
    QString model;                // empty: the CLI picks (stage 1 the base, stage 2 the newest stage-1 model)
    qint64 allocationId = 0;      // stage 1; 0 = the latest
    qint64 steps = 0;             // 0: automatic (stage 1 one epoch, stage 2 from the replay share)
    double lr = 0;                // 0: 1e-3 (stage 1) / 1e-2 (stage 2)
    int batchSize = 16;           // sequences per step
    int seqLen = 128;             // tokens per sequence
    int topK = 2;                 // experts per token
    double balance = 0.01;        // stage 1: balance-loss coefficient
    double lpr = 0.1;             // stage 2: LPR coefficient
    bool classifier = false;      // stage 2: the old/new classifier
    double classifierShare = 0.3; // of the MoE layers
    double oldShare = 1.0 / 3.0;  // stage 2: share of old-language sequences
    double replay = 0.01;         // stage 2: replayed old tokens / stage-1 tokens
    int statsEvery = 50;          // steps between router statistics
    int checkpointEvery = 200;    // steps between checkpoints
    QString dtype = "auto";       // auto, fp32, bf16
    int threads = 0;              // 0: all cores
    QString name;                 // output model name; empty: stage1 / stage2
    bool resume = false;
};

// The CLI arguments (after "polymoe"); only settings that differ from the CLI's defaults are given,
// and only those of the chosen stage.
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

class TrainingJob : public QObject {
    Q_OBJECT
public:
    enum class Outcome { Completed, Cancelled, Failed };
    Q_ENUM(Outcome)

    explicit TrainingJob(QObject *parent = nullptr);
    void start(const QString &projectPath, const TrainingSettings &settings);
    void cancel(); // the CLI stops at its next step and keeps a checkpoint
    bool isRunning() const;
    QStringList lastArguments() const { return m_arguments; }

Q_SIGNALS:
    void status(const polymoe::ui::TrainingStatus &status);
    void progress(const QString &stage, qint64 done, qint64 total);
    void log(const QString &text);
    void finished(polymoe::ui::TrainingJob::Outcome outcome, int exitCode);

private:
    CliProcess *m_process = nullptr;
    QStringList m_arguments;
};

} // namespace polymoe::ui
