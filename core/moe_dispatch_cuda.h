// The MoE block's CUDA path (METHOD.md section 3): moe_permute (kernel) groups the token rows by expert,
// each expert runs one SwiGLU on its rows (cuBLAS through at::mm), moe_combine (kernel) sums each
// token's k outputs times its routing weights. Both kernels are autograd functions (backward: an
// unweighted combine for the permute; moe_combine_backward for the combine), so training works on CUDA.
// This file always builds; without the kernels (POLYMOE_BUILD_KERNELS off, Debian's CPU LibTorch)
// moeCudaKernelsBuilt() is false and the entries throw CudaError.
//
// Usage (moe_block.cpp does this for CUDA tensors):
//   if (detail::moeCudaKernelsBuilt() && x.is_cuda())
//       y = detail::moeForwardCuda(x, topIdx, topWeight, experts);   // x (T, d) -> (T, d)
#pragma once

#include "models/llama.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace polymoe::detail {

// True when this build has the CUDA MoE kernels.
bool moeCudaKernelsBuilt();

// x (T, d) on a CUDA device; topIdx (T, k) int64, an expert id per slot or -1 (slot dropped: the
// classifier's hard routing keeps one slot); topWeight (T, k) floating, the routing weights.
// Returns (T, d) in the experts' output dtype: y_t = sum_j topWeight[t, j] * experts[topIdx[t, j]](x_t).
at::Tensor moeForwardCuda(const at::Tensor &x, const at::Tensor &topIdx, const at::Tensor &topWeight,
                          const std::vector<SwiGluFfn> &experts);

// The two autograd functions alone, for tests. Permute: (rows (S, d), slotRow (T, k) int32, counts (N,)
// int64 on the CPU); only rows carries a gradient. Combine: (T, d), gradients for rows and weight
// (weight float, or double for double rows).
std::vector<at::Tensor> moePermuteAutograd(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts);
at::Tensor moeCombineAutograd(const at::Tensor &rows, const at::Tensor &weight, const at::Tensor &slotRow);

} // namespace polymoe::detail
