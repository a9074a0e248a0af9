// Saving and loading Hugging Face-style model folders.
#include "model_io.h"

#include "polymoe/allocation.h"

#include "atomic_file.h"
#include "module_state.h"
#include "moe_block.h"
#include "upcycle.h"
#include "polymoe/error.h"
#include "safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace polymoe {

namespace fs = std::filesystem;

int64_t countParameters(const torch::nn::Module &module)
{
    int64_t n = 0;
    for (const auto &p : module.parameters())
        n += p.numel();
    return n;
}

MoeLayout moeLayoutOf(const CausalLMImpl &model)
{
    MoeLayout layout;
    bool any = false, first = true;
    std::vector<int> experts;
    for (int64_t i = 0; i < model.numLayers(); ++i) {
        const auto block = std::dynamic_pointer_cast<MoeBlockImpl>(model.layer(i)->mlp());
        if (!block) {
            experts.push_back(1);
            continue;
        }
        any = true;
        experts.push_back(block->numExperts());
        // A layer with fewer experts than top_k uses them all: the largest k is the model's.
        layout.topK = first ? block->topK() : std::max(layout.topK, block->topK());
        first = false;
        if (block->hasClassifier())
            layout.classifierLayers.push_back(int(i));
    }
    if (any)
        layout.expertsPerLayer = std::move(experts);
    else
        layout.classifierLayers.clear();
    return layout;
}

void applyMoeLayout(CausalLM &model, const MoeLayout &layout)
{
    if (layout.empty())
        return;
    upcycleModel(model, layout.expertsPerLayer, layout.topK, 0);
    for (int l : layout.classifierLayers) {
        if (l < 0 || l >= model->numLayers())
            throw ConfigError("classifier layer " + std::to_string(l) + " is outside the model's " +
                              std::to_string(model->numLayers()) + " layers");
        const auto block = std::dynamic_pointer_cast<MoeBlockImpl>(model->layer(l)->mlp());
        if (!block)
            throw ConfigError("classifier layer " + std::to_string(l) + " is not an MoE layer");
        block->setClassifier(true);
    }
}

