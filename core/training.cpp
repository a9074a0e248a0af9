// Training settings: dtype and thread resolution, JSON round trip.
#include "polymoe/training.h"

#include "polymoe/error.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace polymoe {

namespace {
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

double bitsPerUnit(double loss, int64_t tokens, double units)
{
    if (!(units > 0) || tokens <= 0 || !std::isfinite(loss))
        return std::nan("");
    return loss * double(tokens) / std::log(2.0) / units;
}

std::string resolveDtype(const std::string &requested, bool cuda)
{
    if (requested == "fp32" || (requested == "bf16" && !cuda))
        return requested;
    if (requested != "auto" && requested != "bf16")
        throw ConfigError("training dtype must be auto, fp32 or bf16, not '" + requested + "'");
    if (cuda && requested == "bf16")
        throw ConfigError("training dtype bf16 is implemented for the CPU only (autocast); use fp32 on a CUDA device");
    if (cuda)
        return "fp32";
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
                        {"language_weights", c.languageWeights}, {"eval_tokens", c.evalTokens}};
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
