// moe_combine on the GPU: y[t] = sum_j weight[t, j] * rows[slotRow[t, j]] (see moe_combine.cuh).
//
// Decomposition: one token per y-thread row of the block (256 threads in all), x-threads along d with
// 16-byte vectors; each thread keeps VEC float accumulators and adds the k slots in order j = 0..k-1,
// so the sum is the same on every run (no atomics) and the same as moeCombineRef's.
#include "moe_combine.cuh"

#include "common.cuh"

#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace polymoe::kernels {

namespace {

// weight == nullptr: every slot weighs 1.
template <typename T, int VEC>
__global__ void combineKernel(const T *__restrict__ rows, const int *__restrict__ slotRow,
                              const detail::acc_t<T> *__restrict__ weight, int64_t T_, int k, int64_t d,
                              T *__restrict__ out)
{
    using A = detail::acc_t<T>;
    const int64_t nVec = d / VEC;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; t < T_;
         t += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        for (int64_t i = threadIdx.x; i < nVec; i += blockDim.x) {
            A acc[VEC];
#pragma unroll
            for (int v = 0; v < VEC; ++v)
                acc[v] = A(0);
            for (int j = 0; j < k; ++j) {
                const int r = slotRow[t * k + j];
                if (r < 0)
                    continue;
                const A w = weight ? weight[t * k + j] : A(1);
                const detail::Vec<T, VEC> x = detail::loadVec<T, VEC>(rows + static_cast<int64_t>(r) * d + i * VEC);
#pragma unroll
                for (int v = 0; v < VEC; ++v)
                    acc[v] += w * detail::toAcc(x.v[v]);
            }
            detail::Vec<T, VEC> y;
#pragma unroll
            for (int v = 0; v < VEC; ++v)
                y.v[v] = detail::fromAcc<T>(acc[v]);
            detail::storeVec<T, VEC>(out + t * d + i * VEC, y);
        }
    }
}

template <typename T>
void launchCombine(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &weight, at::Tensor &out,
                   cudaStream_t stream)
{
    const int64_t T_ = out.size(0), d = out.size(1), k = slotRow.size(1);
    const T *src = rows.data_ptr<T>();
    T *dst = out.data_ptr<T>();
    const detail::acc_t<T> *w = weight.defined() ? weight.data_ptr<detail::acc_t<T>>() : nullptr;
    const int vec = detail::vectorWidth<T>(d, {src, dst});
    const int tx = detail::rowThreads(d, vec);
    const dim3 block(tx, 256 / tx);
    const unsigned grid = detail::gridFor(T_, block.y);
    constexpr int kWide = 16 / sizeof(T);
    if (vec == kWide)
        combineKernel<T, kWide><<<grid, block, 0, stream>>>(src, slotRow.data_ptr<int>(), w, T_, int(k), d, dst);
    else
        combineKernel<T, 1><<<grid, block, 0, stream>>>(src, slotRow.data_ptr<int>(), w, T_, int(k), d, dst);
    CUDA_CHECK_LAUNCH();
}

} // namespace

at::Tensor moeCombine(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &weight)
{
    TORCH_CHECK(rows.is_cuda() && slotRow.device() == rows.device(),
                "moe_combine: rows and slotRow must be on one CUDA device, got ", rows.device(), " and ",
                slotRow.device());
    TORCH_CHECK(rows.dim() == 2, "moe_combine: rows must be (S, d), got ", rows.sizes());
    TORCH_CHECK(slotRow.dim() == 2 && slotRow.scalar_type() == at::kInt,
                "moe_combine: slotRow must be (T, k) int32, got ", slotRow.sizes(), " ", slotRow.scalar_type());
    const at::ScalarType acc = rows.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    if (weight.defined())
        TORCH_CHECK(weight.sizes() == slotRow.sizes() && weight.scalar_type() == acc && weight.device() == rows.device(),
                    "moe_combine: weight must be (T, k) ", acc, " on ", rows.device(), " like slotRow ",
                    slotRow.sizes(), ", got ", weight.sizes(), " ", weight.scalar_type(), " on ", weight.device());
    const c10::cuda::CUDAGuard guard(rows.device());
    const at::Tensor r = rows.contiguous(), s = slotRow.contiguous();
    const at::Tensor w = weight.defined() ? weight.contiguous() : weight;
    at::Tensor out = at::empty({slotRow.size(0), rows.size(1)}, rows.options());
    if (out.numel() == 0)
        return out;
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, r.scalar_type(), "moe_combine",
                                    [&] { launchCombine<scalar_t>(r, s, w, out, stream); });
    return out;
}

} // namespace polymoe::kernels
