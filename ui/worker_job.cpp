// The worker thread behind WorkerJob: exceptions never leave it (STYLE.md), they become signals.
#include "worker_job.h"

#include "polymoe/error.h"

#include <QMetaObject>
#include <QThread>

#include <chrono>
#include <filesystem>
#include <optional>

namespace polymoe::ui {

WorkerJob::WorkerJob(const QString &threadName, QObject *parent)
    : QObject(parent), m_thread(new QThread(this)), m_context(new QObject)
{
    m_context->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, m_context, &QObject::deleteLater);
    m_thread->setObjectName(threadName);
    m_thread->start();
}

WorkerJob::~WorkerJob()
{
    m_stop.request_stop();
    m_thread->quit();
    m_thread->wait(); // a running task sees the stop at its next check and returns (cleaning up)
}

bool WorkerJob::run(Task task)
{
    if (m_running)
        return false;
    m_running = true;
    m_stop = std::stop_source();
    QMetaObject::invokeMethod(m_context, [this, task = std::move(task), stop = m_stop.get_token()] {
        // Everything that reaches the GUI thread goes through queued calls on this job, so it is
        // dropped when the job is destroyed first.
        auto last = std::chrono::steady_clock::time_point{};
        const ProgressFn onProgress = [&](const Progress &p) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last < std::chrono::milliseconds(100) && !(p.total > 0 && p.done >= p.total))
                return; // about 10 updates a second
            last = now;
            QMetaObject::invokeMethod(this, [this, stage = QString::fromStdString(p.stage), d = p.done, t = p.total] {
                Q_EMIT progress(stage, d, t);
            }, Qt::QueuedConnection);
        };
        Done done;
        std::optional<QString> error;
        bool wasCancelled = false;
        try {
            done = task(stop, onProgress);
        } catch (const Cancelled &) {
            wasCancelled = true;
        } catch (const std::filesystem::filesystem_error &e) {
            error = QString("io: %1").arg(QString::fromLocal8Bit(e.what()));
        } catch (const std::exception &e) {
            error = QString::fromStdString(e.what());
        } catch (...) {
            error = tr("unknown error");
        }
        QMetaObject::invokeMethod(this, [this, done = std::move(done), error, wasCancelled] {
            m_running = false;
            if (wasCancelled)
                Q_EMIT cancelled();
            else if (error)
                Q_EMIT failed(*error);
            else if (done)
                done();
        }, Qt::QueuedConnection);
    }, Qt::QueuedConnection);
    return true;
}

void WorkerJob::cancel()
{
    m_stop.request_stop();
}

} // namespace polymoe::ui
