// polymoe bench train: training-step throughput of the demo model against the machine's matmul rate.
#include "polymoe/bench.h"

#include "bench_common.h"

#include "distributed_ops.h"
#include "expansion_losses.h"
#include "polymoe/distributed.h"
#include "polymoe/error.h"
#include "models/llama.h"
#include "sequence_batcher.h"
#include "trainer.h"
#include "upcycle.h"
#include "polymoe/training.h"

#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <algorithm>
#include <functional>


namespace polymoe {

namespace {

using bench::Clock;
using bench::meanSd;
using bench::peakTensorBytesAbove;

// FLOP/s of an n x n x n matmul in the dtype, best of several.
double matmulRate(at::ScalarType type, int64_t n, int reps)
{
    auto a = torch::randn({n, n}).to(type), b = torch::randn({n, n}).to(type);
    at::mm(a, b); // warm-up
    double best = 0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        auto c = at::mm(a, b);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::max(best, 2.0 * double(n) * double(n) * double(n) / s);
    }
    return best;
}

} // namespace

std::string machineDescription(int threads)
{
    std::ifstream in("/proc/cpuinfo");
    std::string line, model = "unknown CPU";
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, " + std::to_string(threads) +
           " threads";
}

std::string BenchReport::markdown() const
{
    std::ostringstream os;
    os << "### " << title << "\n\n" << "- machine: " << machine << "\n- build: " << build << "\n\n";
    os << "| benchmark | mean | sd | unit | reps |";
    std::vector<std::string> extraNames;
    for (const auto &r : rows)
        for (const auto &[k, v] : r.extra)
            if (std::find(extraNames.begin(), extraNames.end(), k) == extraNames.end())
                extraNames.push_back(k);
    for (const auto &k : extraNames)
        os << " " << k << " |";
    os << "\n|---|---:|---:|---|---:|";
    for (size_t i = 0; i < extraNames.size(); ++i)
        os << "---:|";
    os << "\n";
    char buf[64];
    for (const auto &r : rows) {
        std::snprintf(buf, sizeof buf, "%.4g", r.mean);
        os << "| " << r.name << " | " << buf;
        std::snprintf(buf, sizeof buf, "%.2g", r.sd);
        os << " | " << buf << " | " << r.unit << " | " << r.repetitions << " |";
        for (const auto &k : extraNames) {
            if (const auto v = r.extraValue(k)) {
                std::snprintf(buf, sizeof buf, "%.3g", *v);
                os << " " << buf << " |";
            } else
                os << " |";
        }
        os << "\n";
    }
    for (const auto &n : notes)
        os << "\n" << n << "\n";
    return os.str();
}

std::string BenchReport::json() const
{
    nlohmann::json j = {{"title", title}, {"machine", machine}, {"build", build}, {"notes", notes}};
    j["rows"] = nlohmann::json::array();
    for (const auto &r : rows) {
        nlohmann::json e = {{"name", r.name}, {"unit", r.unit}, {"mean", r.mean}, {"sd", r.sd}, {"repetitions", r.repetitions}};
        for (const auto &[k, v] : r.extra)
            e[k] = v;
        j["rows"].push_back(e);
    }
    return j.dump(2);
}

