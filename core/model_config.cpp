// Reading and writing Hugging Face config.json for the Llama family (llama, mistral, qwen2).
// Defaults for absent optional keys follow the transformers config classes of each model_type.
#include "model_config.h"

#include "file_read.h"
#include "json_limits.h"

#include "polymoe/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace polymoe {

namespace {

using Json = nlohmann::json;

[[noreturn]] void fail(const std::string &where, const std::string &what)
{
    throw ConfigError(where + ": " + what);
}

const char *typeName(const Json &v)
{
    return v.type_name();
}

bool present(const Json &j, const char *key)
{
    const auto it = j.find(key);
    return it != j.end() && !it->is_null();
}

int64_t readInt(const Json &j, const char *key, const std::string &where)
{
    const Json &v = j.at(key);
    if (!v.is_number_integer())
        fail(where, std::string("key '") + key + "' must be an integer, found " + typeName(v) + " " + v.dump());
    return v.get<int64_t>();
}

int64_t requireInt(const Json &j, const char *key, const std::string &where)
{
    if (!present(j, key))
        fail(where, std::string("missing required key '") + key + "'");
    return readInt(j, key, where);
}

int64_t optionalInt(const Json &j, const char *key, int64_t fallback, const std::string &where)
{
    return present(j, key) ? readInt(j, key, where) : fallback;
}

double optionalNumber(const Json &j, const char *key, double fallback, const std::string &where)
{
    if (!present(j, key))
        return fallback;
    const Json &v = j.at(key);
    if (!v.is_number())
        fail(where, std::string("key '") + key + "' must be a number, found " + typeName(v) + " " + v.dump());
    return v.get<double>();
}

bool optionalBool(const Json &j, const char *key, bool fallback, const std::string &where)
{
    if (!present(j, key))
        return fallback;
    const Json &v = j.at(key);
    if (!v.is_boolean())
        fail(where, std::string("key '") + key + "' must be true or false, found " + v.dump());
    return v.get<bool>();
}

std::string optionalString(const Json &j, const char *key, const std::string &fallback,
                           const std::string &where)
{
    if (!present(j, key))
        return fallback;
    const Json &v = j.at(key);
    if (!v.is_string())
        fail(where, std::string("key '") + key + "' must be a string, found " + typeName(v) + " " + v.dump());
    return v.get<std::string>();
}

// bos/eos: an integer, null (none: -1) or, as in Llama 3, a list whose first entry we keep.
int64_t tokenId(const Json &j, const char *key, int64_t fallback, const std::string &where)
{
    const auto it = j.find(key);
    if (it == j.end())
        return fallback;
    if (it->is_null())
        return -1;
    if (it->is_number_integer())
        return it->get<int64_t>();
    if (it->is_array()) {
        if (it->empty())
            return -1;
        if (!it->front().is_number_integer())
            fail(where, std::string("key '") + key + "' must hold integers, found " + it->dump());
        return it->front().get<int64_t>();
    }
    fail(where, std::string("key '") + key + "' must be an integer, a list or null, found " + it->dump());
}

// RoPE from transformers 4's rope_theta + rope_scaling or transformers 5's rope_parameters. As in
// transformers 5 (convert_rope_params_to_dict), a non-empty rope_scaling replaces rope_parameters, and
// a top-level rope_theta is the fallback for one the object lacks.
void readRope(const Json &j, ModelConfig &c, const std::string &where)
{
    c.ropeTheta = optionalNumber(j, "rope_theta", 10000.0, where);
    const char *key = nullptr;
    for (const char *k : {"rope_scaling", "rope_parameters"}) {
        if (!present(j, k))
            continue;
        if (!j.at(k).is_object())
            fail(where, std::string("key '") + k + "' must be an object or null, found " + j.at(k).dump());
        if (!j.at(k).empty()) {
            key = k;
            break;
        }
    }
    double partial = optionalNumber(j, "partial_rotary_factor", 1.0, where);
    if (key) {
        const Json &r = j.at(key);
        const std::string in = where + ": " + key;
        for (const auto &[name, value] : r.items()) {
            if (value.is_object())
                fail(where, std::string("key '") + key + "' holds per-layer-type RoPE ('" + name +
                                "'): only one RoPE for all layers is implemented: " + r.dump());
        }
        std::string type = "default";
        for (const char *k : {"rope_type", "type"}) {
            if (present(r, k)) {
                type = optionalString(r, k, "", in);
                break;
            }
        }
        c.ropeTheta = optionalNumber(r, "rope_theta", c.ropeTheta, in);
        partial = optionalNumber(r, "partial_rotary_factor", partial, in);
        const auto need = [&](const char *k) {
            if (!present(r, k))
                fail(where, std::string(key) + " of type '" + type + "' needs '" + k + "': " + r.dump());
            return optionalNumber(r, k, 0.0, in);
        };
        if (type == "linear") {
            c.ropeType = type;
            c.ropeFactor = need("factor");
        } else if (type == "llama3") {
            c.ropeType = type;
            c.ropeFactor = need("factor");
            c.ropeLowFreqFactor = need("low_freq_factor");
            c.ropeHighFreqFactor = need("high_freq_factor");
            // transformers 5 falls back to max_position_embeddings (4.x requires the key).
            c.ropeOriginalMaxPositions =
                optionalInt(r, "original_max_position_embeddings",
                            optionalInt(j, "original_max_position_embeddings", c.maxPositionEmbeddings, where), in);
        } else if (type != "default") {
            fail(where, std::string(key) + " of type '" + type +
                            "' is not implemented (default, linear and llama3 are): " + r.dump());
        }
    }
    if (partial != 1.0)
        fail(where, "partial_rotary_factor " + Json(partial).dump() + " is not implemented (RoPE on the whole head only)");
}

// Sliding-window attention is not implemented; a window at least as long as the longest
// sequence is the same as full attention, so only a shorter window is refused.
void refuseSlidingWindow(const Json &j, const ModelConfig &c, const std::string &where)
{
    bool enabled = false;
    if (c.modelType == "mistral")
        enabled = present(j, "sliding_window");
    else if (c.modelType == "qwen2")
        enabled = optionalBool(j, "use_sliding_window", false, where) && present(j, "sliding_window") &&
                  optionalInt(j, "max_window_layers", 28, where) < c.numLayers;
    if (enabled) {
        const int64_t window = readInt(j, "sliding_window", where);
        if (window < c.maxPositionEmbeddings) {
            fail(where, "sliding_window " + std::to_string(window) + " is smaller than max_position_embeddings " +
                            std::to_string(c.maxPositionEmbeddings) +
                            ": sliding-window attention is not implemented");
        }
    }
    // transformers >= 4.53 may list the attention kind of every layer.
    if (present(j, "layer_types")) {
        const Json &types = j.at("layer_types");
        if (!types.is_array())
            fail(where, "key 'layer_types' must be a list, found " + types.dump());
        const bool shortWindow =
            present(j, "sliding_window") && readInt(j, "sliding_window", where) < c.maxPositionEmbeddings;
        for (size_t i = 0; i < types.size(); ++i) {
            const bool full = types[i] == "full_attention" || (types[i] == "sliding_attention" && !shortWindow);
            if (!full)
                fail(where, "layer_types[" + std::to_string(i) + "] is " + types[i].dump() +
                                ": only full attention is implemented");
        }
    }
}

std::string architectureOf(const std::string &modelType)
{
    if (modelType == "llama")
        return "LlamaForCausalLM";
    if (modelType == "mistral")
        return "MistralForCausalLM";
    if (modelType == "qwen2")
        return "Qwen2ForCausalLM";
    return {};
}

} // namespace

