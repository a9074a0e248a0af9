// Checkpoint export (see polymoe/export.h): a "polymoe" folder with transformers remote code, and a
// stock MixtralForCausalLM folder when the model's shape allows one. METHOD.md sections 3, 6 and 8.
#include "polymoe/export.h"

#include "atomic_file.h"
#include "model_io.h"
#include "module_state.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "polymoe_export_resources.h" // generated from resources/export/*.py
#include "project_models.h"
#include "safetensors.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <unistd.h>

namespace polymoe {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

std::string mixtralNotApplicableReason(const std::string &baseModelType, const std::vector<int> &expertsPerLayer,
                                       const std::vector<int> &classifierLayers)
{
    if (expertsPerLayer.empty())
        return "the model is dense (no MoE layer): Mixtral needs experts in every layer";
    const int n = expertsPerLayer.front();
    for (size_t i = 0; i < expertsPerLayer.size(); ++i)
        if (expertsPerLayer[i] != n)
            return "the allocation is not uniform (layer 0 has " + std::to_string(n) + " experts, layer " +
                   std::to_string(i) + " has " + std::to_string(expertsPerLayer[i]) +
                   "): Mixtral has one expert count for all layers";
    if (n < 2)
        return "the layers have a single expert: Mixtral needs at least 2 per layer";
    if (baseModelType != "llama" && baseModelType != "mistral")
        return "the base model is " + baseModelType + (baseModelType == "qwen2" ? " (q/k/v biases)" : std::string()) +
               ": Mixtral's attention is Llama/Mistral-style without biases";
    if (!classifierLayers.empty())
        return "the model has the old/new classifier in " + std::to_string(classifierLayers.size()) +
               " layer(s): Mixtral has no classifier (its hard routing would be lost)";
    return {};
}

namespace {

at::ScalarType dtypeOf(const std::string &dtype) { return weightDtype(dtype, "export"); }

std::string readFileText(const fs::path &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path.string() + ": cannot open");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad())
        throw IoError(path.string() + ": reading failed");
    return s.str();
}

int64_t folderBytes(const fs::path &dir)
{
    int64_t n = 0;
    for (const auto &e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file())
            n += int64_t(e.file_size());
    return n;
}

// The base config.json keys (modelConfigToJson) with the stored dtype under both of transformers'
// names (4.x: torch_dtype, 5.x: dtype).
OJson baseConfigJson(ModelConfig config, const std::string &dtype)
{
    config.torchDtype = dtype;
    OJson j = OJson::parse(modelConfigToJson(config));
    j["dtype"] = dtype;
    return j;
}

OJson generationConfig(const ModelConfig &c)
{
    OJson g = {{"_from_model_config", true}};
    if (c.bosTokenId >= 0)
        g["bos_token_id"] = c.bosTokenId;
    if (c.eosTokenId >= 0)
        g["eos_token_id"] = c.eosTokenId;
    return g;
}

void copyTokenizerFiles(const fs::path &from, const fs::path &to)
{
    for (const char *name : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"}) {
        const fs::path src = from / name;
        if (fs::is_regular_file(src))
            writeFileAtomically(to / name, readFileText(src));
    }
}

struct Source {
    fs::path dir;
    CausalLM model{nullptr};
    ModelConfig config;
    MoeLayout layout;
    std::string provenance; // the source's polymoe.json, or "null"
};

OJson provenanceJson(const Source &src, const std::string &format, const std::string &dtype)
{
    OJson j;
    j["export"] = {{"format", format}, {"dtype", dtype}, {"source_dir", fs::absolute(src.dir).string()},
                   {"polymoe_version", POLYMOE_VERSION}};
    const auto parsed = nlohmann::ordered_json::parse(src.provenance, nullptr, false);
    j["source"] = parsed.is_discarded() ? OJson(nullptr) : parsed;
    return j;
}

