// Document-level bootstrap of held-out perplexity.
#include "bootstrap.h"

#include "polymoe/error.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace polymoe {

PerplexityInterval bootstrapPerplexity(const std::vector<double> &docLoss, const std::vector<int64_t> &docTargets,
                                       int resamples, double level, uint64_t seed)
{
    if (docLoss.size() != docTargets.size())
        throw ConfigError("bootstrap: " + std::to_string(docLoss.size()) + " document losses but " +
                          std::to_string(docTargets.size()) + " target counts");
    if (resamples < 2 || !(level > 0 && level < 1))
        throw ConfigError("bootstrap: needs at least 2 resamples and a level in (0, 1)");
    std::vector<size_t> docs; // only documents with targets take part
    for (size_t i = 0; i < docTargets.size(); ++i)
        if (docTargets[i] > 0)
            docs.push_back(i);
    const double nan = std::nan("");
    if (docs.size() < 2)
        return {nan, nan};
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, docs.size() - 1);
    std::vector<double> ppl(static_cast<size_t>(resamples));
    for (auto &p : ppl) {
        double loss = 0;
        int64_t targets = 0;
        for (size_t k = 0; k < docs.size(); ++k) {
            const size_t d = docs[pick(rng)];
            loss += docLoss[d];
            targets += docTargets[d];
        }
        p = std::exp(loss / double(targets));
    }
    std::sort(ppl.begin(), ppl.end());
    const auto quantile = [&](double q) {
        const double x = q * double(ppl.size() - 1);
        const auto i = size_t(std::floor(x));
        const double f = x - double(i);
        return i + 1 < ppl.size() ? ppl[i] * (1 - f) + ppl[i + 1] * f : ppl[i];
    };
    return {quantile((1 - level) / 2), quantile((1 + level) / 2)};
}

} // namespace polymoe