void validateModelConfig(const ModelConfig &c, const std::string &where)
{
    if (architectureOf(c.modelType).empty())
        fail(where, "model_type '" + c.modelType + "' is not implemented (llama, mistral, qwen2 are)");
    if (c.hiddenAct != "silu")
        fail(where, "hidden_act '" + c.hiddenAct + "' is not implemented (only silu, the SwiGLU FFN)");
    const std::pair<const char *, int64_t> sizes[] = {
        {"vocab_size", c.vocabSize},
        {"hidden_size", c.hiddenSize},
        {"intermediate_size", c.intermediateSize},
        {"num_hidden_layers", c.numLayers},
        {"num_attention_heads", c.numHeads},
        {"num_key_value_heads", c.numKvHeads},
        {"head_dim", c.headDim},
        {"max_position_embeddings", c.maxPositionEmbeddings},
    };
    // Upper bounds far above any published model, so that a hostile config is refused before
    // anything is allocated (a model of 1e8 layers would be built layer by layer until memory ran out).
    const int64_t caps[] = {int64_t(1) << 24, int64_t(1) << 17, int64_t(1) << 20, 1024, 4096, 4096, 4096, int64_t(1) << 24};
    for (size_t i = 0; i < std::size(sizes); ++i) {
        const auto &[key, value] = sizes[i];
        if (value <= 0)
            fail(where, std::string("key '") + key + "' must be positive, found " + std::to_string(value));
        if (value > caps[i])
            fail(where, std::string("key '") + key + "' is " + std::to_string(value) + ", more than this build allows (at most " +
                            std::to_string(caps[i]) + ")");
    }
    if (c.hiddenSize % c.numHeads != 0) {
        fail(where, "hidden_size " + std::to_string(c.hiddenSize) + " is not divisible by num_attention_heads " +
                        std::to_string(c.numHeads));
    }
    if (c.headDim % 2 != 0)
        fail(where, "head_dim " + std::to_string(c.headDim) + " must be even for RoPE");
    if (c.numHeads % c.numKvHeads != 0) {
        fail(where, "num_attention_heads " + std::to_string(c.numHeads) + " is not divisible by num_key_value_heads " +
                        std::to_string(c.numKvHeads));
    }
    if (!(c.rmsNormEps > 0.0))
        fail(where, "rms_norm_eps must be positive, found " + std::to_string(c.rmsNormEps));
    if (!(c.ropeTheta > 0.0))
        fail(where, "rope_theta must be positive, found " + std::to_string(c.ropeTheta));
    if (c.ropeType != "default" && c.ropeType != "linear" && c.ropeType != "llama3")
        fail(where, "rope_type '" + c.ropeType + "' is not implemented (default, linear and llama3 are)");
    if (c.ropeType != "default" && !(c.ropeFactor > 0.0))
        fail(where, "rope_scaling factor must be positive, found " + nlohmann::json(c.ropeFactor).dump());
    if (c.ropeType == "llama3") {
        if (!(c.ropeLowFreqFactor > 0.0) || !(c.ropeHighFreqFactor > c.ropeLowFreqFactor))
            fail(where, "llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor, found " +
                            nlohmann::json(c.ropeLowFreqFactor).dump() + " and " +
                            nlohmann::json(c.ropeHighFreqFactor).dump());
        if (c.ropeOriginalMaxPositions <= 0)
            fail(where, "llama3 rope_scaling original_max_position_embeddings must be positive, found " +
                            std::to_string(c.ropeOriginalMaxPositions));
    }
    if (c.attentionBias != (c.modelType == "qwen2")) {
        fail(where, c.attentionBias ? "attention_bias true is not implemented for model_type '" + c.modelType + "'"
                                    : std::string("qwen2 always has q/k/v biases: attention_bias must be true"));
    }
    if (c.torchDtype != "float32" && c.torchDtype != "bfloat16" && c.torchDtype != "float16")
        fail(where, "torch_dtype '" + c.torchDtype + "' is not supported (float32, bfloat16, float16 are)");
    if (c.bosTokenId >= c.vocabSize || c.eosTokenId >= c.vocabSize) {
        fail(where, "bos_token_id " + std::to_string(c.bosTokenId) + " / eos_token_id " + std::to_string(c.eosTokenId) +
                        " outside vocab_size " + std::to_string(c.vocabSize));
    }
}

