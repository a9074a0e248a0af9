// Benchmark of one MoE block's forward + backward (METHOD.md section 3): grouped dispatch in ATen
// (MoeBlockImpl::forwardGrouped) against the naive per-expert-mask LibTorch baseline (forwardMasked),
// with the achieved expert-matmul rate as a fraction of a large dense at::mm measured in the same run.
// On a CUDA device, when the build has the kernels, also the kernel dispatch (forwardKernels) and the
// kernels alone (moe_permute, moe_combine, moe_combine_backward) in GB/s beside the device's peak.
// A library function: the command that prints Markdown / JSON lives in the CLI. No LibTorch here.
//
// Usage:
//   auto results = polymoe::benchMoe({.repetitions = 5});      // demo and large shapes, fp32, CPU
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

struct MoeBenchShape {
    std::string name;        // label in the report
    int64_t dModel = 256;    // d_model, features per token
    int64_t dFfn = 688;      // SwiGLU intermediate features per expert
    int numExperts = 3;      // N
    int topK = 2;            // k
    int64_t tokens = 2048;   // T, tokens per forward (batch * seq)
};

// The demo model's shape (d 256, ffn 688, 3 experts, top-2, 2048 tokens) and a larger one
// (d 1024, ffn 2816, 8 experts, top-2, 4096 tokens).
std::vector<MoeBenchShape> defaultMoeBenchShapes();

struct MoeBenchOptions {
    std::vector<MoeBenchShape> shapes = defaultMoeBenchShapes(); // one result per shape
    int repetitions = 5;          // timed forward+backward passes per variant
    int warmup = 1;               // untimed passes first
    std::string device = "cpu";   // "cpu", "cuda", "cuda:1"...
    std::string dtype = "float32"; // "float32" | "bfloat16" | "float16": block, input and the dense mm
    int64_t denseSize = 2048;     // the reference at::mm is (denseSize x denseSize) @ (denseSize x denseSize)
    bool runMasked = true;        // false skips the baseline (its fields stay 0)
    uint64_t seed = 0;            // weights and inputs
};

struct MoeBenchResult {
    MoeBenchShape shape;
    std::string device;           // as run
    std::string dtype;            // as run
    int threads = 0;              // LibTorch intra-op threads during the run
    int repetitions = 0;
    double groupedTokensPerSecMean = 0, groupedTokensPerSecSd = 0; // forward+backward, tokens/s
    double groupedSecondsMean = 0; // mean time of one grouped forward+backward pass
    double maskedTokensPerSecMean = 0, maskedTokensPerSecSd = 0;
    double speedup = 0;           // grouped mean / masked mean tokens/s
    // Expert matmul FLOPs actually done per pass: 18 * d * ffn per (token, expert) pair computed
    // (3 matmuls of 2*d*ffn forward, twice that backward): T*k pairs grouped, T*N pairs masked.
    double groupedGflops = 0, maskedGflops = 0; // achieved, GFLOP/s, at the mean time
    double denseGflops = 0;       // the large at::mm, GFLOP/s, mean over the repetitions
    double groupedFractionOfDense = 0, maskedFractionOfDense = 0; // achieved / dense
    double routedSharePerExpertMax = 0; // largest expert's share of the T*k slots (1/N = perfectly even)
    // CUDA with the kernels only (kernelsRan); otherwise 0.
    bool kernelsRan = false;
    double kernelsTokensPerSecMean = 0, kernelsTokensPerSecSd = 0; // forwardKernels, forward+backward
    double kernelsGflops = 0, kernelsFractionOfDense = 0;
    double kernelsSpeedupOverGrouped = 0; // kernels mean / ATen grouped mean tokens/s
    // The kernels alone, GB/s of the bytes they must move (rows read + written), mean and sd.
    double permuteGBsMean = 0, permuteGBsSd = 0;   // moe_permute: counting sort + gather (one host sync)
    double combineGBsMean = 0, combineGBsSd = 0;   // moe_combine forward
    double combineBackwardGBsMean = 0, combineBackwardGBsSd = 0;
    double peakGBs = 0;           // the device's peak memory bandwidth
    std::string deviceName;       // "NVIDIA H200" (CUDA only)
};

// Throws ConfigError for an unknown device or dtype, Cancelled when `stop` is requested (checked
// between passes).
std::vector<MoeBenchResult> benchMoe(const MoeBenchOptions &options, std::stop_token stop = {});

} // namespace polymoe
