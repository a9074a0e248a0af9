// moe_permute (METHOD.md section 3, the dispatch of the T*k routing slots): a stable counting sort
// of the slots by expert, then a gather of their token rows into one expert-contiguous buffer, the
// input of the per-expert SwiGLU GEMMs. Host entry only: no device code here, so plain C++ includes it.
//
// Usage:
//   auto p = polymoe::kernels::moePermute(x, topIdx, numExperts);   // x (T, d) CUDA, topIdx (T, k)
//   for e: rows p.offsets[e] .. p.offsets[e] + p.counts[e] of p.rows belong to expert e
//   y = moeCombine(expertOut, p.slotRow, topWeight);                  // moe_combine.cuh
// moePermuteRef (moe_permute_ref.h) computes the same on the CPU.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace polymoe::kernels {

struct MoePermuted {
    at::Tensor rows;      // (S, d), x's dtype: row r is x[rowToken[r]]; S = slots whose expert id is not -1
    at::Tensor rowToken;  // (S,) int32, the token of each row. Expert 0's rows first, then expert 1's...;
                          // within an expert in slot order t*k + j (a stable sort, like at::sort(stable))
    at::Tensor slotRow;   // (T, k) int32, the row of slot (t, j) in `rows`; -1 for a dropped slot
    std::vector<int64_t> counts;  // (N) rows per expert, on the host (they size the GEMMs)
    std::vector<int64_t> offsets; // (N + 1) exclusive prefix sums of counts; offsets[N] = S
};

// x (T, d) contiguous floating (fp32, fp64, bf16, fp16) on a CUDA device; topIdx (T, k) int64 or int32
// on the same device, each id in [0, numExperts) or -1 (slot dropped). Launches on the current stream
// and synchronises once (the counts are copied to the host). Throws c10::Error for bad shapes or ids,
// kernels::KernelError for a failed CUDA call.
MoePermuted moePermute(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts);

} // namespace polymoe::kernels
