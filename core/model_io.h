// Model folders in the Hugging Face layout: config.json, model.safetensors (or shards and an
// index), tokenizer.model with its JSON companions, generation_config.json. Saving writes a
// temporary folder and renames it into place; loading checks every tensor against the config.
#pragma once

#include "model_config.h"
#include "models/llama.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace polymoe {

// The MoE layout of an expanded model (METHOD.md sections 3 and 6), kept in config.json under
// "polymoe": {"experts_per_layer": [...], "top_k": 2, "classifier_layers": [...], "format_version": 1}
// beside the base model's keys (model_type and architectures stay the base's, so the dense part
// stays readable). A dense model has an empty layout.
struct MoeLayout {
    std::vector<int> expertsPerLayer; // N_i per layer, 1 = dense; empty = a dense model
    int topK = 2;                     // experts per token (min(topK, N_i) per layer)
    std::vector<int> classifierLayers; // layers whose MoE block carries the old/new classifier
    bool empty() const { return expertsPerLayer.empty(); }
};
constexpr int kMoeFormatVersion = 1;

// What the model's layers hold now (empty when no layer is an MoE block).
MoeLayout moeLayoutOf(const CausalLMImpl &model);
// Upcycles a dense model to the layout (router seed 0: the weights are meant to be loaded over it)
// and adds the classifiers. Throws ConfigError for a layout that does not fit.
void applyMoeLayout(CausalLM &model, const MoeLayout &layout);

// Loads config.json and the weights (strictly: every tensor present, none unexpected, shapes
// equal to what the config implies). F32, BF16, F16 and F64 tensors become the engine's float32
// master weights; integer tensors where weights belong are refused. A tied model (tie_word_embeddings)
// loads with or without a stored lm_head.weight; a stored one must equal model.embed_tokens.weight.
// Refuses pickled .bin checkpoints. Errors say which file and which tensor.
CausalLM loadModelFolder(const std::filesystem::path &dir);

// A "polymoe" key in config.json makes the model an expanded one: the dense model is built, upcycled
// with that layout, then loaded strictly, so a round trip is bit-exact.
//
// Writes the model (fp32 as trained, or the dtype given: "float32", "bfloat16", "float16") with
// the tokenizer's model bytes (may be empty) and a polymoe.json of provenance. An expanded model's
// config.json carries its MoeLayout under "polymoe"; tensor names follow named_parameters()
// ("model.layers.3.mlp.gate.weight", "model.layers.3.mlp.experts.2.up_proj.weight").
void saveModelFolder(CausalLMImpl &model, const std::filesystem::path &dir, const std::string &tokenizerBytes,
                     const std::string &provenanceJson = "{}", const std::string &dtype = "float32");
// The same with the tokenizer's files by name ((name, bytes): tokenizer.model, or tokenizer.json with
// its tokenizer_config.json...; projectTokenizerFiles gives them). Without a tokenizer_config.json
// one is written for transformers (LlamaTokenizer for tokenizer.model, PreTrainedTokenizerFast else).
using TokenizerFiles = std::vector<std::pair<std::string, std::string>>;
void saveModelFolder(CausalLMImpl &model, const std::filesystem::path &dir, const TokenizerFiles &tokenizerFiles,
                     const std::string &provenanceJson = "{}", const std::string &dtype = "float32");

int64_t countParameters(const torch::nn::Module &module);

// "float32" | "bfloat16" | "float16" -> the scalar type; ConfigError naming `what` otherwise.
at::ScalarType weightDtype(const std::string &name, const std::string &what);

} // namespace polymoe
