// Helpers shared by the MoE kernels (.cu files only): CUDA_CHECK, accumulator types, 16-byte vector
// access and a deterministic block reduction.
#pragma once

#include "kernel_error.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace polymoe::kernels::detail {

// Throws KernelError naming the call, the function, the file and the line (ggml's CUDA_CHECK,
// but a throw: the GUI must survive a failed launch).
[[noreturn]] inline void throwKernelError(cudaError_t err, const char *call, const char *func, const char *file,
                                        int line)
{
    throw KernelError(std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ") in " + call +
                    ", function " + func + ", " + file + ":" + std::to_string(line));
}

#define CUDA_CHECK(call)                                                                                     \
    do {                                                                                                     \
        const cudaError_t polymoeErr_ = (call);                                                              \
        if (polymoeErr_ != cudaSuccess)                                                                      \
            ::polymoe::kernels::detail::throwKernelError(polymoeErr_, #call, __func__, __FILE__, __LINE__);    \
    } while (0)

// After a <<<...>>> launch: a bad configuration shows up here, an error inside the kernel at the next
// synchronising call.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// Sums in float for fp32/bf16/fp16 data and in double for double data (the reference does the same).
template <typename T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };
template <typename T> using acc_t = typename AccType<T>::type;

template <typename T> __device__ __forceinline__ acc_t<T> toAcc(T v) { return static_cast<acc_t<T>>(v); }
template <typename T> __device__ __forceinline__ T fromAcc(acc_t<T> v) { return static_cast<T>(v); }

// VEC elements of T moved as one access: 16 bytes when the row length and the pointers allow it.
template <typename T, int VEC> struct alignas(sizeof(T) * VEC) Vec {
    T v[VEC];
};

template <typename T, int VEC> __device__ __forceinline__ Vec<T, VEC> loadVec(const T *p)
{
    return *reinterpret_cast<const Vec<T, VEC> *>(p);
}

template <typename T, int VEC> __device__ __forceinline__ void storeVec(T *p, const Vec<T, VEC> &v)
{
    *reinterpret_cast<Vec<T, VEC> *>(p) = v;
}

// The widest vector for rows of `d` elements of T at these base pointers: 16 / sizeof(T) elements when
// every row start is 16-byte aligned, else 1.
template <typename T> inline int vectorWidth(int64_t d, std::initializer_list<const void *> ptrs)
{
    constexpr int kWide = 16 / static_cast<int>(sizeof(T));
    if (d % kWide != 0)
        return 1;
    for (const void *p : ptrs)
        if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
            return 1;
    return kWide;
}

// Threads along a row of `d` elements read VEC at a time: a multiple of 32, at most 256.
inline int rowThreads(int64_t d, int vec)
{
    const int64_t n = (d / vec + 31) / 32 * 32;
    return static_cast<int>(n < 32 ? 32 : n > 256 ? 256 : n);
}

// Sum of `v` over the block (blockDim.x a multiple of 32, at most 1024), in a fixed order: warp
// shuffles, then warp 0 over the per-warp sums. Every thread gets the result. `scratch` holds 32.
template <typename A> __device__ __forceinline__ A blockSum(A v, A *scratch)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    const int warps = blockDim.x / 32;
    A s = lane < warps ? scratch[lane] : A(0);
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

// Grid sizes: enough blocks for `items`, capped for grid-stride loops.
inline unsigned gridFor(int64_t items, int64_t perBlock, int64_t cap = 65535)
{
    int64_t g = (items + perBlock - 1) / perBlock;
    return static_cast<unsigned>(g < 1 ? 1 : g > cap ? cap : g);
}

} // namespace polymoe::kernels::detail
