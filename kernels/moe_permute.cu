// moe_permute on the GPU: a stable counting sort of the T*k routing slots by expert, then the gather of
// the token rows into the expert-contiguous buffer (see moe_permute.cuh).
//
// Four launches, all on the current stream:
//   1. rank:    one thread per slot, 256 slots per block. __match_any_sync finds the slots of a warp with
//               the same expert; a slot's rank among them is the number of such lanes below it; the
//               per-warp counts in shared memory give the rank within the block and the block's count
//               per expert (blockCount, nBlocks x N).
//   2. scan:    one block; thread e walks the blocks in order and turns the counts into each block's
//               first row for expert e, after the rows of all experts before e (exclusive prefix sums).
//      The per-expert totals go to the host here (the one synchronisation: they size the GEMMs).
//   3. scatter: row of slot s = blockStart[b][e] + rank[s]; records slotRow[s] and rowToken[row].
//   4. gather:  rows[r] = x[rowToken[r]], 16-byte vectors along the row, one row per y-thread.
// Slot order within an expert equals a stable sort's (block by block, warp by warp, lane by lane).
#include "moe_permute.cuh"

#include "common.cuh"

#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <limits>

namespace polymoe::kernels {

namespace {

constexpr int kSlotsPerBlock = 256; // one thread per slot
constexpr int kWarps = kSlotsPerBlock / 32;

// idx (slots,) the expert id per slot; out: rank (slots,), blockCount (nBlocks, N). badId records an id
// outside [-1, N) (the host reports it after the scan).
template <typename I>
__global__ void rankKernel(const I *__restrict__ idx, int64_t slots, int numExperts, int *__restrict__ rank,
                           int *__restrict__ blockCount, int *__restrict__ badId)
{
    extern __shared__ int warpCount[]; // (kWarps, N)
    for (int i = threadIdx.x; i < kWarps * numExperts; i += blockDim.x)
        warpCount[i] = 0;
    __syncthreads();

    const int64_t s = static_cast<int64_t>(blockIdx.x) * kSlotsPerBlock + threadIdx.x;
    int e = -1;
    if (s < slots) {
        const int64_t v = static_cast<int64_t>(idx[s]);
        if (v >= 0 && v < numExperts)
            e = static_cast<int>(v);
        else if (v != -1)
            atomicExch(badId, 1);
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int rankInWarp = __popc(peers & ((1u << lane) - 1u));
    if (e >= 0 && rankInWarp == 0)
        warpCount[warp * numExperts + e] = __popc(peers);
    __syncthreads();

    if (e >= 0) {
        int before = rankInWarp;
        for (int w = 0; w < warp; ++w)
            before += warpCount[w * numExperts + e];
        rank[s] = before;
    }
    for (int x = threadIdx.x; x < numExperts; x += blockDim.x) {
        int c = 0;
        for (int w = 0; w < kWarps; ++w)
            c += warpCount[w * numExperts + x];
        blockCount[static_cast<int64_t>(blockIdx.x) * numExperts + x] = c;
    }
}

// blockCount (nBlocks, N) -> blockStart (nBlocks, N): the first row of expert e's slots of block b;
// expertCount (N,) the totals. One block of threads over the experts.
__global__ void scanKernel(const int *__restrict__ blockCount, int nBlocks, int numExperts,
                           int *__restrict__ blockStart, int64_t *__restrict__ expertCount)
{
    extern __shared__ int64_t expertStart[]; // (N,)
    for (int e = threadIdx.x; e < numExperts; e += blockDim.x) {
        int64_t run = 0;
        for (int b = 0; b < nBlocks; ++b) {
            const int64_t i = static_cast<int64_t>(b) * numExperts + e;
            const int c = blockCount[i];
            blockStart[i] = static_cast<int>(run);
            run += c;
        }
        expertCount[e] = run;
        expertStart[e] = run;
    }
    __syncthreads();
    if (threadIdx.x == 0) { // N is small (<= 1024): a serial exclusive scan
        int64_t acc = 0;
        for (int e = 0; e < numExperts; ++e) {
            const int64_t c = expertStart[e];
            expertStart[e] = acc;
            acc += c;
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < numExperts; e += blockDim.x)
        for (int b = 0; b < nBlocks; ++b)
            blockStart[static_cast<int64_t>(b) * numExperts + e] += static_cast<int>(expertStart[e]);
}

template <typename I>
__global__ void scatterKernel(const I *__restrict__ idx, int64_t slots, int numExperts, int topK,
                              const int *__restrict__ rank, const int *__restrict__ blockStart,
                              int *__restrict__ slotRow, int *__restrict__ rowToken)
{
    const int64_t s = static_cast<int64_t>(blockIdx.x) * kSlotsPerBlock + threadIdx.x;
    if (s >= slots)
        return;
    const int64_t v = static_cast<int64_t>(idx[s]);
    if (v < 0 || v >= numExperts) {
        slotRow[s] = -1;
        return;
    }
    const int row = blockStart[static_cast<int64_t>(blockIdx.x) * numExperts + v] + rank[s];
    slotRow[s] = row;
    rowToken[row] = static_cast<int>(s / topK);
}

// rows[r, :] = x[rowToken[r], :]. blockDim (threads along the row, rows per block).
template <typename T, int VEC>
__global__ void gatherKernel(const T *__restrict__ x, const int *__restrict__ rowToken, int64_t nRows, int64_t d,
                             T *__restrict__ rows)
{
    const int64_t nVec = d / VEC;
    for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; r < nRows;
         r += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        const T *src = x + static_cast<int64_t>(rowToken[r]) * d;
        T *dst = rows + r * d;
        for (int64_t i = threadIdx.x; i < nVec; i += blockDim.x)
            detail::storeVec<T, VEC>(dst + i * VEC, detail::loadVec<T, VEC>(src + i * VEC));
    }
}

template <typename T>
void launchGather(const at::Tensor &x, const at::Tensor &rowToken, at::Tensor &rows, cudaStream_t stream)
{
    const int64_t nRows = rows.size(0), d = rows.size(1);
    if (nRows == 0 || d == 0)
        return;
    const T *src = x.data_ptr<T>();
    T *dst = rows.data_ptr<T>();
    const int vec = detail::vectorWidth<T>(d, {src, dst});
    const int tx = detail::rowThreads(d, vec);
    const dim3 block(tx, 256 / tx);
    const unsigned grid = detail::gridFor(nRows, block.y);
    constexpr int kWide = 16 / sizeof(T);
    if (vec == kWide)
        gatherKernel<T, kWide><<<grid, block, 0, stream>>>(src, rowToken.data_ptr<int>(), nRows, d, dst);
    else
        gatherKernel<T, 1><<<grid, block, 0, stream>>>(src, rowToken.data_ptr<int>(), nRows, d, dst);
    CUDA_CHECK_LAUNCH();
}

} // namespace

MoePermuted moePermute(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts)
{
    TORCH_CHECK(x.is_cuda() && topIdx.device() == x.device(), "moe_permute: x and topIdx must be on one CUDA device, got ",
                x.device(), " and ", topIdx.device());
    TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "moe_permute: x must be a contiguous (T, d) tensor, got ",
                x.sizes());
    TORCH_CHECK(topIdx.dim() == 2 && topIdx.size(0) == x.size(0), "moe_permute: topIdx must be (T, k) with T = ",
                x.size(0), ", got ", topIdx.sizes());
    TORCH_CHECK(topIdx.scalar_type() == at::kLong || topIdx.scalar_type() == at::kInt,
                "moe_permute: topIdx must be int64 or int32, got ", topIdx.scalar_type());
    TORCH_CHECK(numExperts >= 1 && numExperts <= 1024, "moe_permute: 1 to 1024 experts, got ", numExperts);
    const int64_t T = x.size(0), k = topIdx.size(1), d = x.size(1);
    const int64_t slots = T * k;
    TORCH_CHECK(k >= 1 && slots < std::numeric_limits<int>::max(), "moe_permute: T*k = ", slots,
                " slots must lie in [1, 2^31)");

