// The MoE block's CUDA dispatch: the kernels of kernels/ as autograd functions around the per-expert
// SwiGLU GEMMs (see moe_dispatch_cuda.h).
#include "moe_dispatch_cuda.h"

#include "polymoe/error.h"

#ifdef POLYMOE_HAVE_KERNELS
#include "kernel_call.h"
#include "moe_combine.cuh"
#include "moe_combine_backward.cuh"
#include "moe_permute.cuh"

#include <torch/csrc/autograd/custom_function.h>
#endif

namespace polymoe::detail {

#ifdef POLYMOE_HAVE_KERNELS

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Gather of the token rows into expert order. Backward: each token sums the gradients of its rows
// (an unweighted combine), so no atomics.
class MoePermuteFunction : public torch::autograd::Function<MoePermuteFunction> {
public:
    static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &topIdx,
                                 int64_t numExperts)
    {
        kernels::MoePermuted p = kernelCall([&] { return kernels::moePermute(x.contiguous(), topIdx, numExperts); });
        at::Tensor counts = at::tensor(p.counts, at::kLong);
        ctx->save_for_backward({p.slotRow});
        ctx->mark_non_differentiable({p.slotRow, counts});
        return {p.rows, p.slotRow, counts};
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        const at::Tensor slotRow = ctx->get_saved_variables()[0];
        at::Tensor gradRows = grads[0];
        if (!gradRows.defined())
            return {at::Tensor(), at::Tensor(), at::Tensor()};
        return {kernelCall([&] { return kernels::moeCombine(gradRows.contiguous(), slotRow, {}); }), at::Tensor(),
                at::Tensor()};
    }
};

// y[t] = sum_j weight[t, j] * rows[slotRow[t, j]]. Backward: moe_combine_backward.
class MoeCombineFunction : public torch::autograd::Function<MoeCombineFunction> {
public:
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &rows, const at::Tensor &weight,
                              const at::Tensor &slotRow)
    {
        const at::Tensor r = rows.contiguous(), w = weight.contiguous();
        ctx->save_for_backward({r, w, slotRow});
        return kernelCall([&] { return kernels::moeCombine(r, slotRow, w); });
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads)
    {
        const auto saved = ctx->get_saved_variables();
        if (!grads[0].defined())
            return {at::Tensor(), at::Tensor(), at::Tensor()};
        kernels::MoeCombineGrads g = kernelCall(
            [&] { return kernels::moeCombineBackward(grads[0].contiguous(), saved[0], saved[2], saved[1]); });
        return {g.rows, g.weight, at::Tensor()};
    }
};

} // namespace

bool moeCudaKernelsBuilt() { return true; }

std::vector<at::Tensor> moePermuteAutograd(const at::Tensor &x, const at::Tensor &topIdx, int64_t numExperts)
{
    return MoePermuteFunction::apply(x, topIdx, numExperts);
}

at::Tensor moeCombineAutograd(const at::Tensor &rows, const at::Tensor &weight, const at::Tensor &slotRow)
{
    return MoeCombineFunction::apply(rows, weight, slotRow);
}

at::Tensor moeForwardCuda(const at::Tensor &x, const at::Tensor &topIdx, const at::Tensor &topWeight,
                          const std::vector<SwiGluFfn> &experts)
{
    TORCH_CHECK(x.is_cuda() && x.dim() == 2, "MoE CUDA dispatch: x must be (T, d) on a CUDA device, got ", x.sizes(),
                " on ", x.device());
    TORCH_CHECK(topIdx.sizes() == topWeight.sizes() && topIdx.dim() == 2 && topIdx.size(0) == x.size(0),
                "MoE CUDA dispatch: topIdx ", topIdx.sizes(), " and topWeight ", topWeight.sizes(),
                " must both be (T, k) with T = ", x.size(0));
    const int64_t N = static_cast<int64_t>(experts.size());
    const std::vector<at::Tensor> perm = moePermuteAutograd(x, topIdx, N);
    const at::Tensor &rows = perm[0], &slotRow = perm[1], &counts = perm[2]; // rows (S, d): experts in order
    const int64_t *count = counts.data_ptr<int64_t>();

    std::vector<at::Tensor> outs; // one batched SwiGLU per expert on its contiguous rows
    int64_t offset = 0;
    for (int64_t e = 0; e < N; ++e) {
        if (count[e] == 0)
            continue;
        SwiGluFfn expert = experts[static_cast<size_t>(e)]; // a holder copy: forward is not const
        outs.push_back(expert->forward(rows.narrow(0, offset, count[e])));
        offset += count[e];
    }
    if (outs.empty()) // every slot dropped, or no token
        return at::zeros({x.size(0), x.size(1)}, x.options());
    const at::Tensor y = outs.size() == 1 ? outs.front() : at::cat(outs, 0); // (S, d)
    const at::ScalarType acc = y.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    return moeCombineAutograd(y, topWeight.to(acc), slotRow);
}

#else // no kernels in this build

bool moeCudaKernelsBuilt() { return false; }

namespace {
[[noreturn]] void noKernels()
{
    throw CudaError("the MoE CUDA kernels are not in this build (configure with POLYMOE_BUILD_KERNELS=ON against a "
                    "CUDA LibTorch: the 'cuda' preset)");
}
} // namespace

std::vector<at::Tensor> moePermuteAutograd(const at::Tensor &, const at::Tensor &, int64_t) { noKernels(); }
at::Tensor moeCombineAutograd(const at::Tensor &, const at::Tensor &, const at::Tensor &) { noKernels(); }
at::Tensor moeForwardCuda(const at::Tensor &, const at::Tensor &, const at::Tensor &, const std::vector<SwiGluFfn> &)
{
    noKernels();
}

#endif

} // namespace polymoe::detail
