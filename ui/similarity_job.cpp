// analyzeSimilarity in the worker thread.
#include "similarity_job.h"

#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"

namespace polymoe::ui {

void SimilarityJob::start(const QString &projectPath, const QString &model, qint64 tokensPerLanguage)
{
    run([this, path = projectPath.toStdString(), model = model.toStdString(), tokensPerLanguage](
            std::stop_token stop, const ProgressFn &progress) -> Done {
        auto store = ProjectStore::open(path);
        const int64_t id = analyzeSimilarity(store, model, tokensPerLanguage, progress, stop).id;
        return [this, id] { Q_EMIT finished(id); };
    });
}

} // namespace polymoe::ui