    const c10::cuda::CUDAGuard guard(x.device());
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    const at::Tensor idx = topIdx.contiguous();
    const auto intOpts = x.options().dtype(at::kInt);

    MoePermuted p;
    p.slotRow = at::empty({T, k}, intOpts);
    p.counts.assign(static_cast<size_t>(numExperts), 0);
    p.offsets.assign(static_cast<size_t>(numExperts) + 1, 0);
    if (slots == 0 || T == 0) {
        p.rows = at::empty({0, d}, x.options());
        p.rowToken = at::empty({0}, intOpts);
        return p;
    }

    const int nBlocks = static_cast<int>((slots + kSlotsPerBlock - 1) / kSlotsPerBlock);
    const int N = static_cast<int>(numExperts);
    at::Tensor rank = at::empty({slots}, intOpts);
    at::Tensor blockCount = at::empty({nBlocks, N}, intOpts);
    at::Tensor blockStart = at::empty({nBlocks, N}, intOpts);
    // expertCount (N) int64 and the bad-id flag share one buffer so that one copy brings both back.
    at::Tensor status = at::zeros({N + 1}, x.options().dtype(at::kLong));
    at::Tensor badId = at::zeros({1}, intOpts);

    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "moe_permute_rank", [&] {
        rankKernel<index_t><<<nBlocks, kSlotsPerBlock, kWarps * N * sizeof(int), stream>>>(
            idx.data_ptr<index_t>(), slots, N, rank.data_ptr<int>(), blockCount.data_ptr<int>(),
            badId.data_ptr<int>());
    });
    CUDA_CHECK_LAUNCH();
    scanKernel<<<1, 256, N * sizeof(int64_t), stream>>>(blockCount.data_ptr<int>(), nBlocks, N,
                                                         blockStart.data_ptr<int>(), status.data_ptr<int64_t>());
    CUDA_CHECK_LAUNCH();
    status.narrow(0, N, 1).copy_(badId); // int -> int64 on the device
    const at::Tensor host = status.to(at::kCPU); // synchronises
    const int64_t *h = host.data_ptr<int64_t>();
    TORCH_CHECK(h[N] == 0, "moe_permute: topIdx holds an expert id outside [0, ", N, ") other than -1 (dropped)");
    for (int e = 0; e < N; ++e) {
        p.counts[static_cast<size_t>(e)] = h[e];
        p.offsets[static_cast<size_t>(e) + 1] = p.offsets[static_cast<size_t>(e)] + h[e];
    }
    const int64_t S = p.offsets.back();

    p.rowToken = at::empty({S}, intOpts);
    p.rows = at::empty({S, d}, x.options());
    AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "moe_permute_scatter", [&] {
        scatterKernel<index_t><<<nBlocks, kSlotsPerBlock, 0, stream>>>(
            idx.data_ptr<index_t>(), slots, N, static_cast<int>(k), rank.data_ptr<int>(), blockStart.data_ptr<int>(),
            p.slotRow.data_ptr<int>(), p.rowToken.data_ptr<int>());
    });
    CUDA_CHECK_LAUNCH();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "moe_permute_gather",
                                    [&] { launchGather<scalar_t>(x, p.rowToken, p.rows, stream); });
    return p;
}

} // namespace polymoe::kernels
