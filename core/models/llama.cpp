// Forward pass of the Llama-family decoder (llama, mistral, qwen2), matching HF transformers' eager path.
#include "models/llama.h"

#include "models/layer_checkpoint.h"

#include "polymoe/error.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace polymoe {

namespace {

// Norms and RoPE tables run in fp32 like HF, or in fp64 when the model itself is double.
at::ScalarType computeDtype(at::ScalarType t)
{
    return t == at::kDouble ? at::kDouble : at::kFloat;
}

torch::nn::Linear linear(int64_t in, int64_t out, bool bias)
{
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

at::Tensor rotateHalf(const at::Tensor &x)
{
    const int64_t half = x.size(-1) / 2;
    return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

} // namespace

// ---- RMSNorm ----

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : m_eps(eps)
{
    weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor &x)
{
    const at::Tensor xf = x.to(computeDtype(x.scalar_type()));
    const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (xf * at::rsqrt(variance + m_eps)).to(x.scalar_type());
}

// ---- RoPE ----

namespace {

at::Tensor plainInverseFrequencies(int64_t headDim, double theta, at::Device device, at::ScalarType dtype)
{
    const auto opts = at::TensorOptions().dtype(computeDtype(dtype)).device(device);
    // inv_freq_i = 1 / theta^(2i/d), i = 0..d/2-1
    const at::Tensor exponent = at::arange(0, headDim, 2, opts) / static_cast<double>(headDim);
    return at::reciprocal(at::pow(theta, exponent));
}

} // namespace

at::Tensor ropeInverseFrequencies(const ModelConfig &c, at::Device device, at::ScalarType dtype)
{
    const at::Tensor invFreq = plainInverseFrequencies(c.headDim, c.ropeTheta, device, dtype);
    if (c.ropeType == "default")
        return invFreq;
    if (c.ropeType == "linear")
        return invFreq / c.ropeFactor; // the same as positions / factor
    if (c.ropeType != "llama3")
        throw ConfigError("rope_type '" + c.ropeType + "' is not implemented (default, linear and llama3 are)");
    // Llama 3.1 (transformers' _compute_llama3_parameters, same operations in the same dtype; Python's
    // `scalar / tensor` is reciprocal() * scalar): long wavelengths are stretched by factor, short
    // ones kept, the band between interpolated smoothly.
    const double original = static_cast<double>(c.ropeOriginalMaxPositions);
    const double lowFreqWavelen = original / c.ropeLowFreqFactor;   // above: divided by factor
    const double highFreqWavelen = original / c.ropeHighFreqFactor; // below: unchanged
    const at::Tensor wavelen = invFreq.reciprocal() * (2.0 * M_PI);
    const at::Tensor scaled = at::where(wavelen > lowFreqWavelen, invFreq / c.ropeFactor, invFreq);
    const at::Tensor smooth =
        (wavelen.reciprocal() * original - c.ropeLowFreqFactor) / (c.ropeHighFreqFactor - c.ropeLowFreqFactor);
    const at::Tensor smoothed = (1.0 - smooth) * scaled / c.ropeFactor + smooth * scaled;
    const at::Tensor medium = wavelen.ge(highFreqWavelen).logical_and(wavelen.le(lowFreqWavelen));
    return at::where(medium, smoothed, scaled);
}

RopeTables ropeTables(int64_t seqLen, const at::Tensor &invFreq, at::ScalarType dtype)
{
    const at::Tensor positions = at::arange(seqLen, invFreq.options());
    const at::Tensor freqs = at::outer(positions, invFreq);      // (seq, d/2)
    const at::Tensor emb = at::cat({freqs, freqs}, -1);           // (seq, d): pairs (i, i + d/2)
    return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

RopeTables ropeTables(int64_t seqLen, int64_t headDim, double theta, at::Device device, at::ScalarType dtype)
{
    return ropeTables(seqLen, plainInverseFrequencies(headDim, theta, device, dtype), dtype);
}

at::Tensor applyRope(const at::Tensor &x, const RopeTables &rope)
{
    return x * rope.cos + rotateHalf(x) * rope.sin;
}

// ---- Attention ----

AttentionImpl::AttentionImpl(const ModelConfig &c)
    : m_numHeads(c.numHeads), m_numKvHeads(c.numKvHeads), m_headDim(c.headDim)
{
    q_proj = register_module("q_proj", linear(c.hiddenSize, c.numHeads * c.headDim, c.attentionBias));
    k_proj = register_module("k_proj", linear(c.hiddenSize, c.numKvHeads * c.headDim, c.attentionBias));
    v_proj = register_module("v_proj", linear(c.hiddenSize, c.numKvHeads * c.headDim, c.attentionBias));
    o_proj = register_module("o_proj", linear(c.numHeads * c.headDim, c.hiddenSize, false));
}

at::Tensor AttentionImpl::forward(const at::Tensor &x, const RopeTables &rope)
{
    TORCH_CHECK(x.dim() == 3, "attention expects (batch, seq, d_model), got ", x.sizes());
    const int64_t B = x.size(0), T = x.size(1), H = m_numHeads, Hkv = m_numKvHeads, D = m_headDim;
    // (B, T, heads*D) -> (B, heads, T, D)
    at::Tensor q = q_proj->forward(x).view({B, T, H, D}).transpose(1, 2);
    at::Tensor k = k_proj->forward(x).view({B, T, Hkv, D}).transpose(1, 2);
    at::Tensor v = v_proj->forward(x).view({B, T, Hkv, D}).transpose(1, 2);
    q = applyRope(q, rope);
    k = applyRope(k, rope);
    if (Hkv != H) {
        // query head j reads key/value head j / (H / Hkv), as HF's repeat_kv
        const int64_t rep = H / Hkv;
        k = k.unsqueeze(2).expand({B, Hkv, rep, T, D}).reshape({B, H, T, D});
        v = v.unsqueeze(2).expand({B, Hkv, rep, T, D}).reshape({B, H, T, D});
    }
#if TORCH_VERSION_MAJOR >= 2
    at::Tensor out = at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
    // scores (B, H, T, T), scale 1/sqrt(D), future keys masked, softmax in fp32 as HF's eager path
    at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(D)));
    const at::Tensor future = at::ones({T, T}, x.options().dtype(at::kBool)).triu(1);
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
    const at::Tensor probs = at::softmax(scores, -1, computeDtype(q.scalar_type())).to(q.scalar_type());
    at::Tensor out = at::matmul(probs, v);
#endif
    return o_proj->forward(out.transpose(1, 2).reshape({B, T, H * D}));
}

// ---- FFN ----

SwiGluFfnImpl::SwiGluFfnImpl(int64_t hiddenSize, int64_t intermediateSize)
{
    gate_proj = register_module("gate_proj", linear(hiddenSize, intermediateSize, false));
    up_proj = register_module("up_proj", linear(hiddenSize, intermediateSize, false));
    down_proj = register_module("down_proj", linear(intermediateSize, hiddenSize, false));
}

at::Tensor SwiGluFfnImpl::forward(const at::Tensor &h)
{
    return down_proj->forward(at::silu(gate_proj->forward(h)) * up_proj->forward(h));
}

// ---- Decoder layer ----

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig &c, int layerIndex) : m_layerIndex(layerIndex)
{
    self_attn = register_module("self_attn", Attention(c));
    m_mlp = register_module<FeedForwardImpl>("mlp", std::make_shared<SwiGluFfnImpl>(c.hiddenSize, c.intermediateSize));
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hiddenSize, c.rmsNormEps));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hiddenSize, c.rmsNormEps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor &x, const RopeTables &rope, const FfnInputHook *hook)
{
    if (m_checkpoint && is_training() && at::GradMode::is_enabled() && !(hook && *hook))
        return checkpointedLayerForward(*this, x, rope);
    return forwardStored(x, rope, hook);
}

