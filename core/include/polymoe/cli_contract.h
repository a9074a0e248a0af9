// The contract between the `polymoe` command-line tool and the programs that run it as a child (the
// workbench, scripts): its exit codes and the events of `--progress json`. The CLI writes these names
// and the workbench reads them, both from here. No Qt, no LibTorch.
#pragma once

namespace polymoe::cli {

// Exit codes shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // the job failed; the message is on stderr
inline constexpr int kExitUsage = 2;     // wrong arguments; the command's usage is on stderr
inline constexpr int kExitCancelled = 3; // stopped by SIGINT/SIGTERM; the last checkpoint stays valid

// `--progress json`: one JSON object per line on stdout, its kind under kEvent.
namespace event {
inline constexpr char kEvent[] = "event";

// A training step: {"event": "train", "kind", "step", "total", "loss", "lr", "tokens_per_s",
// "elapsed_s", "eta_s", "metrics": {name: value}}.
inline constexpr char kTrain[] = "train";
inline constexpr char kKind[] = "kind"; // pretrain, finetune, stage1, stage2
inline constexpr char kStep[] = "step";
inline constexpr char kTotal[] = "total";
inline constexpr char kLoss[] = "loss";
inline constexpr char kLr[] = "lr";
inline constexpr char kTokensPerSecond[] = "tokens_per_s";
inline constexpr char kElapsedSeconds[] = "elapsed_s";
inline constexpr char kEtaSeconds[] = "eta_s";
inline constexpr char kMetrics[] = "metrics";

// Any other long work: {"event": "progress", "stage", "done", "total", "unit"[, "message"]}.
inline constexpr char kProgress[] = "progress";
inline constexpr char kStage[] = "stage";
inline constexpr char kDone[] = "done";
inline constexpr char kUnit[] = "unit";
inline constexpr char kMessage[] = "message";
} // namespace event

} // namespace polymoe::cli
