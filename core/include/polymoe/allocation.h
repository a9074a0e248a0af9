// Expert allocation per layer (METHOD.md section 2): LayerMoE's rule from the layer scores S_i, the
// engine's budget Decision, MoE-LPR's uniform allocation, validation, parameter counts and the
// "5,4,3" text form. No LibTorch here: the UI includes this header.
//
// Usage:
//   std::vector<int> n = polymoe::layerMoeAllocationForBudget(scores.score, 56);  // N_i, original included
//   polymoe::validateAllocation(n, config.numLayers);
//   auto summary = polymoe::summarizeAllocation(n, config.hiddenSize, config.intermediateSize);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe {

// The most experts one layer may hold (original FFN included).
constexpr int kMaxExpertsPerLayer = 64;

// LayerMoE: N_i = ceil( (1/S_i) / sum_j (1/S_j) * delta ), at least 1. Every S_i must be finite and
// > 0, delta finite and > 0. A value within 1e-9 of an integer counts as that integer, so rounding
// noise in the quotient never adds an expert. Throws ConfigError naming the bad score.
std::vector<int> layerMoeAllocation(const std::vector<double> &scores, double delta);

// Decision of section 2: the delta whose allocation has the largest number of new experts
// sum_i (N_i - 1) not above newExpertBudget, then the remainder (when equal quotients make several
// layers gain an expert at the same delta) one expert each to the least similar layers (lowest S_i
// first, equal S_i: lower layer first). The result always has exactly newExpertBudget new experts;
// budget 0 gives all ones. It does not cap N_i at kMaxExpertsPerLayer: validateAllocation does.
std::vector<int> layerMoeAllocationForBudget(const std::vector<double> &scores, int newExpertBudget);

// A layer score S_i <= 0 (the new languages' FFN inputs point, on average, away from the old ones; seen
// in small, briefly trained models) has no 1/S_i. PolyMoE treats such a layer as the least similar one:
// its score becomes the smallest positive score of the list (1 when none is positive), so it gets at
// least as many experts as any other layer. Non-finite scores are left for the rule to refuse.
// `adjusted`, when given, receives the layers whose score was replaced.
std::vector<double> scoresForLayerMoe(const std::vector<double> &scores, std::vector<int> *adjusted = nullptr);

// MoE-LPR: expertsPerLayer in every one of the layers.
std::vector<int> uniformAllocation(int layers, int expertsPerLayer);

struct AllocationSummary {
    int layers = 0;                         // entries in the allocation
    int moeLayers = 0;                      // layers with N_i >= 2 (they get a router)
    int totalExperts = 0;                   // sum N_i, original FFNs included
    int newExperts = 0;                     // sum (N_i - 1)
    int64_t addedParameters = 0;            // 3 d_model d_ffn per new expert + N_i d_model per router, weights
    int64_t addedActiveParametersPerToken = 0; // per MoE layer (min(k, N_i) - 1) FFNs + the router, weights
};

// Counts what an allocation adds to a dense model of this shape, routing each token to topK experts.
// Throws ConfigError for non-positive sizes or topK < 1.
AllocationSummary summarizeAllocation(const std::vector<int> &experts, int64_t dModel, int64_t dFfn, int topK = 2);

// Throws ConfigError (naming the layer) when the list does not have numLayers entries or some N_i is
// outside [1, kMaxExpertsPerLayer].
void validateAllocation(const std::vector<int> &experts, int numLayers);

// "5,4,3" (spaces around items allowed) -> {5, 4, 3}. Throws ConfigError naming the bad item (1-based)
// for an empty list, an empty item, a non-integer or a value below 1.
std::vector<int> parseExpertList(const std::string &text);
// {5, 4, 3} -> "5,4,3".
std::string formatExpertList(const std::vector<int> &experts);

} // namespace polymoe
