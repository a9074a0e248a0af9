// polymoe export: a project model as Hugging Face folders (remote-code "polymoe", stock "mixtral").
#include "cli.h"

#include "polymoe/export.h"
#include "polymoe/project_store.h"

#include <sstream>

namespace polymoe::cli {
namespace {

std::string joinInts(const std::vector<int> &v)
{
    std::string s;
    for (size_t i = 0; i < v.size(); ++i)
        s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

int exportCmd(const Args &a, Context &ctx)
{
    ExportSpec spec;
    spec.model = a.get("--model");
    spec.outDir = a.get("--out");
    if (spec.outDir.empty())
        throw UsageError("--out DIR is required");
    spec.format = a.get("--format", "auto");
    if (spec.format != "auto" && spec.format != "polymoe" && spec.format != "mixtral")
        throw UsageError("--format must be polymoe, mixtral or auto");
    spec.dtype = a.get("--dtype", "float32");
    if (spec.dtype != "float32" && spec.dtype != "bfloat16" && spec.dtype != "float16")
        throw UsageError("--dtype must be float32, bfloat16 or float16");
    spec.force = a.has("--force");

    auto store = ProjectStore::open(a.positionals[0]);
    const ExportOutcome o = exportModel(store, spec, ctx.progressFn, ctx.stop);

    nlohmann::json j = {{"model", o.modelName}, {"source_dir", o.sourceDir.string()}, {"out", o.outDir.string()},
                        {"base_model_type", o.baseModelType}, {"experts", o.experts}, {"top_k", o.topK},
                        {"classifier_layers", o.classifierLayers}, {"dtype", o.dtype},
                        {"mixtral_applicable", o.mixtralReason.empty()}};
    if (!o.mixtralReason.empty())
        j["mixtral_reason"] = o.mixtralReason;
    j["folders"] = nlohmann::json::array();
    std::ostringstream os;
    os << "exported '" << o.modelName << "' (" << o.baseModelType << " base, "
       << (o.experts.empty() ? std::string("dense") : "experts per layer " + joinInts(o.experts)) << ", " << o.dtype
       << ")\n";
    for (const auto &f : o.folders) {
        j["folders"].push_back({{"format", f.format}, {"dir", f.dir.string()}, {"tensors", f.tensors}, {"bytes", f.bytes}});
        os << "  " << f.format << ": " << f.dir.string() << " (" << f.tensors << " tensors, " << f.bytes << " bytes)\n";
    }
    if (!o.mixtralReason.empty())
        os << "  no mixtral folder: " << o.mixtralReason << "\n";
    os << "  load with transformers: AutoModelForCausalLM.from_pretrained(DIR"
       << (spec.format == "mixtral" ? "" : ", trust_remote_code=True") << ")\n";
    ctx.print(j, os.str());
    return kExitOk;
}

Register exportRegistration(
    {"export", "write a model as Hugging Face folders (remote-code polymoe; stock Mixtral when possible)",
     "PROJECT --out DIR [--model NAME] [--format polymoe|mixtral|auto] [--dtype TYPE] [--force]",
     "polymoe: config.json with model_type \"polymoe\" and auto_map, model.safetensors (PolyMoE's tensor\n"
     "names), the tokenizer, and configuration_/modeling_polymoe.py: the same forward for transformers\n"
     "(load with trust_remote_code=True); PolyMoE loads it back bit-exactly. mixtral: a stock\n"
     "MixtralForCausalLM folder, possible when every layer has the same N >= 2 experts, the base is\n"
     "llama or mistral, and there is no old/new classifier. --format polymoe or mixtral writes DIR as\n"
     "that folder; auto writes DIR/polymoe and, when possible, DIR/mixtral (else it says why not).\n"
     "A non-empty DIR is refused unless --force; nothing is left half-written.",
     {{"--out", "DIR", "output folder", ""},
      {"--model", "NAME", "model of the project (default: the newest expanded model, else the newest)", ""},
      {"--format", "NAME", "polymoe, mixtral or auto", "auto"},
      {"--dtype", "TYPE", "stored weights: float32, bfloat16 or float16", "float32"},
      {"--force", "", "replace DIR when it exists and is not empty", ""}},
     1, 1, true, exportCmd});

} // namespace
} // namespace polymoe::cli
