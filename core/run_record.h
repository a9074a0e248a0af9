// How a training run ends in the project store (runs table), shared by the dense jobs and the
// expansion stages: "completed" with its output model's row, "cancelled" (resumable from its
// checkpoint) or "failed" with the message.
//
// Usage:
//   recordRun(store, runId, runDir, [&] {
//       out.train = runTraining(loop, status, stop);
//       const ModelRecord rec = completeRun(store, runId, out.train.checkpoint,
//                                           [&] { return saveProjectModel(store, *model, ...); });
//   });
#pragma once

#include "polymoe/project_store.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace polymoe {

// The unfinished run of `kind` (making `outputName`, when given) that --resume continues, with its
// stored row. Rank 0 of a data-parallel run picks it and tells the others (on them the liveness
// check would see rank 0 itself). Throws ConfigError when there is none, or when it is still running.
RunRecord runToResume(ProjectStore &store, const std::string &kind, const std::string &outputName);

// A new run's data-parallel settings, into its config: world_size, and once a group is joined
// dist_backend and, under torchrun, launch_id (distributedLaunchId: resumeAfterRestart continues
// only a run of the same torchrun job).
void addDistributedSettings(nlohmann::json &runConfig);

// Whether a run started without --resume continues an unfinished one all the same: after torchrun
// restarted the ranks (--max-restarts; distributedRestartCount() > 0), the newest unfinished run of
// `kind` (making `outputName`, when given) when this torchrun job started it (its launch_id) and no
// live process holds it, as an elastic job expects, so that a restart goes on from the last
// checkpoint instead of starting over. Another job's unfinished run is never taken. Rank 0 decides.
bool resumeAfterRestart(ProjectStore &store, const std::string &kind, const std::string &outputName);

// Runs `body` (training, then completeRun) for the run `runId` and records a run it leaves by an
// exception: Cancelled as "cancelled" (resume with --resume; the checkpoint in runDir/checkpoint),
// anything else as "failed" with its message. The exception is rethrown.
void recordRun(ProjectStore &store, int64_t runId, const std::filesystem::path &runDir, const std::function<void()> &body);

// Saves the output model (`saveModel` adds its row) and marks the run "completed" in one
// transaction: a run killed in between is never left unfinished beside its own output model (a
// resume would then refuse the name). Returns the model's row.
ModelRecord completeRun(ProjectStore &store, int64_t runId, const std::string &checkpoint,
                        const std::function<ModelRecord()> &saveModel);

} // namespace polymoe
