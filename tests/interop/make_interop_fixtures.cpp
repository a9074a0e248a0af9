// Writes the fixtures of the interop test (label interop): tiny PolyMoE models exported with
// `exportModelFolder`, and PolyMoE's own logits for fixed input ids, which check_transformers.py
// compares with what transformers computes from the exported folders.
//   make_interop_fixtures OUT_DIR
// OUT_DIR/<case>/export/{polymoe,mixtral}/ and OUT_DIR/<case>/reference.safetensors (input_ids, logits).
#include "model_io.h"
#include "moe_block.h"
#include "polymoe/error.h"
#include "polymoe/export.h"
#include "safetensors.h"
#include "upcycle.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

using namespace polymoe;
namespace fs = std::filesystem;

namespace {

ModelConfig config(const std::string &type, bool tied)
{
    ModelConfig c;
    c.modelType = type;
    c.attentionBias = type == "qwen2";
    c.vocabSize = 96;
    c.hiddenSize = 32;
    c.intermediateSize = 48;
    c.numLayers = 3;
    c.numHeads = 4;
    c.numKvHeads = 2;
    c.headDim = 8;
    c.maxPositionEmbeddings = 64;
    c.ropeTheta = 10000.0;
    c.rmsNormEps = 1e-5;
    c.tieWordEmbeddings = tied;
    c.bosTokenId = 1;
    c.eosTokenId = 2;
    return c;
}

// Gives the classifier of `layer` weights that call sequence 0 "old" and sequence 1 "new": with
// s_b the FFN input of sequence b summed over its tokens and u = s_0/|s_0| - s_1/|s_1|, the logit
// difference (old - new) is u.s_b, positive for b = 0 and negative for b = 1 (unless s_0 ∥ s_1).
void splitClassifier(CausalLM &m, int layer, const at::Tensor &ids)
{
    at::Tensor summed;
    m->setFfnInputHook([&](int l, const at::Tensor &h) {
        if (l == layer)
            summed = h.sum(1).detach().clone(); // (B, d)
    });
    m->forward(ids);
    m->setFfnInputHook({});
    const at::Tensor s0 = summed[0] / summed[0].norm(), s1 = summed[1] / summed[1].norm();
    const at::Tensor u = s0 - s1;
    auto block = std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(layer)->mlp());
    block->classifier->weight.copy_(at::stack({u / 2, -u / 2}));
}

