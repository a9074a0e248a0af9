// The `polymoe` command-line tool as a child process: long jobs (the demo, training) run there, so
// the GUI stays responsive and a crash in the engine cannot take the window down. Stdout carries
// one JSON object per line (--progress json); stderr is the log.
#pragma once

#include "polymoe/cli_contract.h"

#include <QJsonObject>
#include <QObject>
#include <QProcess>
#include <QStringList>

namespace polymoe::ui {

class CliProcess : public QObject {
    Q_OBJECT
public:
    explicit CliProcess(QObject *parent = nullptr);
    ~CliProcess() override;

    // The polymoe binary: $POLYMOE_CLI if set, else next to this executable.
    static QString executable();

    void start(const QStringList &arguments);
    bool isRunning() const;
    qint64 processId() const; // 0 when not running
    // Asks the job to stop at its next step (SIGTERM; the CLI handles SIGINT and SIGTERM alike,
    // keeps its checkpoint and exits with code 3).
    void stop();
    // Lets the child run on after this object (and the window) are gone: no more signals from it,
    // and the destructor neither stops nor waits for it. The run goes on recording to the store,
    // where a reopened window finds it again (RunFollower); its output has no reader any more and
    // is dropped (the child ignores SIGPIPE).
    void detach();
    QStringList arguments() const { return m_arguments; }

Q_SIGNALS:
    void jsonEvent(const QJsonObject &event);
    void outputLine(const QString &line);   // stdout lines that are not JSON
    void logText(const QString &text);      // stderr
    void finished(int exitCode, bool crashed);
    void failedToStart(const QString &message);

private:
    void readStdout();

    QProcess *m_process = nullptr;
    QStringList m_arguments;
    bool m_detached = false;
    QByteArray m_pending;
};

// A field of a `--progress json` event, by its name in polymoe/cli_contract.h (cli::event::kStep...).
inline QJsonValue eventField(const QJsonObject &event, const char *name)
{
    return event.value(QLatin1String(name));
}

} // namespace polymoe::ui
