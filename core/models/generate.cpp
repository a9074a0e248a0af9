// Sampling loop over CausalLM logits; the random draw uses its own 64-bit generator so a seed gives
// the same tokens whatever LibTorch's global generator state.
#include "models/generate.h"

#include "polymoe/error.h"
#include "polymoe/progress.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace polymoe {

namespace {

int64_t argmax(const std::vector<double> &v)
{
    return std::max_element(v.begin(), v.end()) - v.begin(); // first maximum
}

int64_t sample(std::vector<double> logits, double temperature, int64_t topK, std::mt19937_64 &rng)
{
    const auto n = static_cast<int64_t>(logits.size());
    if (topK > 0 && topK < n) {
        std::vector<double> sorted = logits;
        std::nth_element(sorted.begin(), sorted.begin() + (topK - 1), sorted.end(), std::greater<>());
        const double kth = sorted[static_cast<size_t>(topK - 1)];
        for (double &l : logits) {
            if (l < kth)
                l = -std::numeric_limits<double>::infinity();
        }
    }
    const double maxLogit = *std::max_element(logits.begin(), logits.end());
    double total = 0.0;
    for (double &l : logits) {
        l = std::exp((l - maxLogit) / temperature);
        total += l;
    }
    // uniform in [0, total) from the top 53 bits, the same on every platform
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    double acc = 0.0;
    int64_t last = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (logits[static_cast<size_t>(i)] <= 0.0)
            continue;
        acc += logits[static_cast<size_t>(i)];
        last = i;
        if (u < acc)
            return i;
    }
    return last; // rounding left u at the very end
}

} // namespace

std::vector<int64_t> generate(CausalLM &model, const std::vector<int64_t> &promptIds, int64_t maxNewTokens,
                              double temperature, int64_t topK, uint64_t seed, int64_t stopTokenId,
                              std::stop_token stop)
{
    const ModelConfig &config = model->config();
    if (promptIds.empty())
        throw ConfigError("generate: the prompt is empty");
    for (size_t i = 0; i < promptIds.size(); ++i) {
        if (promptIds[i] < 0 || promptIds[i] >= config.vocabSize)
            throw ConfigError("generate: prompt token " + std::to_string(i) + " = " + std::to_string(promptIds[i]) +
                              " outside the vocabulary of " + std::to_string(config.vocabSize));
    }
    if (maxNewTokens < 0 || !(temperature >= 0.0) || topK < 0)
        throw ConfigError("generate: maxNewTokens, temperature and topK must not be negative");
    if (maxNewTokens > kMaxNewTokens)
        throw ConfigError("generate: at most " + std::to_string(kMaxNewTokens) + " new tokens, not " +
                          std::to_string(maxNewTokens));

    const at::NoGradGuard noGrad;
    const bool wasTraining = model->is_training();
    model->eval();
    const at::Device device = model->parameters().front().device();
    std::mt19937_64 rng(seed);
    std::vector<int64_t> context = promptIds;
    std::vector<int64_t> generated;
    generated.reserve(static_cast<size_t>(std::min<int64_t>(maxNewTokens, 4096)));
    try {
        while (static_cast<int64_t>(generated.size()) < maxNewTokens) {
            throwIfStopped(stop);
            const auto window = std::min<int64_t>(static_cast<int64_t>(context.size()), config.maxPositionEmbeddings);
            const at::Tensor ids =
                at::tensor(std::vector<int64_t>(context.end() - window, context.end()), at::kLong).view({1, window}).to(device);
            const at::Tensor hidden = model->forwardHidden(ids).select(1, window - 1); // (1, d)
            const at::Tensor logits = model->logitsFromHidden(hidden).view({-1}).to(at::kCPU, at::kDouble).contiguous();
            std::vector<double> values(logits.data_ptr<double>(), logits.data_ptr<double>() + logits.numel());
            const int64_t next = temperature == 0.0 ? argmax(values) : sample(std::move(values), temperature, topK, rng);
            generated.push_back(next);
            context.push_back(next);
            if (next == stopTokenId)
                break;
        }
    } catch (...) {
        model->train(wasTraining);
        throw;
    }
    model->train(wasTraining);
    return generated;
}

} // namespace polymoe
