// Checkpoint export (METHOD.md section 8: an exported model must load in Hugging Face transformers).
// Plain structs only: the CLI and the GUI include this without LibTorch.
//
// Usage:
//   polymoe::ExportSpec spec{.outDir = "out/my-model"};          // newest expanded model, format auto
//   polymoe::ExportOutcome o = polymoe::exportModel(store, spec, progress, stop);
//   // out/my-model/polymoe/  : model_type "polymoe", remote code (configuration_/modeling_polymoe.py)
//   // out/my-model/mixtral/  : a stock MixtralForCausalLM folder, when o.mixtralReason is empty
//
// Folder layout by format: "polymoe" or "mixtral" writes that one folder at outDir itself; "auto"
// writes outDir/polymoe always and outDir/mixtral when applicable. Everything is written to a
// temporary sibling folder and renamed into place: a failed or cancelled export leaves nothing.
// An existing outDir that is not empty is refused unless `force` (then it is replaced at the end).
#pragma once

#include "polymoe/progress.h"

#include <cstdint>
#include <filesystem>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

class ProjectStore;

struct ExportSpec {
    std::string model{};            // project model name; empty: the newest "expanded" model, else the newest
    std::filesystem::path outDir{}; // the folder to create
    std::string format = "auto";    // "auto" | "polymoe" | "mixtral"
    std::string dtype = "float32";  // stored weights: "float32" | "bfloat16" | "float16"
    bool force = false;             // replace a non-empty outDir
};

struct ExportedFolder {
    std::string format;             // "polymoe" or "mixtral"
    std::filesystem::path dir;      // where it lies now
    int64_t tensors = 0;            // tensors in its model.safetensors
    int64_t bytes = 0;              // size of all its files
};

struct ExportOutcome {
    std::string modelName;          // the project model exported (empty for a plain folder)
    std::filesystem::path sourceDir; // the model folder read
    std::filesystem::path outDir;
    std::string baseModelType;      // "llama" | "mistral" | "qwen2"
    std::vector<int> experts;       // N_i per layer; empty for a dense model
    int topK = 0;                   // 0 for a dense model
    std::vector<int> classifierLayers;
    std::string dtype;
    std::vector<ExportedFolder> folders;
    std::string mixtralReason;      // why no Mixtral folder was written; empty when one was
};

// Exports a model of the project (see ExportSpec for the choice and the layout).
// Throws ConfigError (no such model, wrong format or dtype, Mixtral asked for but not applicable),
// IoError (outDir not empty, write failures), Cancelled.
ExportOutcome exportModel(ProjectStore &store, const ExportSpec &spec, const ProgressFn &progress = {},
                          std::stop_token stop = {});

// The same from a model folder (as saveModelFolder writes it, or a PolyMoE export); spec.model is ignored.
ExportOutcome exportModelFolder(const std::filesystem::path &modelDir, const ExportSpec &spec,
                                const ProgressFn &progress = {}, std::stop_token stop = {});

// Why a model of this shape cannot be a stock MixtralForCausalLM, or "" when it can: every layer
// the same N >= 2 experts, a llama or mistral base (no q/k/v biases), no old/new classifier.
std::string mixtralNotApplicableReason(const std::string &baseModelType, const std::vector<int> &expertsPerLayer,
                                       const std::vector<int> &classifierLayers);

} // namespace polymoe
