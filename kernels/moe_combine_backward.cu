// moe_combine_backward on the GPU (see moe_combine_backward.cuh).
//
// Decomposition: one block per token (grid-stride), threads along d with 16-byte vectors. For each of
// the token's k slots the block writes gradRows[row] = w * gradOut[t] and sums rows[row] * gradOut[t]
// per thread, then reduces with blockSum (a fixed order: deterministic) for gradWeight[t, j].
#include "moe_combine_backward.cuh"

#include "common.cuh"

#include <ATen/Dispatch.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace polymoe::kernels {

namespace {

template <typename T, int VEC>
__global__ void combineBackwardKernel(const T *__restrict__ gradOut, const T *__restrict__ rows,
                                      const int *__restrict__ slotRow, const detail::acc_t<T> *__restrict__ weight,
                                      int64_t T_, int k, int64_t d, T *__restrict__ gradRows,
                                      detail::acc_t<T> *__restrict__ gradWeight)
{
    using A = detail::acc_t<T>;
    __shared__ A scratch[32];
    const int64_t nVec = d / VEC;
    for (int64_t t = blockIdx.x; t < T_; t += gridDim.x) {
        const T *g = gradOut + t * d;
        for (int j = 0; j < k; ++j) {
            const int64_t slot = t * k + j;
            const int r = slotRow[slot]; // the same for the whole block: the branch below is uniform
            if (r < 0) {
                if (threadIdx.x == 0)
                    gradWeight[slot] = A(0);
                continue;
            }
            const A w = weight[slot];
            const T *x = rows + static_cast<int64_t>(r) * d;
            T *gx = gradRows + static_cast<int64_t>(r) * d;
            A dot = A(0);
            for (int64_t i = threadIdx.x; i < nVec; i += blockDim.x) {
                const detail::Vec<T, VEC> gv = detail::loadVec<T, VEC>(g + i * VEC);
                const detail::Vec<T, VEC> xv = detail::loadVec<T, VEC>(x + i * VEC);
                detail::Vec<T, VEC> out;
#pragma unroll
                for (int v = 0; v < VEC; ++v) {
                    const A gf = detail::toAcc(gv.v[v]);
                    out.v[v] = detail::fromAcc<T>(w * gf);
                    dot += detail::toAcc(xv.v[v]) * gf;
                }
                detail::storeVec<T, VEC>(gx + i * VEC, out);
            }
            dot = detail::blockSum(dot, scratch);
            if (threadIdx.x == 0)
                gradWeight[slot] = dot;
        }
    }
}

template <typename T>
void launchBackward(const at::Tensor &gradOut, const at::Tensor &rows, const at::Tensor &slotRow,
                    const at::Tensor &weight, MoeCombineGrads &g, cudaStream_t stream)
{
    const int64_t T_ = gradOut.size(0), d = gradOut.size(1), k = slotRow.size(1);
    const T *go = gradOut.data_ptr<T>(), *x = rows.data_ptr<T>();
    T *gx = g.rows.data_ptr<T>();
    const int vec = detail::vectorWidth<T>(d, {go, x, gx});
    const int threads = detail::rowThreads(d, vec);
    const unsigned grid = detail::gridFor(T_, 1);
    constexpr int kWide = 16 / sizeof(T);
    using A = detail::acc_t<T>;
    if (vec == kWide)
        combineBackwardKernel<T, kWide><<<grid, threads, 0, stream>>>(
            go, x, slotRow.data_ptr<int>(), weight.data_ptr<A>(), T_, int(k), d, gx, g.weight.data_ptr<A>());
    else
        combineBackwardKernel<T, 1><<<grid, threads, 0, stream>>>(
            go, x, slotRow.data_ptr<int>(), weight.data_ptr<A>(), T_, int(k), d, gx, g.weight.data_ptr<A>());
    CUDA_CHECK_LAUNCH();
}

} // namespace

MoeCombineGrads moeCombineBackward(const at::Tensor &gradOut, const at::Tensor &rows, const at::Tensor &slotRow,
                                   const at::Tensor &weight)
{
    TORCH_CHECK(gradOut.is_cuda() && rows.device() == gradOut.device() && slotRow.device() == gradOut.device() &&
                    weight.defined() && weight.device() == gradOut.device(),
                "moe_combine_backward: gradOut, rows, slotRow and weight must be on one CUDA device");
    TORCH_CHECK(gradOut.dim() == 2 && rows.dim() == 2 && gradOut.size(1) == rows.size(1) &&
                    gradOut.scalar_type() == rows.scalar_type(),
                "moe_combine_backward: gradOut (T, d) and rows (S, d) of one dtype, got ", gradOut.sizes(), " ",
                gradOut.scalar_type(), " and ", rows.sizes(), " ", rows.scalar_type());
    TORCH_CHECK(slotRow.dim() == 2 && slotRow.size(0) == gradOut.size(0) && slotRow.scalar_type() == at::kInt,
                "moe_combine_backward: slotRow must be (T, k) int32 with T = ", gradOut.size(0), ", got ",
                slotRow.sizes(), " ", slotRow.scalar_type());
    const at::ScalarType acc = rows.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    TORCH_CHECK(weight.sizes() == slotRow.sizes() && weight.scalar_type() == acc,
                "moe_combine_backward: weight must be (T, k) ", acc, ", got ", weight.sizes(), " ",
                weight.scalar_type());
    const c10::cuda::CUDAGuard guard(gradOut.device());
    const at::Tensor go = gradOut.contiguous(), x = rows.contiguous(), s = slotRow.contiguous(),
                     w = weight.contiguous();
    MoeCombineGrads g;
    g.rows = at::zeros_like(x);
    g.weight = at::zeros_like(w);
    if (go.size(0) == 0 || s.size(1) == 0)
        return g;
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "moe_combine_backward",
                                    [&] { launchBackward<scalar_t>(go, x, s, w, g, stream); });
    return g;
}

} // namespace polymoe::kernels
