// Activation checkpointing (models/layer_checkpoint.h) changes memory, not mathematics: the loss and
// every gradient equal those of the plain backward pass to within 1e-6, for a dense model (all
// parameters trained), for stage 1 (new experts and routers; the embeddings frozen, so no layer
// input needs a gradient; the balance loss reads the router probabilities) and for stage 2 (routers
// and classifiers; the LPR and classifier losses read their logits), and under CPU bf16 autocast.
#include "common/tiny_model.h"
#include "expansion_losses.h"
#include "model_io.h"
#include "models/llama.h"
#include "moe_block.h"
#include "polymoe/bench.h"
#include "sequence_batcher.h"
#include "trainer.h"
#include "upcycle.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <QTemporaryDir>
#include <QtTest>

using namespace polymoe;

namespace {

struct Grads {
    double loss = 0;
    std::map<std::string, at::Tensor> grads;
};

// One forward and backward of `loss` with checkpointing on or off; the gradients of `trainable`.
Grads lossAndGrads(CausalLM &model, const std::vector<std::pair<std::string, at::Tensor>> &trainable,
                   const LossFn &lossFn, bool checkpoint, bool bf16 = false)
{
    for (auto &p : model->parameters()) {
        p.set_requires_grad(false);
        p.mutable_grad() = at::Tensor();
    }
    for (auto &[n, p] : trainable)
        p.set_requires_grad(true);
    model->train();
    model->setActivationCheckpointing(checkpoint);
    torch::manual_seed(5);
    const at::Tensor all = torch::randint(0, model->config().vocabSize, {4, 17}, at::kLong);
    const at::Tensor inputs = all.slice(1, 0, 16), targets = all.slice(1, 1, 17);
    SequenceBatch batch;
    batch.rows = 4;
    batch.seqLen = 16;
    batch.isNew = {0, 1, 0, 1};
    batch.language = {0, 1, 0, 1};
    std::map<std::string, double> metrics;
    at::Tensor loss;
    if (bf16) {
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    }
    loss = lossFn ? lossFn(batch, inputs, targets, metrics) : languageModelLoss(*model, inputs, targets);
    if (bf16) {
        at::autocast::set_cpu_enabled(false);
        at::autocast::clear_cache();
    }
    loss.backward();
    Grads g;
    g.loss = loss.item<double>();
    for (auto &[n, p] : trainable)
        g.grads[n] = p.grad().defined() ? p.grad().clone() : at::Tensor();
    model->setActivationCheckpointing(false);
    return g;
}

// The largest difference of the two passes' gradients; every gradient must exist and not all be 0.
double compare(const Grads &plain, const Grads &ck, QString *why)
{
    double worst = std::abs(plain.loss - ck.loss);
    double norm = 0;
    for (const auto &[n, g] : plain.grads) {
        const at::Tensor &h = ck.grads.at(n);
        if (g.defined() != h.defined()) {
            *why = QString::fromStdString(n) + ": a gradient in one pass only";
            return 1e9;
        }
        if (!g.defined())
            continue;
        worst = std::max(worst, (g - h).abs().max().item<double>());
        norm += g.abs().sum().item<double>();
    }
    if (!(norm > 0))
        *why = "all gradients are zero: the test would prove nothing";
    return norm > 0 ? worst : 1e9;
}

} // namespace

