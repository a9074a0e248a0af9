// Tests for the MoE router, block, losses, upcycling and benchmark (core/moe_router, moe_block,
// moe_losses, upcycle, bench_moe; METHOD.md sections 3-6). Routing and losses are checked against
// numbers derived by hand in the comments; the grouped block against a per-token loop and a reference
// written here from the raw weights; upcycling against the dense model it came from.
#include "bench_moe.h"
#include "model_config.h"
#include "models/llama.h"
#include "moe_block.h"
#include "moe_losses.h"
#include "moe_router.h"
#include "polymoe/error.h"
#include "upcycle.h"

#include <QObject>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

using namespace polymoe;

namespace {

// max |a - b| / max(max |b|, 1e-300)
double relErr(const at::Tensor &a, const at::Tensor &b)
{
    const at::Tensor ad = a.detach().to(at::kDouble), bd = b.detach().to(at::kDouble);
    return (ad - bd).abs().max().item<double>() / std::max(bd.abs().max().item<double>(), 1e-300);
}

bool near(double a, double b, double tol) { return std::abs(a - b) <= tol; }

// relErr(a, b) < tol, or both exactly zero (an expert that received no token has zero gradients).
bool sameOrBothZero(const at::Tensor &a, const at::Tensor &b, double tol)
{
    const bool bothZero = a.abs().max().item<double>() == 0.0 && b.abs().max().item<double>() == 0.0;
    return bothZero || relErr(a, b) < tol;
}

// SwiGLU from the raw weights, (T, d) -> (T, d): down(silu(gate x) * up x), written out here.
at::Tensor swiglu(const SwiGluFfn &f, const at::Tensor &x)
{
    const at::Tensor g = at::matmul(x, f->gate_proj->weight.t());
    const at::Tensor u = at::matmul(x, f->up_proj->weight.t());
    return at::matmul(g / (1.0 + at::exp(-g)) * u, f->down_proj->weight.t());
}

// The MoE output computed independently of the block's dispatch and routing code: router logits from
// the raw weight, per-token probabilities ordered with std::sort, top-k renormalised by hand, then the
// weighted sum of the chosen experts, token by token. Double precision. x (T, d).
at::Tensor referenceMoe(MoeBlock &block, const at::Tensor &x, int k)
{
    const at::NoGradGuard noGrad;
    const at::Tensor xd = x.detach().to(at::kDouble);
    const at::Tensor logits = at::matmul(xd, block->gate->weight.detach().to(at::kDouble).t()).contiguous();
    const int64_t T = xd.size(0), N = logits.size(1);
    at::Tensor out = at::zeros_like(xd);
    for (int64_t t = 0; t < T; ++t) {
        const double *l = logits.data_ptr<double>() + t * N;
        const double m = *std::max_element(l, l + N);
        std::vector<std::pair<double, int64_t>> p;
        double z = 0;
        for (int64_t e = 0; e < N; ++e) {
            p.emplace_back(std::exp(l[e] - m), e);
            z += p.back().first;
        }
        std::sort(p.begin(), p.end(), [](auto a, auto b) { return a.first > b.first; });
        double sumTop = 0;
        for (int j = 0; j < k; ++j)
            sumTop += p[static_cast<size_t>(j)].first / z;
        for (int j = 0; j < k; ++j) {
            const double w = p[static_cast<size_t>(j)].first / z / sumTop;
            SwiGluFfn ex = block->expert(static_cast<int>(p[static_cast<size_t>(j)].second));
            const at::Tensor xt = xd.narrow(0, t, 1);
            const at::Tensor g = at::matmul(xt, ex->gate_proj->weight.to(at::kDouble).t());
            const at::Tensor u = at::matmul(xt, ex->up_proj->weight.to(at::kDouble).t());
            const at::Tensor y = at::matmul(g / (1.0 + at::exp(-g)) * u, ex->down_proj->weight.to(at::kDouble).t());
            out.narrow(0, t, 1).add_(y * w);
        }
    }
    return out;
}

// Runs `fwd`, backpropagates sum(y * R) and returns y plus the gradients of x and of every parameter
// (undefined gradients as zeros), keyed by name.
std::map<std::string, at::Tensor> forwardBackward(MoeBlock &block, const at::Tensor &x0, const at::Tensor &R,
                                                  int variant)
{
    for (auto &p : block->parameters())
        p.mutable_grad() = at::Tensor();
    const at::Tensor x = x0.detach().clone().requires_grad_(true);
    const at::Tensor y =
        variant == 0 ? block->forward(x) : variant == 1 ? block->forwardNaive(x) : block->forwardMasked(x);
    (y * R).sum().backward();
    std::map<std::string, at::Tensor> out;
    out["y"] = y.detach();
    out["x.grad"] = x.grad().defined() ? x.grad() : at::zeros_like(x);
    for (const auto &item : block->named_parameters())
        out[item.key()] = item.value().grad().defined() ? item.value().grad().clone() : at::zeros_like(item.value());
    return out;
}

ModelConfig tinyConfig(int64_t layers)
{
    return ModelConfig{
        .modelType = "llama",
        .vocabSize = 50,
        .hiddenSize = 32,
        .intermediateSize = 48,
        .numLayers = layers,
        .numHeads = 4,
        .numKvHeads = 2,
        .headDim = 8,
        .rmsNormEps = 1e-5,
        .ropeTheta = 1e4,
        .maxPositionEmbeddings = 64,
        .tieWordEmbeddings = false,
    };
}

// Weights with std 0.3 so every FFN changes the logits visibly.
CausalLM randomModel(const ModelConfig &c, at::ScalarType dtype, uint64_t seed)
{
    at::manual_seed(seed);
    CausalLM lm(c);
    lm->to(dtype);
    const at::NoGradGuard noGrad;
    for (auto &item : lm->named_parameters()) {
        if (item.key().find("norm") != std::string::npos)
            item.value().uniform_(0.5, 1.5);
        else
            item.value().normal_(0.0, 0.3);
    }
    return lm;
}

const at::Tensor kIds()
{
    return at::tensor(std::vector<int64_t>{1, 7, 7, 23, 49, 0, 12, 2, 30, 5, 5, 18, 41, 3}, at::kLong).view({2, 7});
}

std::set<std::string> names(torch::nn::Module &m)
{
    std::set<std::string> out;
    for (const auto &item : m.named_parameters())
        out.insert(item.key());
    return out;
}

} // namespace

