// Held-out perplexity per language.
#include "evaluation.h"

#include "bootstrap.h"
#include "distributed_ops.h"
#include "polymoe/distributed.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cmath>

namespace polymoe {

std::vector<PerplexityRow> evaluatePerplexity(CausalLMImpl &model, const std::vector<LanguageStream> &heldout,
                                              int64_t seqLen, int64_t maxTokens, int64_t batchSize,
                                              const ProgressFn &progress, std::stop_token stop, bool acrossRanks)
{
    const int world = acrossRanks ? distributedWorldSize() : 1, rank = acrossRanks ? distributedRank() : 0;
    at::NoGradGuard noGrad;
    const bool wasTraining = model.is_training();
    model.eval();
    const auto device = model.parameters().front().device();
    std::vector<PerplexityRow> rows;
    int64_t done = 0;
    for (const auto &stream : heldout) {
        auto seqs = evaluationSequences(stream, seqLen, maxTokens);
        // Per document: summed loss and scored targets (targetDocument: a target belongs to the
        // document its token is in; a document's leading BOS is no target).
        std::vector<double> docLoss(std::max<size_t>(stream.documentEnds.size(), 1), 0.0);
        std::vector<int64_t> docTargets(docLoss.size(), 0);
        double sum = 0;
        int64_t count = 0;
        // Sequences of equal length go in batches; a short final one goes alone. Sequence k starts
        // at token k * seqLen of the stream (evaluationSequences).
        for (size_t i = 0, batch = 0; i < seqs.size(); ++batch) {
            if (world == 1)
                throwIfStopped(stop);
            size_t j = i;
            while (j < seqs.size() && int64_t(j - i) < batchSize && seqs[j].size() == seqs[i].size())
                ++j;
            if (int(batch % size_t(world)) != rank) { // another rank's batch
                i = j;
                continue;
            }
            std::vector<int64_t> flat;
            for (size_t k = i; k < j; ++k)
                flat.insert(flat.end(), seqs[k].begin(), seqs[k].end());
            const int64_t rowsN = int64_t(j - i), w = int64_t(seqs[i].size());
            const at::Tensor all = torch::from_blob(flat.data(), {rowsN, w}, at::kLong).clone().to(device);
            const at::Tensor logits = model.forward(all.slice(1, 0, w - 1)).to(at::kFloat);
            const at::Tensor losses = torch::nn::functional::cross_entropy(
                logits.reshape({-1, logits.size(-1)}), all.slice(1, 1, w).reshape({-1}),
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone)).to(at::kDouble).cpu().contiguous();
            const double *l = losses.data_ptr<double>();
            for (int64_t r = 0; r < rowsN; ++r)
                for (int64_t t = 0; t < w - 1; ++t) {
                    const int64_t pos = (int64_t(i) + r) * seqLen + 1 + t; // the target's place in the stream
                    const int64_t d = targetDocument(stream, pos);
                    if (d < 0)
                        continue;
                    const double x = l[r * (w - 1) + t];
                    docLoss[size_t(d)] += x;
                    ++docTargets[size_t(d)];
                    sum += x;
                    ++count;
                }
            i = j;
        }
        if (world > 1) { // the ranks' shares added up: every rank then has what one process would
            std::vector<double> packed(docLoss.begin(), docLoss.end());
            packed.insert(packed.end(), docTargets.begin(), docTargets.end());
            packed.push_back(sum);
            packed.push_back(double(count));
            std::vector<at::Tensor> t{at::tensor(packed, at::kDouble)};
            dist::allReduceSum(t, "the held-out evaluation of " + stream.language);
            const double *v = t[0].data_ptr<double>();
            const size_t D = docLoss.size();
            for (size_t d = 0; d < D; ++d) {
                docLoss[d] = v[d];
                docTargets[d] = int64_t(std::llround(v[D + d]));
            }
            sum = v[2 * D];
            count = int64_t(std::llround(v[2 * D + 1]));
        }
        PerplexityRow r;
        // The text covered: a document scored in part counts in proportion to its scored targets
        // (every token of a document after its BOS is a target: its text and its EOS).
        if (stream.documentCharacters.size() == stream.documentEnds.size() &&
            stream.documentBytes.size() == stream.documentEnds.size())
            for (size_t d = 0; d < stream.documentEnds.size(); ++d) {
                if (docTargets[d] == 0)
                    continue;
                const int64_t start = d == 0 ? 0 : stream.documentEnds[d - 1];
                const int64_t scorable = stream.documentEnds[d] - start - (stream.bos >= 0 ? 1 : 0);
                const double share = scorable > 0 ? std::min(1.0, double(docTargets[d]) / double(scorable)) : 0.0;
                r.characters += share * double(stream.documentCharacters[d]);
                r.bytes += share * double(stream.documentBytes[d]);
            }
        r.language = stream.language;
        r.group = stream.isNew ? "new" : "old";
        r.tokens = count;
        r.loss = count > 0 ? sum / double(count) : std::nan("");
        r.perplexity = std::exp(r.loss);
        r.documents = int64_t(std::count_if(docTargets.begin(), docTargets.end(), [](int64_t n) { return n > 0; }));
        const PerplexityInterval ci = bootstrapPerplexity(docLoss, docTargets);
        r.perplexityLow = ci.low;
        r.perplexityHigh = ci.high;
        rows.push_back(r);
        if (progress)
            progress({"evaluate", ++done, int64_t(heldout.size()), "languages", stream.language});
    }
    if (wasTraining)
        model.train();
    return rows;
}

} // namespace polymoe
