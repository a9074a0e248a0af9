// The training job: command line, child process, JSON progress.
#include "training_job.h"

#include "cli_process.h"

#include "polymoe/error.h"
#include "polymoe/recorded_run.h"
#include "polymoe/run_liveness.h"

#include <QTimer>

namespace polymoe::ui {

namespace {
QString num(double v)
{
    return QString::number(v, 'g', 10);
}
} // namespace

QStringList trainArguments(const QString &projectPath, const TrainingSettings &s)
{
    const TrainingSettings d; // the CLI's defaults
    QStringList a{"train", projectPath, "--stage", QString::number(s.stage)};
    if (!s.model.isEmpty())
        a << "--model" << s.model;
    if (s.stage == 1 && s.allocationId > 0)
        a << "--allocation" << QString::number(s.allocationId);
    if (s.steps > 0)
        a << "--steps" << QString::number(s.steps);
    if (s.lr > 0)
        a << "--lr" << num(s.lr);
    if (s.batchSize != d.batchSize)
        a << "--batch-size" << QString::number(s.batchSize);
    if (s.seqLen != d.seqLen)
        a << "--seq-len" << QString::number(s.seqLen);
    if (s.topK != d.topK)
        a << "--top-k" << QString::number(s.topK);
    if (s.stage == 1) {
        if (s.balance != d.balance)
            a << "--balance" << num(s.balance);
    } else {
        if (s.lpr != d.lpr)
            a << "--lpr" << num(s.lpr);
        if (s.classifier) {
            a << "--classifier";
            if (s.classifierShare != d.classifierShare)
                a << "--classifier-share" << num(s.classifierShare);
        }
        a << "--old-share" << num(s.oldShare);
        if (s.replay != d.replay)
            a << "--replay" << num(s.replay);
    }
    if (s.statsEvery != d.statsEvery)
        a << "--stats-every" << QString::number(s.statsEvery);
    if (s.checkpointEvery != d.checkpointEvery)
        a << "--checkpoint-every" << QString::number(s.checkpointEvery);
    if (s.dtype != d.dtype)
        a << "--dtype" << s.dtype;
    if (s.device != d.device)
        a << "--device" << s.device;
    if (s.threads > 0)
        a << "--threads" << QString::number(s.threads);
    if (!s.name.isEmpty())
        a << "--name" << s.name;
    if (s.resume)
        a << "--resume";
    if (s.processes > 1)
        a = QStringList{"launch", "--nproc", QString::number(s.processes), "--"} + a;
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
    namespace ev = cli::event;
    if (eventField(e, ev::kEvent).toString() != QLatin1String(ev::kTrain))
        return false;
    out->kind = eventField(e, ev::kKind).toString();
    out->step = eventField(e, ev::kStep).toInteger();
    out->total = eventField(e, ev::kTotal).toInteger();
    out->loss = eventField(e, ev::kLoss).toDouble();
    out->lr = eventField(e, ev::kLr).toDouble();
    out->tokensPerSecond = eventField(e, ev::kTokensPerSecond).toDouble();
    out->elapsed = eventField(e, ev::kElapsedSeconds).toDouble();
    out->eta = eventField(e, ev::kEtaSeconds).toDouble();
    out->metrics.clear();
    const QJsonObject m = eventField(e, ev::kMetrics).toObject();
    for (auto it = m.begin(); it != m.end(); ++it)
        out->metrics.insert(it.key(), it.value().toDouble());
    return true;
}

TrainingRunController::TrainingRunController(QObject *parent) : QObject(parent), m_process(new CliProcess(this))
{
    connect(m_process, &CliProcess::jsonEvent, this, [this](const QJsonObject &e) {
        TrainingStatus s;
        if (parseTrainingStatus(e, &s))
            Q_EMIT status(s);
        else if (eventField(e, cli::event::kEvent).toString() == QLatin1String(cli::event::kProgress))
            Q_EMIT progress(eventField(e, cli::event::kStage).toString(), eventField(e, cli::event::kDone).toInteger(),
                            eventField(e, cli::event::kTotal).toInteger());
    });
    connect(m_process, &CliProcess::logText, this, &TrainingRunController::log);
    connect(m_process, &CliProcess::outputLine, this, [this](const QString &l) { Q_EMIT log(l + "\n"); });
    connect(m_process, &CliProcess::failedToStart, this, [this](const QString &m) {
        Q_EMIT log(m + "\n");
        Q_EMIT finished(Outcome::Failed, -1);
    });
    connect(m_process, &CliProcess::finished, this, [this](int code, bool crashed) {
        const Outcome o = crashed || (code != cli::kExitOk && code != cli::kExitCancelled) ? Outcome::Failed
                          : code == cli::kExitCancelled                                     ? Outcome::Cancelled
                                                                                            : Outcome::Completed;
        Q_EMIT finished(o, code);
    });
}

void TrainingRunController::start(const QString &projectPath, const TrainingSettings &settings)
{
    if (isRunning())
        return;
    m_arguments = trainArguments(projectPath, settings) << "--progress" << "json";
    m_process->start(m_arguments);
}

void TrainingRunController::cancel()
{
    m_process->stop();
}

void TrainingRunController::detach()
{
    m_process->detach();
}

bool TrainingRunController::isRunning() const
{
    return m_process->isRunning();
}

qint64 TrainingRunController::processId() const
{
    return m_process->processId();
}

TrainingSettings settingsFromRunConfig(const std::string &config)
{
    TrainingSettings s;
    ExpansionStageSpec r;
    try {
        r = recordedStageSpec(config, "the run's settings");
        s.processes = recordedWorldSize(config, "the run's settings");
    } catch (const Error &) {
        return s; // settings core cannot read: the form keeps its defaults, resuming reports the error
    }
    s.stage = r.stage;
    s.model = QString::fromStdString(r.model);
    s.allocationId = r.allocationId.value_or(0);
    s.steps = r.train.steps;
    s.lr = r.train.lr;
    s.batchSize = int(r.train.batchSize);
    s.seqLen = int(r.train.seqLen);
    s.dtype = QString::fromStdString(r.train.dtype);
    s.device = QString::fromStdString(r.train.device);
    s.checkpointEvery = int(r.train.checkpointEvery);
    s.topK = r.topK;
    s.balance = r.balanceCoef;
    s.lpr = r.lprCoef;
    s.classifier = r.classifier;
    s.classifierShare = r.classifierShare;
    s.oldShare = r.oldShare;
    s.replay = r.replayShare;
    s.statsEvery = int(r.routerStatsEvery);
    s.name = QString::fromStdString(r.outputName);
    return s;
}

RunFollower::RunFollower(QObject *parent) : QObject(parent), m_timer(new QTimer(this))
{
    m_timer->setInterval(kPollMs);
    connect(m_timer, &QTimer::timeout, this, &RunFollower::pollOnce);
}

void RunFollower::follow(const QString &projectPath, const RunRecord &run)
{
    m_path = projectPath;
    m_run = run;
    m_lastStep = -1;
    m_steps.clear();
    m_tokens.clear();
    m_seconds.clear();
    try {
        m_total = recordedTrainConfig(run.config, "run " + std::to_string(run.id)).steps;
    } catch (const Error &) {
        m_total = 0; // unknown: the progress bar shows activity instead
    }
    m_timer->start();
    pollOnce();
}

void RunFollower::stop()
{
    m_timer->stop();
}

bool RunFollower::isFollowing() const
{
    return m_timer->isActive();
}

bool RunFollower::pollOnce()
{
    if (!isFollowing())
        return false;
    try {
        const auto store = ProjectStore::open(m_path.toStdString(), true);
        // The run first, then its metrics: what it logged before it ended is drawn before the end.
        const auto run = store.run(m_run.id);
        if (!run)
            throw ConfigError("run " + std::to_string(m_run.id) + " is no longer in " + store.path().string());
        m_run = *run;
        const auto loss = store.metricSeries(m_run.id, "loss", m_lastStep);
        if (!loss.empty()) {
            const auto lr = store.metricSeries(m_run.id, "lr", m_lastStep);
            const auto tokens = store.metricSeries(m_run.id, "tokens", m_lastStep);
            const auto seconds = store.metricSeries(m_run.id, "seconds", m_lastStep);
            QVector<double> x, y, l;
            for (size_t i = 0; i < loss.size(); ++i) {
                x << double(loss[i].first);
                y << loss[i].second;
                l << (i < lr.size() && lr[i].first == loss[i].first ? lr[i].second : qQNaN());
            }
            for (size_t i = 0; i < tokens.size() && i < seconds.size(); ++i) {
                m_steps << double(tokens[i].first);
                m_tokens << tokens[i].second;
                m_seconds << seconds[i].second;
            }
            constexpr int kWindow = 10; // logged steps the rates are measured over
            while (m_steps.size() > kWindow) {
                m_steps.removeFirst();
                m_tokens.removeFirst();
                m_seconds.removeFirst();
            }
            TrainingStatus s;
            s.kind = QString::fromStdString(m_run.kind);
            s.step = loss.back().first;
            s.total = m_total;
            s.loss = loss.back().second;
            s.lr = lr.empty() ? 0 : lr.back().second;
            if (!m_seconds.isEmpty()) {
                s.elapsed = m_seconds.back();
                const double dt = m_seconds.back() - m_seconds.front(), ds = m_steps.back() - m_steps.front();
                if (dt > 0 && ds > 0) {
                    s.tokensPerSecond = (m_tokens.back() - m_tokens.front()) / dt;
                    s.eta = m_total > s.step ? dt / ds * double(m_total - s.step) : 0;
                }
            }
            for (const char *name : {"lm", "balance", "lpr", "classifier", "classifier_accuracy"}) {
                const auto v = store.metricSeries(m_run.id, name, s.step - 1);
                if (!v.empty())
                    s.metrics.insert(name, v.back().second);
            }
            const int64_t since = m_lastStep;
            m_lastStep = loss.back().first;
            Q_EMIT points(x, y, l);
            for (const char *name : {"lm", "balance", "lpr"}) {
                QVector<double> ms, mv;
                for (const auto &[step, value] : store.metricSeries(m_run.id, name, since)) {
                    ms << double(step);
                    mv << value;
                }
                if (!ms.isEmpty())
                    Q_EMIT metricPoints(QString::fromLatin1(name), ms, mv);
            }
            Q_EMIT status(s);
        }
        const RunLiveness live = runLiveness(m_run);
        if (live == RunLiveness::Ended || live == RunLiveness::Dead) {
            m_timer->stop();
            Q_EMIT ended(QString::fromStdString(displayStatus(m_run)), QString::fromStdString(m_run.message));
        }
        return true;
    } catch (const std::exception &e) {
        Q_EMIT error(tr("Cannot follow run %1: %2").arg(m_run.id).arg(QString::fromStdString(e.what())));
        return false;
    }
}

QString RunFollower::cancel()
{
    try {
        const auto store = ProjectStore::open(m_path.toStdString(), true);
        if (const auto run = store.run(m_run.id))
            m_run = *run;
    } catch (const std::exception &e) {
        return QString::fromStdString(e.what());
    }
    return QString::fromStdString(requestRunStop(m_run));
}

} // namespace polymoe::ui
