// The kernels' C++ references (kernels/moe_permute_ref, moe_combine_ref) on the CPU, checked against
// values computed another way: a std::stable_sort of the slots, at::bincount, the ATen expression
// index_select + weighted sum with its autograd gradients, and the MoE block's own grouped and naive
// paths (core/moe_block). Runs on every build (labels unit, cuda); the GPU parity test then holds the
// kernels to these references.
#include "kernel_check.h"
#include "moe_cases.h"

#include "moe_block.h"
#include "moe_combine_ref.h"
#include "moe_permute_ref.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <algorithm>
#include <numeric>

using namespace polymoe;
using kcheck::check;

namespace {

// Slot order by expert from std::stable_sort: the order the block's at::sort(stable) gives too.
std::vector<int64_t> stableSlotOrder(const at::Tensor &topIdx)
{
    const at::Tensor ids = topIdx.contiguous();
    const int64_t *id = ids.data_ptr<int64_t>();
    std::vector<int64_t> slots;
    for (int64_t s = 0; s < ids.numel(); ++s)
        if (id[s] >= 0)
            slots.push_back(s);
    std::stable_sort(slots.begin(), slots.end(), [&](int64_t a, int64_t b) { return id[a] < id[b]; });
    return slots;
}

// y = sum_j w[:, j] * rows[slotRow[:, j]] as an ATen expression (dropped slots point at row 0 with
// weight 0), differentiable in rows and w.
at::Tensor combineAten(const at::Tensor &rows, const at::Tensor &slotRow, const at::Tensor &w)
{
    const at::Tensor valid = slotRow.ge(0);
    const at::Tensor safe = at::where(valid, slotRow, at::zeros_like(slotRow)).to(at::kLong);
    const int64_t T = slotRow.size(0), k = slotRow.size(1);
    const at::Tensor gathered = rows.index_select(0, safe.reshape({-1})).view({T, k, rows.size(1)});
    const at::Tensor wm = (w.defined() ? w : at::ones({T, k}, rows.options())) * valid.to(rows.scalar_type());
    return (gathered * wm.to(rows.scalar_type()).unsqueeze(2)).sum(1);
}

void permuteCase(const kcheck::RoutingCase &c, at::ScalarType dtype, bool int32Ids)
{
    const std::string tag = c.name + " " + std::string(c10::toString(dtype)) + (int32Ids ? " int32 ids" : "");
    const at::Tensor topIdx = kcheck::makeTopIdx(c, 11);
    const at::Tensor x = kcheck::makeData(c.tokens, c.dModel, dtype, 12);
    const kernels::MoePermuted p =
        kernels::moePermuteRef(x, int32Ids ? topIdx.to(at::kInt) : topIdx, c.numExperts);

    // counts against at::bincount of the kept ids; offsets their prefix sums.
    const at::Tensor kept = topIdx.reshape({-1}).masked_select(topIdx.reshape({-1}).ge(0));
    const at::Tensor bc = at::bincount(kept, {}, c.numExperts);
    bool countsOk = static_cast<int64_t>(p.counts.size()) == c.numExperts;
    for (int e = 0; countsOk && e < c.numExperts; ++e)
        countsOk = p.counts[static_cast<size_t>(e)] == bc[e].item<int64_t>() &&
                   p.offsets[static_cast<size_t>(e) + 1] - p.offsets[static_cast<size_t>(e)] == p.counts[static_cast<size_t>(e)];
    check(countsOk && p.offsets.front() == 0 && p.offsets.back() == kept.numel(), tag + ": counts = bincount, offsets");

    // rowToken in stable-sort order; slotRow its inverse; rows the gathered token rows (bit for bit).
    const std::vector<int64_t> order = stableSlotOrder(topIdx);
    bool orderOk = p.rowToken.numel() == static_cast<int64_t>(order.size());
    const int *rt = p.rowToken.data_ptr<int>();
    for (size_t r = 0; orderOk && r < order.size(); ++r)
        orderOk = rt[r] == order[r] / c.topK;
    check(orderOk, tag + ": rowToken is the stable sort of the slots by expert");
    const at::Tensor sorted = std::get<1>(at::sort(topIdx.reshape({-1}).masked_fill(topIdx.reshape({-1}).lt(0), c.numExperts),
                                                   /*stable=*/true, 0, false));
    check(at::equal(p.rowToken.to(at::kLong), sorted.narrow(0, 0, kept.numel()).div(c.topK, "floor")),
          tag + ": ... and at::sort(stable)'s, as the block's grouped path uses it");
    bool inverseOk = true;
    const int *sr = p.slotRow.data_ptr<int>();
    const int64_t *id = topIdx.data_ptr<int64_t>();
    std::vector<int> seen(order.size(), 0);
    for (int64_t s = 0; s < topIdx.numel(); ++s) {
        if (id[s] < 0) {
            inverseOk = inverseOk && sr[s] == -1;
            continue;
        }
        inverseOk = inverseOk && sr[s] >= p.offsets[static_cast<size_t>(id[s])] &&
                    sr[s] < p.offsets[static_cast<size_t>(id[s]) + 1] && rt[sr[s]] == s / c.topK && ++seen[sr[s]] == 1;
    }
    check(inverseOk, tag + ": slotRow maps each kept slot to one row of its expert, dropped slots to -1");
    check(kcheck::sameValues(p.rows, x.index_select(0, p.rowToken.to(at::kLong))), tag + ": rows = x[rowToken]");
}

void combineCase(const kcheck::RoutingCase &c, at::ScalarType dtype, double tol)
{
    const std::string tag = c.name + " " + std::string(c10::toString(dtype));
    const at::ScalarType acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor topIdx = kcheck::makeTopIdx(c, 21);
    const kernels::MoePermuted p = kernels::moePermuteRef(kcheck::makeData(c.tokens, 1, at::kFloat, 1), topIdx,
                                                          c.numExperts);
    const int64_t S = p.offsets.back();
    const at::Tensor rows = kcheck::makeData(S, c.dModel, dtype, 22);
    const at::Tensor w = kcheck::makeWeights(topIdx, acc, 23);
    const at::Tensor gradOut = kcheck::makeData(c.tokens, c.dModel, dtype, 24);

    // Forward, weighted and unweighted, against the ATen expression in double.
    const at::Tensor rowsD = rows.to(at::kDouble), wD = w.to(at::kDouble);
    kcheck::checkClose(kernels::moeCombineRef(rows, p.slotRow, w), combineAten(rowsD, p.slotRow, wD), tol,
                       tag + ": combine = sum_j w rows[slotRow]");
    kcheck::checkClose(kernels::moeCombineRef(rows, p.slotRow, {}), combineAten(rowsD, p.slotRow, {}), tol,
                       tag + ": unweighted combine");

    // Backward against autograd of the ATen expression (double): d rows and d w of sum(y * gradOut).
    const at::Tensor rv = rowsD.clone().requires_grad_(true), wv = wD.clone().requires_grad_(true);
    (combineAten(rv, p.slotRow, wv) * gradOut.to(at::kDouble)).sum().backward();
    const kernels::MoeCombineGrads g = kernels::moeCombineBackwardRef(gradOut, rows, p.slotRow, w);
    kcheck::checkClose(g.rows, rv.grad(), tol, tag + ": backward d rows = w * gradOut");
    const at::Tensor wantW = at::where(topIdx.ge(0), wv.grad(), at::zeros_like(wD)); // dropped: 0
    kcheck::checkClose(g.weight, wantW, tol, tag + ": backward d w = dot(row, gradOut)");
    check(g.weight.scalar_type() == acc && g.rows.scalar_type() == dtype, tag + ": gradient dtypes");

    // Permute's backward is the unweighted combine: autograd of x.index_select(rowToken).
    const at::Tensor xv = kcheck::makeData(c.tokens, c.dModel, at::kDouble, 25).requires_grad_(true);
    const at::Tensor gathered = xv.index_select(0, p.rowToken.to(at::kLong));
    (gathered * rowsD).sum().backward(); // d gathered = rows
    kcheck::checkClose(kernels::moeCombineRef(rows, p.slotRow, {}), xv.grad(), tol,
                       tag + ": permute backward = unweighted combine of the row gradients");
}

// The MoE block computed through the references (permute, one SwiGLU per expert, combine) equals the
// block's grouped and per-token paths (core/moe_block.cpp), in double.
void blockThroughReferences(int numExperts, int topK, bool hardRouting)
{
    const std::string tag = "MoE block N" + std::to_string(numExperts) + " k" + std::to_string(topK) +
                            (hardRouting ? " classifier hard routing" : "");
    at::manual_seed(5);
    MoeBlock block(24, 40, numExperts, topK);
    block->to(at::kDouble);
    const int64_t B = 4, S = 9;
    at::Tensor h = at::randn({B, S, 24}, at::kDouble);
    if (hardRouting) {
        // Sequences 0 and 2 lean along +u, 1 and 3 along -u; the classifier's rows are +u / -u, so
        // 0 and 2 are "old" (argmax 0): in eval mode their tokens go to expert 0 alone.
        const at::Tensor u = at::randn({24}, at::kDouble);
        for (int64_t b = 0; b < B; ++b)
            h[b].add_(u * (b % 2 == 0 ? 3.0 : -3.0));
        block->setClassifier(true);
        {
            const at::NoGradGuard g;
            block->classifier->weight[0].copy_(u);
            block->classifier->weight[1].copy_(-u);
        }
        block->eval();
    }
    const at::NoGradGuard noGrad;
    const at::Tensor grouped = block->forward(h);
    const Routing r = block->lastRouting().routing;
    const at::Tensor hard = block->lastRouting().hardToExpert0;
    if (hardRouting)
        check(hard.defined() && hard.any().item<bool>() && !hard.all().item<bool>(),
              tag + ": some tokens (not all) routed to expert 0 alone");
    at::Tensor topIdx = r.topIdx;
    if (hard.defined() && topK > 1) // as forwardKernels does: keep the first slot of a hard token
        topIdx = at::where(hard.unsqueeze(1).logical_and(at::arange(topK).gt(0).unsqueeze(0)),
                           at::full_like(topIdx, -1), topIdx);
    const at::Tensor x = h.reshape({-1, 24});
    const kernels::MoePermuted p = kernels::moePermuteRef(x, topIdx, numExperts);
    std::vector<at::Tensor> outs;
    for (int e = 0; e < numExperts; ++e)
        if (p.counts[static_cast<size_t>(e)] > 0)
            outs.push_back(block->expert(e)->forward(
                p.rows.narrow(0, p.offsets[static_cast<size_t>(e)], p.counts[static_cast<size_t>(e)])));
    const at::Tensor viaRef = kernels::moeCombineRef(at::cat(outs, 0), p.slotRow, r.topWeight).view(h.sizes());
    kcheck::checkClose(viaRef, grouped, 1e-12, tag + ": references = the block's grouped path");
    if (!hardRouting)
        kcheck::checkClose(viaRef, block->forwardNaive(h), 1e-12, tag + ": references = the per-token loop");
}

} // namespace

