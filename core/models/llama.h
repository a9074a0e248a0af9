// The dense decoder of the Llama family (llama, mistral, qwen2; qwen2 adds q/k/v biases), METHOD.md
// section 0, computed as Hugging Face transformers does. Module and parameter names equal the HF
// tensor paths ("model.layers.3.mlp.up_proj.weight"), so named_parameters() maps one to one onto a
// checkpoint. Each layer's FFN is a FeedForwardImpl that the MoE upcycling (section 3) replaces.
//
// Usage:
//   polymoe::CausalLM lm(config);                 // HF init: normal(0, initializer_range), norms = 1
//   at::Tensor logits = lm->forward(ids);         // ids (batch, seq) int64 -> (batch, seq, vocab)
//   lm->setFfnInputHook([](int layer, const at::Tensor &h) { ... });  // sees every FFN input
//   lm->layer(2)->replaceMlp(std::make_shared<MyMoeImpl>(...));        // names follow: model.layers.2.mlp.*
#pragma once

#include "model_config.h"

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <vector>

namespace polymoe {

// Called by every layer with its FFN input h = post_attention_layernorm(x), shape (batch, seq, d_model),
// before the FFN runs. The tensor is the one the FFN receives (no copy): clone it to keep it, and do
// not modify it in place.
using FfnInputHook = std::function<void(int layer, const at::Tensor &h)>;

// RMSNorm as HF computes it: in fp32 (fp64 for double input), x * rsqrt(mean(x^2) + eps), cast back
// to the input dtype, then times the learned scale. Parameter: "weight" (dim), initialised to ones.
class RMSNormImpl : public torch::nn::Module {
public:
    RMSNormImpl(int64_t dim, double eps);
    at::Tensor forward(const at::Tensor &x);

    at::Tensor weight;

private:
    double m_eps;
};
TORCH_MODULE(RMSNorm);

// Rotary position embedding tables, HF rotate-half convention: feature i pairs with i + headDim/2,
// angle = position * inv_freq_i. cos and sin are (seq, headDim), computed in fp32 (fp64 when dtype
// is double) and cast to dtype.
struct RopeTables {
    at::Tensor cos;
    at::Tensor sin;
};
// The config's inv_freq (headDim/2), in fp32 (fp64 for kDouble), as transformers' ROPE_INIT_FUNCTIONS:
//   default: inv_freq_i = theta^(-2i/headDim)
//   linear:  inv_freq_i / factor
//   llama3:  with wavelength w_i = 2 pi / inv_freq_i and L = original_max_position_embeddings,
//            w_i > L / low_freq_factor: inv_freq_i / factor; w_i < L / high_freq_factor: unchanged;
//            in between (1 - s) inv_freq_i / factor + s inv_freq_i, s = (L / w_i - low) / (high - low).
at::Tensor ropeInverseFrequencies(const ModelConfig &config, at::Device device, at::ScalarType dtype);
RopeTables ropeTables(int64_t seqLen, const at::Tensor &invFreq, at::ScalarType dtype);
// Plain RoPE (no scaling) with this base.
RopeTables ropeTables(int64_t seqLen, int64_t headDim, double theta, at::Device device, at::ScalarType dtype);
// x (batch, heads, seq, headDim) -> x * cos + rotate_half(x) * sin.
at::Tensor applyRope(const at::Tensor &x, const RopeTables &rope);

// Causal self-attention with grouped-query heads (each key/value head serves numHeads/numKvHeads
// query heads), softmax scale 1/sqrt(headDim). Children: q_proj, k_proj, v_proj (biases for qwen2), o_proj.
class AttentionImpl : public torch::nn::Module {
public:
    explicit AttentionImpl(const ModelConfig &config);
    // x (batch, seq, d_model) -> (batch, seq, d_model)
    at::Tensor forward(const at::Tensor &x, const RopeTables &rope);

    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

private:
    int64_t m_numHeads, m_numKvHeads, m_headDim;
};
TORCH_MODULE(Attention);

// What a decoder layer's "mlp" slot holds: the dense SwiGLU FFN, or an MoE block after upcycling.
// h (batch, seq, d_model) -> (batch, seq, d_model).
class FeedForwardImpl : public torch::nn::Module {
public:
    ~FeedForwardImpl() override = default;
    virtual at::Tensor forward(const at::Tensor &h) = 0;
    // Activation checkpointing (layer_checkpoint.h): the tensors of the last forward that a loss reads
    // afterwards (an MoE block's router logits and probabilities), made outputs of the checkpointed
    // layer so that they keep a gradient path, then handed back connected to it. Dense FFN: none.
    virtual std::vector<at::Tensor> tensorsForLosses() const { return {}; }
    virtual void adoptTensorsForLosses(const std::vector<at::Tensor> &) {}
};

// FFN(h) = down_proj(silu(gate_proj(h)) * up_proj(h)), no biases.
class SwiGluFfnImpl : public FeedForwardImpl {
public:
    SwiGluFfnImpl(int64_t hiddenSize, int64_t intermediateSize);
    at::Tensor forward(const at::Tensor &h) override;

    torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(SwiGluFfn);

// x = x + self_attn(input_layernorm(x)); h = post_attention_layernorm(x); hook(layer, h); x = x + mlp(h).
class DecoderLayerImpl : public torch::nn::Module {
public:
    DecoderLayerImpl(const ModelConfig &config, int layerIndex);
    at::Tensor forward(const at::Tensor &x, const RopeTables &rope, const FfnInputHook *hook = nullptr);
    // The layer's computation, always storing its activations (forward() may recompute them instead).
    at::Tensor forwardStored(const at::Tensor &x, const RopeTables &rope, const FfnInputHook *hook = nullptr);
    // On: in training mode with gradients on (and no FFN input hook), forward() keeps only the
    // layer's input and recomputes the layer in the backward pass (layer_checkpoint.h).
    void setActivationCheckpointing(bool on) { m_checkpoint = on; }
    bool activationCheckpointing() const { return m_checkpoint; }

    // Swaps the "mlp" child (named_parameters follows: model.layers.N.mlp.<new names>).
    void replaceMlp(std::shared_ptr<FeedForwardImpl> mlp);
    std::shared_ptr<FeedForwardImpl> mlp() const { return m_mlp; }
    int layerIndex() const { return m_layerIndex; }

    RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
    Attention self_attn{nullptr};

private:
    std::shared_ptr<FeedForwardImpl> m_mlp;
    int m_layerIndex;
    bool m_checkpoint = false;
};
TORCH_MODULE(DecoderLayer);

// The "model." part of an HF checkpoint: embed_tokens, layers.N, norm.
class DecoderModelImpl : public torch::nn::Module {
public:
    explicit DecoderModelImpl(const ModelConfig &config);
    // inputIds (batch, seq) int64 -> final-normed hidden states (batch, seq, d_model)
    at::Tensor forward(const at::Tensor &inputIds, const FfnInputHook *hook = nullptr);

    torch::nn::Embedding embed_tokens{nullptr};
    torch::nn::ModuleList layers{nullptr};
    std::vector<DecoderLayer> decoderLayers; // the same modules as `layers`, typed
    RMSNorm norm{nullptr};

private:
    ModelConfig m_config; // head size and RoPE
};
TORCH_MODULE(DecoderModel);

// The causal language model: DecoderModel "model" plus "lm_head" (absent when tie_word_embeddings,
// then the logits use model.embed_tokens.weight; loadModelFolder accepts a tied checkpoint with or
// without a stored lm_head.weight).
class CausalLMImpl : public torch::nn::Module {
public:
    explicit CausalLMImpl(const ModelConfig &config);

    // inputIds (batch, seq) int64 -> logits (batch, seq, vocab)
    at::Tensor forward(const at::Tensor &inputIds);
    // Stops before the LM head: (batch, seq, d_model). With logitsFromHidden, lets a loss run the
    // vocabulary projection chunk by chunk.
    at::Tensor forwardHidden(const at::Tensor &inputIds);
    // hidden (..., d_model) -> logits (..., vocab)
    at::Tensor logitsFromHidden(const at::Tensor &hidden);

    const ModelConfig &config() const { return m_config; }
    int64_t numLayers() const { return static_cast<int64_t>(model->decoderLayers.size()); }
    DecoderLayer layer(int64_t index) const;

    // An empty function clears the hook.
    void setFfnInputHook(FfnInputHook hook) { m_hook = std::move(hook); }
    // Activation checkpointing in every decoder layer (DecoderLayerImpl::setActivationCheckpointing).
    void setActivationCheckpointing(bool on);

    // HF's _init_weights: normal(0, initializer_range) for Linear and Embedding weights, zero biases,
    // ones for RMSNorm. Applies to every submodule, replaced FFNs included.
    void resetParameters();

    DecoderModel model{nullptr};
    torch::nn::Linear lm_head{nullptr}; // null when tieWordEmbeddings

private:
    ModelConfig m_config;
    FfnInputHook m_hook;
};
TORCH_MODULE(CausalLM);

} // namespace polymoe
