// Settings, progress and results of a training run, shared by pre-training, full fine-tuning and
// both expansion stages. Plain data: the CLI and the GUI use these without LibTorch headers.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace polymoe {

struct TrainConfig {
    std::string kind = "pretrain";  // "pretrain", "finetune", "stage1", "stage2"
    int64_t seqLen = 128;           // tokens per sequence
    int64_t batchSize = 16;         // sequences per micro-batch and process
    int64_t gradAccum = 1;          // micro-batches summed per step: a step sees world x gradAccum x batchSize
    int64_t steps = 800;            // optimiser steps
    double lr = 2e-3;               // peak learning rate
    double minLrRatio = 0.1;        // final learning rate as a share of the peak (cosine floor)
    int64_t warmupSteps = 40;       // linear warm-up
    double weightDecay = 0.1;       // AdamW, on matrices only (not norms, biases, embeddings)
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double gradClip = 1.0;          // global norm; 0 = off
    std::string dtype = "auto";     // "fp32", "bf16" (autocast on CPU or CUDA, fp32 master weights), "auto"
    std::string device = "cpu";     // "cpu", "cuda" (the current GPU), "auto" (cuda when one is visible)
    int threads = 0;                // intra-op threads; 0 = all cores (or OMP_NUM_THREADS)
    uint64_t seed = 1;              // initialisation and data order
    int64_t logEvery = 10;          // steps between recorded metrics
    int64_t checkpointEvery = 200;  // steps between checkpoints (and one at the end); 0 = end only
    std::map<std::string, double> languageWeights; // mixing weights by language code (train split)
    int64_t evalTokens = 65536;     // held-out tokens per language for perplexity (0 = all)
    bool checkpointActivations = false; // recompute each decoder layer in the backward pass (less memory)
};

// What a running job reports, about 10 times a second at most.
struct TrainStatus {
    std::string kind;
    int64_t step = 0, totalSteps = 0;
    double loss = 0;               // mean of the last logged steps
    double lr = 0;
    double tokensPerSecond = 0;
    double elapsedSeconds = 0, etaSeconds = 0;
    std::map<std::string, double> metrics; // extra losses ("balance", "lpr"...)
};
using TrainStatusFn = std::function<void(const TrainStatus &)>;

struct TrainResult {
    int64_t runId = 0;
    int64_t steps = 0;
    int64_t tokens = 0;
    double seconds = 0;
    double finalLoss = 0;
    std::string dtype;              // what ran: "fp32" or "bf16"
    std::string device;             // where it ran: "cpu" or "cuda:N"
    int threads = 0;
    int worldSize = 1;              // processes of a data-parallel run
    std::string checkpoint;         // the folder of the last checkpoint
    // Set when a resume found the newest checkpoint damaged and continued from the one before it
    // ("checkpoint.old"): what was wrong, and the step it went back to.
    std::string resumeNote;
};

struct PerplexityRow {
    std::string language;
    std::string group;   // "old" / "new"
    int64_t tokens = 0;
    double loss = 0;     // mean cross-entropy, nats per token
    double perplexity = 0;
    // 95% interval of the perplexity over which documents are held out (a document bootstrap);
    // NaN when fewer than two documents were evaluated.
    int64_t documents = 0;
    double perplexityLow = std::numeric_limits<double>::quiet_NaN();
    double perplexityHigh = std::numeric_limits<double>::quiet_NaN();
    // The text the scored tokens cover, in characters and UTF-8 bytes (a document scored in part
    // counts in proportion); 0 when the documents' sizes are unknown.
    double characters = 0, bytes = 0;
};

// Throws ConfigError naming the first setting out of range: sizes positive and bounded (at most
// 2^20 sequences of at most 2^20 tokens, 2^20 micro-batches, 2^28 tokens per process and step,
// 2^40 steps), every real number finite (learning rate > 0, betas in [0, 1), weight decay and
// clipping >= 0, the cosine floor in [0, 1]), threads 0-4096, language weights finite, >= 0 and not
// all 0. Run before a run is recorded, so a refused setting leaves nothing behind.
void validateTrainConfig(const TrainConfig &c);

// Sequences in one optimiser step: batch x accumulation x the data-parallel world size.
int64_t sequencesPerStep(const TrainConfig &c);

// Bits per character (or per byte) of `tokens` tokens at mean loss `loss` nats covering `units` of
// text: tokens * loss / ln 2 / units. Unlike per-token perplexity it compares languages and
// tokenizers with each other. NaN when units <= 0.
double bitsPerUnit(double loss, int64_t tokens, double units);

// Resolves "auto": on the CPU bf16 when it has AVX-512 BF16 instructions, on CUDA bf16 from compute
// capability 8.0 (Ampere) on; fp32 otherwise. bf16 means autocast (CPU or CUDA) with fp32 master
// weights and optimizer state.
std::string resolveDtype(const std::string &requested, bool cuda);
// Sets LibTorch's intra-op threads (PLATFORM.md trap 1); returns the number set.
int setTrainingThreads(int requested);

std::string trainConfigToJson(const TrainConfig &c);
TrainConfig trainConfigFromJson(const std::string &json, const std::string &where);

} // namespace polymoe