int main()
{
    at::set_num_threads(2);
    kcheck::group("moe_permute_ref", [] {
        for (const auto &c : kcheck::routingCases())
            permuteCase(c, at::kFloat, false);
        const auto cases = kcheck::routingCases();
        permuteCase(cases[3], at::kBFloat16, true);
        permuteCase(cases[2], at::kHalf, false);
        permuteCase(cases[1], at::kDouble, true);
    });
    kcheck::group("moe_combine_ref and its backward", [] {
        for (const auto &c : kcheck::routingCases()) {
            if (c.tokens * c.dModel > 1'000'000)
                continue; // the double-precision autograd comparison is slow on big cases
            combineCase(c, at::kDouble, 1e-12);
            combineCase(c, at::kFloat, 1e-5);
        }
        const auto cases = kcheck::routingCases();
        combineCase(cases[3], at::kBFloat16, 1e-2); // rounding of the bf16 result, accumulated in float
        combineCase(cases[1], at::kHalf, 2e-3);
    });
    kcheck::group("MoE block through the references", [] {
        blockThroughReferences(3, 2, false);
        blockThroughReferences(5, 1, false);
        blockThroughReferences(4, 3, false);
        blockThroughReferences(3, 2, true);
    });
    kcheck::group("bad input", [] {
        const at::Tensor x = at::zeros({2, 4});
        kcheck::checkThrows([&] { kernels::moePermuteRef(x, at::tensor({0L, 3L, 1L, 2L}).view({2, 2}), 3); },
                            "slot 1 (token 0, choice 1) has expert id 3", "permute: expert id out of range");
        kcheck::checkThrows([&] { kernels::moePermuteRef(x, at::zeros({3, 2}, at::kLong), 3); }, "topIdx must be (T, k)",
                            "permute: topIdx of the wrong length");
        kcheck::checkThrows([&] { kernels::moePermuteRef(x, at::zeros({2, 2}), 3); }, "int64 or int32",
                            "permute: floating ids");
        kcheck::checkThrows([&] { kernels::moeCombineRef(at::zeros({2, 4}), at::full({2, 1}, 2, at::kInt), {}); },
                            "is not a row of the 2 rows", "combine: slotRow beyond the rows");
        kcheck::checkThrows(
            [&] { kernels::moeCombineRef(at::zeros({2, 4}), at::zeros({2, 1}, at::kInt), at::zeros({2, 1}, at::kDouble)); },
            "weight must be (T, k) Float", "combine: weight of the wrong dtype");
        MoeBlock block(4, 8, 2);
        kcheck::checkThrows([&] { block->forwardKernels(at::zeros({3, 4})); }, "need a CUDA input",
                            "block: forwardKernels on the CPU");
        std::printf("this build %s the CUDA kernels\n", MoeBlockImpl::cudaKernelsBuilt() ? "has" : "does not have");
    });
    return kcheck::finish("tst_moe_kernels_ref");
}
