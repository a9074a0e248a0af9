// polymoe pretrain, eval, generate, model import|info, bench train
#include "cli.h"

#include "polymoe/dense_jobs.h"
#include "polymoe/error.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace polymoe::cli {

// Prints training status: a bar on stderr, a line every few seconds, or JSON lines on stdout.
TrainStatusFn makeTrainStatus(const Context &ctx)
{
    if (ctx.progress == "none")
        return {};
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    const std::string mode = ctx.progress;
    return [mode, last](const TrainStatus &s) {
        const auto now = std::chrono::steady_clock::now();
        const bool end = s.step == s.totalSteps;
        const auto gap = mode == "plain" ? std::chrono::milliseconds(5000) : std::chrono::milliseconds(100);
        if (!end && now - *last < gap)
            return;
        *last = now;
        if (mode == "json") {
            namespace ev = event;
            nlohmann::json j = {{ev::kEvent, ev::kTrain},         {ev::kKind, s.kind},
                                {ev::kStep, s.step},              {ev::kTotal, s.totalSteps},
                                {ev::kLoss, s.loss},              {ev::kLr, s.lr},
                                {ev::kTokensPerSecond, s.tokensPerSecond}, {ev::kElapsedSeconds, s.elapsedSeconds},
                                {ev::kEtaSeconds, s.etaSeconds},  {ev::kMetrics, s.metrics}};
            std::cout << j.dump() << std::endl;
            return;
        }
        char buf[256];
        const double frac = s.totalSteps ? double(s.step) / double(s.totalSteps) : 0;
        std::string bar;
        if (mode == "bar") {
            const int width = 20, fill = int(frac * width + 0.5);
            bar = "[" + std::string(size_t(fill), '#') + std::string(size_t(width - fill), '.') + "] ";
        }
        std::snprintf(buf, sizeof buf, "%s %s%lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %dm%02ds", s.kind.c_str(),
                      bar.c_str(), (long long)s.step, (long long)s.totalSteps, s.loss, s.lr, s.tokensPerSecond,
                      int(s.etaSeconds) / 60, int(s.etaSeconds) % 60);
        std::string line = buf;
        for (const auto &[k, v] : s.metrics) {
            std::snprintf(buf, sizeof buf, " %s %.4f", k.c_str(), v);
            line += buf;
        }
        if (mode == "bar")
            std::cerr << "\r\033[K" << line << (end ? "\n" : "") << std::flush;
        else
            std::cerr << line << "\n";
    };
}

std::string perplexityTable(const std::vector<PerplexityRow> &rows)
{
    std::ostringstream os;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-8s %-5s %10s %9s %11s  %-21s %9s %6s %6s\n", "language", "group", "tokens", "loss",
                  "perplexity", "95% interval", "documents", "bits/c", "bits/B");
    os << buf;
    for (const auto &r : rows) {
        if (r.tokens == 0) {
            std::snprintf(buf, sizeof buf, "%-8s %-5s %10s  no held-out text to score\n", r.language.c_str(), r.group.c_str(), "0");
            os << buf;
            continue;
        }
        char ci[64] = "-";
        if (std::isfinite(r.perplexityLow) && std::isfinite(r.perplexityHigh))
            std::snprintf(ci, sizeof ci, "%.2f - %.2f", r.perplexityLow, r.perplexityHigh);
        std::snprintf(buf, sizeof buf, "%-8s %-5s %10lld %9.4f %11.2f  %-21s %9lld %6.3f %6.3f\n", r.language.c_str(),
                      r.group.c_str(), (long long)r.tokens, r.loss, r.perplexity, ci, (long long)r.documents,
                      bitsPerUnit(r.loss, r.tokens, r.characters), bitsPerUnit(r.loss, r.tokens, r.bytes));
        os << buf;
    }
    os << "(95% interval: a bootstrap over the held-out documents, i.e. how much the figure depends on which\n"
          " documents were held out; bits/c, bits/B: bits per character and per UTF-8 byte of the scored text,\n"
          " comparable across languages and tokenizers, unlike per-token perplexity)\n";
    return os.str();
}

