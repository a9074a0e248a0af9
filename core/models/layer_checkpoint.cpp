// Activation checkpointing of a decoder layer (see layer_checkpoint.h).
#include "models/layer_checkpoint.h"

#include "autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace polymoe {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// RAII: the autocast states (CPU and CUDA) of the forward pass, for the recomputation.
struct ForwardAutocast {
    AutocastStates before = AutocastStates::current();
    explicit ForwardAutocast(const AutocastStates &forward) { forward.apply(); }
    ~ForwardAutocast() { before.apply(); }
};

struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
    // anchor: a scalar that requires a gradient, so that the layer's parameters get theirs even when
    // x does not need one (stage 1: the embeddings are frozen).
    static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &cos, const at::Tensor &sin,
                                 const at::Tensor &anchor, int64_t layerAddress)
    {
        (void)anchor;
        auto *layer = reinterpret_cast<DecoderLayerImpl *>(layerAddress);
        ctx->save_for_backward({x, cos, sin});
        ctx->saved_data["layer"] = layerAddress;
        ctx->saved_data["x_needs_grad"] = x.requires_grad();
        const AutocastStates ac = AutocastStates::current();
        ctx->saved_data["autocast_cpu"] = ac.cpu.enabled;
        ctx->saved_data["autocast_cpu_dtype"] = ac.cpu.dtype;
        ctx->saved_data["autocast_cuda"] = ac.cuda.enabled;
        ctx->saved_data["autocast_cuda_dtype"] = ac.cuda.dtype;
        variable_list out{layer->forwardStored(x, {cos, sin})};
        for (const auto &t : layer->mlp()->tensorsForLosses())
            out.push_back(t);
        return out;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        auto *layer = reinterpret_cast<DecoderLayerImpl *>(ctx->saved_data["layer"].toInt());
        const auto saved = ctx->get_saved_variables();
        at::Tensor x = saved[0].detach();
        const bool xNeedsGrad = ctx->saved_data["x_needs_grad"].toBool();
        x.requires_grad_(xNeedsGrad);
        variable_list outs;
        {
            at::AutoGradMode on(true);
            const AutocastStates forward{
                {ctx->saved_data["autocast_cpu"].toBool(), ctx->saved_data["autocast_cpu_dtype"].toScalarType()},
                {ctx->saved_data["autocast_cuda"].toBool(), ctx->saved_data["autocast_cuda_dtype"].toScalarType()}};
            ForwardAutocast ac(forward);
            outs.push_back(layer->forwardStored(x, {saved[1], saved[2]}));
            for (const auto &t : layer->mlp()->tensorsForLosses())
                outs.push_back(t);
        }
        variable_list use, useGrads;
        for (size_t i = 0; i < outs.size() && i < grads.size(); ++i)
            if (grads[i].defined() && outs[i].requires_grad()) {
                use.push_back(outs[i]);
                useGrads.push_back(grads[i]);
            }
        // Accumulates into the layer's parameters, and into x when it needs a gradient.
        if (!use.empty())
            torch::autograd::backward(use, useGrads);
        return {xNeedsGrad && x.grad().defined() ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor()};
    }
};

} // namespace

at::Tensor checkpointedLayerForward(DecoderLayerImpl &layer, const at::Tensor &x, const RopeTables &rope)
{
    static thread_local at::Tensor anchor;
    if (!anchor.defined())
        anchor = at::zeros({}, at::kFloat).requires_grad_(true);
    auto out = CheckpointedLayer::apply(x, rope.cos, rope.sin, anchor, reinterpret_cast<int64_t>(&layer));
    // What the losses read, connected to the checkpoint node. apply() attaches the node to the very
    // tensors forward() returned, so the block holds them already; handing them back keeps that so
    // should apply() ever return other objects.
    std::vector<at::Tensor> forLosses(out.begin() + 1, out.end());
    if (!forLosses.empty())
        layer.mlp()->adoptTensorsForLosses(forLosses);
    return out[0];
}

} // namespace polymoe
