// The CUDA MoE kernels (kernels/) against their C++ references at several shapes and dtypes, with a
// normalised error bound; determinism; bad input; the MoE block's forward and backward on CUDA
// (kernels) against the CPU and against the ATen grouped path on CUDA; a few training steps of an
// upcycled model on CUDA against the same steps on the CPU. Without a GPU it runs its CPU checks and
// exits with ctest's skip code 77, saying so.
#include "kernel_check.h"
#include "moe_cases.h"

#include "models/llama.h"
#include "model_config.h"
#include "moe_block.h"
#include "moe_combine.cuh"
#include "moe_combine_backward.cuh"
#include "moe_combine_ref.h"
#include "moe_dispatch_cuda.h"
#include "moe_permute.cuh"
#include "moe_permute_ref.h"
#include "upcycle.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <map>

using namespace polymoe;
using kcheck::check;

namespace {

const at::Device kCuda("cuda");

bool sameVec(const std::vector<int64_t> &a, const std::vector<int64_t> &b) { return a == b; }

double tolFor(at::ScalarType t)
{
    switch (t) {
    case at::kDouble: return 1e-12;
    case at::kFloat: return 1e-5;
    case at::kHalf: return 2e-3;
    default: return 1e-2; // bf16: the result's rounding (8 bits of mantissa), same float accumulation
    }
}

void parityCase(const kcheck::RoutingCase &c, at::ScalarType dtype)
{
    const std::string tag = c.name + " " + std::string(c10::toString(dtype));
    const double tol = tolFor(dtype);
    const at::ScalarType acc = dtype == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor topIdx = kcheck::makeTopIdx(c, 31);
    const at::Tensor x = kcheck::makeData(c.tokens, c.dModel, dtype, 32);

    // moe_permute: the sort exactly, the gathered rows bit for bit.
    const kernels::MoePermuted want = kernels::moePermuteRef(x, topIdx, c.numExperts);
    const kernels::MoePermuted got = kernels::moePermute(x.to(kCuda), topIdx.to(kCuda), c.numExperts);
    check(sameVec(got.counts, want.counts) && sameVec(got.offsets, want.offsets), tag + ": permute counts, offsets");
    check(kcheck::sameValues(got.rowToken, want.rowToken), tag + ": permute rowToken (stable order)");
    check(kcheck::sameValues(got.slotRow, want.slotRow), tag + ": permute slotRow");
    check(kcheck::sameValues(got.rows, want.rows), tag + ": permute rows bit for bit");
    const kernels::MoePermuted got32 = kernels::moePermute(x.to(kCuda), topIdx.to(at::kInt).to(kCuda), c.numExperts);
    check(kcheck::sameValues(got32.slotRow, want.slotRow) && kcheck::sameValues(got32.rows, want.rows),
          tag + ": permute with int32 ids");

    // moe_combine, weighted and unweighted, and its backward.
    const int64_t S = want.offsets.back();
    const at::Tensor rows = kcheck::makeData(S, c.dModel, dtype, 33);
    const at::Tensor w = kcheck::makeWeights(topIdx, acc, 34);
    const at::Tensor gradOut = kcheck::makeData(c.tokens, c.dModel, dtype, 35);
    const at::Tensor rowsC = rows.to(kCuda), slotC = want.slotRow.to(kCuda), wC = w.to(kCuda), gC = gradOut.to(kCuda);
    const at::Tensor y = kernels::moeCombine(rowsC, slotC, wC);
    kcheck::checkClose(y, kernels::moeCombineRef(rows, want.slotRow, w), tol, tag + ": combine");
    check(y.scalar_type() == dtype && y.size(0) == c.tokens, tag + ": combine dtype and shape");
    kcheck::checkClose(kernels::moeCombine(rowsC, slotC, {}), kernels::moeCombineRef(rows, want.slotRow, {}), tol,
                       tag + ": unweighted combine (permute backward)");
    const kernels::MoeCombineGrads g = kernels::moeCombineBackward(gC, rowsC, slotC, wC);
    const kernels::MoeCombineGrads gw = kernels::moeCombineBackwardRef(gradOut, rows, want.slotRow, w);
    kcheck::checkClose(g.rows, gw.rows, tol, tag + ": combine backward d rows");
    // The dot products are summed in a tree on the GPU and in a line on the CPU: bound by sum |x g|.
    const double scale = (rows.to(at::kDouble).abs().max() * gradOut.to(at::kDouble).abs().max()).item<double>() *
                         static_cast<double>(c.dModel);
    const double dotErr = (g.weight.to(at::kCPU).to(at::kDouble) - gw.weight.to(at::kDouble)).abs().max().item<double>();
    const double dotTol = dtype == at::kDouble ? 1e-14 : 1e-6;
    check(dotErr <= dotTol * scale, tag + ": combine backward d w, error " + kcheck::num(dotErr) + " <= " +
                                        kcheck::num(dotTol) + " * sum|x||g| (" + kcheck::num(scale) + ")");

    // Deterministic: the same inputs give the same bits.
    const kernels::MoeCombineGrads g2 = kernels::moeCombineBackward(gC, rowsC, slotC, wC);
    check(kcheck::sameValues(kernels::moeCombine(rowsC, slotC, wC), y) && kcheck::sameValues(g2.rows, g.rows) &&
              kcheck::sameValues(g2.weight, g.weight),
          tag + ": combine and backward are bit-for-bit repeatable");
}

// Runs the block forward + backward of sum(y * R) and returns y, x.grad and every parameter's grad.
std::map<std::string, at::Tensor> forwardBackward(MoeBlock &block, const at::Tensor &x0, const at::Tensor &R,
                                                  bool grouped)
{
    for (auto &p : block->parameters())
        p.mutable_grad() = at::Tensor();
    const at::Tensor x = x0.detach().clone().requires_grad_(true);
    const at::Tensor y = grouped ? block->forwardGrouped(x) : block->forward(x);
    (y * R).sum().backward();
    std::map<std::string, at::Tensor> out;
    out["y"] = y.detach().to(at::kCPU);
    out["x.grad"] = x.grad().to(at::kCPU);
    for (const auto &item : block->named_parameters())
        out[item.key()] = item.value().grad().defined() ? item.value().grad().to(at::kCPU)
                                                        : at::zeros_like(item.value()).to(at::kCPU);
    return out;
}

void compareRuns(const std::map<std::string, at::Tensor> &got, const std::map<std::string, at::Tensor> &want,
                 double tol, const std::string &tag)
{
    double worst = 0;
    std::string where;
    for (const auto &[name, t] : want) {
        const bool bothZero = t.abs().max().item<double>() == 0 && got.at(name).abs().max().item<double>() == 0;
        const double e = bothZero ? 0.0 : kcheck::relErr(got.at(name), t);
        if (e > worst) {
            worst = e;
            where = name;
        }
    }
    check(worst <= tol, tag + ": y and all gradients, worst normalised error " + kcheck::num(worst) + " (" +
                            where + ", bound " + kcheck::num(tol) + ")");
}

void blockCudaVsCpu(at::ScalarType dtype, int numExperts, int topK, bool classifier, double tol)
{
    const std::string tag = "MoE block " + std::string(c10::toString(dtype)) + " N" + std::to_string(numExperts) +
                            " k" + std::to_string(topK) + (classifier ? " classifier (eval, hard routing)" : "");
    const int64_t d = 64, ffn = 96, B = 4, Sq = 32;
    at::manual_seed(7);
    MoeBlock cpu(d, ffn, numExperts, topK);
    at::manual_seed(7);
    MoeBlock gpu(d, ffn, numExperts, topK);
    at::Tensor h = kcheck::makeData(B * Sq, d, at::kDouble, 41).view({B, Sq, d});
    if (classifier) {
        const at::Tensor u = kcheck::makeData(1, d, at::kDouble, 42).view({d});
        for (int64_t b = 0; b < B; ++b)
            h[b].add_(u * (b % 2 == 0 ? 2.0 : -2.0));
        for (MoeBlock *m : {&cpu, &gpu}) {
            (*m)->setClassifier(true);
            const at::NoGradGuard g;
            (*m)->classifier->weight[0].copy_(u);
            (*m)->classifier->weight[1].copy_(-u);
            (*m)->eval();
        }
    }
    cpu->to(dtype);
    gpu->to(kCuda, dtype);
    const at::Tensor R = kcheck::makeData(B * Sq, d, at::kDouble, 43).view({B, Sq, d});
    const auto want = forwardBackward(cpu, h.to(dtype), R.to(dtype), true);
    const auto got = forwardBackward(gpu, h.to(kCuda, dtype), R.to(kCuda, dtype), false);
    if (classifier)
        check(gpu->lastRouting().hardToExpert0.defined(), tag + ": the classifier sent some sequences to expert 0");
    compareRuns(got, want, tol, tag + ": CUDA kernels vs CPU");
    const auto aten = forwardBackward(gpu, h.to(kCuda, dtype), R.to(kCuda, dtype), true);
    compareRuns(got, aten, tol, tag + ": CUDA kernels vs CUDA ATen grouped");
}

ModelConfig tinyConfig()
{
    return ModelConfig{.modelType = "llama", .vocabSize = 64, .hiddenSize = 32, .intermediateSize = 48,
                       .numLayers = 2, .numHeads = 4, .numKvHeads = 2, .headDim = 8, .rmsNormEps = 1e-5,
                       .ropeTheta = 1e4, .maxPositionEmbeddings = 64, .tieWordEmbeddings = false};
}

// An upcycled tiny model (layer 0 dense, layer 1 with 3 experts, experts perturbed so the router gets a
// gradient), `steps` AdamW steps on fixed random tokens. Returns the losses.
std::vector<double> trainTiny(const at::Device &device, int steps)
{
    at::manual_seed(3);
    CausalLM lm(tinyConfig());
    upcycleModel(lm, {1, 3}, 2, 9);
    {
        const at::NoGradGuard g;
        at::Generator gen = at::detail::createCPUGenerator(4);
        for (auto &item : lm->named_parameters())
            if (item.key().find("experts.") != std::string::npos)
                item.value().add_(at::randn(item.value().sizes(), gen, at::kFloat) * 0.05);
    }
    lm->to(device, at::kDouble);
    lm->train();
    at::Generator gen = at::detail::createCPUGenerator(5);
    const at::Tensor ids = at::randint(0, 64, {4, 16}, gen, at::kLong).to(device);
    torch::optim::AdamW opt(lm->parameters(), torch::optim::AdamWOptions(3e-3));
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) {
        opt.zero_grad();
        const at::Tensor logits = lm->forward(ids); // (B, S, V)
        const at::Tensor loss = at::cross_entropy_loss(logits.narrow(1, 0, 15).reshape({-1, 64}),
                                                       ids.narrow(1, 1, 15).reshape({-1}));
        loss.backward();
        opt.step();
        losses.push_back(loss.item<double>());
    }
    return losses;
}

} // namespace

