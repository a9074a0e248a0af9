// Child-process runner for the polymoe CLI with JSON-lines parsing.
#include "cli_process.h"

#include <QCoreApplication>
#include <QDir>
#include <QJsonDocument>
#include <QProcessEnvironment>

#include <csignal>

namespace polymoe::ui {

CliProcess::CliProcess(QObject *parent) : QObject(parent), m_process(new QProcess(this))
{
    // A child whose window went away (crashed, killed) must not die of SIGPIPE on its next progress
    // line: with the signal ignored the write fails, the run goes on in the store and a new window
    // re-attaches to it.
    m_process->setChildProcessModifier([] { std::signal(SIGPIPE, SIG_IGN); });
    connect(m_process, &QProcess::readyReadStandardOutput, this, &CliProcess::readStdout);
    connect(m_process, &QProcess::readyReadStandardError, this,
            [this] { Q_EMIT logText(QString::fromUtf8(m_process->readAllStandardError())); });
    connect(m_process, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        readStdout();
        if (!m_pending.trimmed().isEmpty())
            Q_EMIT outputLine(QString::fromUtf8(m_pending));
        m_pending.clear();
        Q_EMIT finished(code, status == QProcess::CrashExit);
    });
    connect(m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart)
            Q_EMIT failedToStart(tr("cannot start %1: %2").arg(m_process->program(), m_process->errorString()));
    });
}

void CliProcess::detach()
{
    if (!isRunning())
        return;
    m_process->disconnect(this);
    m_detached = true;
}

CliProcess::~CliProcess()
{
    if (m_detached) {
        // Deleting a running QProcess kills its child: leave it undeleted on purpose (one small
        // object, only when the window quits with a run going on).
        m_process->setParent(nullptr);
        return;
    }
    if (isRunning()) {
        m_process->terminate();
        if (!m_process->waitForFinished(5000))
            m_process->kill();
        m_process->waitForFinished(1000);
    }
}

QString CliProcess::executable()
{
    const QString env = qEnvironmentVariable("POLYMOE_CLI");
    if (!env.isEmpty())
        return env;
    return QDir(QCoreApplication::applicationDirPath()).filePath("polymoe");
}

void CliProcess::start(const QStringList &arguments)
{
    m_arguments = arguments;
    m_pending.clear();
    m_process->start(executable(), arguments);
}

qint64 CliProcess::processId() const
{
    return m_process->processId();
}

bool CliProcess::isRunning() const
{
    return m_process->state() != QProcess::NotRunning;
}

void CliProcess::stop()
{
    if (isRunning())
        m_process->terminate();
}

void CliProcess::readStdout()
{
    m_pending += m_process->readAllStandardOutput();
    for (qsizetype nl; (nl = m_pending.indexOf('\n')) >= 0;) {
        const QByteArray line = m_pending.left(nl).trimmed();
        m_pending.remove(0, nl + 1);
        if (line.isEmpty())
            continue;
        QJsonParseError err;
        const QJsonDocument doc = QJsonDocument::fromJson(line, &err);
        if (err.error == QJsonParseError::NoError && doc.isObject())
            Q_EMIT jsonEvent(doc.object());
        else
            Q_EMIT outputLine(QString::fromUtf8(line));
    }
}

} // namespace polymoe::ui
