// The layer-similarity analysis (METHOD.md section 1) off the GUI thread (WorkerJob).
#pragma once

#include "worker_job.h"

namespace polymoe::ui {

class SimilarityJob : public WorkerJob {
    Q_OBJECT
public:
    explicit SimilarityJob(QObject *parent = nullptr) : WorkerJob(QStringLiteral("similarity"), parent) {}

    // Ignored while an analysis is running.
    void start(const QString &projectPath, const QString &model, qint64 tokensPerLanguage);

Q_SIGNALS:
    void finished(qint64 analysisId);
};

} // namespace polymoe::ui