nlohmann::json perplexityJson(const std::vector<PerplexityRow> &rows)
{
    nlohmann::json j = nlohmann::json::array();
    const auto finite = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
    for (const auto &r : rows)
        j.push_back({{"language", r.language}, {"group", r.group}, {"tokens", r.tokens}, {"loss", r.loss},
                     {"perplexity", r.perplexity}, {"documents", r.documents},
                     {"perplexity_low", finite(r.perplexityLow)}, {"perplexity_high", finite(r.perplexityHigh)},
                     {"characters", r.characters}, {"bytes", r.bytes},
                     {"bits_per_character", finite(bitsPerUnit(r.loss, r.tokens, r.characters))},
                     {"bits_per_byte", finite(bitsPerUnit(r.loss, r.tokens, r.bytes))}});
    return j;
}

namespace {

// Applies command-line overrides of the common training settings to a recipe.
void applyTrainOverrides(const Args &a, TrainConfig &t)
{
    t.steps = a.getInt("--steps", t.steps);
    t.lr = a.getDouble("--lr", t.lr);
    t.batchSize = a.getInt("--batch-size", t.batchSize);
    t.gradAccum = a.getInt("--grad-accum", t.gradAccum);
    if (a.has("--checkpoint-activations"))
        t.checkpointActivations = true;
    t.seqLen = a.getInt("--seq-len", t.seqLen);
    t.warmupSteps = a.getInt("--warmup", t.warmupSteps);
    t.checkpointEvery = a.getInt("--checkpoint-every", t.checkpointEvery);
    t.seed = uint64_t(a.getInt("--seed", int64_t(t.seed)));
    t.threads = a.getInt32("--threads", t.threads, 0, 4096);
    if (a.has("--dtype"))
        t.dtype = a.get("--dtype");
    if (a.has("--device"))
        t.device = a.get("--device");
    if (a.has("--weights")) {
        t.languageWeights.clear();
        for (const auto &item : a.getList("--weights")) {
            const auto eq = item.find('=');
            if (eq == std::string::npos)
                throw UsageError("--weights expects CODE=WEIGHT,..., not '" + item + "'");
            t.languageWeights[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
        }
    }
}

// The defaults shown in --help and applied when an option is absent are the core specs' own.
const TrainConfig kTrain{};
const GenerateOptions kGenerate{};

const std::vector<OptionSpec> kTrainOptions = {
    {"--recipe", "FILE", "recipe JSON (model shape and training settings)", "demo-base"},
    {"--init", "DIR", "start from this model folder (continued pre-training = full fine-tuning)", ""},
    {"--init-model", "NAME", "start from a model of the project", ""},
    {"--name", "NAME", "name of the resulting model in the project", ""},
    {"--resume", "", "continue the last unfinished run of this kind from its checkpoint (by itself after a torchrun restart)", ""},
    {"--steps", "N", "optimiser steps", ""},
    {"--lr", "LR", "peak learning rate", ""},
    {"--batch-size", "N", "sequences per micro-batch and process", ""},
    {"--grad-accum", "K", "micro-batches summed per step (a step: processes x K x batch)", ""},
    {"--seq-len", "N", "tokens per sequence", ""},
    {"--checkpoint-activations", "", "recompute each decoder layer in the backward pass: less memory, one more forward", ""},
    {"--warmup", "N", "warm-up steps", ""},
    {"--checkpoint-every", "N", "steps between checkpoints", ""},
    {"--weights", "LIST", "language mixing weights, e.g. en=0.475,es=0.475,de=0.025,ru=0.025", ""},
    {"--dtype", "TYPE", "auto, fp32 or bf16", ""},
    {"--threads", "N", "intra-op threads (0: all cores)", ""},
    {"--device", "NAME", "cpu, cuda (needs a CUDA LibTorch) or auto (cuda when a GPU is visible)", kTrain.device},
    {"--seed", "N", "initialisation and data-order seed", ""},
};

int pretrain(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    const std::string r = a.get("--recipe", "demo-base");
    DenseTrainSpec spec;
    spec.recipe = readRecipe(r.find('/') == std::string::npos && r.find(".json") == std::string::npos ? builtinRecipe(r)
                                                                                                      : std::filesystem::path(r));
    applyTrainOverrides(a, spec.recipe.train);
    if (a.has("--init"))
        spec.init = a.get("--init");
    if (a.has("--init-model"))
        spec.initModel = a.get("--init-model");
    spec.outputName = a.get("--name");
    spec.resume = a.has("--resume");
    const auto out = trainDenseModel(store, spec, makeTrainStatus(ctx), ctx.progressFn, ctx.stop);
    nlohmann::json j = {{"run_id", out.train.runId}, {"model", out.modelName}, {"model_dir", out.modelDir.string()},
                        {"steps", out.train.steps}, {"tokens", out.train.tokens}, {"seconds", out.train.seconds},
                        {"final_loss", out.train.finalLoss}, {"dtype", out.train.dtype}, {"threads", out.train.threads},
                        {"device", out.train.device}, {"evaluation", perplexityJson(out.evaluation)}};
    char buf[256];
    std::snprintf(buf, sizeof buf, "trained model '%s' (run %lld): %lld steps, %lld tokens, %.0f s, %s on %s (%d threads), final loss %.4f\n",
                  out.modelName.c_str(), (long long)out.train.runId, (long long)out.train.steps,
                  (long long)out.train.tokens, out.train.seconds, out.train.dtype.c_str(), out.train.device.c_str(),
                  out.train.threads,
                  out.train.finalLoss);
    std::string note;
    if (!out.train.resumeNote.empty()) {
        j["resume_note"] = out.train.resumeNote;
        note = "note: " + out.train.resumeNote + "\n";
    }
    ctx.print(j, std::string(buf) + note + "saved to " + out.modelDir.string() + "\nheld-out perplexity:\n" +
                     perplexityTable(out.evaluation));
    return kExitOk;
}

// --model, by default the project's newest model; `none` is the message when it has none.
std::string modelOrNewest(const Args &a, const ProjectStore &store, const std::string &none)
{
    std::string model = a.get("--model");
    if (model.empty()) {
        const auto models = store.models();
        if (models.empty())
            throw UsageError(none);
        model = models.back().name;
    }
    return model;
}

int eval(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    const std::string model =
        modelOrNewest(a, store, "the project has no model yet; give --model DIR or run 'polymoe pretrain'");
    if (a.has("--probe")) {
        // An out-of-domain probe: the files' text scored as one language's held-out text.
        if (!a.has("--text") || !a.has("--language"))
            throw UsageError("--probe NAME needs --text FILES and --language CODE");
        std::vector<std::filesystem::path> files;
        for (const auto &f : a.getList("--text"))
            files.emplace_back(f);
        const auto rows = evaluateProbe(store, model, a.get("--probe"), a.get("--language"), files,
                                        a.getInt("--tokens", kTrain.evalTokens), ctx.progressFn, ctx.stop,
                                        a.getInt("--seq-len", 0));
        ctx.print({{"model", model}, {"probe", a.get("--probe")}, {"evaluation", perplexityJson(rows)}},
                  "perplexity of " + model + " on probe '" + a.get("--probe") + "':\n" + perplexityTable(rows));
        return kExitOk;
    }
    if (a.has("--text") || a.has("--language"))
        throw UsageError("--text and --language go with --probe NAME");
    const auto rows = evaluateModel(store, model, a.getInt("--tokens", kTrain.evalTokens), ctx.progressFn, ctx.stop,
                                    a.getInt("--seq-len", 0));
    ctx.print({{"model", model}, {"evaluation", perplexityJson(rows)}},
              "held-out perplexity of " + model + ":\n" + perplexityTable(rows));
    return kExitOk;
}

int generateCmd(const Args &a, Context &ctx)
{
    GenerateOptions o;
    o.maxNewTokens = a.getInt("--max-tokens", o.maxNewTokens);
    o.temperature = a.getDouble("--temperature", o.temperature);
    o.topK = a.getInt("--top-k", o.topK);
    o.seed = uint64_t(a.getInt("--seed", int64_t(o.seed)));
    o.stop = ctx.stop;
    std::string prompt;
    for (size_t i = 1; i < a.positionals.size(); ++i)
        prompt += (i > 1 ? " " : "") + a.positionals[i];
    const std::string text = generateText(a.positionals[0], prompt, o);
    ctx.print({{"prompt", prompt}, {"completion", text}}, prompt + text + "\n");
    return kExitOk;
}

int modelImport(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    const std::filesystem::path dir = a.positionals[1];
    nlohmann::json j;
    std::string text;
    // The folder's tokenizer (tokenizer.json first, else tokenizer.model) becomes the project's, and
    // the corpora are tokenized with it, unless told otherwise. The config is checked first, so a
    // folder that is no model leaves the project's tokenizer alone.
    if (!std::filesystem::is_regular_file(dir / "config.json"))
        throw ConfigError(dir.string() + ": no config.json: not a Hugging Face model folder");
    const bool hasTokenizer = std::filesystem::exists(dir / "tokenizer.json") || std::filesystem::exists(dir / "tokenizer.model");
    if (hasTokenizer && !a.has("--no-tokenizer")) {
        const auto t = importTokenizer(store, dir);
        j["tokenizer"] = {{"id", t.id}, {"backend", t.backend}, {"vocab_size", t.vocabSize}, {"source", t.source}};
        text += "tokenizer " + std::to_string(t.id) + " (" + t.backend + "): " + std::to_string(t.vocabSize) +
                " pieces from " + t.source + "\n";
        if (!a.has("--no-tokenize")) {
            const auto shards = tokenizeProject(store, false, ctx.progressFn, ctx.stop);
            int64_t tokens = 0;
            for (const auto &sh : shards)
                tokens += sh.tokens;
            j["shard_tokens"] = tokens;
            text += "corpora tokenized: " + std::to_string(tokens) + " tokens in " + std::to_string(shards.size()) + " shards\n";
        }
    }
    const auto rec = importModelFolder(store, dir, a.get("--name"));
    j["model"] = rec.name;
    j["id"] = rec.id;
    j["parameters"] = rec.parameters;
    j["path"] = rec.path;
    text += "imported '" + rec.name + "' (" + std::to_string(rec.parameters) + " parameters) from " + rec.path + "\n";
    ctx.print(j, text);
    return kExitOk;
}

int modelRows(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0], /*readOnly=*/true);
    const std::string model = modelOrNewest(a, store, "the project has no model yet");
    const auto rows = tokenRowStatistics(store, model);
    nlohmann::json j = {{"model", model}, {"groups", nlohmann::json::array()}};
    std::ostringstream os;
    os << "token rows of '" << model << "' (median L2 norm of each group's rows)\n";
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-26s %8s %10s %10s\n", "group", "tokens", "embedding", "LM head");
    os << buf;
    for (const auto &g : rows) {
        std::snprintf(buf, sizeof buf, "  %-26s %8lld %10.3f %10.3f\n", g.group.c_str(), static_cast<long long>(g.tokens),
                      g.medianEmbeddingNorm, g.medianHeadNorm);
        os << buf;
        nlohmann::json row = {{"group", g.group}, {"tokens", g.tokens}};
        if (std::isfinite(g.medianEmbeddingNorm))
            row["median_embedding_norm"] = g.medianEmbeddingNorm;
        if (std::isfinite(g.medianHeadNorm))
            row["median_head_norm"] = g.medianHeadNorm;
        j["groups"].push_back(row);
    }
    ctx.print(j, os.str());
    return kExitOk;
}