at::Tensor DecoderLayerImpl::forwardStored(const at::Tensor &x, const RopeTables &rope, const FfnInputHook *hook)
{
    const at::Tensor afterAttn = x + self_attn->forward(input_layernorm->forward(x), rope);
    const at::Tensor h = post_attention_layernorm->forward(afterAttn); // the FFN input (METHOD.md 0)
    if (hook && *hook)
        (*hook)(m_layerIndex, h);
    return afterAttn + m_mlp->forward(h);
}

void DecoderLayerImpl::replaceMlp(std::shared_ptr<FeedForwardImpl> mlp)
{
    if (!mlp)
        throw ConfigError("layer " + std::to_string(m_layerIndex) + ": replaceMlp given no module");
    m_mlp = replace_module("mlp", std::move(mlp));
}

// ---- Decoder stack ----

DecoderModelImpl::DecoderModelImpl(const ModelConfig &c) : m_config(c)
{
    embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocabSize, c.hiddenSize));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.numLayers; ++i) {
        decoderLayers.emplace_back(c, static_cast<int>(i));
        layers->push_back(decoderLayers.back());
    }
    norm = register_module("norm", RMSNorm(c.hiddenSize, c.rmsNormEps));
}

at::Tensor DecoderModelImpl::forward(const at::Tensor &inputIds, const FfnInputHook *hook)
{
    TORCH_CHECK(inputIds.dim() == 2, "input ids must be (batch, seq), got ", inputIds.sizes());
    at::Tensor x = embed_tokens->forward(inputIds); // (B, T, d)
    const RopeTables rope = ropeTables(
        inputIds.size(1), ropeInverseFrequencies(m_config, x.device(), x.scalar_type()), x.scalar_type());
    for (auto &layer : decoderLayers)
        x = layer->forward(x, rope, hook);
    return norm->forward(x);
}

