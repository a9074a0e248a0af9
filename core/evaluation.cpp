// Held-out perplexity per language.
#include "evaluation.h"

#include <torch/nn/functional/loss.h>

#include <cmath>

namespace polymoe {

std::vector<PerplexityRow> evaluatePerplexity(CausalLMImpl &model, const std::vector<LanguageStream> &heldout,
                                              int64_t seqLen, int64_t maxTokens, int64_t batchSize,
                                              const ProgressFn &progress, std::stop_token stop)
{
    at::NoGradGuard noGrad;
    const bool wasTraining = model.is_training();
    model.eval();
    const auto device = model.parameters().front().device();
    std::vector<PerplexityRow> rows;
    int64_t done = 0;
    for (const auto &stream : heldout) {
        auto seqs = evaluationSequences(stream, seqLen, maxTokens);
        double sum = 0;
        int64_t count = 0;
        // Sequences of equal length go in batches; a short final one goes alone.
        for (size_t i = 0; i < seqs.size();) {
            throwIfStopped(stop);
            size_t j = i;
            std::vector<int64_t> flat;
            while (j < seqs.size() && int64_t(j - i) < batchSize && seqs[j].size() == seqs[i].size()) {
                flat.insert(flat.end(), seqs[j].begin(), seqs[j].end());
                ++j;
            }
            const int64_t rowsN = int64_t(j - i), w = int64_t(seqs[i].size());
            const at::Tensor all = torch::from_blob(flat.data(), {rowsN, w}, at::kLong).clone().to(device);
            const at::Tensor logits = model.forward(all.slice(1, 0, w - 1)).to(at::kFloat);
            const at::Tensor loss = torch::nn::functional::cross_entropy(
                logits.reshape({-1, logits.size(-1)}), all.slice(1, 1, w).reshape({-1}),
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
            sum += loss.item<double>();
            count += rowsN * (w - 1);
            i = j;
        }
        PerplexityRow r;
        r.language = stream.language;
        r.group = stream.isNew ? "new" : "old";
        r.tokens = count;
        r.loss = count > 0 ? sum / double(count) : std::nan("");
        r.perplexity = std::exp(r.loss);
        rows.push_back(r);
        if (progress)
            progress({"evaluate", ++done, int64_t(heldout.size()), "languages", stream.language});
    }
    if (wasTraining)
        model.train();
    return rows;
}

} // namespace polymoe