int modelInfo(const Args &a, Context &ctx)
{
    const auto j = nlohmann::json::parse(describeModelFolder(a.positionals[0]));
    std::ostringstream os;
    const auto &c = j["config"];
    os << j["folder"].get<std::string>() << "\n  " << c["model_type"].get<std::string>() << ": "
       << c["num_hidden_layers"] << " layers, d_model " << c["hidden_size"] << ", d_ffn " << c["intermediate_size"]
       << ", heads " << c["num_attention_heads"] << "/" << c["num_key_value_heads"] << ", vocabulary "
       << c["vocab_size"] << "\n  parameters: " << j["parameters"] << " in " << j["tensors"] << " tensors "
       << j["dtypes"].dump() << "\n  tokenizer: " << (j["has_tokenizer"].get<bool>() ? j["tokenizer_file"].get<std::string>() : std::string("none")) << "\n";
    ctx.print(j, os.str());
    return kExitOk;
}

Register pretrainCmd({"pretrain", "train a dense base model on the project's text (or fine-tune one with --init)",
                      "PROJECT [--recipe FILE|demo-base|demo-base-tiny] [--init DIR] [--resume]",
                      "Without --init: a new model from the recipe, on the old languages plus the recipe's share of\n"
                      "new-language text (METHOD.md section 9). With --init/--init-model: continued pre-training of\n"
                      "that model on the new languages (the full fine-tuning baseline). The model is saved in the\n"
                      "project's data folder as a Hugging Face folder, then evaluated on held-out text. Ctrl-C stops\n"
                      "at the next step and keeps a checkpoint; --resume continues it exactly. Data-parallel:\n"
                      "'polymoe launch --nproc N -- pretrain ...', torchrun or srun (README).",
                      kTrainOptions, 1, 1, true, pretrain, /*dataParallel=*/true});
