// The dense base model's shape, read from and written to a Hugging Face config.json (METHOD.md
// section 0). One struct serves Llama, Mistral and Qwen2; anything the engine does not implement
// (YaRN or dynamic RoPE scaling, sliding-window attention, other activations, biased MLPs...) is
// refused by name, never approximated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe {

struct ModelConfig {
    std::string modelType = "llama";  // "llama" | "mistral" | "qwen2" (HF model_type)
    int64_t vocabSize = 32000;         // tokens in the embedding and LM head
    int64_t hiddenSize = 4096;         // d_model, features per token
    int64_t intermediateSize = 11008;  // d_ffn, features inside the SwiGLU FFN
    int64_t numLayers = 32;            // decoder layers (num_hidden_layers)
    int64_t numHeads = 32;             // query heads (num_attention_heads)
    int64_t numKvHeads = 32;           // key/value heads; < numHeads = grouped-query attention
    int64_t headDim = 128;             // features per query/key/value head (HF default hiddenSize / numHeads)
    double rmsNormEps = 1e-6;          // epsilon added to mean(x^2) in RMSNorm, unitless
    double ropeTheta = 10000.0;        // RoPE base: inv_freq_i = theta^(-2i/headDim), unitless
    // RoPE scaling (HF rope_scaling / rope_parameters). "default": plain; "linear": inv_freq / factor;
    // "llama3": Llama 3.1's band-wise adjustment of inv_freq (ropeInverseFrequencies in models/llama.h).
    // The fields a type does not use keep these defaults, so parse(toJson(c)) == c.
    std::string ropeType = "default";  // "default" | "linear" | "llama3" (rope_type)
    double ropeFactor = 1.0;           // linear: every inv_freq / factor; llama3: long wavelengths / factor, unitless
    double ropeLowFreqFactor = 1.0;    // llama3: wavelengths above originalMax / this are scaled, unitless
    double ropeHighFreqFactor = 4.0;   // llama3: wavelengths below originalMax / this are kept, unitless
    int64_t ropeOriginalMaxPositions = 8192; // llama3: original_max_position_embeddings, tokens
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
// sizes and features that are not implemented (each named). Keys that do not change the maths
// (use_cache, pretraining_tp, pad_token_id, attention_dropout 0, mlp_bias false...) are ignored.
// RoPE: transformers 4's "rope_theta" + "rope_scaling" or transformers 5's "rope_parameters"
// (which holds rope_theta); a non-empty rope_scaling wins, as in transformers 5.
ModelConfig parseModelConfig(const std::string &jsonText, const std::string &where);

// Reads `path`, or `path`/config.json when `path` is a folder. Throws IoError if it cannot be read.
ModelConfig readModelConfig(const std::string &path);

// Checks the sizes of a config built in code (the same checks parseModelConfig makes). Throws ConfigError.
void validateModelConfig(const ModelConfig &config, const std::string &where);

// The weights a config implies: embeddings, LM head (unless tied), attention, norms and FFN, with
// expertsPerLayer[i] FFN copies and a router in layer i where given. In double, so that no config
// overflows it.
double impliedParameters(const ModelConfig &config, const std::vector<int> &expertsPerLayer = {});
// ConfigError (naming `where`) when the model's float32 weights alone would exceed this machine's
// physical memory: checked before anything is allocated.
void checkModelFitsMemory(const ModelConfig &config, const std::vector<int> &expertsPerLayer, const std::string &where);

// A Hugging Face-compatible config.json (architectures, model_type and every key transformers needs
// to build the model), pretty-printed. parseModelConfig(modelConfigToJson(c), ..) == c. RoPE is
// written as "rope_theta" plus "rope_scaling" (null for plain RoPE), which transformers 4 reads and 5
// converts to rope_parameters.
std::string modelConfigToJson(const ModelConfig &config);

} // namespace polymoe
