// Engine work off the GUI thread: one worker thread per job, one task at a time, cancelled by
// request_stop() on a std::stop_source the job (GUI thread) owns. The similarity analysis, the
// new-project wizard and the token inspector run their engine calls through it.
#pragma once

#include "polymoe/progress.h"

#include <QObject>
#include <QString>

#include <functional>
#include <stop_token>

class QThread;

namespace polymoe::ui {

class WorkerJob : public QObject {
    Q_OBJECT
public:
    // What a task hands back to the GUI thread when it succeeds: run there, after the task.
    using Done = std::function<void()>;
    // Runs in the worker thread. Throws polymoe::Error (Cancelled when stop was requested) or any
    // std::exception; progress may be called often, updates reach the GUI about 10 times a second.
    using Task = std::function<Done(std::stop_token stop, const ProgressFn &progress)>;

    explicit WorkerJob(const QString &threadName, QObject *parent = nullptr);
    ~WorkerJob() override; // requests a stop and waits for the task to return

    // Queues the task; false (and nothing queued) while an earlier one is still running.
    bool run(Task task);
    void cancel(); // from the GUI thread: request_stop()
    bool isRunning() const { return m_running; }

Q_SIGNALS:
    void progress(const QString &stage, qint64 done, qint64 total);
    void failed(const QString &message);
    void cancelled();

private:
    QThread *m_thread = nullptr;
    QObject *m_context = nullptr; // lives in m_thread: tasks are queued to it
    std::stop_source m_stop;
    bool m_running = false;
};

} // namespace polymoe::ui
