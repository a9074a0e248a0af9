// moe_combine's forward and backward references as loops (see moe_combine_ref.h).
#include "moe_combine_ref.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

namespace polymoe::kernels {

namespace {

template <typename T> using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

at::ScalarType accType(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

void checkSlots(const char *op, const at::Tensor &slotRow, int64_t S)
{
    TORCH_CHECK(slotRow.dim() == 2 && slotRow.scalar_type() == at::kInt && slotRow.device().is_cpu(), op,
                ": slotRow must be (T, k) int32 on the CPU, got ", slotRow.sizes(), " ", slotRow.scalar_type());
    const int *s = slotRow.data_ptr<int>();
    for (int64_t i = 0; i < slotRow.numel(); ++i)
        TORCH_CHECK(s[i] >= -1 && s[i] < S, op, ": slotRow[", i / slotRow.size(1), ", ", i % slotRow.size(1),
                    "] = ", s[i], " is not a row of the ", S, " rows (or -1)");
}

} // namespace

at::Tensor moeCombineRef(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &weight)
{
    TORCH_CHECK(rows.dim() == 2 && rows.device().is_cpu(), "moe_combine_ref: rows must be (S, d) on the CPU, got ",
                rows.sizes());
    const at::Tensor s = slotRow.contiguous();
    checkSlots("moe_combine_ref", s, rows.size(0));
    if (weight.defined())
        TORCH_CHECK(weight.sizes() == slotRow.sizes() && weight.scalar_type() == accType(rows.scalar_type()),
                    "moe_combine_ref: weight must be (T, k) ", accType(rows.scalar_type()), ", got ", weight.sizes(),
                    " ", weight.scalar_type());
    const int64_t T = s.size(0), k = s.size(1), d = rows.size(1);
    const at::Tensor x = rows.contiguous();
    const at::Tensor w = weight.defined() ? weight.contiguous() : weight;
    at::Tensor out = at::empty({T, d}, rows.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "moe_combine_ref", [&] {
        using A = Acc<scalar_t>;
        const scalar_t *xr = x.data_ptr<scalar_t>();
        const int *sr = s.data_ptr<int>();
        const A *wr = w.defined() ? w.data_ptr<A>() : nullptr;
        scalar_t *o = out.data_ptr<scalar_t>();
        std::vector<A> acc(static_cast<size_t>(d));
        for (int64_t t = 0; t < T; ++t) {
            std::fill(acc.begin(), acc.end(), A(0));
            for (int64_t j = 0; j < k; ++j) {
                const int r = sr[t * k + j];
                if (r < 0)
                    continue;
                const A wt = wr ? wr[t * k + j] : A(1);
                for (int64_t i = 0; i < d; ++i)
                    acc[static_cast<size_t>(i)] += wt * static_cast<A>(xr[r * d + i]);
            }
            for (int64_t i = 0; i < d; ++i)
                o[t * d + i] = static_cast<scalar_t>(acc[static_cast<size_t>(i)]);
        }
    });
    return out;
}

MoeCombineGrads moeCombineBackwardRef(const at::Tensor &gradOut, const at::Tensor &rows, const at::Tensor &slotRow,
                                      const at::Tensor &weight)
{
    TORCH_CHECK(gradOut.dim() == 2 && rows.dim() == 2 && gradOut.size(1) == rows.size(1) &&
                    gradOut.scalar_type() == rows.scalar_type() && gradOut.device().is_cpu() && rows.device().is_cpu(),
                "moe_combine_backward_ref: gradOut (T, d) and rows (S, d) of one dtype on the CPU, got ",
                gradOut.sizes(), " and ", rows.sizes());
    const at::Tensor s = slotRow.contiguous();
    checkSlots("moe_combine_backward_ref", s, rows.size(0));
    TORCH_CHECK(s.size(0) == gradOut.size(0), "moe_combine_backward_ref: slotRow has ", s.size(0), " tokens, gradOut ",
                gradOut.size(0));
    TORCH_CHECK(weight.defined() && weight.sizes() == slotRow.sizes() &&
                    weight.scalar_type() == accType(rows.scalar_type()),
                "moe_combine_backward_ref: weight must be (T, k) ", accType(rows.scalar_type()));
    const int64_t T = s.size(0), k = s.size(1), d = rows.size(1);
    const at::Tensor go = gradOut.contiguous(), x = rows.contiguous(), w = weight.contiguous();
    MoeCombineGrads g;
    g.rows = at::zeros_like(x);
    g.weight = at::zeros_like(w);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "moe_combine_backward_ref", [&] {
        using A = Acc<scalar_t>;
        const scalar_t *gr = go.data_ptr<scalar_t>(), *xr = x.data_ptr<scalar_t>();
        const int *sr = s.data_ptr<int>();
        const A *wr = w.data_ptr<A>();
        scalar_t *gx = g.rows.data_ptr<scalar_t>();
        A *gw = g.weight.data_ptr<A>();
        for (int64_t t = 0; t < T; ++t)
            for (int64_t j = 0; j < k; ++j) {
                const int r = sr[t * k + j];
                if (r < 0)
                    continue;
                A dot = 0;
                for (int64_t i = 0; i < d; ++i) {
                    const A gf = static_cast<A>(gr[t * d + i]);
                    gx[r * d + i] = static_cast<scalar_t>(wr[t * k + j] * gf);
                    dot += static_cast<A>(xr[r * d + i]) * gf;
                }
                gw[t * k + j] = dot;
            }
    });
    return g;
}

} // namespace polymoe::kernels