class TestMoe : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { at::set_num_threads(2); }

    // ---- Router (section 3) ----

    void routingByHand()
    {
        // W = [[1,0],[0,1],[1,1]]; h0 = (1,2) -> logits (1,2,3); h1 = (2,-3) -> logits (2,-3,-1).
        // softmax(1,2,3) = (0.0900305732, 0.2447284711, 0.6652409558)
        // softmax(2,-3,-1) = (0.9464991226, 0.0063774609, 0.0471234165)
        // top-2 of token 0: experts 2, 1; renormalised e^3/(e^2+e^3) = 1/(1+e^-1) = 0.7310585786, 0.2689414214
        // top-2 of token 1: experts 0, 2; e^2/(e^2+e^-1) = 1/(1+e^-3) = 0.9525741268, 0.0474258732
        MoeRouter router(2, 3);
        QCOMPARE(router->topK(), 2);
        {
            const at::NoGradGuard g;
            router->weight.copy_(at::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 1.0}).view({3, 2}));
        }
        const at::Tensor h = at::tensor({1.0f, 2.0f, 2.0f, -3.0f}).view({2, 2});
        Routing r = router->forward(h);
        QCOMPARE(r.logits.sizes().vec(), (std::vector<int64_t>{2, 3}));
        QCOMPARE(r.probs.scalar_type(), at::kFloat);
        const double tol = 1e-6; // fp32
        const double wantLogits[2][3] = {{1, 2, 3}, {2, -3, -1}};
        const double wantProbs[2][3] = {{0.0900305732, 0.2447284711, 0.6652409558},
                                        {0.9464991226, 0.0063774609, 0.0471234165}};
        for (int t = 0; t < 2; ++t)
            for (int e = 0; e < 3; ++e) {
                QVERIFY(near(r.logits[t][e].item<double>(), wantLogits[t][e], tol));
                QVERIFY(near(r.probs[t][e].item<double>(), wantProbs[t][e], tol));
            }
        QCOMPARE(r.topIdx.scalar_type(), at::kLong);
        QCOMPARE(r.topIdx[0][0].item<int64_t>(), 2);
        QCOMPARE(r.topIdx[0][1].item<int64_t>(), 1);
        QCOMPARE(r.topIdx[1][0].item<int64_t>(), 0);
        QCOMPARE(r.topIdx[1][1].item<int64_t>(), 2);
        QVERIFY(near(r.topWeight[0][0].item<double>(), 0.7310585786, tol));
        QVERIFY(near(r.topWeight[0][1].item<double>(), 0.2689414214, tol));
        QVERIFY(near(r.topWeight[1][0].item<double>(), 0.9525741268, tol));
        QVERIFY(near(r.topWeight[1][1].item<double>(), 0.0474258732, tol));

        // k = 1: the argmax with weight exactly 1.
        router->setTopK(1);
        r = router->forward(h);
        QCOMPARE(r.topIdx.sizes().vec(), (std::vector<int64_t>{2, 1}));
        QCOMPARE(r.topIdx[0][0].item<int64_t>(), 2);
        QCOMPARE(r.topIdx[1][0].item<int64_t>(), 0);
        QCOMPARE(r.topWeight[0][0].item<double>(), 1.0);
        QCOMPARE(r.topWeight[1][0].item<double>(), 1.0);

        // k = N: the weights are the probabilities themselves, in decreasing order.
        router->setTopK(3);
        r = router->forward(h);
        QVERIFY(near(r.topWeight[0][0].item<double>(), 0.6652409558, tol));
        QVERIFY(near(r.topWeight[0][2].item<double>(), 0.0900305732, tol));
        QCOMPARE(r.topIdx[1][2].item<int64_t>(), 1);

        // Leading dimensions are flattened row-major: (1, 2, 2) routes like (2, 2).
        router->setTopK(2);
        const Routing r3 = router->forward(h.view({1, 2, 2}));
        QVERIFY(at::equal(r3.topIdx, router->forward(h).topIdx));
    }

    void routerDefaultsAndInit()
    {
        QCOMPARE(MoeRouter(8, 1)->topK(), 1); // min(2, N)
        QCOMPARE(MoeRouter(8, 2)->topK(), 2);
        QCOMPARE(MoeRouter(8, 5)->topK(), 2);
        QCOMPARE(MoeRouter(8, 5, 3)->topK(), 3);
        QVERIFY_THROWS_EXCEPTION(c10::Error, MoeRouter(8, 2, 3));

        // Xavier-normal: std = sqrt(2 / (d + N)) = sqrt(2 / 520) = 0.0620174; 4096 draws estimate the
        // std within about 1.1% (1 sigma); 5% tolerance.
        MoeRouter a(512, 8), b(512, 8), c(512, 8);
        a->resetParameters(7);
        b->resetParameters(7);
        c->resetParameters(8);
        QVERIFY(at::equal(a->weight, b->weight));
        QVERIFY(!at::equal(a->weight, c->weight));
        const double sd = a->weight.std().item<double>();
        QVERIFY2(std::abs(sd / 0.0620174 - 1.0) < 0.05, qPrintable(QString::number(sd)));
        QVERIFY(std::abs(a->weight.mean().item<double>()) < 0.005);
        // Named "weight" and nothing else.
        QCOMPARE(names(*a), (std::set<std::string>{"weight"}));
    }

    // ---- Losses (sections 4-6) ----

    void balanceLossByHand()
    {
        // probs (T=4, N=3) and top-2 choices written down:
        //   t0 (0.7, 0.2, 0.1) -> {0, 1}     t1 (0.1, 0.6, 0.3) -> {1, 2}
        //   t2 (0.5, 0.1, 0.4) -> {0, 2}     t3 (0.2, 0.3, 0.5) -> {2, 1}
        // slots: expert 0: 2, expert 1: 3, expert 2: 3 of 8 -> f = (0.25, 0.375, 0.375)
        // P = column means = (1.5/4, 1.2/4, 1.3/4) = (0.375, 0.3, 0.325)
        // L = 3 * (0.25*0.375 + 0.375*0.3 + 0.375*0.325) = 3 * 0.328125 = 0.984375
        Routing r;
        r.probs = at::tensor({0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.5, 0.1, 0.4, 0.2, 0.3, 0.5}, at::kFloat)
                      .view({4, 3})
                      .requires_grad_(true);
        r.topIdx = at::tensor(std::vector<int64_t>{0, 1, 1, 2, 0, 2, 2, 1}, at::kLong).view({4, 2});
        const at::Tensor loss = balanceLoss(r, 3);
        QCOMPARE(loss.dim(), 0);
        QVERIFY(near(loss.item<double>(), 0.984375, 1e-6));
        // dL/dprobs[t, e] = N * f_e / T = 3/4 * f = (0.1875, 0.28125, 0.28125) on every row.
        loss.backward();
        const double wantGrad[3] = {0.1875, 0.28125, 0.28125};
        for (int t = 0; t < 4; ++t)
            for (int e = 0; e < 3; ++e)
                QVERIFY(near(r.probs.grad()[t][e].item<double>(), wantGrad[e], 1e-6));

        // Perfect balance: uniform probabilities and slots -> N * sum (1/N)(1/N) = 1.
        Routing u;
        u.probs = at::full({4, 2}, 0.5);
        u.topIdx = at::tensor(std::vector<int64_t>{0, 1, 1, 0}, at::kLong).view({4, 1});
        QVERIFY(near(balanceLoss(u, 2).item<double>(), 1.0, 1e-12));
        // All slots and all mass on expert 1 of 2: 2 * (1 * 1) = 2, the maximum.
        u.probs = at::tensor({0.0, 1.0, 0.0, 1.0}, at::kDouble).view({2, 2});
        u.topIdx = at::tensor(std::vector<int64_t>{1, 1}, at::kLong).view({2, 1});
        QVERIFY(near(balanceLoss(u, 2).item<double>(), 2.0, 1e-12));
    }

    void lprLossByHand()
    {
        // logits (T=3, N=3): t0 (2,0,0) old, t1 (0,1,0) new, t2 (1,1,1) old.
        // t0: -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2) = 0.2395447662
        // t2: -log(1/3) = log 3 = 1.0986122887;   mean over the two old tokens = 0.6690785274
        const at::Tensor logits =
            at::tensor({2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0}, at::kFloat).view({3, 3}).requires_grad_(true);
        const at::Tensor old = at::tensor(std::vector<uint8_t>{1, 0, 1}).to(at::kBool);
        const at::Tensor loss = lprLoss(logits, old);
        QVERIFY(near(loss.item<double>(), 0.6690785274, 1e-6));

        // The reference code's double softmax: cross-entropy (own log-softmax) applied to the
        // probabilities softmax(2,0,0) = (0.7869860, 0.1065070, 0.1065070) gives -log softmax(p)[0]
        // = 0.6995012992 for t0 (t2 stays log 3): mean 0.8990567940. Our loss must not be that.
        QVERIFY(std::abs(loss.item<double>() - 0.8990567940) > 0.1);

        // Gradient: (softmax(logits) - onehot(0)) / 2 on old rows, 0 on the new row.
        // t0: (0.7869860 - 1, 0.1065070, 0.1065070) / 2 = (-0.1065070, 0.0532535, 0.0532535)
        // t2: (1/3 - 1, 1/3, 1/3) / 2 = (-0.3333333, 0.1666667, 0.1666667)
        loss.backward();
        const double want[3][3] = {{-0.1065069789, 0.0532534895, 0.0532534895},
                                   {0, 0, 0},
                                   {-1.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0}};
        for (int t = 0; t < 3; ++t)
            for (int e = 0; e < 3; ++e)
                QVERIFY(near(logits.grad()[t][e].item<double>(), want[t][e], 1e-6));

        // No old token: exactly 0, and backward still runs (zero gradient).
        logits.mutable_grad() = at::Tensor();
        const at::Tensor none = lprLoss(logits, at::zeros({3}, at::kBool));
        QCOMPARE(none.item<double>(), 0.0);
        none.backward();
        QCOMPARE(logits.grad().abs().sum().item<double>(), 0.0);
    }

    void classifierLossByHand()
    {
        // logits (2,0) label old (0): -log(e^2/(e^2+1)) = log(1 + e^-2) = 0.1269280110
        // logits (0,1) label new (1): log(1 + e^-1) = 0.3132616875; mean 0.2200948493
        const at::Tensor logits = at::tensor({2.0, 0.0, 0.0, 1.0}, at::kFloat).view({2, 2});
        const at::Tensor isNew = at::tensor(std::vector<int64_t>{0, 1}, at::kLong);
        QVERIFY(near(classifierLoss(logits, isNew).item<double>(), 0.2200948493, 1e-6));
        // Swapped labels: log(1 + e^2) = 2.1269280110, log(1 + e) = 1.3132616875; mean 1.7200948493
        QVERIFY(near(classifierLoss(logits, 1 - isNew).item<double>(), 1.7200948493, 1e-6));
    }

    // ---- MoE block (section 3) ----

    void blockMatchesReferences_data()
    {
        QTest::addColumn<int>("batch"); // 0: a (T, d) input
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("k");
        QTest::newRow("T13 d8 N4 k2") << 0 << 13 << 8 << 4 << 2;
        QTest::newRow("T7 d16 N3 k1") << 0 << 7 << 16 << 3 << 1;
        QTest::newRow("N1 k1") << 0 << 9 << 8 << 1 << 1;
        QTest::newRow("T20 d12 N5 k3") << 0 << 20 << 12 << 5 << 3;
        QTest::newRow("one token, N8 k2") << 0 << 1 << 8 << 8 << 2;
        QTest::newRow("B2 S5 d8 N3 k2") << 2 << 5 << 8 << 3 << 2;
        QTest::newRow("N2 k2") << 3 << 4 << 6 << 2 << 2;
    }

    void blockMatchesReferences()
    {
        QFETCH(int, batch);
        QFETCH(int, tokens);
        QFETCH(int, d);
        QFETCH(int, experts);
        QFETCH(int, k);
        at::manual_seed(1000 + tokens * 31 + d * 7 + experts);
        MoeBlock block(d, 2 * d + 3, experts, k);
        block->to(at::kDouble);
        {
            // Spread the router so that every expert gets some tokens in most rows.
            const at::NoGradGuard g;
            block->gate->weight.normal_(0.0, 1.0);
        }
        QCOMPARE(block->topK(), k);
        const at::Tensor x = batch ? at::randn({batch, tokens, d}, at::kDouble) : at::randn({tokens, d}, at::kDouble);
        const at::Tensor R = at::randn(x.sizes(), at::kDouble);

        const auto grouped = forwardBackward(block, x, R, 0);
        const auto naive = forwardBackward(block, x, R, 1);
        const auto masked = forwardBackward(block, x, R, 2);
        QCOMPARE(grouped.at("y").sizes(), x.sizes());

        // Forward against the reference written in this file from the raw weights.
        const at::Tensor ref = referenceMoe(block, x.reshape({-1, d}), k).view(x.sizes());
        QVERIFY2(relErr(grouped.at("y"), ref) < 1e-12, qPrintable(QString::number(relErr(grouped.at("y"), ref))));

        // Forward and every gradient (input, router, experts) against the per-token loop and the mask
        // baseline. fp64, so 1e-10 relative is far above rounding and far below any real mismatch.
        QVERIFY(grouped.size() == 2 + 1 + 3 * static_cast<size_t>(experts));
        for (const auto &[name, t] : grouped) {
            QVERIFY2(sameOrBothZero(t, naive.at(name), 1e-10), name.c_str());
            QVERIFY2(sameOrBothZero(t, masked.at(name), 1e-10), name.c_str());
        }
        // The router is trained through the renormalised weights when k >= 2 and N >= 2.
        if (k >= 2)
            QVERIFY(grouped.at("gate.weight").abs().max().item<double>() > 0.0);
        else
            QCOMPARE(grouped.at("gate.weight").abs().max().item<double>(), 0.0); // weights are constant 1
        // The recorded routing covers the flattened tokens.
        const MoeLastForward &last = block->lastRouting();
        QCOMPARE(last.routing.topIdx.sizes().vec(), (std::vector<int64_t>{x.numel() / d, k}));
    }

    void blockExpertWithoutTokens()
    {
        // Expert 3's router row is strongly negative and every input positive: nobody picks it.
        at::manual_seed(5);
        MoeBlock block(6, 10, 4, 2);
        block->to(at::kDouble);
        {
            const at::NoGradGuard g;
            block->gate->weight.uniform_(-0.5, 0.5);
            block->gate->weight[3].fill_(-5.0);
        }
        const at::Tensor x = at::rand({11, 6}, at::kDouble) + 0.1;
        const at::Tensor R = at::randn({11, 6}, at::kDouble);
        const auto grouped = forwardBackward(block, x, R, 0);
        QCOMPARE(block->lastRouting().routing.topIdx.eq(3).sum().item<int64_t>(), 0);
        const auto naive = forwardBackward(block, x, R, 1);
        QVERIFY(relErr(grouped.at("y"), referenceMoe(block, x, 2)) < 1e-12);
        for (const auto &[name, t] : grouped)
            QVERIFY2(sameOrBothZero(t, naive.at(name), 1e-10), name.c_str());
        QCOMPARE(grouped.at("experts.3.up_proj.weight").abs().max().item<double>(), 0.0);
        QVERIFY(grouped.at("experts.0.up_proj.weight").abs().max().item<double>() > 0.0);
    }

    void blockNamesAndChecks()
    {
        MoeBlock block(8, 12, 3);
        QCOMPARE(names(*block), (std::set<std::string>{"gate.weight", "experts.0.gate_proj.weight",
                                                       "experts.0.up_proj.weight", "experts.0.down_proj.weight",
                                                       "experts.1.gate_proj.weight", "experts.1.up_proj.weight",
                                                       "experts.1.down_proj.weight", "experts.2.gate_proj.weight",
                                                       "experts.2.up_proj.weight", "experts.2.down_proj.weight"}));
        QCOMPARE(block->named_parameters()["experts.1.up_proj.weight"].sizes().vec(), (std::vector<int64_t>{12, 8}));
        QCOMPARE(block->named_parameters()["gate.weight"].sizes().vec(), (std::vector<int64_t>{3, 8}));
        block->setClassifier(true);
        QVERIFY(names(*block).count("classifier.weight"));
        QCOMPARE(block->named_parameters()["classifier.weight"].sizes().vec(), (std::vector<int64_t>{2, 8}));
        block->setClassifier(false);
        QVERIFY(!names(*block).count("classifier.weight"));
        QVERIFY_THROWS_EXCEPTION(c10::Error, block->forward(at::randn({4, 7})));
        QVERIFY_THROWS_EXCEPTION(c10::Error, block->forward(at::randn({8})));
    }

    void lastRoutingKeepsGraph()
    {
        // The losses computed from lastRouting() reach the router weight.
        at::manual_seed(3);
        MoeBlock block(8, 12, 3);
        const at::Tensor x = at::randn({2, 5, 8});
        block->forward(x);
        const MoeLastForward &last = block->lastRouting();
        QCOMPARE(last.batch, 2);
        QCOMPARE(last.seqLen, 5);
        const at::Tensor old = at::tensor(std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 0, 0, 0, 0}).to(at::kBool);
        (lprLoss(last.routing.logits, old) + balanceLoss(last.routing, 3)).backward();
        QVERIFY(block->gate->weight.grad().defined());
        QVERIFY(block->gate->weight.grad().abs().max().item<double>() > 0.0);
    }

    // ---- Classifier (section 6) ----

    void classifierStartsXavierNormal()
    {
        // LayerMoE initialises the classifier like the routers: N(0, 2 / (fan_in + fan_out)). d = 1024:
        // std sqrt(2 / 1026) = 0.04415, 2048 weights, so the sample std is within 5% (about 3.2 sd
        // of its sampling error) and values beyond the default Linear's uniform bound 1/sqrt(d) =
        // 0.03125 are common (a normal puts 48% of its mass there).
        at::manual_seed(21);
        MoeBlock block(1024, 8, 3);
        block->setClassifier(true);
        const at::Tensor w = block->classifier->weight.detach();
        const double expected = std::sqrt(2.0 / 1026.0);
        const double sd = w.std().item<double>();
        QVERIFY2(std::abs(sd - expected) < 0.05 * expected, qPrintable(QString("std %1, expected %2").arg(sd).arg(expected)));
        QVERIFY(std::abs(w.mean().item<double>()) < 0.005);
        const double beyond = w.abs().gt(1.0 / 32.0).to(at::kDouble).mean().item<double>();
        QVERIFY2(beyond > 0.4 && beyond < 0.56, qPrintable(QString::number(beyond)));
    }

    void classifierHardRouting()
    {
        // d = 4, 3 experts, top-2. Router rows look at features 1..3 only: expert 0 gets -(sum), expert 1
        // +(sum), expert 2 +0.5 (sum); with positive features the top-2 is always {1, 2}, never 0.
        // Classifier W_c = [[1,0,0,0],[-1,0,0,0]]: logits (s, -s), s = sequence sum of feature 0;
        // s > 0 -> argmax 0 = "old". Sequence 0 has feature 0 positive (old), sequence 1 negative (new).
        at::manual_seed(11);
        MoeBlock block(4, 9, 3, 2);
        block->to(at::kDouble);
        block->setClassifier(true);
        {
            const at::NoGradGuard g;
            block->gate->weight.copy_(at::tensor({0.0, -1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.5}).view({3, 4}));
            block->classifier->weight.copy_(at::tensor({1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0}).view({2, 4}));
        }
        QCOMPARE(block->classifier->weight.scalar_type(), at::kDouble);
        at::Tensor h = at::rand({2, 6, 4}, at::kDouble) + 0.1; // all positive
        h.select(0, 1).select(1, 0).neg_();                     // sequence 1: feature 0 negative
        const double s0 = h[0].select(1, 0).sum().item<double>();
        const double s1 = h[1].select(1, 0).sum().item<double>();

        // Training mode: normal routing for both sequences, classifier logits stored.
        block->train();
        const at::Tensor yTrain = block->forward(h);
        const at::Tensor normalRef = referenceMoe(block, h.reshape({-1, 4}), 2).view({2, 6, 4});
        QVERIFY(relErr(yTrain, normalRef) < 1e-12);
        const at::Tensor cl = block->lastRouting().classifierLogits;
        QCOMPARE(cl.sizes().vec(), (std::vector<int64_t>{2, 2}));
        QVERIFY(near(cl[0][0].item<double>(), s0, 1e-12) && near(cl[0][1].item<double>(), -s0, 1e-12));
        QVERIFY(near(cl[1][0].item<double>(), s1, 1e-12) && near(cl[1][1].item<double>(), -s1, 1e-12));
        QVERIFY(!block->lastRouting().hardToExpert0.defined());
        // The stored logits train the classifier: d loss / d W_c is nonzero.
        classifierLoss(cl, at::tensor(std::vector<int64_t>{0, 1}, at::kLong)).backward();
        QVERIFY(block->classifier->weight.grad().abs().max().item<double>() > 0.0);

        // Eval mode: sequence 0 goes to expert 0 alone with weight 1, sequence 1 is routed normally.
        block->eval();
        const at::NoGradGuard g;
        const at::Tensor expert0 = swiglu(block->expert(0), h[0]);
        for (int variant = 0; variant < 3; ++variant) {
            const at::Tensor y = variant == 0 ? block->forward(h) : variant == 1 ? block->forwardNaive(h)
                                                                                  : block->forwardMasked(h);
            QVERIFY2(relErr(y[0], expert0) < 1e-12, qPrintable(QString::number(variant)));
            QVERIFY2(relErr(y[1], normalRef[1]) < 1e-12, qPrintable(QString::number(variant)));
        }
        QVERIFY(relErr(yTrain[0], expert0) > 1e-3); // the hard decision really changed sequence 0
        const MoeLastForward &last = block->lastRouting();
        QCOMPARE(last.hardToExpert0.sum().item<int64_t>(), 6);
        QVERIFY(last.hardToExpert0.narrow(0, 0, 6).all().item<bool>());
        QCOMPARE(last.routing.topIdx.narrow(0, 0, 6).abs().sum().item<int64_t>(), 0);
        QCOMPARE(last.routing.topWeight.narrow(0, 0, 6).select(1, 0).sum().item<double>(), 6.0);
        QCOMPARE(last.routing.topIdx.narrow(0, 6, 6).eq(0).sum().item<int64_t>(), 0);

        // Without the classifier, eval mode routes normally.
        block->setClassifier(false);
        QVERIFY(relErr(block->forward(h), normalRef) < 1e-12);
    }

    // ---- Upcycling (section 3) ----

    void upcycledEqualsDense_data()
    {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("topK");
        QTest::addColumn<double>("tol");
        QTest::newRow("fp64 top-2") << int(at::kDouble) << 2 << 1e-12;
        QTest::newRow("fp64 top-1") << int(at::kDouble) << 1 << 1e-12;
        QTest::newRow("fp32 top-2") << int(at::kFloat) << 2 << 1e-5;
        QTest::newRow("fp64 top-3") << int(at::kDouble) << 3 << 1e-12;
    }

    void upcycledEqualsDense()
    {
        // Identical experts and renormalised weights summing to 1 give exactly the dense FFN, whatever
        // the router says: the upcycled model's logits equal the dense model's.
        QFETCH(int, dtype);
        QFETCH(int, topK);
        QFETCH(double, tol);
        const auto dt = static_cast<at::ScalarType>(dtype);
        CausalLM lm = randomModel(tinyConfig(3), dt, 21);
        lm->eval();
        const at::NoGradGuard g;
        const at::Tensor dense = lm->forward(kIds());
        upcycleModel(lm, {1, 4, 3}, topK, 99);
        const auto block1 = std::dynamic_pointer_cast<MoeBlockImpl>(lm->layer(1)->mlp());
        const auto block2 = std::dynamic_pointer_cast<MoeBlockImpl>(lm->layer(2)->mlp());
        QVERIFY(block1 && block2);
        QVERIFY(!std::dynamic_pointer_cast<MoeBlockImpl>(lm->layer(0)->mlp()));
        QCOMPARE(block1->topK(), std::min(topK, 4));
        QCOMPARE(block2->topK(), std::min(topK, 3));
        QCOMPARE(block1->gate->weight.scalar_type(), dt);
        QVERIFY(!block1->is_training());
        const at::Tensor moe = lm->forward(kIds());
        QVERIFY2(relErr(moe, dense) < tol, qPrintable(QString::number(relErr(moe, dense))));
        if (topK >= 2) // the weighted sum is really exercised: second weights are not 0
            QVERIFY(block1->lastRouting().routing.topWeight.select(1, 1).min().item<double>() > 1e-4);

        // The MoE path is live: changing expert 2 of layer 1 changes the logits.
        block1->expert(2)->up_proj->weight.add_(0.5);
        QVERIFY(relErr(lm->forward(kIds()), dense) > 1e-3);
    }

    void upcycleNamesCopiesAndSeeds()
    {
        CausalLM lm = randomModel(tinyConfig(3), at::kFloat, 4);
        const at::Tensor up0 = lm->named_parameters()["model.layers.1.mlp.up_proj.weight"].clone();
        const at::Tensor down2 = lm->named_parameters()["model.layers.2.mlp.down_proj.weight"].clone();
        const auto before = names(*lm);
        upcycleModel(lm, {1, 3, 2}, 2, 42);
        const auto after = names(*lm);
        const auto params = lm->named_parameters();

        // Expected names, written out: layer 0 dense, layer 1 three experts, layer 2 two.
        std::set<std::string> want = before;
        for (int layer : {1, 2}) {
            const std::string p = "model.layers." + std::to_string(layer) + ".mlp.";
            for (const char *proj : {"gate_proj", "up_proj", "down_proj"})
                want.erase(p + proj + ".weight");
            want.insert(p + "gate.weight");
            for (int e = 0; e < (layer == 1 ? 3 : 2); ++e)
                for (const char *proj : {"gate_proj", "up_proj", "down_proj"})
                    want.insert(p + "experts." + std::to_string(e) + "." + proj + ".weight");
        }
        QCOMPARE(after, want);
        QVERIFY(after.count("model.layers.0.mlp.up_proj.weight"));
        QCOMPARE(params["model.layers.1.mlp.gate.weight"].sizes().vec(), (std::vector<int64_t>{3, 32}));

        // Every expert is an exact copy (expert 0 included), in separate storage.
        for (int e = 0; e < 3; ++e)
            QVERIFY(at::equal(params["model.layers.1.mlp.experts." + std::to_string(e) + ".up_proj.weight"], up0));
        for (int e = 0; e < 2; ++e)
            QVERIFY(at::equal(params["model.layers.2.mlp.experts." + std::to_string(e) + ".down_proj.weight"], down2));
        QVERIFY(params["model.layers.1.mlp.experts.1.up_proj.weight"].data_ptr() !=
                params["model.layers.1.mlp.experts.0.up_proj.weight"].data_ptr());

        // Routers: seeded and deterministic, different across layers and seeds.
        CausalLM same = randomModel(tinyConfig(3), at::kFloat, 4);
        CausalLM other = randomModel(tinyConfig(3), at::kFloat, 4);
        upcycleModel(same, {1, 3, 2}, 2, 42);
        upcycleModel(other, {1, 3, 2}, 2, 43);
        const std::string g1 = "model.layers.1.mlp.gate.weight";
        QVERIFY(at::equal(params[g1], same->named_parameters()[g1]));
        QVERIFY(!at::equal(params[g1], other->named_parameters()[g1]));
        QVERIFY(!at::equal(params[g1].narrow(0, 0, 2), params["model.layers.2.mlp.gate.weight"]));

        // Refusals: wrong count, zero experts, a layer already upcycled.
        QVERIFY_THROWS_EXCEPTION(ConfigError, upcycleModel(other, {1, 2}, 2, 0));
        CausalLM fresh = randomModel(tinyConfig(3), at::kFloat, 4);
        QVERIFY_THROWS_EXCEPTION(ConfigError, upcycleModel(fresh, {1, 0, 2}, 2, 0));
        QVERIFY_THROWS_EXCEPTION(ConfigError, upcycleModel(other, {1, 3, 1}, 2, 0));
    }

    void expansionTrainableSelects()
    {
        CausalLM lm = randomModel(tinyConfig(3), at::kFloat, 8);
        upcycleModel(lm, {2, 1, 3}, 2, 1);
        auto nameSet = [](const std::vector<std::pair<std::string, at::Tensor>> &v) {
            std::set<std::string> s;
            for (const auto &[n, t] : v)
                s.insert(n);
            return s;
        };
        const std::set<std::string> wantExperts = {
            "model.layers.0.mlp.experts.1.gate_proj.weight", "model.layers.0.mlp.experts.1.up_proj.weight",
            "model.layers.0.mlp.experts.1.down_proj.weight", "model.layers.2.mlp.experts.1.gate_proj.weight",
            "model.layers.2.mlp.experts.1.up_proj.weight",   "model.layers.2.mlp.experts.1.down_proj.weight",
            "model.layers.2.mlp.experts.2.gate_proj.weight", "model.layers.2.mlp.experts.2.up_proj.weight",
            "model.layers.2.mlp.experts.2.down_proj.weight"};
        const std::set<std::string> wantRouters = {"model.layers.0.mlp.gate.weight", "model.layers.2.mlp.gate.weight"};

        const auto stage1 = expansionTrainable(lm, true, true, false);
        std::set<std::string> want = wantExperts;
        want.insert(wantRouters.begin(), wantRouters.end());
        QCOMPARE(nameSet(stage1), want);
        QCOMPARE(stage1.size(), want.size()); // no duplicates
        QCOMPARE(nameSet(expansionTrainable(lm, true, false, false)), wantExperts);
        QCOMPARE(nameSet(expansionTrainable(lm, false, true, false)), wantRouters);
        QVERIFY(expansionTrainable(lm, false, false, true).empty()); // no classifier yet

        // The tensors are the model's own parameters (training them trains the model).
        const auto params = lm->named_parameters();
        for (const auto &[n, t] : stage1)
            QVERIFY(t.is_same(params[n]));

        std::dynamic_pointer_cast<MoeBlockImpl>(lm->layer(2)->mlp())->setClassifier(true);
        QCOMPARE(nameSet(expansionTrainable(lm, false, true, true)),
                 (std::set<std::string>{"model.layers.0.mlp.gate.weight", "model.layers.2.mlp.gate.weight",
                                        "model.layers.2.mlp.classifier.weight"}));
    }

    // ---- Benchmark (library function only; the numbers are the CLI's business) ----

    void benchSmoke()
    {
        MoeBenchOptions o;
        o.shapes = {{.name = "tiny", .dModel = 16, .dFfn = 24, .numExperts = 4, .topK = 2, .tokens = 64}};
        o.repetitions = 2;
        o.denseSize = 64;
        const auto results = benchMoe(o);
        QCOMPARE(results.size(), size_t(1));
        const MoeBenchResult &r = results[0];
        QCOMPARE(r.shape.name, std::string("tiny"));
        QCOMPARE(r.repetitions, 2);
        QVERIFY(r.groupedTokensPerSecMean > 0 && r.maskedTokensPerSecMean > 0 && r.denseGflops > 0);
        QVERIFY(near(r.speedup, r.groupedTokensPerSecMean / r.maskedTokensPerSecMean, 1e-9));
        // FLOP accounting: achieved GFLOP/s = 18 d ffn (T k) / mean time of a pass. The mean of the
        // per-pass rates is at least T / mean time (the arithmetic mean of rates is never below their
        // harmonic mean), equal when the passes take the same time; how far above depends on timing
        // noise, so only the inequality is checked.
        QVERIFY(r.groupedSecondsMean > 0);
        QVERIFY(near(r.groupedGflops, 18.0 * 16 * 24 * 64 * 2 / r.groupedSecondsMean / 1e9, 1e-9));
        QVERIFY2(r.groupedTokensPerSecMean >= 64 / r.groupedSecondsMean * (1 - 1e-9),
                 qPrintable(QString("%1 < %2").arg(r.groupedTokensPerSecMean).arg(64 / r.groupedSecondsMean)));
        QVERIFY(near(r.groupedFractionOfDense, r.groupedGflops / r.denseGflops, 1e-9));
        o.dtype = "int8";
        QVERIFY_THROWS_EXCEPTION(ConfigError, benchMoe(o));
    }
};

QTEST_APPLESS_MAIN(TestMoe)
#include "tst_moe.moc"