namespace {

constexpr int64_t kBenchBatch = 16, kBenchSeqLen = 128;

// The demo base model's shape (resources/demo/demo-base.json).
ModelConfig benchModelConfig()
{
    ModelConfig cfg;
    cfg.modelType = "llama";
    cfg.vocabSize = 8000;
    cfg.hiddenSize = 256;
    cfg.intermediateSize = 688;
    cfg.numLayers = 4;
    cfg.numHeads = 4;
    cfg.numKvHeads = 4;
    cfg.headDim = 64;
    cfg.maxPositionEmbeddings = 512;
    return cfg;
}

// Stage 2 (METHOD.md section 5: routers only, LM + LPR loss) on the bench model upcycled to 4
// experts (top-2) in every layer, against inference (no gradients) on the same model and batch:
// tokens/s and the step's memory, plain and with activation checkpointing.
void benchStage2Memory(BenchReport &rep, const ModelConfig &cfg, int64_t B, int64_t T, int repetitions)
{
    torch::manual_seed(0);
    CausalLM model(cfg);
    upcycleModel(model, std::vector<int>(size_t(cfg.numLayers), 4), 2, 1);
    const auto trainable = expansionTrainable(model, false, true, false);
    trainOnly(*model, trainable);
    TrainConfig tc;
    tc.lr = 1e-2;
    auto opt = makeOptimizer(trainable, tc);
    const LossFn loss = stage2Loss(model, 0.1, 0.0);
    auto ids = torch::randint(0, cfg.vocabSize, {B, T + 1}, at::kLong);
    SequenceBatch batch;
    batch.rows = B;
    batch.seqLen = T;
    for (int64_t r = 0; r < B; ++r) {
        batch.isNew.push_back(r % 2);
        batch.language.push_back(int(r % 2));
    }
    const at::Tensor inputs = ids.slice(1, 0, T), targets = ids.slice(1, 1, T + 1);
    std::map<std::string, double> metrics;
    const auto trainStep = [&] {
        dropGradients(*opt);
        loss(batch, inputs, targets, metrics).backward();
        opt->step();
    };
    const auto inference = [&] {
        at::NoGradGuard ng;
        (void)languageModelLoss(*model, inputs, targets).item<double>();
    };
    auto measure = [&](const std::string &name, const std::function<void()> &fn) {
        fn();
        fn(); // warm-up: gradients and optimizer state exist from here on
        std::vector<double> tps;
        for (int r = 0; r < repetitions; ++r) {
            const auto t0 = Clock::now();
            fn();
            tps.push_back(double(B * T) / std::chrono::duration<double>(Clock::now() - t0).count());
        }
        const double mb = double(peakTensorBytesAbove(fn)) / 1e6;
        auto [m, sd] = meanSd(tps);
        BenchRow row;
        row.name = name;
        row.unit = "tokens/s";
        row.mean = m;
        row.sd = sd;
        row.repetitions = repetitions;
        row.extra = {{"step memory MB", mb}};
        rep.rows.push_back(row);
        return mb;
    };
    model->eval();
    const double inferMb = measure("inference fp32, MoE 4 experts top-2 (no gradients)", inference);
    model->train();
    const double plainMb = measure("stage-2 step fp32 (routers only), MoE 4 experts top-2", trainStep);
    model->setActivationCheckpointing(true);
    const double ckMb = measure("stage-2 step fp32, activations checkpointed", trainStep);
    model->setActivationCheckpointing(false);
    char buf[200];
    std::snprintf(buf, sizeof buf, "stage-2 step memory / inference memory on the same batch: %.2fx plain, %.2fx with "
                                   "activations checkpointed (goal: at most 1.5x)", plainMb / std::max(inferMb, 1e-9),
                  ckMb / std::max(inferMb, 1e-9));
    rep.notes.push_back(buf);
}

} // namespace

BenchReport benchTrainStep(int repetitions, int threads)
{
    BenchReport rep;
    const int used = setTrainingThreads(threads);
    keepFreedMemoryForReuse(); // as the trainer does
    rep.title = "Training step of the demo base model";
    rep.machine = machineDescription(used);
    rep.build = std::string("PolyMoE ") + POLYMOE_VERSION + ", LibTorch " + TORCH_VERSION;

    const ModelConfig cfg = benchModelConfig();
    const int64_t B = kBenchBatch, T = kBenchSeqLen, tokens = B * T;
    const double d = double(cfg.hiddenSize), f = double(cfg.intermediateSize), L = double(cfg.numLayers);
    // Matmul FLOPs of one step: forward 2 per multiply-add, backward twice the forward.
    const double perTokenFwd = L * (2 * 4 * d * d + 2 * 3 * d * f + 2 * 2 * double(T) * d) + 2 * d * double(cfg.vocabSize);
    const double stepFlops = 3 * perTokenFwd * double(tokens);

    const bool bf16 = resolveDtype("auto", false) == "bf16";
    std::vector<std::string> dtypes = {"fp32"};
    if (bf16)
        dtypes.push_back("bf16");
    else
        rep.notes.push_back("This CPU has no AVX-512 BF16 instructions: bf16 is not measured (it would be emulated).");
    bench::countTensorMemory(); // before any tensor of the bench
    struct Variant {
        std::string dtype;
        bool checkpoint;
    };
    std::vector<Variant> variants;
    for (const auto &dt : dtypes)
        variants.push_back({dt, false});
    variants.push_back({"fp32", true});
    for (const auto &[dt, checkpoint] : variants) {
        torch::manual_seed(0);
        CausalLM model(cfg);
        model->train();
        model->setActivationCheckpointing(checkpoint);
        torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
        auto ids = torch::randint(0, cfg.vocabSize, {B, T + 1}, at::kLong);
        auto step = [&] {
            at::Tensor loss;
            {
                Bf16Autocast autocast(dt == "bf16", c10::kCPU);
                auto logits = model->forward(ids.slice(1, 0, T));
                loss = torch::nn::functional::cross_entropy(logits.reshape({-1, cfg.vocabSize}).to(at::kFloat),
                                                            ids.slice(1, 1, T + 1).reshape({-1}));
            }
            dropGradients(opt);
            loss.backward();
            opt.step();
        };
        step();
        step(); // warm-up
        std::vector<double> tps, frac;
        const double mmRate = matmulRate(dt == "bf16" ? at::kBFloat16 : at::kFloat, 2048, 5);
        for (int r = 0; r < repetitions; ++r) {
            const auto t0 = Clock::now();
            step();
            const double s = std::chrono::duration<double>(Clock::now() - t0).count();
            tps.push_back(double(tokens) / s);
            // One more forward per layer when checkpointed: the FLOPs counted stay the plain step's.
            frac.push_back(stepFlops / s / mmRate);
        }
        const double stepMb = double(peakTensorBytesAbove(step)) / 1e6;
        auto [m, sd] = meanSd(tps);
        auto [fm, fsd] = meanSd(frac);
        BenchRow row;
        row.name = "train step " + dt + (checkpoint ? ", activations checkpointed" : "") + " (16 x 128 tokens)";
        row.unit = "tokens/s";
        row.mean = m;
        row.sd = sd;
        row.repetitions = repetitions;
        row.extra = {{"step GFLOP", stepFlops / 1e9}, {"achieved GFLOP/s", fm * mmRate / 1e9},
                     {"mm GFLOP/s", mmRate / 1e9}, {"fraction of mm rate", fm}, {"step memory MB", stepMb}};
        rep.rows.push_back(row);
    }
    benchStage2Memory(rep, cfg, B, T, repetitions);
    rep.notes.push_back("step memory MB = the peak of CPU tensor memory during one step above what was alive before "
                        "it (counted by a wrapper of c10's CPU allocator): activations and temporaries, beyond the "
                        "weights, gradients and optimizer state that persist between steps. oneDNN's own scratch "
                        "buffers are not tensors and not counted.");
    rep.notes.push_back("fraction of mm rate = (matmul FLOPs of one step / step time) / (FLOP/s of a 2048^3 at::mm "
                        "of the same dtype, best of 5, measured in the same run).");
    return rep;
}

