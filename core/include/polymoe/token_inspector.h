// Token inspector: how an expanded model routes each token of a text, layer by layer (METHOD.md
// sections 3 and 6): the top-k experts and their weights per token in every MoE layer, and the
// classifier's old/new decision where a layer has one. Plain data, no LibTorch types: the UI uses it.
//
// Usage:
//   auto r = polymoe::inspectTokens(store, "stage2", "Guten Tag");
//   r.layers[i].tokens[t].experts[0]   // the top-1 expert of token t in MoE layer r.layers[i].layer
#pragma once

#include "polymoe/project_store.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace polymoe {

struct TokenRoute {
    std::vector<int> experts;     // chosen experts, most probable first (k of them)
    std::vector<double> weights;  // their renormalised weights, summing to 1
};

struct InspectedLayer {
    int layer = 0;                // index in the model
    int numExperts = 0;           // N_i
    std::optional<bool> judgedOld; // the classifier's decision for the whole text; none without a classifier
    std::vector<TokenRoute> tokens; // one per token
};

struct TokenInspection {
    std::vector<int32_t> ids;
    std::vector<std::string> pieces;   // the tokenizer's pieces (empty strings when ids were given)
    int numLayers = 0;
    std::vector<InspectedLayer> layers; // the MoE layers only, by layer
};

// Runs the ids (at most the model's max_position_embeddings) through the model folder in eval mode.
// Dense models give no layers. Throws ConfigError for empty input or out-of-vocabulary ids.
TokenInspection inspectTokenIds(const std::filesystem::path &modelDir, const std::vector<int32_t> &ids);
// The same for text, encoded with the project's tokenizer (the plugin must be available).
TokenInspection inspectTokens(const ProjectStore &store, const std::string &modelName, const std::string &text);

} // namespace polymoe