double impliedParameters(const ModelConfig &c, const std::vector<int> &expertsPerLayer)
{
    const double d = double(c.hiddenSize), q = double(c.numHeads) * double(c.headDim),
                 kv = double(c.numKvHeads) * double(c.headDim), ffn = 3.0 * d * double(c.intermediateSize);
    const double attention = d * q + 2.0 * d * kv + q * d + (c.attentionBias ? q + 2.0 * kv : 0.0);
    double total = double(c.vocabSize) * d * (c.tieWordEmbeddings ? 1.0 : 2.0) + d; // embeddings, head, final norm
    for (int64_t l = 0; l < c.numLayers; ++l) {
        const double n = size_t(l) < expertsPerLayer.size() ? double(std::max(1, expertsPerLayer[size_t(l)])) : 1.0;
        total += attention + 2.0 * d + n * ffn + (n > 1 ? n * d : 0.0); // norms, experts, router
    }
    return total;
}

void checkModelFitsMemory(const ModelConfig &c, const std::vector<int> &expertsPerLayer, const std::string &where)
{
    const double bytes = 4.0 * impliedParameters(c, expertsPerLayer);
    const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
    const double memory = pages > 0 && pageSize > 0 ? double(pages) * double(pageSize) : 0.0;
    if (memory > 0 && bytes > memory) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "the model has %.3g parameters: %.1f GB as float32, more than this machine's %.1f GB of memory",
                      bytes / 4.0, bytes / 1e9, memory / 1e9);
        fail(where, buf);
    }
}

