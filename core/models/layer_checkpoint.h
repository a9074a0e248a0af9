// Activation checkpointing of one decoder layer: the forward pass keeps only the layer's input (and
// the RoPE tables); the backward pass runs the layer again with gradients on and back-propagates
// through that copy, as torch.utils.checkpoint does (its reentrant variant). Memory: one (batch,
// seq, d_model) tensor per layer instead of every intermediate; cost: one more forward per layer.
//
// Losses that read the layer's intermediate tensors afterwards (an MoE block's router logits and
// probabilities for the balance and LPR losses, the classifier's logits) get them as extra outputs
// of the checkpointed layer (FeedForwardImpl::tensorsForLosses), so their gradients flow too. The
// recomputation repeats the CPU autocast state of the forward pass; nothing in a layer draws random
// numbers, so it reproduces the forward exactly.
#pragma once

#include "models/llama.h"

namespace polymoe {

// x (batch, seq, d_model) -> the layer's output, recomputed in the backward pass.
at::Tensor checkpointedLayerForward(DecoderLayerImpl &layer, const at::Tensor &x, const RopeTables &rope);

} // namespace polymoe
