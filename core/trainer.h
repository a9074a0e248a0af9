// The training loop shared by pre-training, full fine-tuning and both expansion stages: AdamW with
// warm-up and cosine decay, gradient clipping and accumulation, a trainable mask, bf16 autocast,
// checkpoints every N steps, exact resume, progress, cancellation, metrics in the project store.
#pragma once

#include "autocast.h"
#include "models/llama.h"
#include "polymoe/training.h"
#include "sequence_batcher.h"

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <memory>
#include <stop_token>

#include <torch/optim/adamw.h>

namespace polymoe {

class ProjectStore;

// Computes the loss of one micro-batch. inputs/targets: (rows, seqLen) int64. Extra terms go into
// `metrics` (summed over micro-batches and averaged by the trainer for logging).
using LossFn = std::function<at::Tensor(const SequenceBatch &batch, const at::Tensor &inputs,
                                        const at::Tensor &targets, std::map<std::string, double> &metrics)>;

// The language-model loss: mean cross-entropy of next-token prediction.
at::Tensor languageModelLoss(CausalLMImpl &model, const at::Tensor &inputs, const at::Tensor &targets);

// What runTraining runs: the model, its trainable tensors, the data, the settings and the loss.
struct TrainLoopSpec {
    CausalLM model{nullptr};
    std::vector<std::pair<std::string, at::Tensor>> trainable; // (name, parameter); the rest is frozen
    // Trainable matrices of which only some rows train: name -> [rows] bool. Their gradient is masked
    // to those rows and they take no weight decay, so every other row stays as it was, bit for bit.
    std::map<std::string, at::Tensor> trainableRows;
    const SequenceBatcher *batcher = nullptr;
    TrainConfig config;
    LossFn loss;                          // empty: languageModelLoss
    std::filesystem::path checkpointDir;  // "<dir>/checkpoint" is written there
    ProjectStore *store = nullptr;        // metrics are recorded when set
    int64_t runId = 0;
    bool resume = false;                  // continue from checkpointDir's checkpoint
};

// Checks the settings (validateTrainConfig), the device and the dtype without touching the model,
// so that a job can refuse them before it records a run: throws ConfigError for a setting out of
// range, an unknown device or dtype, cuda without a visible CUDA device, and bf16 on CUDA. Returns
// whether training will run on CUDA.
bool checkTrainingDevice(const TrainConfig &c);

// Runs the job to config.steps. On cancellation it writes a checkpoint of the last finished step
// and throws Cancelled; a killed process resumes from its last periodic checkpoint.
TrainResult runTraining(TrainLoopSpec &job, const TrainStatusFn &status = {}, std::stop_token stop = {});

// Whether a trainable parameter takes AdamW's weight decay: matrices only, and not the token
// embedding, the routers (".mlp.gate.weight") or the old/new classifiers (".mlp.classifier.").
bool takesWeightDecay(const std::string &name, const at::Tensor &parameter);
// Freezes every parameter of the model, then opens the trainable ones (requires_grad), and returns
// those, in order: the mask a training step runs under.
std::vector<at::Tensor> trainOnly(torch::nn::Module &model, const std::vector<std::pair<std::string, at::Tensor>> &trainable);
// AdamW over the trainable parameters: one group with config.weightDecay (takesWeightDecay, and not
// the names in withoutDecay), one without; betas, eps and lr from the config.
std::unique_ptr<torch::optim::AdamW> makeOptimizer(const std::vector<std::pair<std::string, at::Tensor>> &trainable,
                                                   const TrainConfig &config,
                                                   const std::set<std::string> &withoutDecay = {});

// The learning rate at a step (1-based) under warm-up then cosine decay to minLrRatio * lr.
double scheduledLearningRate(const TrainConfig &c, int64_t step);

// Once per process: freed memory stays in the process's heap for the next allocation instead of going
// back to the kernel (glibc maps every block over 32 MB on its own and unmaps it when freed, so each
// training step page-faults its logits and activations in again: about a fifth of a SmolLM2 step on
// 2 cores, measured). The process keeps its peak memory until it ends.
void keepFreedMemoryForReuse();

// Clears the optimizer's gradients by dropping them (PyTorch 2's zero_grad(set_to_none=True)): the
// next backward hands its gradient buffers over instead of adding them to zeroed ones, and a
// parameter that the step did not reach keeps no gradient, so AdamW leaves it as it is.
void dropGradients(torch::optim::Optimizer &optimizer);

// True when a finished checkpoint exists in the folder.
bool hasCheckpoint(const std::filesystem::path &checkpointDir);

} // namespace polymoe