// model_type "polymoe": the base keys, the per-layer layout, and auto_map for trust_remote_code.
ExportedFolder writePolymoeFolder(const Source &src, const fs::path &dir, const std::string &dtype)
{
    fs::create_directories(dir);
    const ModelConfig &c = src.config;
    OJson j = baseConfigJson(c, dtype);
    j["architectures"] = {"PolyMoEForCausalLM"};
    j["model_type"] = "polymoe";
    j["base_model_type"] = c.modelType;
    j["attention_bias"] = c.attentionBias;
    j["auto_map"] = {{"AutoConfig", "configuration_polymoe.PolyMoEConfig"},
                     {"AutoModelForCausalLM", "modeling_polymoe.PolyMoEForCausalLM"}};
    j["experts_per_layer"] = src.layout.empty() ? std::vector<int>(size_t(c.numLayers), 1) : src.layout.expertsPerLayer;
    j["num_experts_per_tok"] = src.layout.topK;
    j["classifier_layers"] = src.layout.classifierLayers;
    j["use_cache"] = false; // the remote code keeps no key/value cache
    // What PolyMoE's own loader reads (model_io.h); a dense model carries none.
    if (!src.layout.empty())
        j["polymoe"] = {{"experts_per_layer", src.layout.expertsPerLayer}, {"top_k", src.layout.topK},
                        {"classifier_layers", src.layout.classifierLayers}, {"format_version", kMoeFormatVersion}};
    writeFileAtomically(dir / "config.json", j.dump(2) + "\n");

    const at::ScalarType type = dtypeOf(dtype);
    std::map<std::string, at::Tensor> tensors;
    for (auto &[name, t] : stateOf(*src.model))
        tensors[name] = t.detach().to(at::kCPU, type).contiguous();
    saveCheckpointFolder(dir, tensors);

    writeFileAtomically(dir / "generation_config.json", generationConfig(c).dump(2) + "\n");
    copyTokenizerFiles(src.dir, dir);
    for (const auto &f : detail::kExportResources)
        writeFileAtomically(dir / std::string(f.name), f.text);
    writeFileAtomically(dir / "polymoe.json", provenanceJson(src, "polymoe", dtype).dump(2) + "\n");
    return {"polymoe", dir, int64_t(tensors.size()), folderBytes(dir)};
}

// PolyMoE's tensor name -> Mixtral's checkpoint name (the layout transformers' Mixtral checkpoints use
// and transformers 5 converts on load): mlp.gate -> block_sparse_moe.gate, experts.E.gate_proj -> w1,
// down_proj -> w2, up_proj -> w3. Attention, norms, embeddings and lm_head keep their names.
std::string mixtralName(const std::string &name)
{
    static const std::regex gate(R"(^(model\.layers\.\d+)\.mlp\.gate\.weight$)");
    static const std::regex expert(R"(^(model\.layers\.\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$)");
    std::smatch m;
    if (std::regex_match(name, m, gate))
        return m[1].str() + ".block_sparse_moe.gate.weight";
    if (std::regex_match(name, m, expert)) {
        const std::string w = m[3] == "gate" ? "w1" : (m[3] == "down" ? "w2" : "w3");
        return m[1].str() + ".block_sparse_moe.experts." + m[2].str() + "." + w + ".weight";
    }
    if (name.find(".mlp.") != std::string::npos)
        throw ConfigError("tensor '" + name + "' has no Mixtral equivalent");
    return name;
}