// dtype: the saved folder's weight dtype; the weights are rounded to it first, so PolyMoE's logits
// are those of the saved values. exported false: only the dense folder is written and checked (the
// export formats have plain RoPE only).
void writeCase(const fs::path &out, const std::string &name, CausalLM m, int classifierLayer,
               const std::string &dtype = "float32", bool exported = true, const TokenizerFiles &tokenizer = {})
{
    const at::NoGradGuard ng;
    m->eval();
    const at::ScalarType type = weightDtype(dtype, name);
    for (auto &p : m->parameters())
        p.copy_(p.to(type).to(p.scalar_type()));
    // Batch of 3 sequences of 20 tokens.
    const at::Tensor ids = at::randint(3, m->config().vocabSize, {3, 20}, at::TensorOptions().dtype(at::kLong));
    if (classifierLayer >= 0)
        splitClassifier(m, classifierLayer, ids);
    const at::Tensor logits = m->forward(ids).contiguous();
    std::string old;
    if (classifierLayer >= 0) {
        auto block = std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(classifierLayer)->mlp());
        const at::Tensor isOld = block->lastRouting().classifierLogits.argmax(-1).eq(0);
        for (int64_t b = 0; b < isOld.size(0); ++b)
            old += isOld[b].item<bool>() ? "old " : "new ";
    }

    const fs::path dir = out / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path src = dir / "source";
    saveModelFolder(*m, src, tokenizer, "{}", dtype);
    ExportOutcome o;
    if (exported)
        o = exportModelFolder(src, {.outDir = dir / "export"});
    else
        o.mixtralReason = "not exported";
    // A dense model's own folder (as PolyMoE saves every trained model) must load as the stock
    // LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (the dense-engine issue).
    writeSafetensors(dir / "reference.safetensors", {{"input_ids", ids}, {"logits", logits}},
                     {{"mixtral", o.mixtralReason.empty() ? "yes" : "no"},
                      {"dense", moeLayoutOf(*m).empty() ? "yes" : "no"},
                      {"exported", exported ? "yes" : "no"},
                      {"dtype", dtype},
                      {"rope_type", m->config().ropeType},
                      {"tokenizer", tokenizer.empty() ? "no" : "yes"}});
    std::cout << name << ": " << o.folders.size() << " folder(s)"
              << (o.mixtralReason.empty() ? "" : "; no mixtral: " + o.mixtralReason)
              << (old.empty() ? "" : "; classifier: " + old) << "\n";
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        std::cerr << "usage: make_interop_fixtures OUT_DIR [TOKENIZER_JSON]\n";
        return 2;
    }
    try {
        const fs::path out = argv[1];
        torch::manual_seed(1234);
        {
            // Mixtral-shaped: llama base, 4 experts in every layer, top-2.
            CausalLM m(config("llama", false));
            upcycleModel(m, {4, 4, 4}, 2, 11);
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, "uniform_llama", m, -1);
        }
        {
            // LayerMoE-shaped: qwen2 base (q/k/v biases), tied embeddings, a dense layer, the classifier.
            CausalLM m(config("qwen2", true));
            upcycleModel(m, {3, 1, 2}, 2, 12);
            std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(2)->mlp())->setClassifier(true);
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, "layered_qwen2", m, 2);
        }
        for (const char *type : {"llama", "qwen2"}) {
            // Dense models as saved by pre-training and fine-tuning.
            CausalLM m(config(type, std::string(type) == "qwen2"));
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, std::string("dense_") + type, m, -1);
        }
        {
            // A dense Llama 3-style model: llama3 RoPE scaling (headDim 12, theta 1e4: wavelengths
            // 2 pi / 10^(-2i/3) = 6.3, 29, 135, 628, 2916, 13536; with L = 64, low 1, high 4 the first is
            // kept, the second interpolated, the rest divided by 8), an explicit head_dim (12, not 32 / 4), tied
            // embeddings, saved in bfloat16. Read by the stock LlamaForCausalLM.
            ModelConfig c = config("llama", true);
            c.headDim = 12;
            c.maxPositionEmbeddings = 256;
            c.ropeType = "llama3";
            c.ropeFactor = 8.0;
            c.ropeLowFreqFactor = 1.0;
            c.ropeHighFreqFactor = 4.0;
            c.ropeOriginalMaxPositions = 64;
            CausalLM m(c);
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, "dense_llama3_tied_bf16", m, -1, "bfloat16", false);
        }
        if (argc == 3) {
            // A byte-level BPE tokenizer.json (Llama-3 style, made by the tokenizers library) carried
            // by the model folder into both exports: AutoTokenizer must read it with the same ids.
            std::ifstream in(argv[2], std::ios::binary);
            std::ostringstream bytes;
            bytes << in.rdbuf();
            if (!in)
                throw std::runtime_error(std::string(argv[2]) + ": cannot be read");
            const auto tok = nlohmann::json::parse(bytes.str());
            int64_t vocab = 0;
            for (const auto &[piece, id] : tok["model"]["vocab"].items())
                vocab = std::max<int64_t>(vocab, id.get<int64_t>() + 1);
            for (const auto &a : tok["added_tokens"])
                vocab = std::max<int64_t>(vocab, a["id"].get<int64_t>() + 1);
            ModelConfig c = config("llama", false);
            c.vocabSize = vocab;
            CausalLM m(c);
            upcycleModel(m, {3, 3, 3}, 2, 14);
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, "bpe_tokenizer_llama", m, -1, "float32", true, {{"tokenizer.json", bytes.str()}});
        }
        {
            // Mistral base, top-1 of 2 experts per layer.
            CausalLM m(config("mistral", false));
            upcycleModel(m, {2, 2, 2}, 1, 13);
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.05);
            writeCase(out, "top1_mistral", m, -1);
        }
    } catch (const std::exception &e) {
        std::cerr << "make_interop_fixtures: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
