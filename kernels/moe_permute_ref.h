// The plain C++ reference of moe_permute (moe_permute.cuh): the same result on the CPU, written as the
// obvious loops. Used by the parity tests and checked itself against the MoE block's grouped path.
#pragma once

#include "moe_permute.cuh"

namespace polymoe::kernels {

// x (T, d) floating on the CPU; topIdx (T, k) int64 or int32 on the CPU, ids in [0, numExperts) or -1.
// Same fields as moePermute; throws c10::Error for bad shapes or ids (naming the slot).
MoePermuted moePermuteRef(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts);

} // namespace polymoe::kernels
