// polymoe bench train --model DIR: a training step of an imported model (full fine-tuning and
// stage 1), beside transformers doing the same model's step in the same run.
#include "polymoe/bench.h"

#include "bench_common.h"
#include "expansion_losses.h"
#include "model_io.h"
#include "polymoe/error.h"
#include "polymoe/training.h"
#include "sequence_batcher.h"
#include "trainer.h"
#include "upcycle.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

// The peer: transformers' step on the same folder, batch and dtypes; "full" trains every tensor,
// "ffn" only the MLPs (what comes nearest to stage 1 in a dense model). The loss is computed from
// the logits as PolyMoE's trainer does; AdamW, gradient clipping to 1 as the trainer's defaults.
constexpr const char *kTransformersPeer = R"PY(
import json, sys, time
import torch, transformers
from transformers import AutoModelForCausalLM
folder, threads, B, T, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
dtypes = sys.argv[6].split(",")
torch.set_num_threads(threads)
rows = []
for mode in ("full", "ffn"):
    for dt in dtypes:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        model.train()
        for n, p in model.named_parameters():
            p.requires_grad_(mode == "full" or ".mlp." in n)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
        V = model.config.vocab_size
        ids = torch.randint(0, V, (B, T + 1))
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=(dt == "bf16")):
                logits = model(input_ids=ids[:, :T]).logits
                loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        step(); step()
        tps = []
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            tps.append(B * T / (time.perf_counter() - t0))
        rows.append({"mode": mode, "dtype": dt, "tokens_per_s": tps})
        del model, opt, params
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "rows": rows}))
)PY";

struct StepVariant {
    std::string mode; // "full" or "stage1"
    std::string dtype;
    bool checkpoint = false; // every decoder layer recomputed in the backward pass (--checkpoint-activations)
};

// Tokens/s and step memory of one variant of PolyMoE's step, the way the trainer runs it: autocast
// around forward and loss, backward, clipping to 1, AdamW (makeOptimizer), gradients cleared.
BenchRow measureStep(const fs::path &dir, const StepVariant &v, int64_t B, int64_t T, int repetitions)
{
    torch::manual_seed(0);
    CausalLM model = loadModelFolder(dir);
    const int64_t V = model->config().vocabSize;
    std::vector<std::pair<std::string, at::Tensor>> trainable;
    LossFn loss;
    if (v.mode == "stage1") {
        // One new expert beside the frozen original in every layer, top-2: the smollm2 profile's uniform allocation.
        upcycleModel(model, std::vector<int>(size_t(model->config().numLayers), 2), 2, 42);
        trainable = expansionTrainable(model, true, true, false);
        loss = stage1Loss(model, 0.01);
    } else {
        for (auto &np : model->named_parameters())
            trainable.emplace_back(np.key(), np.value());
    }
    model->setActivationCheckpointing(v.checkpoint);
    const std::vector<at::Tensor> params = trainOnly(*model, trainable);
    TrainConfig tc;
    tc.lr = 1e-5;
    auto opt = makeOptimizer(trainable, tc);
    model->train();
    const at::Tensor ids = torch::randint(0, V, {B, T + 1}, at::kLong);
    const at::Tensor inputs = ids.slice(1, 0, T), targets = ids.slice(1, 1, T + 1);
    SequenceBatch batch;
    batch.rows = B;
    batch.seqLen = T;
    batch.isNew.assign(size_t(B), 1);
    batch.language.assign(size_t(B), 0);
    std::map<std::string, double> metrics;
    double phase[3] = {0, 0, 0}; // forward and loss, backward, clipping and AdamW (seconds, summed)
    const auto since = [](bench::Clock::time_point t) { return std::chrono::duration<double>(bench::Clock::now() - t).count(); };
    const auto step = [&] {
        dropGradients(*opt); // where the trainer drops them: the last step's stay alive until here
        auto t = bench::Clock::now();
        at::Tensor l;
        {
            Bf16Autocast autocast(v.dtype == "bf16", c10::kCPU);
            l = loss ? loss(batch, inputs, targets, metrics) : languageModelLoss(*model, inputs, targets);
        }
        phase[0] += since(t);
        t = bench::Clock::now();
        l.backward();
        phase[1] += since(t);
        t = bench::Clock::now();
        torch::nn::utils::clip_grad_norm_(params, 1.0);
        opt->step();
        phase[2] += since(t);
    };
    step();
    step(); // warm-up: gradients and optimizer state exist from here on
    std::fill(std::begin(phase), std::end(phase), 0.0);
    std::vector<double> tps;
    for (int r = 0; r < repetitions; ++r) {
        const auto t0 = bench::Clock::now();
        step();
        tps.push_back(double(B * T) / std::chrono::duration<double>(bench::Clock::now() - t0).count());
    }
    const double forwardS = phase[0] / repetitions, backwardS = phase[1] / repetitions, optimizerS = phase[2] / repetitions;
    const double mb = double(bench::peakTensorBytesAbove(step)) / 1e6;
    int64_t trained = 0;
    for (const auto &p : params)
        trained += p.numel();
    auto [m, sd] = bench::meanSd(tps);
    BenchRow row;
    row.name = std::string("PolyMoE ") + (v.mode == "full" ? "full fine-tuning" : "stage 1 (2 experts top-2, new expert + routers)") +
               ", " + v.dtype + (v.checkpoint ? ", activations checkpointed" : "");
    row.unit = "tokens/s";
    row.mean = m;
    row.sd = sd;
    row.repetitions = repetitions;
    row.extra = {{"trained M params", double(trained) / 1e6}, {"forward s", forwardS}, {"backward s", backwardS},
                 {"optimizer s", optimizerS}, {"step memory MB", mb}};
    return row;
}

} // namespace