Register evalCmd({"eval", "held-out perplexity per language", "PROJECT [--model NAME|DIR]",
                  "Mean next-token cross-entropy on each language's held-out documents, as perplexity, with a\n"
                  "95% interval from a bootstrap over those documents (1,000 resamples): how much the figure\n"
                  "depends on which documents were held out. Recorded in the project for its own models.\n"
                  "With --probe NAME --text FILES --language CODE: the same on text from outside the corpus (an\n"
                  "out-of-domain probe, cut into documents at blank lines), recorded as probe NAME; the\n"
                  "forgetting report shows every probe beside the held-out table.",
                  {{"--model", "NAME|DIR", "a model of the project or a folder (default: the newest model)", ""},
                   {"--probe", "NAME", "score an out-of-domain probe of that name instead", ""},
                   {"--text", "FILES", "the probe's text files, comma-separated", ""},
                   {"--language", "CODE", "the project language the probe's text is in", ""},
                   {"--tokens", "N", "held-out tokens per language (0: all)", fmtDefault(kTrain.evalTokens)},
                   {"--seq-len", "N", "tokens per evaluated sequence (0: as the model was trained, else 128)", "0"}},
                  1, 1, true, eval});
Register generateCmdReg({"generate", "sample a continuation of a prompt", "MODEL_DIR PROMPT...", "",
                         {{"--max-tokens", "N", "new tokens at most", fmtDefault(kGenerate.maxNewTokens)},
                          {"--temperature", "T", "sampling temperature (0: greedy)", fmtDefault(kGenerate.temperature)},
                          {"--top-k", "K", "sample among the K likeliest tokens (0: all)", fmtDefault(kGenerate.topK)},
                          {"--seed", "N", "sampling seed", fmtDefault(kGenerate.seed)}},
                         2, -1, true, generateCmd});
