// The end of a recorded training run (see run_record.h).
#include "run_record.h"

#include "polymoe/error.h"

namespace polymoe {

void recordRun(ProjectStore &store, int64_t runId, const std::filesystem::path &runDir, const std::function<void()> &body)
{
    try {
        body();
    } catch (const Cancelled &) {
        store.finishRun(runId, "cancelled", "stopped by the user; resume with --resume", std::nullopt,
                        (runDir / "checkpoint").string());
        throw;
    } catch (const std::exception &e) {
        store.finishRun(runId, "failed", e.what());
        throw;
    }
}

ModelRecord completeRun(ProjectStore &store, int64_t runId, const std::string &checkpoint,
                        const std::function<ModelRecord()> &saveModel)
{
    ModelRecord rec;
    store.transaction([&] {
        rec = saveModel();
        store.finishRun(runId, "completed", "", rec.id, checkpoint);
    });
    return rec;
}

} // namespace polymoe
