// The plain C++ references of moe_combine and moe_combine_backward (moe_combine.cuh,
// moe_combine_backward.cuh): loops over tokens, slots and features, accumulating in float (double for
// double data) in slot order, exactly as the kernels do.
#pragma once

#include "moe_combine.cuh"
#include "moe_combine_backward.cuh"

namespace polymoe::kernels {

// rows (S, d) floating, slotRow (T, k) int32, weight (T, k) float/double or undefined; all on the CPU.
at::Tensor moeCombineRef(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &weight);

MoeCombineGrads moeCombineBackwardRef(const at::Tensor &gradOut, const at::Tensor &rows, const at::Tensor &slotRow,
                                      const at::Tensor &weight);

} // namespace polymoe::kernels
