// A document-level (cluster) bootstrap of held-out perplexity: how much the figure depends on which
// documents happened to be held out. Held-out sets are small at demo scale (a dozen man pages carry
// most of a language's held-out characters), so a perplexity without its interval overstates what
// a single split can tell.
#pragma once

#include <cstdint>
#include <vector>

namespace polymoe {

struct PerplexityInterval {
    double low = 0, high = 0; // NaN when fewer than two documents have targets
};

// docLoss[i]: summed next-token cross-entropy (nats) of document i's targets, docTargets[i] their
// number. Resamples the documents with replacement `resamples` times (a fixed seed: the same input
// gives the same interval), computes exp(sum loss / sum targets) for each resample and returns the
// (1-level)/2 and (1+level)/2 quantiles (linear interpolation between order statistics).
PerplexityInterval bootstrapPerplexity(const std::vector<double> &docLoss, const std::vector<int64_t> &docTargets,
                                       int resamples = 1000, double level = 0.95, uint64_t seed = 1);

} // namespace polymoe
