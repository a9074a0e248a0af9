// Benchmarks as commands (llama-bench style): each measures against a peer in the same run and
// returns rows with mean and standard deviation, for Markdown and JSON output.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace polymoe {

struct BenchRow {
    std::string name;       // "train step fp32"
    std::string unit;       // "tokens/s"
    double mean = 0, sd = 0;
    int repetitions = 0;
    std::vector<std::pair<std::string, double>> extra; // ("fraction of mm rate", 0.41), ...

    // The extra column named `key`, if this row has one.
    std::optional<double> extraValue(const std::string &key) const
    {
        for (const auto &[k, v] : extra)
            if (k == key)
                return v;
        return std::nullopt;
    }
};

struct BenchReport {
    std::string title;
    std::string machine;  // CPU model, cores, threads used
    std::string build;    // PolyMoE and LibTorch versions
    std::vector<BenchRow> rows;
    std::vector<std::string> notes;
    std::string markdown() const;
    std::string json() const;
};

// A training step (forward, backward, AdamW) of the demo base model (METHOD.md section 9 shape:
// d 256, 4 layers, ffn 688, vocab 8000, 16 x 128 tokens), in fp32 and, where the CPU has bf16
// instructions, bf16 autocast; with the FLOP rate of a large matmul of the same dtype.
BenchReport benchTrainStep(int repetitions, int threads);
// The plain fp32 step of benchTrainStep as one rank of a data-parallel run (`bench train --nproc N`
// starts the ranks): the same 16 x 128 global batch split over the ranks, gradients summed over
// c10d each step. Tokens/s of the whole batch, and the milliseconds of the gradient sums.
BenchReport benchTrainDataParallel(int repetitions, int threads);

// A training step of an imported model folder (config.json and safetensors, as `model import` takes)
// on batch x seqLen random tokens: full fine-tuning and stage 1 (one new expert beside the frozen
// original in every layer, top-2, new experts and routers trained), fp32 and, where the CPU has bf16
// instructions, bf16 autocast; beside, when `python` is not empty, transformers (PyPI torch) doing
// full fine-tuning and FFN-only training of the same folder in the same run, with the ratios.
BenchReport benchTrainModel(const std::filesystem::path &dir, int repetitions, int threads, const std::string &python,
                            int64_t batch = 4, int64_t seqLen = 256);

// One MoE block's forward + backward (METHOD.md section 3) at the demo shape and a larger one:
// grouped dispatch against the per-expert-mask loop, with the share of a dense at::mm's FLOP rate
// that each reaches, measured in the same run (bench_moe.h has the details). dtype: "float32",
// "bfloat16" or "float16"; device "cpu" or "cuda".
BenchReport benchMoeBlock(int repetitions, int threads, const std::string &dtype = "float32",
                          const std::string &device = "cpu");

// Encoding speed (MB/s of UTF-8 text) of a tokenizer.json with PolyMoE's reader, each non-empty line of
// the text files encoded on its own, beside the Python tokenizers library on the same lines (one
// thread), run by `python` when it is not empty; the token counts of both are compared.
BenchReport benchTokenize(const std::filesystem::path &tokenizerJson, const std::vector<std::filesystem::path> &texts,
                          int repetitions, const std::string &python);

std::string machineDescription(int threads);

} // namespace polymoe
