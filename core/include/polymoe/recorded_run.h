// What a recorded run was started with, read back from its stored settings (RunRecord::config), for
// the front ends that show, follow or resume it. The JSON keys of those settings stay inside core:
// the jobs that write them (dense_jobs.cpp, expansion_stage_run.cpp) read them here too.
#pragma once

#include "polymoe/expansion_jobs.h"
#include "polymoe/training.h"

#include <string>

namespace polymoe {

// The training settings of any run (its "train" object; defaults where there is none). Throws
// FormatError naming `where` when the text is not a run's settings.
TrainConfig recordedTrainConfig(const std::string &runConfig, const std::string &where);

// An expansion-stage run's spec: the stage (from "train"'s kind where the run records no expansion
// settings), the model it started from, its allocation, coefficients and output name, and its
// training settings. Throws FormatError naming `where`.
ExpansionStageSpec recordedStageSpec(const std::string &runConfig, const std::string &where);

// The number of data-parallel processes the run trained with (1 where it records none). Throws
// FormatError naming `where`.
int recordedWorldSize(const std::string &runConfig, const std::string &where);

} // namespace polymoe
