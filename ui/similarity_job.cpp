// Worker and controller for analyzeSimilarity.
#include "similarity_job.h"

#include "polymoe/error.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"

#include <QMetaObject>
#include <QThread>

#include <chrono>

namespace polymoe::ui {

void SimilarityWorker::run(const QString &projectPath, const QString &model, qint64 tokensPerLanguage, std::stop_token stop)
{
    // Exceptions never leave a slot (STYLE.md): failures become signals.
    try {
        auto store = ProjectStore::open(projectPath.toStdString());
        auto last = std::chrono::steady_clock::time_point{};
        const auto onProgress = [&](const Progress &p) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last < std::chrono::milliseconds(100) && !(p.total > 0 && p.done >= p.total))
                return; // about 10 updates a second
            last = now;
            Q_EMIT progress(QString::fromStdString(p.stage), p.done, p.total);
        };
        const auto result = analyzeSimilarity(store, model.toStdString(), tokensPerLanguage, onProgress, stop);
        Q_EMIT finished(result.id);
    } catch (const Cancelled &) {
        Q_EMIT cancelled();
    } catch (const std::exception &e) {
        Q_EMIT failed(QString::fromStdString(e.what()));
    } catch (...) {
        Q_EMIT failed(tr("unknown error"));
    }
}

SimilarityJob::SimilarityJob(QObject *parent) : QObject(parent), m_thread(new QThread(this)), m_worker(new SimilarityWorker)
{
    m_worker->moveToThread(m_thread);
    connect(m_thread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &SimilarityWorker::progress, this, &SimilarityJob::progress);
    connect(m_worker, &SimilarityWorker::finished, this, [this](qint64 id) {
        m_running = false;
        Q_EMIT finished(id);
    });
    connect(m_worker, &SimilarityWorker::failed, this, [this](const QString &m) {
        m_running = false;
        Q_EMIT failed(m);
    });
    connect(m_worker, &SimilarityWorker::cancelled, this, [this] {
        m_running = false;
        Q_EMIT cancelled();
    });
    m_thread->setObjectName("similarity");
    m_thread->start();
}

SimilarityJob::~SimilarityJob()
{
    m_stop.request_stop();
    m_thread->quit();
    m_thread->wait();
}

void SimilarityJob::start(const QString &projectPath, const QString &model, qint64 tokensPerLanguage)
{
    if (m_running)
        return;
    m_running = true;
    m_stop = std::stop_source();
    QMetaObject::invokeMethod(m_worker, [w = m_worker, projectPath, model, tokensPerLanguage, t = m_stop.get_token()] {
        w->run(projectPath, model, tokensPerLanguage, t);
    }, Qt::QueuedConnection);
}

void SimilarityJob::cancel()
{
    m_stop.request_stop();
}

} // namespace polymoe::ui