Register importCmd({"model import", "add an existing Hugging Face model folder to the project", "PROJECT DIR",
                    "DIR: config.json and *.safetensors of a dense Llama, Mistral or Qwen2 model (fp32, bf16 or fp16).\n"
                    "Its tokenizer (tokenizer.json, else tokenizer.model) becomes the project's tokenizer and the\n"
                    "corpora are tokenized with it, as 'tokenizer import' does (--no-tokenizer keeps the current one).",
                    {{"--name", "NAME", "model name in the project", ""},
                     {"--no-tokenizer", "", "do not import the folder's tokenizer", ""},
                     {"--no-tokenize", "", "import the tokenizer but do not write token shards", ""}},
                    2, 2, true, modelImport});
Register rowsCmd({"model rows", "the embedding and LM-head rows of new-language, old-language and shared tokens",
                  "PROJECT [--model NAME]",
                  "New-language tokens: those whose frequency in the old languages' training text is at most 1%\n"
                  "of their combined frequency (the rule of 'train --stage 1 --train-new-token-rows'); old-language\n"
                  "tokens: the same rule with the groups swapped. Stages 1 and 2 keep these rows frozen, so a\n"
                  "base whose new-language rows stayed small limits what the new experts can learn.",
                  {{"--model", "NAME", "a model of the project (default: the newest)", ""}}, 1, 1, true, modelRows});
Register infoCmd({"model info", "describe a model folder (config, parameters, tensors)", "DIR", "", {}, 1, 1, true,
                  modelInfo});

} // namespace
} // namespace polymoe::cli