// ---- Causal LM ----

CausalLMImpl::CausalLMImpl(const ModelConfig &config) : m_config(config)
{
    validateModelConfig(config, "CausalLM");
    model = register_module("model", DecoderModel(config));
    if (!config.tieWordEmbeddings)
        lm_head = register_module("lm_head", linear(config.hiddenSize, config.vocabSize, false));
    resetParameters();
}

at::Tensor CausalLMImpl::forwardHidden(const at::Tensor &inputIds)
{
    return model->forward(inputIds, m_hook ? &m_hook : nullptr);
}

at::Tensor CausalLMImpl::logitsFromHidden(const at::Tensor &hidden)
{
    if (lm_head)
        return lm_head->forward(hidden);
    return at::linear(hidden, model->embed_tokens->weight);
}

at::Tensor CausalLMImpl::forward(const at::Tensor &inputIds)
{
    return logitsFromHidden(forwardHidden(inputIds));
}

DecoderLayer CausalLMImpl::layer(int64_t index) const
{
    if (index < 0 || index >= numLayers())
        throw ConfigError("layer " + std::to_string(index) + " out of range: the model has " +
                          std::to_string(numLayers()) + " layers");
    return model->decoderLayers[static_cast<size_t>(index)];
}

void CausalLMImpl::setActivationCheckpointing(bool on)
{
    for (auto &l : model->decoderLayers)
        l->setActivationCheckpointing(on);
}

void CausalLMImpl::resetParameters()
{
    const at::NoGradGuard noGrad;
    const double stdev = m_config.initializerRange;
    for (const auto &module : modules(/*include_self=*/false)) {
        if (auto *lin = dynamic_cast<torch::nn::LinearImpl *>(module.get())) {
            lin->weight.normal_(0.0, stdev);
            if (lin->bias.defined())
                lin->bias.zero_();
        } else if (auto *emb = dynamic_cast<torch::nn::EmbeddingImpl *>(module.get())) {
            emb->weight.normal_(0.0, stdev);
        } else if (auto *norm = dynamic_cast<RMSNormImpl *>(module.get())) {
            norm->weight.fill_(1.0);
        }
    }
}

} // namespace polymoe
