// The training loop on a tiny model and synthetic but learnable data: the loss falls; a run that
// is cancelled and resumed reproduces the uninterrupted loss curve; frozen parameters stay
// bit-identical; the schedule follows warm-up then cosine.
#include "common/tiny_model.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "trainer.h"
#include "moe_block.h"
#include "upcycle.h"

#include <torch/cuda.h>

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include <cmath>
#include <limits>

using namespace polymoe;
namespace fs = std::filesystem;

class TestTrainer : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    // A learnable language: token t is followed by (t * 3 + 1) % 29 most of the time.
    static LanguageStream patternStream(const std::string &lang, uint32_t seed, bool isNew)
    {
        LanguageStream s;
        s.language = lang;
        s.isNew = isNew;
        uint32_t x = seed, t = seed % 29;
        for (int i = 0; i < 20000; ++i) {
            s.tokens.push_back(int32_t(t));
            x = x * 1664525u + 1013904223u;
            t = (x >> 24) % 10 == 0 ? (x >> 8) % 29 : (t * 3 + 1) % 29;
        }
        return s;
    }

    // A copy of every parameter, by name.
    static std::map<std::string, at::Tensor> snapshot(const CausalLM &model)
    {
        std::map<std::string, at::Tensor> out;
        for (const auto &item : model->named_parameters())
            out[item.key()] = item.value().detach().clone();
        return out;
    }

    TrainLoopSpec makeJob(CausalLM model, const SequenceBatcher &batcher, const fs::path &dir, int64_t steps)
    {
        TrainLoopSpec job;
        job.model = model;
        for (const auto &item : model->named_parameters())
            job.trainable.emplace_back(item.key(), item.value());
        job.batcher = &batcher;
        job.config.steps = steps;
        job.config.batchSize = 8;
        job.config.seqLen = 16;
        job.config.lr = 3e-3;
        job.config.warmupSteps = 3;
        job.config.checkpointEvery = 4;
        job.config.dtype = "fp32";
        job.config.threads = 1;
        job.checkpointDir = dir;
        return job;
    }