BenchReport benchTrainDataParallel(int repetitions, int threads)
{
    const int world = distributedWorldSize(), rank = distributedRank();
    if (kBenchBatch % world != 0)
        throw ConfigError("bench train: " + std::to_string(world) + " processes do not divide the batch of " +
                          std::to_string(kBenchBatch) + " sequences");
    BenchReport rep;
    const int used = setTrainingThreads(threads);
    keepFreedMemoryForReuse(); // as the trainer does
    rep.title = "Training step of the demo base model, data-parallel";
    rep.machine = machineDescription(used);
    rep.build = std::string("PolyMoE ") + POLYMOE_VERSION + ", LibTorch " + TORCH_VERSION;
    const ModelConfig cfg = benchModelConfig();
    const int64_t B = kBenchBatch, T = kBenchSeqLen, rows = B / world;
    torch::manual_seed(0);
    CausalLM model(cfg);
    model->train();
    std::vector<at::Tensor> params = model->parameters();
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3));
    auto ids = torch::randint(0, cfg.vocabSize, {B, T + 1}, at::kLong).slice(0, rank * rows, (rank + 1) * rows);
    int64_t bytes = 0;
    for (const auto &p : params)
        bytes += p.numel() * int64_t(p.element_size());
    // Two ways to the same gradients: every sum after backward (averageGradients), and the sums
    // overlapped with backward (GradientSync, what the trainer does). Each row: the whole step, and
    // the time the step waits for the sums once backward is done.
    dist::GradientSync sync(params);
    for (const bool overlapped : {false, true}) {
        double waitSeconds = 0;
        auto step = [&] {
            auto logits = model->forward(ids.slice(1, 0, T));
            auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, cfg.vocabSize}),
                                                             ids.slice(1, 1, T + 1).reshape({-1}));
            dropGradients(opt);
            if (overlapped)
                sync.armForLastBackward();
            loss.backward();
            std::vector<double> extra;
            const auto t0 = Clock::now();
            if (overlapped)
                sync.finish(extra, "the bench's gradients");
            else
                dist::averageGradients(params, extra, "the bench's gradients");
            waitSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
            opt.step();
        };
        step();
        step(); // warm-up
        waitSeconds = 0;
        std::vector<double> tps;
        for (int r = 0; r < repetitions; ++r) {
            const auto t0 = Clock::now();
            step();
            tps.push_back(double(B * T) / std::chrono::duration<double>(Clock::now() - t0).count());
        }
        auto [m, sd] = meanSd(tps);
        BenchRow row;
        row.name = "train step fp32, " + std::to_string(world) + " processes x " + std::to_string(used) + " threads (" +
                   std::to_string(B) + " x " + std::to_string(T) + " tokens in all), gradient sums " +
                   (overlapped ? "overlapped with backward" : "after backward");
        row.unit = "tokens/s";
        row.mean = m;
        row.sd = sd;
        row.repetitions = repetitions;
        row.extra = {{"wait for sums ms", 1000 * waitSeconds / repetitions}, {"gradient MB", double(bytes) / 1e6}};
        rep.rows.push_back(row);
    }
    return rep;
}

} // namespace polymoe
