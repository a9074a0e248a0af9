// The end of a recorded training run (see run_record.h).
#include "run_record.h"

#include "distributed_ops.h"
#include "polymoe/distributed.h"
#include "polymoe/error.h"
#include "polymoe/run_liveness.h"

#include <nlohmann/json.hpp>

namespace polymoe {

namespace {

// Whether a live process holds the run (here, or on another host with a recent heartbeat).
bool heldByALiveProcess(const RunRecord &run)
{
    const auto l = runLiveness(run);
    return l == RunLiveness::Alive || l == RunLiveness::Remote;
}

} // namespace

RunRecord runToResume(ProjectStore &store, const std::string &kind, const std::string &outputName)
{
    const int64_t id = dist::decideOnPrimary([&] {
        const auto run = store.unfinishedRun(kind, outputName);
        if (!run)
            throw ConfigError(store.path().string() + ": no unfinished " + kind + " run" +
                              (outputName.empty() ? "" : " making '" + outputName + "'") + " to resume");
        if (heldByALiveProcess(*run))
            throw ConfigError(store.path().string() + ": run " + std::to_string(run->id) + " is still running (process " +
                              std::to_string(run->pid.value_or(0)) + " on " + (run->host.empty() ? "this host" : run->host) +
                              "); stop it before resuming");
        return run->id;
    }, "the run to resume");
    const auto run = store.run(id);
    if (!run)
        throw ConfigError(store.path().string() + ": run " + std::to_string(id) + " is not in the project");
    return *run;
}

void addDistributedSettings(nlohmann::json &runConfig)
{
    runConfig["world_size"] = distributedWorldSize();
    if (!distributedBackend().empty())
        runConfig["dist_backend"] = distributedBackend();
    if (!distributedLaunchId().empty())
        runConfig["launch_id"] = distributedLaunchId();
}

bool resumeAfterRestart(ProjectStore &store, const std::string &kind, const std::string &outputName)
{
    if (distributedRestartCount() == 0 || distributedLaunchId().empty())
        return false;
    return dist::decideOnPrimary([&]() -> int64_t {
        const auto run = store.unfinishedRun(kind, outputName);
        if (!run)
            return 0;
        const auto config = nlohmann::json::parse(run->config, nullptr, false);
        if (!config.is_object() || config.value("launch_id", std::string()) != distributedLaunchId())
            return 0;
        return heldByALiveProcess(*run) ? 0 : 1;
    }, "whether to resume after the restart") != 0;
}

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
