// The dense base model's shape, read from and written to a Hugging Face config.json (METHOD.md
// section 0). One struct serves Llama, Mistral and Qwen2; anything the engine does not implement
// (RoPE scaling, sliding-window attention, other activations...) is refused by name, never approximated.
#pragma once

#include <cstdint>
#include <string>

namespace polymoe {

struct ModelConfig {
    std::string modelType = "llama";  // "llama" | "mistral" | "qwen2" (HF model_type)
    int64_t vocabSize = 32000;         // tokens in the embedding and LM head
    int64_t hiddenSize = 4096;         // d_model, features per token
    int64_t intermediateSize = 11008;  // d_ffn, features inside the SwiGLU FFN
    int64_t numLayers = 32;            // decoder layers (num_hidden_layers)
    int64_t numHeads = 32;             // query heads (num_attention_heads)
    int64_t numKvHeads = 32;           // key/value heads; < numHeads = grouped-query attention
    int64_t headDim = 128;             // features per head; always hiddenSize / numHeads here
    double rmsNormEps = 1e-6;          // epsilon added to mean(x^2) in RMSNorm, unitless
    double ropeTheta = 10000.0;        // RoPE base: inv_freq_i = theta^(-2i/headDim), unitless
    int64_t maxPositionEmbeddings = 2048; // longest sequence the model was trained on, tokens
    bool tieWordEmbeddings = false;    // LM head reuses the token embedding (no lm_head.weight)
    bool attentionBias = false;        // q/k/v projections carry biases (true for qwen2 only)
    int64_t bosTokenId = -1;           // beginning-of-sequence token id, -1 = none
    int64_t eosTokenId = -1;           // end-of-sequence token id (first one if a list), -1 = none
    std::string hiddenAct = "silu";    // FFN activation; only "silu" is implemented
    std::string torchDtype = "float32"; // stored weight dtype: "float32" | "bfloat16" | "float16"
    double initializerRange = 0.02;    // std of the normal init of linear and embedding weights

    bool operator==(const ModelConfig &) const = default;
};

// Parses a config.json text. `where` names the source (a file path) in every error message.
// Throws FormatError for malformed JSON, ConfigError for missing keys, wrong types, inconsistent
// sizes and features that are not implemented (each named). Keys the engine does not need are ignored.
ModelConfig parseModelConfig(const std::string &jsonText, const std::string &where);

// Reads `path`, or `path`/config.json when `path` is a folder. Throws IoError if it cannot be read.
ModelConfig readModelConfig(const std::string &path);

// Checks the sizes of a config built in code (the same checks parseModelConfig makes). Throws ConfigError.
void validateModelConfig(const ModelConfig &config, const std::string &where);

// A Hugging Face-compatible config.json (architectures, model_type and every key transformers needs
// to build the model), pretty-printed. parseModelConfig(modelConfigToJson(c), ..) == c.
std::string modelConfigToJson(const ModelConfig &config);

} // namespace polymoe