int main()
{
    // CPU parts: the build has the kernels, and they refuse CPU tensors with a message.
    kcheck::group("build and CPU checks", [] {
        check(MoeBlockImpl::cudaKernelsBuilt() && polymoe::detail::moeCudaKernelsBuilt(), "this build has the CUDA kernels");
        kcheck::checkThrows([] { kernels::moePermute(at::zeros({2, 4}), at::zeros({2, 1}, at::kLong), 2); },
                            "must be on one CUDA device", "moe_permute refuses CPU tensors");
        kcheck::checkThrows([] { kernels::moeCombine(at::zeros({2, 4}), at::zeros({2, 1}, at::kInt), {}); },
                            "must be on one CUDA device", "moe_combine refuses CPU tensors");
    });
    if (kcheck::failures() > 0)
        return kcheck::finish("tst_moe_kernels");
    if (!torch::cuda::is_available()) {
        std::printf("SKIP: torch::cuda::is_available() is false: no CUDA device here, so the kernel-vs-reference, "
                    "block CUDA-vs-CPU and CUDA training checks did not run (CPU checks above: %d passed)\n",
                    kcheck::passes());
        return kcheck::kSkip;
    }
    at::set_num_threads(4);

    kcheck::group("kernels vs references", [] {
        for (const auto &c : kcheck::routingCases())
            for (at::ScalarType t : {at::kFloat, at::kBFloat16})
                parityCase(c, t);
        const auto cases = kcheck::routingCases();
        for (size_t i : {1, 3, 4}) {
            parityCase(cases[i], at::kHalf);
            parityCase(cases[i], at::kDouble);
        }
    });
    kcheck::group("bad input on the device", [] {
        const at::Tensor x = at::zeros({4, 8}, kCuda);
        kcheck::checkThrows([&] { kernels::moePermute(x, at::full({4, 2}, 3, at::TensorOptions(kCuda).dtype(at::kLong)), 3); },
                            "outside [0, 3)", "moe_permute: expert id 3 of 3");
        kcheck::checkThrows([&] { kernels::moeCombine(at::zeros({2, 8}, kCuda), at::zeros({2, 1}, kCuda), {}); },
                            "int32", "moe_combine: slotRow of the wrong dtype");
    });
    kcheck::group("MoE block on CUDA", [] {
        blockCudaVsCpu(at::kDouble, 3, 2, false, 1e-10);
        blockCudaVsCpu(at::kDouble, 8, 2, false, 1e-10);
        blockCudaVsCpu(at::kDouble, 4, 1, false, 1e-10);
        blockCudaVsCpu(at::kDouble, 3, 2, true, 1e-10);
        blockCudaVsCpu(at::kFloat, 8, 2, false, 1e-4);
    });
    kcheck::group("training steps on CUDA", [] {
        const std::vector<double> cpu = trainTiny(at::Device("cpu"), 8);
        const std::vector<double> gpu = trainTiny(kCuda, 8);
        double worst = 0;
        for (size_t i = 0; i < cpu.size(); ++i)
            worst = std::max(worst, std::abs(cpu[i] - gpu[i]) / std::abs(cpu[i]));
        check(worst < 1e-8, "upcycled tiny model, 8 AdamW steps (fp64): CUDA losses = CPU losses, worst relative "
                            "difference " + kcheck::num(worst));
        check(gpu.back() < gpu.front() - 0.05, "the CUDA loss falls: " + kcheck::num(gpu.front()) + " -> " +
                                                   kcheck::num(gpu.back()));
    });
    return kcheck::finish("tst_moe_kernels");
}