ExportedFolder writeMixtralFolder(const Source &src, const fs::path &dir, const std::string &dtype)
{
    fs::create_directories(dir);
    const ModelConfig &c = src.config;
    const int n = src.layout.expertsPerLayer.front();
    const int k = std::min(src.layout.topK, n);
    // The base's config.json keys, then what Mixtral names differently or lacks.
    OJson j = OJson::parse(modelConfigToJson(c));
    for (const char *key : {"rope_scaling", "attention_bias", "mlp_bias", "pretraining_tp"})
        j.erase(key);
    j["architectures"] = {"MixtralForCausalLM"};
    j["model_type"] = "mixtral";
    // transformers 4 reads rope_theta, 5 rope_parameters (Mixtral's own default theta is 1e6: be explicit).
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", c.ropeTheta}};
    j["sliding_window"] = nullptr;
    j["num_local_experts"] = n;
    j["num_experts_per_tok"] = k;
    // Routing as PolyMoE's: softmax -> top-k -> renormalise, no jitter, no router logits in the output.
    j["router_jitter_noise"] = 0.0;
    j["output_router_logits"] = false;
    j["router_aux_loss_coef"] = 0.01;
    j["torch_dtype"] = dtype;
    j["dtype"] = dtype;
    j["use_cache"] = true;
    writeFileAtomically(dir / "config.json", j.dump(2) + "\n");

    const at::ScalarType type = dtypeOf(dtype);
    std::map<std::string, at::Tensor> tensors;
    for (auto &[name, t] : stateOf(*src.model))
        tensors[mixtralName(name)] = t.detach().to(at::kCPU, type).contiguous();
    saveCheckpointFolder(dir, tensors);

    writeFileAtomically(dir / "generation_config.json", generationConfig(c).dump(2) + "\n");
    copyTokenizerFiles(src.dir, dir);
    writeFileAtomically(dir / "polymoe.json", provenanceJson(src, "mixtral", dtype).dump(2) + "\n");
    return {"mixtral", dir, int64_t(tensors.size()), folderBytes(dir)};
}

bool isProjectEntry(const fs::path &p)
{
    const std::string name = p.filename().string();
    return name.ends_with(".polymoe") || name.ends_with(".polymoe.d");
}

// --force replaces an export, never a project: not a folder inside a project's data folder, and not
// one that holds a project file or data folder anywhere below it.
void refuseToReplaceProject(const fs::path &out)
{
    std::error_code ec;
    const fs::path abs = fs::weakly_canonical(fs::absolute(out), ec);
    for (fs::path p = abs; !p.empty(); p = p.parent_path()) {
        if (p.filename().string().ends_with(".polymoe.d"))
            throw IoError(out.string() + ": is inside the project data folder " + p.string() +
                          "; --force never replaces anything there (export to a folder outside the project)");
        if (p == p.parent_path())
            break;
    }
    int64_t seen = 0;
    for (auto it = fs::recursive_directory_iterator(abs, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (++seen > 100000)
            throw IoError(out.string() + ": holds more than 100,000 files; --force replaces export folders only");
        if (isProjectEntry(it->path()))
            throw IoError(out.string() + ": holds the project " + it->path().string() +
                          "; --force never replaces a folder with a project in it");
        if (it->is_symlink(ec))
            it.disable_recursion_pending();
    }
}

void checkOutDir(const fs::path &out, bool force)
{
    std::error_code ec;
    if (!fs::exists(out, ec))
        return;
    if (!fs::is_directory(out, ec))
        throw IoError(out.string() + ": exists and is not a folder");
    if (!fs::is_empty(out, ec) && !force)
        throw IoError(out.string() + ": folder exists and is not empty (use --force to replace it)");
    if (!fs::is_empty(out, ec))
        refuseToReplaceProject(out);
}

} // namespace