class TestActivationCheckpoint : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { at::set_num_threads(1); }

    void denseModelGradientsEqual()
    {
        torch::manual_seed(1);
        CausalLM model(test::tinyLlamaConfig());
        std::vector<std::pair<std::string, at::Tensor>> all;
        for (const auto &p : model->named_parameters())
            all.emplace_back(p.key(), p.value());
        const Grads plain = lossAndGrads(model, all, {}, false);
        const Grads ck = lossAndGrads(model, all, {}, true);
        QString why;
        const double d = compare(plain, ck, &why);
        QVERIFY2(d < 1e-6, qPrintable(QString("%1 %2").arg(d).arg(why)));
    }

    void stage1GradientsEqualWithFrozenEmbeddings()
    {
        torch::manual_seed(2);
        CausalLM model(test::tinyLlamaConfig());
        upcycleModel(model, {3, 2}, 2, 7);
        const auto trainable = expansionTrainable(model, true, true, false);
        const auto loss = stage1Loss(model, 0.5); // a large balance coefficient: its gradient matters
        const Grads plain = lossAndGrads(model, trainable, loss, false);
        const Grads ck = lossAndGrads(model, trainable, loss, true);
        QString why;
        const double d = compare(plain, ck, &why);
        QVERIFY2(d < 1e-6, qPrintable(QString("%1 %2").arg(d).arg(why)));
        // The routers' gradients include the balance loss's: without the routing outputs of the
        // checkpointed layer they would differ (lm-only), so check one is non-zero.
        QVERIFY(ck.grads.at("model.layers.0.mlp.gate.weight").abs().sum().item<double>() > 0);
    }

    void stage2GradientsEqualWithTheClassifier()
    {
        torch::manual_seed(3);
        CausalLM model(test::tinyLlamaConfig());
        upcycleModel(model, {2, 3}, 2, 9);
        for (const auto &[layer, block] : moeBlocks(*model))
            block->setClassifier(true);
        const auto trainable = expansionTrainable(model, false, true, true);
        const auto loss = stage2Loss(model, 1.0, 1.0);
        const Grads plain = lossAndGrads(model, trainable, loss, false);
        const Grads ck = lossAndGrads(model, trainable, loss, true);
        QString why;
        const double d = compare(plain, ck, &why);
        QVERIFY2(d < 1e-6, qPrintable(QString("%1 %2").arg(d).arg(why)));
        QVERIFY(ck.grads.at("model.layers.1.mlp.classifier.weight").abs().sum().item<double>() > 0);
    }

    void bf16AutocastIsRepeatedInTheRecomputation()
    {
        torch::manual_seed(4);
        CausalLM model(test::tinyLlamaConfig());
        std::vector<std::pair<std::string, at::Tensor>> all;
        for (const auto &p : model->named_parameters())
            all.emplace_back(p.key(), p.value());
        const Grads plain = lossAndGrads(model, all, {}, false, true);
        const Grads ck = lossAndGrads(model, all, {}, true, true);
        const Grads fp32 = lossAndGrads(model, all, {}, true, false);
        QString why;
        const double d = compare(plain, ck, &why);
        QVERIFY2(d < 1e-6, qPrintable(QString("%1 %2").arg(d).arg(why)));
        // The recomputation really ran in bf16: fp32 gradients differ from them.
        QVERIFY(compare(plain, fp32, &why) > 1e-6);
    }

    // The checkpointed path is the one taken: the logits hang off the checkpoint node.
    void theCheckpointedPathIsTaken()
    {
        torch::manual_seed(1);
        CausalLM model(test::tinyLlamaConfig());
        model->train();
        model->setActivationCheckpointing(true);
        const at::Tensor ids = torch::randint(0, 32, {2, 8}, at::kLong);
        const at::Tensor x = model->model->embed_tokens->forward(ids);
        const RopeTables rope = ropeTables(8, ropeInverseFrequencies(model->config(), x.device(), x.scalar_type()),
                                           x.scalar_type());
        const at::Tensor y = model->layer(0)->forward(x, rope);
        QVERIFY(y.grad_fn());
        qInfo() << y.grad_fn()->name().c_str();
        QVERIFY(QString::fromStdString(y.grad_fn()->name()).contains("CheckpointedLayer"));
        model->setActivationCheckpointing(false);
        const at::Tensor z = model->layer(0)->forward(x, rope);
        QVERIFY(!QString::fromStdString(z.grad_fn()->name()).contains("CheckpointedLayer"));
    }

    // Evaluation (no gradients) and a model in eval mode never take the checkpointed path.
    void noCheckpointWithoutGradients()
    {
        torch::manual_seed(1);
        CausalLM model(test::tinyLlamaConfig());
        model->setActivationCheckpointing(true);
        model->train();
        const at::Tensor ids = torch::randint(0, 32, {2, 8}, at::kLong);
        at::Tensor a, b;
        {
            at::NoGradGuard ng;
            a = model->forward(ids);
        }
        model->setActivationCheckpointing(false);
        {
            at::NoGradGuard ng;
            b = model->forward(ids);
        }
        QVERIFY(!a.requires_grad());
        QVERIFY(at::equal(a, b));
    }

    // bench train --model measures each imported model's step with activations checkpointed beside
    // the same step plain: fewer bytes at the peak of the step, for full fine-tuning and stage 1.
    void theBenchOfAnImportedModelMeasuresTheSaving()
    {
        QTemporaryDir dir;
        ModelConfig c = test::tinyLlamaConfig();
        c.numLayers = 4;
        c.maxPositionEmbeddings = 128;
        torch::manual_seed(2);
        CausalLM model(c);
        saveModelFolder(*model, dir.filePath("m").toStdString(), std::string());
        const BenchReport rep = benchTrainModel(dir.filePath("m").toStdString(), 1, 1, "", 4, 64);
        int checkpointed = 0;
        for (const BenchRow &r : rep.rows) {
            if (r.name.find("activations checkpointed") == std::string::npos)
                continue;
            ++checkpointed;
            QVERIFY2(r.mean > 0, r.name.c_str());
            const double memory = r.extraValue("memory x plain").value_or(-1);
            const double time = r.extraValue("time x plain").value_or(-1);
            qInfo() << r.name.c_str() << "memory x plain" << memory << "time x plain" << time;
            QVERIFY2(memory > 0 && memory < 0.8, qPrintable(QString::number(memory)));
            QVERIFY(time > 0);
        }
        QCOMPARE(checkpointed, 2); // full fine-tuning and stage 1
    }
};

QTEST_GUILESS_MAIN(TestActivationCheckpoint)
#include "tst_activation_checkpoint.moc"