ModelConfig parseModelConfig(const std::string &jsonText, const std::string &where)
{
    Json j;
    checkJsonDepth(jsonText, where);
    try {
        j = Json::parse(jsonText);
    } catch (const Json::parse_error &e) {
        throw FormatError(where + ": not valid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
    } catch (const Json::exception &) { // out_of_range 406: a number beyond a double's range
        throw FormatError(where + ": not valid JSON: a number is out of range");
    }
    if (!j.is_object())
        throw FormatError(where + ": a config.json must hold a JSON object, found " + j.type_name());

    ModelConfig c;
    if (!present(j, "model_type"))
        fail(where, "missing required key 'model_type'");
    c.modelType = optionalString(j, "model_type", "", where);
    if (architectureOf(c.modelType).empty())
        fail(where, "model_type '" + c.modelType + "' is not implemented (llama, mistral, qwen2 are)");
    const bool llama = c.modelType == "llama", mistral = c.modelType == "mistral";

    c.vocabSize = requireInt(j, "vocab_size", where);
    c.hiddenSize = requireInt(j, "hidden_size", where);
    c.intermediateSize = requireInt(j, "intermediate_size", where);
    c.numLayers = requireInt(j, "num_hidden_layers", where);
    c.numHeads = requireInt(j, "num_attention_heads", where);
    if (c.numHeads <= 0)
        fail(where, "key 'num_attention_heads' must be positive, found " + std::to_string(c.numHeads));
    // transformers' defaults when the key is absent: llama copies the query heads, mistral 8, qwen2 32.
    c.numKvHeads = optionalInt(j, "num_key_value_heads", llama ? c.numHeads : (mistral ? 8 : 32), where);
    c.headDim = optionalInt(j, "head_dim", c.hiddenSize / c.numHeads, where);
    c.hiddenAct = optionalString(j, "hidden_act", "silu", where);
    c.rmsNormEps = optionalNumber(j, "rms_norm_eps", 1e-6, where);
    c.maxPositionEmbeddings =
        optionalInt(j, "max_position_embeddings", llama ? 2048 : (mistral ? 4096 * 32 : 32768), where);
    c.tieWordEmbeddings = optionalBool(j, "tie_word_embeddings", false, where);
    c.initializerRange = optionalNumber(j, "initializer_range", 0.02, where);
    c.bosTokenId = tokenId(j, "bos_token_id", llama || mistral ? 1 : -1, where);
    c.eosTokenId = tokenId(j, "eos_token_id", llama || mistral ? 2 : -1, where);
    // transformers 5 writes "dtype", 4.x "torch_dtype".
    c.torchDtype = optionalString(j, "dtype", optionalString(j, "torch_dtype", "float32", where), where);

    readRope(j, c, where);

    if (optionalBool(j, "mlp_bias", false, where))
        fail(where, "mlp_bias true is not implemented (the FFN projections have no biases)");
    // Dropout on the attention probabilities would change training; the engine has none.
    if (const double p = optionalNumber(j, "attention_dropout", 0.0, where); p != 0.0)
        fail(where, "attention_dropout " + Json(p).dump() + " is not implemented (only 0: no attention dropout)");
    if (c.modelType == "qwen2") {
        c.attentionBias = true; // Qwen2 always has q/k/v biases and no o_proj bias
    } else if (optionalBool(j, "attention_bias", false, where)) {
        fail(where, "attention_bias true is not implemented for model_type '" + c.modelType + "'");
    }

    validateModelConfig(c, where);
    refuseSlidingWindow(j, c, where);
    return c;
}

ModelConfig readModelConfig(const std::string &path)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "config.json" : fs::path(path);
    // A regular file of at most 16 MiB (a FIFO or device is refused without blocking).
    return parseModelConfig(readRegularFile(file, int64_t(16) << 20), file.string());
}