private Q_SLOTS:
    void weightDecaySparesRoutersClassifiersAndEmbeddings()
    {
        // Stage 2's trainable set (routers and classifiers) and stage 1's (new experts and routers)
        // on an upcycled tiny model: the optimizer's groups, read back from the optimizer itself.
        const ModelConfig c = test::tinyLlamaConfig();
        torch::manual_seed(1);
        CausalLM model(c);
        std::vector<int> n(size_t(c.numLayers), 3);
        upcycleModel(model, n, 2, 7);
        for (const auto &b : model->named_modules())
            if (auto *moe = dynamic_cast<MoeBlockImpl *>(b.value().get()))
                moe->setClassifier(true);
        TrainConfig tc;
        tc.weightDecay = 0.1;
        auto decayOf = [](torch::optim::AdamW &opt, const at::Tensor &p) {
            for (auto &g : opt.param_groups())
                for (auto &q : g.params())
                    if (q.is_same(p))
                        return static_cast<torch::optim::AdamWOptions &>(g.options()).weight_decay();
            return -1.0;
        };
        const auto stage2 = expansionTrainable(model, false, true, true);
        QCOMPARE(int(stage2.size()), 2 * int(c.numLayers));
        auto opt2 = makeOptimizer(stage2, tc);
        for (const auto &[name, p] : stage2)
            QVERIFY2(decayOf(*opt2, p) == 0.0, name.c_str());
        QCOMPARE(opt2->param_groups().size(), size_t(1)); // the empty decayed group is left out

        const auto stage1 = expansionTrainable(model, true, true, false);
        auto opt1 = makeOptimizer(stage1, tc);
        int decayed = 0;
        for (const auto &[name, p] : stage1) {
            const bool router = name.size() > 17 && name.substr(name.size() - 16) == ".mlp.gate.weight";
            QVERIFY2(decayOf(*opt1, p) == (router ? 0.0 : 0.1), name.c_str());
            decayed += router ? 0 : 1;
        }
        QCOMPARE(decayed, int(c.numLayers) * 2 * 3); // 2 new experts x (gate, up, down) per layer

        // Full fine-tuning: the embedding and every vector escape decay, attention and FFN matrices take it.
        CausalLM dense(c);
        std::vector<std::pair<std::string, at::Tensor>> all;
        for (const auto &item : dense->named_parameters())
            all.emplace_back(item.key(), item.value());
        auto opt = makeOptimizer(all, tc);
        for (const auto &[name, p] : all) {
            const bool expectDecay = p.dim() == 2 && name.find("embed_tokens") == std::string::npos;
            QVERIFY2(decayOf(*opt, p) == (expectDecay ? 0.1 : 0.0), name.c_str());
        }
    }

    void scheduleWarmupThenCosine()
    {
        TrainConfig c;
        c.steps = 100;
        c.warmupSteps = 10;
        c.lr = 1.0;
        c.minLrRatio = 0.1;
        QCOMPARE(scheduledLearningRate(c, 1), 0.1);
        QCOMPARE(scheduledLearningRate(c, 10), 1.0);
        // Half way through the decay: min + (max - min) / 2 = 0.55.
        QVERIFY(std::abs(scheduledLearningRate(c, 55) - 0.55) < 1e-12);
        QVERIFY(std::abs(scheduledLearningRate(c, 100) - 0.1) < 1e-12);
    }

    void lossFallsAndIsRecorded()
    {
        auto store = ProjectStore::create(fs::path(m_dir.path().toStdString()) / "t.polymoe");
        torch::manual_seed(1);
        CausalLM model(test::tinyLlamaConfig());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 1);
        auto job = makeJob(model, batcher, fs::path(m_dir.path().toStdString()) / "run-a", 60);
        job.store = &store;
        job.runId = store.beginRun("pretrain", "{}");
        job.config.logEvery = 5;
        std::vector<double> losses;
        auto r = runTraining(job, [&](const TrainStatus &s) { losses.push_back(s.loss); });
        QCOMPARE(r.steps, int64_t(60));
        QCOMPARE(int(losses.size()), 60);
        // ln(32) = 3.47 at the start; the pattern is 90% predictable.
        QVERIFY2(losses.front() > 3.0, qPrintable(QString::number(losses.front())));
        QVERIFY2(losses.back() < 0.6 * losses.front(), qPrintable(QString("%1 -> %2").arg(losses.front()).arg(losses.back())));
        auto series = store.metricSeries(job.runId, "loss");
        QVERIFY(series.size() >= 12);
        QCOMPARE(series.back().first, int64_t(60));
        QCOMPARE(series.back().second, losses.back());
        QVERIFY(hasCheckpoint(job.checkpointDir));
    }

    void resumeReproducesTheUninterruptedRun()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false), patternStream("de", 9, true)}, 16, 5);
        std::vector<double> full, part;
        {
            torch::manual_seed(7);
            CausalLM model(test::tinyLlamaConfig());
            auto job = makeJob(model, batcher, base / "full", 10);
            runTraining(job, [&](const TrainStatus &s) { full.push_back(s.loss); });
        }
        {
            torch::manual_seed(7);
            CausalLM model(test::tinyLlamaConfig());
            auto job = makeJob(model, batcher, base / "part", 10);
            std::stop_source stop;
            bool cancelled = false;
            try {
                runTraining(job, [&](const TrainStatus &s) {
                    part.push_back(s.loss);
                    if (s.step == 6) // between checkpoints (every 4): cancellation writes its own
                        stop.request_stop();
                }, stop.get_token());
            } catch (const Cancelled &) {
                cancelled = true;
            }
            QVERIFY(cancelled);
            QCOMPARE(int(part.size()), 6);
        }
        {
            // A new process: fresh model object (different init seed on purpose), resumed from the checkpoint.
            torch::manual_seed(12345);
            CausalLM model(test::tinyLlamaConfig());
            auto job = makeJob(model, batcher, base / "part", 10);
            job.resume = true;
            auto r = runTraining(job, [&](const TrainStatus &s) { part.push_back(s.loss); });
            QCOMPARE(r.steps, int64_t(10));
        }
        QCOMPARE(int(part.size()), 10);
        for (int i = 0; i < 10; ++i)
            QVERIFY2(part[size_t(i)] == full[size_t(i)],
                     qPrintable(QString("step %1: %2 vs %3").arg(i + 1).arg(part[size_t(i)], 0, 'g', 17).arg(full[size_t(i)], 0, 'g', 17)));
    }

    // Settings out of range are refused by name before anything runs: the overflow of
    // batch x sequence, NaN, infinities, zero-sum weights (issue: hostile inputs).
    void settingsOutOfRangeAreRefused()
    {
        validateTrainConfig(TrainConfig{}); // the defaults are valid
        const auto refused = [](auto change, const char *word) {
            TrainConfig c;
            change(c);
            try {
                validateTrainConfig(c);
            } catch (const ConfigError &e) {
                return std::string(e.what()).find(word) != std::string::npos;
            }
            return false;
        };
        QVERIFY(refused([](TrainConfig &c) { c.batchSize = int64_t(1) << 61; c.seqLen = 7; }, "batch_size"));
        QVERIFY(refused([](TrainConfig &c) { c.batchSize = 1 << 15; c.seqLen = 1 << 15; }, "tokens per process and step"));
        QVERIFY(refused([](TrainConfig &c) { c.batchSize = 1 << 10; c.gradAccum = 1 << 10; c.seqLen = 1 << 10; },
                        "batch_size x grad_accum x seq_len"));
        QVERIFY(refused([](TrainConfig &c) { c.seqLen = 1; }, "seq_len"));
        QVERIFY(refused([](TrainConfig &c) { c.gradAccum = 0; }, "grad_accum"));
        QVERIFY(refused([](TrainConfig &c) { c.steps = 0; }, "steps"));
        QVERIFY(refused([](TrainConfig &c) { c.lr = std::nan(""); }, "lr"));
        QVERIFY(refused([](TrainConfig &c) { c.lr = 0; }, "lr"));
        QVERIFY(refused([](TrainConfig &c) { c.beta2 = 1.0; }, "beta2"));
        QVERIFY(refused([](TrainConfig &c) { c.gradClip = std::numeric_limits<double>::infinity(); }, "grad_clip"));
        QVERIFY(refused([](TrainConfig &c) { c.threads = -1; }, "threads"));
        QVERIFY(refused([](TrainConfig &c) { c.checkpointEvery = -50; }, "checkpoint_every"));
        QVERIFY(refused([](TrainConfig &c) { c.languageWeights = {{"en", std::nan("")}}; }, "'en'"));
        QVERIFY(refused([](TrainConfig &c) { c.languageWeights = {{"en", 0.0}, {"de", 0.0}}; }, "all 0"));
        // checkTrainingDevice, which every job calls before recording a run, applies the same checks.
        TrainConfig c;
        c.lr = -1;
        QVERIFY_THROWS_EXCEPTION(ConfigError, checkTrainingDevice(c));
    }

    void trainingDevice()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 5);
        torch::manual_seed(7);
        CausalLM model(test::tinyLlamaConfig());
        auto job = makeJob(model, batcher, base / "device-bogus", 2);
        job.config.device = "gpu0";
        QVERIFY_THROWS_EXCEPTION(ConfigError, runTraining(job));
        if (!torch::cuda::is_available()) {
            auto cudaJob = makeJob(model, batcher, base / "device-cuda", 2);
            cudaJob.config.device = "cuda";
            try {
                runTraining(cudaJob);
                QFAIL("device cuda ran on a machine without CUDA");
            } catch (const ConfigError &e) {
                QVERIFY2(std::string(e.what()).find("no CUDA device") != std::string::npos, e.what());
            }
        }
        auto autoJob = makeJob(model, batcher, base / "device-auto", 2);
        autoJob.config.device = "auto";
        const auto r = runTraining(autoJob);
        QCOMPARE(QString::fromStdString(r.device), torch::cuda::is_available() ? QString("cuda:0") : QString("cpu"));
        // On a GPU only fp32 is implemented; the CPU's bf16 is autocast.
        QCOMPARE(QString::fromStdString(resolveDtype("bf16", true)), QString("bf16")); // CUDA autocast
        QCOMPARE(QString::fromStdString(resolveDtype("fp32", true)), QString("fp32"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, resolveDtype("fp16", true));
        QCOMPARE(QString::fromStdString(resolveDtype("bf16", false)), QString("bf16"));
    }

    void resumeWithOtherSettingsIsRefused()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 5);
        torch::manual_seed(7);
        CausalLM model(test::tinyLlamaConfig());
        auto job = makeJob(model, batcher, base / "other", 4);
        runTraining(job);
        auto job2 = makeJob(model, batcher, base / "other", 8);
        job2.resume = true;
        QVERIFY_THROWS_EXCEPTION(ConfigError, runTraining(job2));
    }

    // A checkpoint holds no pickle: the optimizer state is a safetensors file whose SHA-256, like the
    // weights', state.json records; a flipped byte anywhere in it refuses the resume by name.
    void damagedCheckpointIsRefused()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 5);
        torch::manual_seed(7);
        CausalLM model(test::tinyLlamaConfig());
        auto job = makeJob(model, batcher, base / "damaged", 4);
        runTraining(job);
        const fs::path ck = base / "damaged" / "checkpoint";
        fs::remove_all(base / "damaged" / "checkpoint.old"); // no earlier checkpoint to fall back to
        for (const auto &e : fs::directory_iterator(ck))
            QVERIFY2(e.path().extension() != ".pt", e.path().c_str());
        QVERIFY(fs::is_regular_file(ck / "optimizer.safetensors"));
        auto again = makeJob(model, batcher, base / "damaged", 4);
        again.resume = true;
        runTraining(again); // intact: resumes (at its last step)
        for (const char *file : {"optimizer.safetensors", "trainable.safetensors"}) {
            fs::remove_all(base / "damaged" / "checkpoint.old"); // each resume writes one
            std::fstream f(ck / file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(-3, std::ios::end);
            const char c = char(f.get());
            f.seekp(-3, std::ios::end);
            f.put(char(c ^ 0x10));
            f.close();
            try {
                runTraining(again);
                QFAIL("a damaged checkpoint was resumed");
            } catch (const FormatError &e) {
                QVERIFY2(std::string(e.what()).find(file) != std::string::npos &&
                             std::string(e.what()).find("SHA-256") != std::string::npos,
                         e.what());
            }
            f.open(ck / file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(-3, std::ios::end);
            f.put(c); // repaired
            f.close();
        }
        runTraining(again);
    }

    // The newest checkpoint damaged, the one before it intact: the run resumes from that one, says
    // so, and ends where the undisturbed run ended, bit for bit.
    void damagedCheckpointFallsBackToThePreviousOne()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 5);
        torch::manual_seed(8);
        CausalLM model(test::tinyLlamaConfig());
        const std::map<std::string, at::Tensor> start = snapshot(model);
        auto job = makeJob(model, batcher, base / "fallback", 8); // checkpoints at steps 4 and 8
        runTraining(job);
        const std::map<std::string, at::Tensor> finished = snapshot(model);
        const fs::path dir = base / "fallback";
        QVERIFY(fs::exists(dir / "checkpoint.old" / "state.json"));
        {
            std::fstream f(dir / "checkpoint" / "trainable.safetensors", std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(-5, std::ios::end);
            f.put('\x7f');
        }
        // Resume on a model set back to the start: only the checkpoint can bring it to step 4.
        {
            at::NoGradGuard ng;
            for (auto &item : model->named_parameters())
                item.value().copy_(start.at(item.key()));
        }
        auto again = makeJob(model, batcher, dir, 8);
        again.resume = true;
        const TrainResult r = runTraining(again);
        QVERIFY2(r.resumeNote.find("SHA-256") != std::string::npos && r.resumeNote.find("step 4") != std::string::npos,
                 r.resumeNote.c_str());
        for (const auto &item : model->named_parameters())
            QVERIFY2(at::equal(item.value(), finished.at(item.key())), item.key().c_str());
        // The damaged one is gone; with only an older one left (a crash between the two renames of
        // a checkpoint), that one is resumed.
        QVERIFY(!fs::exists(dir / "checkpoint.old"));
        fs::rename(dir / "checkpoint", dir / "checkpoint.old");
        QVERIFY(hasCheckpoint(dir));
        runTraining(again);
    }

    void frozenParametersStayBitIdentical()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 3, false)}, 16, 5);
        torch::manual_seed(3);
        CausalLM model(test::tinyLlamaConfig());
        const std::map<std::string, at::Tensor> before = snapshot(model);
        auto job = makeJob(model, batcher, base / "frozen", 5);
        job.trainable.clear();
        for (const auto &item : model->named_parameters())
            if (item.key().find("mlp") != std::string::npos)
                job.trainable.emplace_back(item.key(), item.value());
        runTraining(job);
        int changed = 0;
        for (const auto &item : model->named_parameters()) {
            const std::string &n = item.key();
            const at::Tensor &p = item.value();
            const bool same = at::equal(p, before.at(n));
            if (n.find("mlp") != std::string::npos)
                changed += !same;
            else
                QVERIFY2(same, n.c_str());
        }
        QVERIFY(changed > 0);
    }

    // TrainLoopSpec::trainableRows: only the chosen rows of the embedding and the LM head move; the
    // others stay bit for bit although the config decays matrices (the masked ones are not decayed).
    void trainableRowsAloneMove()
    {
        const fs::path base(m_dir.path().toStdString());
        SequenceBatcher batcher({patternStream("en", 5, false)}, 16, 5);
        torch::manual_seed(4);
        CausalLM model(test::tinyLlamaConfig());
        auto job = makeJob(model, batcher, base / "rows", 6);
        job.config.weightDecay = 0.1;
        job.trainable.clear();
        const auto params = model->named_parameters();
        const int64_t vocab = params["lm_head.weight"].size(0);
        at::Tensor rows = at::zeros({vocab}, at::kBool);
        for (int t = 3; t < 20; t += 2)
            rows[t] = true;
        for (const char *name : {"model.embed_tokens.weight", "lm_head.weight"}) {
            job.trainable.emplace_back(name, params[name]);
            job.trainableRows[name] = rows;
        }
        const at::Tensor embBefore = params["model.embed_tokens.weight"].detach().clone();
        const at::Tensor headBefore = params["lm_head.weight"].detach().clone();
        runTraining(job);
        for (const auto &[name, before] : {std::pair{"model.embed_tokens.weight", embBefore}, std::pair{"lm_head.weight", headBefore}}) {
            const at::Tensor after = params[name];
            int moved = 0;
            for (int64_t t = 0; t < vocab; ++t) {
                const bool same = at::equal(after[t], before[t]);
                if (t >= 3 && t < 20 && (t - 3) % 2 == 0)
                    moved += !same;
                else
                    QVERIFY2(same, qPrintable(QString("%1 row %2 moved").arg(name).arg(t)));
            }
            QVERIFY2(moved >= 5, qPrintable(QString("%1: %2 of the 9 rows moved").arg(name).arg(moved)));
        }
        // The hooks are gone with the run: a plain backward reaches every row again.
        for (auto &p : model->parameters())
            p.set_requires_grad(true);
        model->zero_grad();
        at::Tensor ids = torch::randint(0, vocab, {2, 9}, at::kLong);
        languageModelLoss(*model, ids.slice(1, 0, 8), ids.slice(1, 1, 9)).backward();
        QVERIFY(params["lm_head.weight"].grad().abs().sum(1).gt(0).sum().item<int64_t>() > 20);
        // The optimizer leaves the named matrices out of decay.
        TrainConfig tc;
        tc.weightDecay = 0.1;
        auto opt = makeOptimizer(job.trainable, tc, {"lm_head.weight"});
        for (auto &g : opt->param_groups())
            for (auto &q : g.params())
                if (q.is_same(params["lm_head.weight"]))
                    QCOMPARE(static_cast<torch::optim::AdamWOptions &>(g.options()).weight_decay(), 0.0);
    }
};

QTEST_GUILESS_MAIN(TestTrainer)
#include "tst_trainer.moc"