ExportOutcome exportModelFolder(const fs::path &modelDir, const ExportSpec &spec, const ProgressFn &progress,
                                std::stop_token stop)
{
    if (spec.format != "auto" && spec.format != "polymoe" && spec.format != "mixtral")
        throw ConfigError("export format must be polymoe, mixtral or auto, not '" + spec.format + "'");
    dtypeOf(spec.dtype);
    if (spec.outDir.empty())
        throw ConfigError("export: no output folder given");
    const fs::path out = spec.outDir.has_filename() ? spec.outDir : spec.outDir.parent_path();
    checkOutDir(out, spec.force);
    const auto report = [&](int64_t done, const std::string &msg) {
        if (progress)
            progress({"export", done, 3, "steps", msg});
    };

    report(0, "loading " + modelDir.string());
    Source src;
    src.dir = modelDir;
    src.model = loadModelFolder(modelDir);
    src.config = src.model->config();
    src.layout = moeLayoutOf(*src.model);
    // Both export formats compute plain RoPE (Mixtral's config is written with rope_type default, the
    // remote code has no scaling): a scaled model would load as a different model, so it is refused.
    if (src.config.ropeType != "default")
        throw ConfigError(modelDir.string() + ": RoPE scaling '" + src.config.ropeType +
                          "' cannot be exported yet (the polymoe and mixtral formats compute plain RoPE)");
    src.provenance = fs::is_regular_file(modelDir / "polymoe.json") ? readFileText(modelDir / "polymoe.json") : "null";
    throwIfStopped(stop);

    ExportOutcome o;
    o.sourceDir = modelDir;
    o.outDir = out;
    o.baseModelType = src.config.modelType;
    o.experts = src.layout.expertsPerLayer;
    o.topK = src.layout.empty() ? 0 : src.layout.topK;
    o.classifierLayers = src.layout.classifierLayers;
    o.dtype = spec.dtype;
    o.mixtralReason = mixtralNotApplicableReason(src.config.modelType, src.layout.expertsPerLayer,
                                                 src.layout.classifierLayers);
    if (spec.format == "mixtral" && !o.mixtralReason.empty())
        throw ConfigError("cannot export " + modelDir.string() + " as Mixtral: " + o.mixtralReason);

    // Everything goes into a temporary sibling, renamed into place at the end.
    const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
    fs::create_directories(parent);
    const std::string pid = std::to_string(::getpid());
    const fs::path tmp = parent / ("." + out.filename().string() + ".export-" + pid);
    const fs::path old = parent / ("." + out.filename().string() + ".old-" + pid);
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        const bool both = spec.format == "auto";
        std::vector<std::pair<ExportedFolder, fs::path>> written; // folder, its final place
        if (spec.format != "mixtral") {
            report(1, "writing the polymoe folder");
            auto f = writePolymoeFolder(src, both ? tmp / "polymoe" : tmp, spec.dtype);
            written.push_back({f, both ? out / "polymoe" : out});
            throwIfStopped(stop);
        }
        if (o.mixtralReason.empty() && spec.format != "polymoe") {
            report(2, "writing the mixtral folder");
            auto f = writeMixtralFolder(src, both ? tmp / "mixtral" : tmp, spec.dtype);
            written.push_back({f, both ? out / "mixtral" : out});
            throwIfStopped(stop);
        }
        checkOutDir(out, spec.force); // again: something may have appeared meanwhile
        const bool replacing = fs::exists(out);
        if (replacing)
            fs::rename(out, old);
        try {
            fs::rename(tmp, out);
        } catch (...) {
            if (replacing)
                fs::rename(old, out, ec); // put the previous folder back
            throw;
        }
        fs::remove_all(old, ec);
        for (auto &[f, dir] : written) {
            f.dir = dir;
            o.folders.push_back(f);
        }
    } catch (const fs::filesystem_error &e) {
        fs::remove_all(tmp, ec);
        throw IoError("exporting to " + out.string() + ": " + e.what());
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
    report(3, "done");
    return o;
}

ExportOutcome exportModel(ProjectStore &store, const ExportSpec &spec, const ProgressFn &progress, std::stop_token stop)
{
    std::string name = spec.model;
    if (name.empty()) {
        const auto models = store.models(); // by id: the last one is the newest
        for (const auto &m : models)
            if (m.kind == "expanded")
                name = m.name;
        if (name.empty() && !models.empty())
            name = models.back().name;
        if (name.empty())
            throw ConfigError(store.path().string() + ": the project has no model to export");
    }
    const ModelRecord rec = requireModel(store, name);
    ExportOutcome o = exportModelFolder(store.modelPath(rec), spec, progress, stop);
    o.modelName = name;
    return o;
}

} // namespace polymoe