std::string modelConfigToJson(const ModelConfig &c)
{
    validateModelConfig(c, "modelConfigToJson");
    nlohmann::ordered_json j;
    const auto idOrNull = [](int64_t id) { return id < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(id); };
    j["architectures"] = {architectureOf(c.modelType)};
    j["model_type"] = c.modelType;
    j["vocab_size"] = c.vocabSize;
    j["hidden_size"] = c.hiddenSize;
    j["intermediate_size"] = c.intermediateSize;
    j["num_hidden_layers"] = c.numLayers;
    j["num_attention_heads"] = c.numHeads;
    j["num_key_value_heads"] = c.numKvHeads;
    j["head_dim"] = c.headDim;
    j["hidden_act"] = c.hiddenAct;
    j["max_position_embeddings"] = c.maxPositionEmbeddings;
    j["initializer_range"] = c.initializerRange;
    j["rms_norm_eps"] = c.rmsNormEps;
    j["rope_theta"] = c.ropeTheta;
    if (c.ropeType == "linear") {
        j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.ropeFactor}};
    } else if (c.ropeType == "llama3") {
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", c.ropeFactor},
                             {"low_freq_factor", c.ropeLowFreqFactor},
                             {"high_freq_factor", c.ropeHighFreqFactor},
                             {"original_max_position_embeddings", c.ropeOriginalMaxPositions}};
    } else {
        j["rope_scaling"] = nullptr;
    }
    j["attention_dropout"] = 0.0;
    j["tie_word_embeddings"] = c.tieWordEmbeddings;
    j["bos_token_id"] = idOrNull(c.bosTokenId);
    j["eos_token_id"] = idOrNull(c.eosTokenId);
    j["torch_dtype"] = c.torchDtype;
    j["use_cache"] = true;
    if (c.modelType == "llama") {
        j["attention_bias"] = false;
        j["mlp_bias"] = false;
        j["pretraining_tp"] = 1;
    } else if (c.modelType == "mistral") {
        j["sliding_window"] = nullptr;
    } else if (c.modelType == "qwen2") {
        j["use_sliding_window"] = false;
        j["sliding_window"] = c.maxPositionEmbeddings;
        j["max_window_layers"] = c.numLayers;
    }
    return j.dump(2) + "\n";
}

} // namespace polymoe
