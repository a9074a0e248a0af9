// The layer-similarity analysis (METHOD.md section 1) off the GUI thread: a worker living in a
// QThread, cancelled by request_stop() on a std::stop_source owned by the controller (GUI thread).
#pragma once

#include <QObject>
#include <QString>

#include <stop_token>

class QThread;

namespace polymoe::ui {

class SimilarityWorker : public QObject {
    Q_OBJECT
public:
    using QObject::QObject;

    // Runs in the worker thread (queued from SimilarityJob::start).
    void run(const QString &projectPath, const QString &model, qint64 tokensPerLanguage, std::stop_token stop);

Q_SIGNALS:
    void progress(const QString &stage, qint64 done, qint64 total);
    void finished(qint64 analysisId);
    void failed(const QString &message);
    void cancelled();
};

class SimilarityJob : public QObject {
    Q_OBJECT
public:
    explicit SimilarityJob(QObject *parent = nullptr);
    ~SimilarityJob() override;

    void start(const QString &projectPath, const QString &model, qint64 tokensPerLanguage);
    void cancel(); // from the GUI thread: request_stop()
    bool isRunning() const { return m_running; }

Q_SIGNALS:
    void progress(const QString &stage, qint64 done, qint64 total);
    void finished(qint64 analysisId);
    void failed(const QString &message);
    void cancelled();

private:
    QThread *m_thread = nullptr;
    SimilarityWorker *m_worker = nullptr;
    std::stop_source m_stop;
    bool m_running = false;
};

} // namespace polymoe::ui
