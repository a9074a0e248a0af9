// The training job: command line, child process, JSON progress.
#include "training_job.h"

#include "cli_process.h"

namespace polymoe::ui {

namespace {
QString num(double v)
{
    return QString::number(v, 'g', 10);
}
} // namespace

QStringList trainArguments(const QString &projectPath, const TrainingSettings &s)
{
    QStringList a{"train", projectPath, "--stage", QString::number(s.stage)};
    if (!s.model.isEmpty())
        a << "--model" << s.model;
    if (s.stage == 1 && s.allocationId > 0)
        a << "--allocation" << QString::number(s.allocationId);
    if (s.steps > 0)
        a << "--steps" << QString::number(s.steps);
    if (s.lr > 0)
        a << "--lr" << num(s.lr);
    if (s.batchSize != 16)
        a << "--batch-size" << QString::number(s.batchSize);
    if (s.seqLen != 128)
        a << "--seq-len" << QString::number(s.seqLen);
    if (s.topK != 2)
        a << "--top-k" << QString::number(s.topK);
    if (s.stage == 1) {
        if (s.balance != 0.01)
            a << "--balance" << num(s.balance);
    } else {
        if (s.lpr != 0.1)
            a << "--lpr" << num(s.lpr);
        if (s.classifier) {
            a << "--classifier";
            if (s.classifierShare != 0.3)
                a << "--classifier-share" << num(s.classifierShare);
        }
        a << "--old-share" << num(s.oldShare);
        if (s.replay != 0.01)
            a << "--replay" << num(s.replay);
    }
    if (s.statsEvery != 50)
        a << "--stats-every" << QString::number(s.statsEvery);
    if (s.checkpointEvery != 200)
        a << "--checkpoint-every" << QString::number(s.checkpointEvery);
    if (s.dtype != "auto")
        a << "--dtype" << s.dtype;
    if (s.threads > 0)
        a << "--threads" << QString::number(s.threads);
    if (!s.name.isEmpty())
        a << "--name" << s.name;
    if (s.resume)
        a << "--resume";
    return a;
}

QString shellCommand(const QString &program, const QStringList &arguments)
{
    QStringList parts;
    for (const QString &s : QStringList{program} + arguments) {
        static const QString safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,";
        bool plain = !s.isEmpty();
        for (QChar c : s)
            plain = plain && safe.contains(c);
        parts << (plain ? s : "'" + QString(s).replace("'", "'\\''") + "'");
    }
    return parts.join(' ');
}

bool parseTrainingStatus(const QJsonObject &e, TrainingStatus *out)
{
    if (e.value("event").toString() != "train")
        return false;
    out->kind = e.value("kind").toString();
    out->step = e.value("step").toInteger();
    out->total = e.value("total").toInteger();
    out->loss = e.value("loss").toDouble();
    out->lr = e.value("lr").toDouble();
    out->tokensPerSecond = e.value("tokens_per_s").toDouble();
    out->elapsed = e.value("elapsed_s").toDouble();
    out->eta = e.value("eta_s").toDouble();
    out->metrics.clear();
    const QJsonObject m = e.value("metrics").toObject();
    for (auto it = m.begin(); it != m.end(); ++it)
        out->metrics.insert(it.key(), it.value().toDouble());
    return true;
}

TrainingJob::TrainingJob(QObject *parent) : QObject(parent), m_process(new CliProcess(this))
{
    connect(m_process, &CliProcess::jsonEvent, this, [this](const QJsonObject &e) {
        TrainingStatus s;
        if (parseTrainingStatus(e, &s))
            Q_EMIT status(s);
        else if (e.value("event").toString() == "progress")
            Q_EMIT progress(e.value("stage").toString(), e.value("done").toInteger(), e.value("total").toInteger());
    });
    connect(m_process, &CliProcess::logText, this, &TrainingJob::log);
    connect(m_process, &CliProcess::outputLine, this, [this](const QString &l) { Q_EMIT log(l + "\n"); });
    connect(m_process, &CliProcess::failedToStart, this, [this](const QString &m) {
        Q_EMIT log(m + "\n");
        Q_EMIT finished(Outcome::Failed, -1);
    });
    connect(m_process, &CliProcess::finished, this, [this](int code, bool crashed) {
        const Outcome o = crashed || (code != 0 && code != CliProcess::kExitCancelled) ? Outcome::Failed
                          : code == CliProcess::kExitCancelled                          ? Outcome::Cancelled
                                                                                          : Outcome::Completed;
        Q_EMIT finished(o, code);
    });
}

void TrainingJob::start(const QString &projectPath, const TrainingSettings &settings)
{
    if (isRunning())
        return;
    m_arguments = trainArguments(projectPath, settings) << "--progress" << "json";
    m_process->start(m_arguments);
}

void TrainingJob::cancel()
{
    m_process->stop();
}

bool TrainingJob::isRunning() const
{
    return m_process->isRunning();
}

} // namespace polymoe::ui
