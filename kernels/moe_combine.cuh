// moe_combine (METHOD.md section 3, y_t = sum_j w_{t,j} FFN_{e_j}(h_t)): each token sums its k
// expert-output rows times its routing weights, in slot order, with no atomics (deterministic).
// With no weights it is the unweighted sum, which is the backward of moe_permute's gather.
// Host entry only; moeCombineRef (moe_combine_ref.h) computes the same on the CPU.
//
// Usage:
//   at::Tensor y = polymoe::kernels::moeCombine(expertRows, p.slotRow, topWeight);   // (T, d)
//   at::Tensor gx = polymoe::kernels::moeCombine(gradRows, p.slotRow, {});           // permute backward
#pragma once

#include <ATen/core/Tensor.h>

namespace polymoe::kernels {

// rows (S, d) contiguous floating on a CUDA device; slotRow (T, k) int32 on it (-1 = dropped slot,
// adds nothing); weight (T, k) float (double when rows are double), or undefined for weight 1.
// Returns (T, d) in rows' dtype, accumulated in float (double). Launches on the current stream.
at::Tensor moeCombine(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &weight);

} // namespace polymoe::kernels
