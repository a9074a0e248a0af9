// moe_permute's reference: a counting sort written as loops (see moe_permute_ref.h).
#include "moe_permute_ref.h"

#include <ATen/ATen.h>

#include <limits>

namespace polymoe::kernels {

MoePermuted moePermuteRef(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts)
{
    TORCH_CHECK(x.device().is_cpu() && topIdx.device().is_cpu(), "moe_permute_ref: x and topIdx must be on the CPU");
    TORCH_CHECK(x.dim() == 2, "moe_permute_ref: x must be (T, d), got ", x.sizes());
    TORCH_CHECK(topIdx.dim() == 2 && topIdx.size(0) == x.size(0), "moe_permute_ref: topIdx must be (T, k) with T = ",
                x.size(0), ", got ", topIdx.sizes());
    TORCH_CHECK(topIdx.scalar_type() == at::kLong || topIdx.scalar_type() == at::kInt,
                "moe_permute_ref: topIdx must be int64 or int32, got ", topIdx.scalar_type());
    TORCH_CHECK(numExperts >= 1 && numExperts <= 1024, "moe_permute_ref: 1 to 1024 experts, got ", numExperts);
    const int64_t T = x.size(0), k = topIdx.size(1), slots = T * k;
    TORCH_CHECK(k >= 1 && slots < std::numeric_limits<int>::max(), "moe_permute_ref: T*k = ", slots,
                " slots must lie in [1, 2^31)");
    const at::Tensor ids = topIdx.to(at::kLong).contiguous();
    const int64_t *id = ids.data_ptr<int64_t>();

    MoePermuted p;
    p.counts.assign(static_cast<size_t>(numExperts), 0);
    p.offsets.assign(static_cast<size_t>(numExperts) + 1, 0);
    for (int64_t s = 0; s < slots; ++s) {
        TORCH_CHECK(id[s] >= -1 && id[s] < numExperts, "moe_permute_ref: slot ", s, " (token ", s / k, ", choice ",
                    s % k, ") has expert id ", id[s], ", outside [0, ", numExperts, ") and not -1");
        if (id[s] >= 0)
            ++p.counts[static_cast<size_t>(id[s])];
    }
    for (int64_t e = 0; e < numExperts; ++e)
        p.offsets[static_cast<size_t>(e) + 1] = p.offsets[static_cast<size_t>(e)] + p.counts[static_cast<size_t>(e)];
    const int64_t S = p.offsets.back();

    // Slots in increasing order, each to the next free row of its expert: a stable counting sort.
    std::vector<int64_t> next(p.offsets.begin(), p.offsets.end() - 1);
    p.slotRow = at::empty({T, k}, at::kInt);
    p.rowToken = at::empty({S}, at::kInt);
    int *slotRow = p.slotRow.data_ptr<int>();
    int *rowToken = p.rowToken.data_ptr<int>();
    for (int64_t s = 0; s < slots; ++s) {
        if (id[s] < 0) {
            slotRow[s] = -1;
            continue;
        }
        const int64_t row = next[static_cast<size_t>(id[s])]++;
        slotRow[s] = static_cast<int>(row);
        rowToken[row] = static_cast<int>(s / k);
    }
    // The gather, row by row.
    const at::Tensor xc = x.contiguous();
    p.rows = at::empty({S, x.size(1)}, x.options());
    for (int64_t r = 0; r < S; ++r)
        p.rows[r].copy_(xc[rowToken[r]]);
    return p;
}

} // namespace polymoe::kernels