BenchReport benchTrainModel(const fs::path &dir, int repetitions, int threads, const std::string &python,
                            int64_t batch, int64_t seqLen)
{
    if (batch < 1 || batch > 4096 || seqLen < 2 || seqLen > 65536 || batch * seqLen > (int64_t(1) << 22))
        throw ConfigError("bench train: batch " + std::to_string(batch) + " x sequence " + std::to_string(seqLen) +
                          " is out of range (at most 4M tokens a step)");
    BenchReport rep;
    const int used = setTrainingThreads(threads);
    keepFreedMemoryForReuse(); // as the trainer does
    rep.machine = machineDescription(used);
    rep.build = std::string("PolyMoE ") + POLYMOE_VERSION + ", LibTorch " + TORCH_VERSION;
    bench::countTensorMemory();
    const ModelConfig cfg = loadModelFolder(dir)->config(); // checks the folder before anything is timed
    rep.title = "Training step of " + dir.filename().string() + " (" + std::to_string(cfg.numLayers) + " layers, d " +
                std::to_string(cfg.hiddenSize) + ", vocab " + std::to_string(cfg.vocabSize) + "), " + std::to_string(batch) +
                " x " + std::to_string(seqLen) + " tokens";
    std::vector<std::string> dtypes = {"fp32"};
    if (resolveDtype("auto", false) == "bf16")
        dtypes.push_back("bf16");
    else
        rep.notes.push_back("This CPU has no AVX-512 BF16 instructions: bf16 is not measured (it would be emulated).");
    std::vector<BenchRow> rows;
    for (const char *mode : {"full", "stage1"}) {
        const BenchRow plain = measureStep(dir, {mode, "fp32"}, batch, seqLen, repetitions);
        rows.push_back(plain);
        for (size_t d = 1; d < dtypes.size(); ++d)
            rows.push_back(measureStep(dir, {mode, dtypes[d]}, batch, seqLen, repetitions));
        // What activation checkpointing saves and costs on this model, against the same step plain
        // (fp32: its figures hold for bf16 alike).
        BenchRow checkpointed = measureStep(dir, {mode, "fp32", true}, batch, seqLen, repetitions);
        const double plainMb = plain.extraValue("step memory MB").value_or(0);
        if (plainMb > 0 && checkpointed.mean > 0) {
            checkpointed.extra.emplace_back("memory x plain", checkpointed.extraValue("step memory MB").value_or(0) / plainMb);
            checkpointed.extra.emplace_back("time x plain", plain.mean / checkpointed.mean);
        }
        rows.push_back(std::move(checkpointed));
    }

    std::map<std::string, double> peer;
    if (python.empty())
        rep.notes.push_back("no transformers peer (--python PY, or .venv from installer/interop-venv.sh)");
    else {
        std::string joined, why;
        for (const auto &dt : dtypes)
            joined += (joined.empty() ? "" : ",") + dt;
        const std::string out = bench::runPythonPeer(
            python, kTransformersPeer,
            {fs::absolute(dir).string(), std::to_string(used), std::to_string(batch), std::to_string(seqLen),
             std::to_string(repetitions), joined},
            "are torch and transformers installed? installer/interop-venv.sh makes .venv with them", why,
            {"LD_LIBRARY_PATH=/usr/local/cuda/lib64", "OMP_NUM_THREADS=" + std::to_string(used), "TRANSFORMERS_OFFLINE=1",
             "HF_HUB_OFFLINE=1", "TRANSFORMERS_VERBOSITY=error"});
        // The report is the peer's last line (anything a library prints before it is skipped).
        std::string last = out;
        while (!last.empty() && last.back() == '\n')
            last.pop_back();
        last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
        const auto j = nlohmann::json::parse(last, nullptr, false);
        if (out.empty())
            rep.notes.push_back(why);
        else if (j.is_discarded() || !j.contains("rows"))
            rep.notes.push_back("the transformers peer's output could not be read");
        else
            for (const auto &r : j["rows"]) {
                const auto tps = r["tokens_per_s"].get<std::vector<double>>();
                auto [m, sd] = bench::meanSd(tps);
                const std::string mode = r.value("mode", ""), dt = r.value("dtype", "");
                peer[mode + " " + dt] = m;
                rows.push_back({"transformers " + j.value("transformers", std::string("?")) + " (torch " +
                                    j.value("torch", std::string("?")) + ") " +
                                    (mode == "full" ? "full fine-tuning" : "FFNs only") + ", " + dt,
                                "tokens/s", m, sd, int(tps.size()), {}});
            }
    }
    // Each PolyMoE row against the peer's nearest step: full against full, stage 1 against FFNs only.
    // A checkpointed row's name ends in ", activations checkpointed", which names no peer step.
    for (auto &r : rows) {
        if (r.name.rfind("PolyMoE ", 0) != 0)
            continue;
        const std::string dt = r.name.substr(r.name.rfind(", ") + 2);
        const std::string key = (r.name.find("full") != std::string::npos ? "full " : "ffn ") + dt;
        if (peer.count(key) && peer[key] > 0)
            r.extra.emplace_back("x transformers", r.mean / peer[key]);
    }
    rep.rows = std::move(rows);
    rep.notes.push_back("Every step, as the trainer runs it: forward and loss (under bf16 autocast for bf16), backward, "
                        "gradients clipped to 1, AdamW (gradients dropped before the next step); weights fp32. x transformers = PolyMoE tokens/s / transformers' for the same dtype; "
                        "stage 1 against transformers training the FFNs only, which does less work (one FFN per layer, "
                        "no router).");
    rep.notes.push_back("step memory MB = the peak of CPU tensor memory during one step above what was alive before it.");
    rep.notes.push_back("activations checkpointed: every decoder layer recomputed in the backward pass "
                        "(--checkpoint-activations); memory x plain and time x plain against the same step without it.");
    return rep;
}

} // namespace polymoe