namespace {

// The "polymoe" object of a config.json, or an empty layout when there is none.
MoeLayout readMoeLayout(const fs::path &configFile)
{
    std::ifstream in(configFile, std::ios::binary);
    if (!in)
        throw IoError(configFile.string() + ": cannot open");
    const auto j = nlohmann::json::parse(in, nullptr, false);
    MoeLayout layout;
    if (j.is_discarded() || !j.is_object() || !j.contains("polymoe"))
        return layout; // readModelConfig reports malformed JSON
    const auto &p = j["polymoe"];
    try {
        if (!p.is_object())
            throw ConfigError("\"polymoe\" must be an object");
        const int version = p.value("format_version", 1);
        if (version > kMoeFormatVersion)
            throw ConfigError("\"polymoe\" format_version " + std::to_string(version) + " is newer than this build's " +
                              std::to_string(kMoeFormatVersion) + "; update PolyMoE");
        layout.expertsPerLayer = p.at("experts_per_layer").get<std::vector<int>>();
        for (int n : layout.expertsPerLayer)
            if (n < 1 || n > kMaxExpertsPerLayer)
                throw ConfigError("\"polymoe\" experts_per_layer holds " + std::to_string(n) + " (1 to " +
                                  std::to_string(kMaxExpertsPerLayer) + " experts a layer)");
        layout.topK = p.value("top_k", 2);
        layout.classifierLayers = p.value("classifier_layers", std::vector<int>{});
    } catch (const nlohmann::json::exception &e) {
        throw ConfigError(configFile.string() + ": \"polymoe\": " + e.what());
    } catch (const ConfigError &e) {
        throw ConfigError(configFile.string() + ": " + std::string(e.what()).substr(8));
    }
    return layout;
}

// The base model's config. A `polymoe export` folder says model_type "polymoe" (for transformers'
// remote code) and keeps the base's in "base_model_type"; every other key is the base's.
ModelConfig readFolderConfig(const fs::path &configFile)
{
    std::ifstream in(configFile, std::ios::binary);
    if (!in)
        throw IoError(configFile.string() + ": cannot open the model configuration");
    std::ostringstream text;
    text << in.rdbuf();
    auto j = nlohmann::json::parse(text.str(), nullptr, false);
    if (j.is_object() && j.value("model_type", std::string()) == "polymoe") {
        if (!j.contains("base_model_type") || !j["base_model_type"].is_string())
            throw ConfigError(configFile.string() + ": model_type \"polymoe\" needs a string \"base_model_type\"");
        j["model_type"] = j["base_model_type"];
        return parseModelConfig(j.dump(), configFile.string());
    }
    return parseModelConfig(text.str(), configFile.string());
}

std::string shapeText(at::IntArrayRef shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Before anything is copied: every stored tensor the model has must have the shape the config
// implies and a floating-point dtype (F32, BF16, F16 and F64 are converted to the model's float32;
// an integer tensor where a weight belongs is a broken file, refused rather than converted). Errors
// name the file and the tensor. A tied model ignores a stored lm_head.weight only when it equals the
// embedding (transformers 5 omits it, 4.x and other writers may store the shared tensor): a
// different one means the config's tie_word_embeddings is wrong, and the file is refused.
// Missing and unexpected names are left to loadStateInto's strict check.
void checkStoredTensors(const CausalLMImpl &model, std::map<std::string, at::Tensor> &tensors,
                        const std::map<std::string, std::string> &files)
{
    const auto fileOf = [&](const std::string &name) {
        const auto it = files.find(name);
        return it == files.end() ? std::string("checkpoint") : it->second;
    };
    const auto params = model.named_parameters(true);
    if (model.config().tieWordEmbeddings && !params.contains("lm_head.weight")) {
        const auto head = tensors.find("lm_head.weight");
        const auto emb = tensors.find("model.embed_tokens.weight");
        if (head != tensors.end() && emb != tensors.end()) {
            const at::Tensor h = head->second, e = emb->second;
            const bool same = h.sizes() == e.sizes() && h.is_floating_point() && e.is_floating_point() &&
                              h.to(at::kDouble).equal(e.to(at::kDouble));
            if (!same)
                throw FormatError(fileOf("lm_head.weight") + ": tensor 'lm_head.weight' " + shapeText(h.sizes()) +
                                  " differs from 'model.embed_tokens.weight' " + shapeText(e.sizes()) +
                                  " although config.json says tie_word_embeddings true");
            tensors.erase(head);
        }
    }
    std::vector<std::string> problems;
    for (const auto &[name, t] : tensors) {
        const at::Tensor *target = params.find(name);
        if (!target || !t.defined())
            continue;
        if (!t.is_floating_point() && target->is_floating_point()) {
            problems.push_back(fileOf(name) + ": tensor '" + name + "' is " + std::string(c10::toString(t.scalar_type())) +
                               ", not floating point (F32, BF16, F16, F64): refused rather than converted");
        } else if (t.sizes() != target->sizes()) {
            problems.push_back(fileOf(name) + ": tensor '" + name + "': shape " + shapeText(t.sizes()) +
                               " does not match the " + shapeText(target->sizes()) + " that config.json implies");
        }
    }
    if (!problems.empty()) {
        std::string message;
        for (size_t i = 0; i < problems.size() && i < 10; ++i)
            message += (i ? "; " : "") + problems[i];
        if (problems.size() > 10)
            message += "; and " + std::to_string(problems.size() - 10) + " more";
        throw FormatError(message);
    }
}

} // namespace

CausalLM loadModelFolder(const fs::path &dir)
{
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError(dir.string() + ": no such model folder");
    try {
        const ModelConfig config = readFolderConfig(dir / "config.json");
        const MoeLayout layout = readMoeLayout(dir / "config.json");
        checkModelFitsMemory(config, layout.expertsPerLayer, (dir / "config.json").string());
        // The weights are read (mapped) before the model is built: a config.json that describes more
        // than twice the parameters the files hold is refused without allocating that model (a
        // smaller shortfall, such as a missing lm_head, is named tensor by tensor below).
        std::map<std::string, std::string> files;
        auto tensors = loadCheckpointFolder(dir, &files);
        double stored = 0;
        for (const auto &[name, t] : tensors)
            stored += double(t.numel());
        if (const double implied = impliedParameters(config, layout.expertsPerLayer); stored < implied / 2) {
            char buf[200];
            std::snprintf(buf, sizeof buf, ": describes a model of %.6g parameters, but the weights hold %.6g: "
                          "config.json does not belong to these weights", implied, stored);
            throw FormatError((dir / "config.json").string() + buf);
        }
        CausalLM model(config);
        applyMoeLayout(model, layout);
        checkStoredTensors(*model, tensors, files);
        loadStateInto(*model, tensors, true); // converts to the model's float32 master weights
        model->eval();
        return model;
    } catch (const Cancelled &) {
        throw;
    } catch (const Error &) {
        rethrowWithContext("loading model " + dir.string());
    }
}

at::ScalarType weightDtype(const std::string &name, const std::string &what)
{
    if (name == "float32")
        return at::kFloat;
    if (name == "bfloat16")
        return at::kBFloat16;
    if (name == "float16")
        return at::kHalf;
    throw ConfigError(what + ": dtype must be float32, bfloat16 or float16, not '" + name + "'");
}

void saveModelFolder(CausalLMImpl &model, const fs::path &dir, const std::string &tokenizerBytes,
                     const std::string &provenanceJson, const std::string &dtype)
{
    TokenizerFiles files;
    if (!tokenizerBytes.empty())
        files.emplace_back("tokenizer.model", tokenizerBytes);
    saveModelFolder(model, dir, files, provenanceJson, dtype);
}

void saveModelFolder(CausalLMImpl &model, const fs::path &dir, const TokenizerFiles &tokenizerFiles,
                     const std::string &provenanceJson, const std::string &dtype)
{
    const at::ScalarType type = weightDtype(dtype, "model");

    const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
    fs::create_directories(parent);
    const fs::path tmp = parent / ("." + dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        ModelConfig config = model.config();
        config.torchDtype = dtype;
        const MoeLayout layout = moeLayoutOf(model);
        if (layout.empty()) {
            writeFileAtomically(tmp / "config.json", modelConfigToJson(config));
        } else {
            auto cj = nlohmann::json::parse(modelConfigToJson(config));
            cj["polymoe"] = {{"experts_per_layer", layout.expertsPerLayer}, {"top_k", layout.topK},
                             {"classifier_layers", layout.classifierLayers}, {"format_version", kMoeFormatVersion}};
            writeFileAtomically(tmp / "config.json", cj.dump(2));
        }
        std::map<std::string, at::Tensor> tensors;
        for (auto &[name, t] : stateOf(model))
            tensors[name] = t.detach().to(at::kCPU, type).contiguous();
        saveCheckpointFolder(tmp, tensors);
        nlohmann::json gen = {{"_from_model_config", true}, {"transformers_version", "4.44.0"}};
        if (config.bosTokenId >= 0)
            gen["bos_token_id"] = config.bosTokenId;
        if (config.eosTokenId >= 0)
            gen["eos_token_id"] = config.eosTokenId;
        writeFileAtomically(tmp / "generation_config.json", gen.dump(2));
        // The tokenizer's own files, by name (a folder name never comes from them: plain names only).
        bool haveConfig = false, sentencePiece = false;
        for (const auto &[name, bytes] : tokenizerFiles) {
            if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
                throw ConfigError("tokenizer file name '" + name + "' is not a plain file name");
            writeFileAtomically(tmp / name, bytes);
            haveConfig = haveConfig || name == "tokenizer_config.json";
            sentencePiece = sentencePiece || name == "tokenizer.model";
        }
        if (sentencePiece && !haveConfig) {
            // A SentencePiece model read by transformers' LlamaTokenizer, without added prefixes.
            nlohmann::json tc = {{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", "<s>"}, {"eos_token", "</s>"},
                                 {"unk_token", "<unk>"}, {"pad_token", nullptr}, {"add_bos_token", true},
                                 {"add_eos_token", false}, {"legacy", false}, {"add_prefix_space", false},
                                 {"clean_up_tokenization_spaces", false}, {"model_max_length", config.maxPositionEmbeddings}};
            writeFileAtomically(tmp / "tokenizer_config.json", tc.dump(2));
            nlohmann::json sm = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
            writeFileAtomically(tmp / "special_tokens_map.json", sm.dump(2));
        } else if (!tokenizerFiles.empty() && !haveConfig) {
            // A tokenizer.json alone: transformers' fast tokenizer reads it as it is.
            nlohmann::json tc = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                 {"clean_up_tokenization_spaces", false}, {"model_max_length", config.maxPositionEmbeddings}};
            writeFileAtomically(tmp / "tokenizer_config.json", tc.dump(2));
        }
        writeFileAtomically(tmp / "polymoe.json", provenanceJson);
        // Swap the finished folder in; an existing one is replaced only now.
        const fs::path old = parent / ("." + dir.filename().string() + ".old-" + std::to_string(::getpid()));
        if (fs::exists(dir))
            fs::rename(dir, old);
        fs::rename(tmp, dir);
        fs::remove_all(old, ec);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

} // namespace polymoe
