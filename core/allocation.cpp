// Expert allocation per layer (METHOD.md section 2): LayerMoE's rule, the budget Decision, uniform,
// validation, parameter counts, the "5,4,3" text form.
//
//   N_i = ceil( (1/S_i) / sum_j (1/S_j) * delta )     N_i counts all experts, the frozen original too
//
// Dissimilar layers (small S_i) get more experts. The papers pick delta by hand; here (a Decision)
// the user gives the budget B of new experts and delta is the largest for which sum_i (N_i - 1) <= B
// (each N_i only grows with delta: walking the deltas at which a layer gains an expert finds it
// exactly, layerMoeAllocationForBudget); any remainder goes one expert each to the least similar
// layers. An FFN expert adds 3 * d_model * d_ffn weights, a router N_i * d_model.
#include "polymoe/allocation.h"

#include "polymoe/error.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <queue>
#include <sstream>

namespace polymoe {

namespace {

// Quotients within this distance of an integer count as that integer (see layerMoeAllocation).
// They are at most a few hundred, where double rounding noise is ~1e-14: 1e-9 absorbs it and is far
// below any real difference between two layers' quotients.
constexpr double kIntegerEps = 1e-9;

void checkScores(const std::vector<double> &scores, const char *what)
{
    if (scores.empty())
        throw ConfigError(std::string(what) + ": no layer score given");
    for (size_t i = 0; i < scores.size(); ++i)
        if (!std::isfinite(scores[i]) || scores[i] <= 0.0) {
            std::ostringstream s;
            s << what << ": layer " << i << " has score " << scores[i]
              << "; the rule divides by S_i, every score must be finite and > 0";
            throw ConfigError(s.str());
        }
}

} // namespace

std::vector<double> scoresForLayerMoe(const std::vector<double> &scores, std::vector<int> *adjusted)
{
    double floor = 0.0;
    for (double s : scores)
        if (std::isfinite(s) && s > 0.0 && (floor == 0.0 || s < floor))
            floor = s;
    if (floor == 0.0)
        floor = 1.0;
    std::vector<double> out = scores;
    for (size_t i = 0; i < out.size(); ++i)
        if (std::isfinite(out[i]) && out[i] <= 0.0) {
            out[i] = floor;
            if (adjusted)
                adjusted->push_back(int(i));
        }
    return out;
}

std::vector<int> layerMoeAllocation(const std::vector<double> &scores, double delta)
{
    checkScores(scores, "LayerMoE allocation");
    if (!std::isfinite(delta) || delta <= 0.0) {
        std::ostringstream s;
        s << "LayerMoE allocation: delta " << delta << "; must be finite and > 0";
        throw ConfigError(s.str());
    }
    // Z = sum_j 1/S_j; N_i = ceil((1/S_i) / Z * delta), section 2. ceil(q - eps) keeps an exact
    // integer quotient (q = 3 + 1e-15 from rounding) at 3 instead of pushing it to 4.
    double z = 0.0;
    for (double s : scores)
        z += 1.0 / s;
    std::vector<int> n(scores.size());
    for (size_t i = 0; i < scores.size(); ++i) {
        const double q = (1.0 / scores[i]) / z * delta;
        n[i] = std::max(1, static_cast<int>(std::ceil(q - kIntegerEps)));
    }
    return n;
}

std::vector<int> layerMoeAllocationForBudget(const std::vector<double> &scores, int newExpertBudget)
{
    checkScores(scores, "LayerMoE allocation for a budget");
    if (newExpertBudget < 0)
        throw ConfigError("LayerMoE allocation for a budget: budget " + std::to_string(newExpertBudget) +
                          " new experts; must be >= 0");
    const size_t L = scores.size();
    std::vector<int> n(L, 1);

    // With q_i = delta / (Z S_i), layer i holds more than m experts once q_i > m, i.e. its m-th new
    // expert arrives at t = delta / Z = m * S_i. Walking these events in order of t is walking delta
    // upwards; events at the same t (within kIntegerEps relative) arrive together, since no delta
    // separates them. Take whole groups while the total stays <= budget: that is the largest total
    // reachable by some delta. Min-heap of (t of the layer's next new expert, layer).
    using Event = std::pair<double, size_t>;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> next;
    for (size_t i = 0; i < L; ++i)
        next.emplace(scores[i], i);
    int taken = 0;
    while (taken < newExpertBudget) {
        const double t0 = next.top().first;
        std::vector<size_t> group;
        while (!next.empty() && next.top().first <= t0 * (1.0 + kIntegerEps)) {
            group.push_back(next.top().second);
            next.pop();
        }
        if (taken + static_cast<int>(group.size()) > newExpertBudget)
            break;  // this group would overshoot: stop before it
        for (size_t i : group) {
            ++n[i];
            ++taken;
            next.emplace(static_cast<double>(n[i]) * scores[i], i);  // when layer i's n_i-th new expert arrives
        }
    }

    // Decision: the remainder (< the size of the group that did not fit, so < L) goes one expert each
    // to the least similar layers: lowest S_i first, equal S_i: lower layer first.
    std::vector<size_t> order(L);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    for (size_t r = 0; taken < newExpertBudget; ++r, ++taken)
        ++n[order[r]];
    return n;
}

std::vector<int> uniformAllocation(int layers, int expertsPerLayer)
{
    if (layers < 1)
        throw ConfigError("uniform allocation: " + std::to_string(layers) + " layers; need at least 1");
    if (expertsPerLayer < 1 || expertsPerLayer > kMaxExpertsPerLayer)
        throw ConfigError("uniform allocation: " + std::to_string(expertsPerLayer) +
                          " experts per layer; must be in [1, " + std::to_string(kMaxExpertsPerLayer) + "]");
    return std::vector<int>(static_cast<size_t>(layers), expertsPerLayer);
}

AllocationSummary summarizeAllocation(const std::vector<int> &experts, int64_t dModel, int64_t dFfn, int topK)
{
    if (dModel < 1 || dFfn < 1)
        throw ConfigError("allocation summary: d_model " + std::to_string(dModel) + ", d_ffn " +
                          std::to_string(dFfn) + "; both must be >= 1");
    if (topK < 1)
        throw ConfigError("allocation summary: top-k " + std::to_string(topK) + "; must be >= 1");
    validateAllocation(experts, static_cast<int>(experts.size()));
    AllocationSummary s;
    s.layers = static_cast<int>(experts.size());
    const int64_t ffn = 3 * dModel * dFfn;  // gate, up, down: (d_ffn, d), (d_ffn, d), (d, d_ffn)
    for (int e : experts) {
        s.totalExperts += e;
        s.newExperts += e - 1;
        s.addedParameters += static_cast<int64_t>(e - 1) * ffn;
        if (e < 2)
            continue;  // a dense layer keeps its FFN and has no router
        ++s.moeLayers;
        const int64_t router = static_cast<int64_t>(e) * dModel;  // W_r (N_i, d), no bias (section 3)
        s.addedParameters += router;
        // Each token runs min(k, N_i) FFNs instead of one, and the router.
        s.addedActiveParametersPerToken += static_cast<int64_t>(std::min(topK, e) - 1) * ffn + router;
    }
    return s;
}

void validateAllocation(const std::vector<int> &experts, int numLayers)
{
    if (static_cast<int64_t>(experts.size()) != numLayers)
        throw ConfigError("expert allocation: " + std::to_string(experts.size()) + " layers given, the model has " +
                          std::to_string(numLayers));
    for (size_t i = 0; i < experts.size(); ++i) {
        if (experts[i] < 1)
            throw ConfigError("expert allocation: layer " + std::to_string(i) + " has " + std::to_string(experts[i]) +
                              " experts; every layer needs at least 1 (1 = dense)");
        if (experts[i] > kMaxExpertsPerLayer)
            throw ConfigError("expert allocation: layer " + std::to_string(i) + " has " + std::to_string(experts[i]) +
                              " experts; at most " + std::to_string(kMaxExpertsPerLayer));
    }
}

std::vector<int> parseExpertList(const std::string &text)
{
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    if (std::all_of(text.begin(), text.end(), isSpace))
        throw ConfigError("expert list: empty; expected comma-separated counts such as \"5,4,3\"");
    std::vector<int> out;
    size_t start = 0;
    for (int item = 1;; ++item) {
        const size_t comma = text.find(',', start);
        const size_t end = comma == std::string::npos ? text.size() : comma;
        size_t b = start, e = end;
        while (b < e && isSpace(text[b]))
            ++b;
        while (e > b && isSpace(text[e - 1]))
            --e;
        const std::string token = text.substr(b, e - b);
        const std::string where = "expert list \"" + text + "\": item " + std::to_string(item);
        if (token.empty())
            throw ConfigError(where + " is empty");
        int value = 0;
        const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
        if (ec == std::errc::result_out_of_range)
            throw ConfigError(where + " '" + token + "' is out of range");
        if (ec != std::errc() || ptr != token.data() + token.size())
            throw ConfigError(where + " '" + token + "' is not an integer");
        if (value < 1)
            throw ConfigError(where + " '" + token + "' must be at least 1 (1 = dense layer)");
        out.push_back(value);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return out;
}

std::string formatExpertList(const std::vector<int> &experts)
{
    std::string out;
    for (size_t i = 0; i < experts.size(); ++i) {
        if (i)
            out += ',';
        out += std::to_string(experts[i]);
    }
    return out;
}

} // namespace polymoe
