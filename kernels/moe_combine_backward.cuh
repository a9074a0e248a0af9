// moe_combine_backward: the gradients of moe_combine. For slot (t, j) with row r = slotRow[t, j]:
//   gradRows[r]        = weight[t, j] * gradOut[t]          (d elements)
//   gradWeight[t, j]   = dot(rows[r], gradOut[t])            (0 for a dropped slot)
// Every row belongs to exactly one slot (as moe_permute makes it), so no two slots write one row: no
// atomics, and the dot products are block reductions in a fixed order (deterministic).
// Host entry only; moeCombineBackwardRef (moe_combine_ref.h) computes the same on the CPU.
#pragma once

#include <ATen/core/Tensor.h>

namespace polymoe::kernels {

struct MoeCombineGrads {
    at::Tensor rows;   // (S, d), rows' dtype
    at::Tensor weight; // (T, k), weight's dtype
};

// gradOut (T, d) and rows (S, d) of one floating dtype on a CUDA device; slotRow (T, k) int32; weight
// (T, k) float (double for double rows). A row that no slot names keeps gradient 0.
MoeCombineGrads moeCombineBackward(const at::Tensor &gradOut, const at::Tensor &rows, const at::Tensor &slotRow,
                                   const at::Tensor &weight);

} // namespace polymoe::kernels
