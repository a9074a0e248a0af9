// Training settings: dtype and thread resolution, JSON round trip.
#include "polymoe/training.h"

#include "polymoe/distributed.h"
#include "polymoe/error.h"

#ifdef POLYMOE_HAVE_KERNELS
#include "device_info.cuh"
#endif

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace polymoe {

namespace {
// bf16 tensor cores: compute capability 8.0 (Ampere) and later. Read off the device where the build
// has the kernels' device query; a CUDA build without it assumes a current GPU (--dtype fp32 for an
// older one).
bool cudaHasBf16()
{
#if POLYMOE_HAVE_KERNELS
    try {
        return kernels::deviceInfo(0).computeMajor >= 8;
    } catch (const std::exception &) {
        return false;
    }
#else
    return true;
#endif
}

bool cpuHasBf16()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("flags", 0) == 0)
            return line.find("avx512_bf16") != std::string::npos || line.find("amx_bf16") != std::string::npos;
    return false;
}
} // namespace

void validateTrainConfig(const TrainConfig &c)
{
    const auto fail = [](const std::string &what) { throw ConfigError("training settings: " + what); };
    const auto inRange = [&](const char *name, int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            fail(std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                 ", not " + std::to_string(v));
    };
    const auto real = [&](const char *name, double v, double lo, double hi, bool openHigh = false) {
        if (!std::isfinite(v) || v < lo || v > hi || (openHigh && v == hi))
            fail(std::string(name) + " must be a finite number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                 (openHigh ? ")" : "]") + ", not " + std::to_string(v));
    };
    constexpr int64_t kMaxSequences = int64_t(1) << 20, kMaxSeqLen = int64_t(1) << 20;
    constexpr int64_t kMaxTokensPerStep = int64_t(1) << 28, kMaxSteps = int64_t(1) << 40;
    inRange("seq_len", c.seqLen, 2, kMaxSeqLen);
    inRange("batch_size", c.batchSize, 1, kMaxSequences);
    inRange("grad_accum", c.gradAccum, 1, kMaxSequences);
    // All three are bounded above, so the product cannot overflow.
    if (c.batchSize * c.gradAccum * c.seqLen > kMaxTokensPerStep)
        fail("batch_size x grad_accum x seq_len = " + std::to_string(c.batchSize * c.gradAccum * c.seqLen) +
             " tokens per process and step, more than " + std::to_string(kMaxTokensPerStep));
    inRange("steps", c.steps, 1, kMaxSteps);
    inRange("warmup_steps", c.warmupSteps, 0, kMaxSteps);
    inRange("log_every", c.logEvery, 1, kMaxSteps);
    inRange("checkpoint_every", c.checkpointEvery, 0, kMaxSteps);
    inRange("eval_tokens", c.evalTokens, 0, int64_t(1) << 40);
    inRange("threads", c.threads, 0, 4096);
    if (!std::isfinite(c.lr) || !(c.lr > 0) || c.lr > 100)
        fail("lr must be a finite number in (0, 100], not " + std::to_string(c.lr));
    real("min_lr_ratio", c.minLrRatio, 0, 1);
    real("weight_decay", c.weightDecay, 0, 1e6);
    real("beta1", c.beta1, 0, 1, true);
    real("beta2", c.beta2, 0, 1, true);
    if (!std::isfinite(c.eps) || !(c.eps > 0) || c.eps > 1)
        fail("eps must be a finite number in (0, 1], not " + std::to_string(c.eps));
    real("grad_clip", c.gradClip, 0, 1e12);
    double total = 0;
    for (const auto &[code, w] : c.languageWeights) {
        if (!std::isfinite(w) || w < 0)
            fail("the weight of language '" + code + "' must be a finite number >= 0, not " + std::to_string(w));
        total += w;
    }
    if (!c.languageWeights.empty() && !(total > 0))
        fail("the language weights are all 0: no language to train on");
}

int64_t sequencesPerStep(const TrainConfig &c)
{
    return c.batchSize * c.gradAccum * distributedWorldSize();
}

double bitsPerUnit(double loss, int64_t tokens, double units)
{
    if (!(units > 0) || tokens <= 0 || !std::isfinite(loss))
        return std::nan("");
    return loss * double(tokens) / std::log(2.0) / units;
}

std::string resolveDtype(const std::string &requested, bool cuda)
{
    if (requested == "fp32" || requested == "bf16")
        return requested;
    if (requested != "auto")
        throw ConfigError("training dtype must be auto, fp32 or bf16, not '" + requested + "'");
    if (cuda)
        return cudaHasBf16() ? "bf16" : "fp32";
    static const bool bf16 = cpuHasBf16();
    return bf16 ? "bf16" : "fp32";
}

int setTrainingThreads(int requested)
{
    int n = requested;
    if (n <= 0) {
        if (const char *env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0)
            n = std::atoi(env);
        else
            n = int(std::max(1u, std::thread::hardware_concurrency()));
    }
    at::set_num_threads(n);
    return n;
}

std::string trainConfigToJson(const TrainConfig &c)
{
    nlohmann::json j = {{"kind", c.kind}, {"seq_len", c.seqLen}, {"batch_size", c.batchSize},
                        {"grad_accum", c.gradAccum}, {"steps", c.steps}, {"lr", c.lr},
                        {"min_lr_ratio", c.minLrRatio}, {"warmup_steps", c.warmupSteps},
                        {"weight_decay", c.weightDecay}, {"beta1", c.beta1}, {"beta2", c.beta2}, {"eps", c.eps},
                        {"grad_clip", c.gradClip}, {"dtype", c.dtype}, {"device", c.device}, {"seed", c.seed},
                        {"log_every", c.logEvery}, {"checkpoint_every", c.checkpointEvery},
                        {"language_weights", c.languageWeights}, {"eval_tokens", c.evalTokens},
                        {"checkpoint_activations", c.checkpointActivations}};
    return j.dump();
}

TrainConfig trainConfigFromJson(const std::string &json, const std::string &where)
{
    const auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw FormatError(where + ": training settings are not a JSON object");
    TrainConfig c;
    try {
        auto get = [&](const char *key, auto &field) {
            if (j.contains(key))
                field = j.at(key).get<std::decay_t<decltype(field)>>();
        };
        get("kind", c.kind);
        get("seq_len", c.seqLen);
        get("batch_size", c.batchSize);
        get("grad_accum", c.gradAccum);
        get("checkpoint_activations", c.checkpointActivations);
        get("steps", c.steps);
        get("lr", c.lr);
        get("min_lr_ratio", c.minLrRatio);
        get("warmup_steps", c.warmupSteps);
        get("weight_decay", c.weightDecay);
        get("beta1", c.beta1);
        get("beta2", c.beta2);
        get("eps", c.eps);
        get("grad_clip", c.gradClip);
        get("dtype", c.dtype);
        get("device", c.device);
        get("threads", c.threads);
        get("seed", c.seed);
        get("log_every", c.logEvery);
        get("checkpoint_every", c.checkpointEvery);
        get("language_weights", c.languageWeights);
        get("eval_tokens", c.evalTokens);
    } catch (const nlohmann::json::exception &e) {
        throw FormatError(where + ": training settings: " + e.what());
    }
    for (const auto &[k, v] : j.items())
        if (trainConfigToJson(TrainConfig{}).find("\"" + k + "\"") == std::string::npos && k != "threads")
            throw ConfigError(where + ": unknown training setting '" + k + "'");
    return c;
}

} // namespace polymoe
