// polymoe analyze, allocate, train --stage 1|2: the expansion method (METHOD.md sections 1-6).
#include "cli.h"

#include "polymoe/allocation.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace polymoe::cli {
namespace {

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

int analyze(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    std::string model = a.get("--model");
    if (model.empty()) {
        for (const auto &m : store.models())
            if (m.kind == "base" || m.kind == "imported")
                model = m.name;
        if (model.empty())
            throw UsageError("the project has no base model; give --model NAME or run 'polymoe pretrain'");
    }
    const auto s = analyzeSimilarity(store, model, a.getInt("--tokens", 100000), ctx.progressFn, ctx.stop);
    nlohmann::json j = {{"analysis_id", s.id}, {"model", model}, {"languages", s.languages}, {"tokens", s.tokens}};
    j["layers"] = nlohmann::json::array();
    std::ostringstream os;
    os << "layer similarity of '" << model << "' (analysis " << s.id << ", METHOD.md section 1)\n";
    os << "layer   S_i      new-old  new-new\n";
    char buf[128];
    for (size_t i = 0; i < s.score.size(); ++i) {
        j["layers"].push_back({{"layer", i}, {"score", num(s.score[i])}, {"new_old", num(s.newOld[i])},
                               {"new_new", num(s.newNew[i])}, {"pairs", s.pairs[i]}});
        std::snprintf(buf, sizeof buf, "%5zu  %7.4f  %7.4f  %7s\n", i, s.score[i], s.newOld[i],
                      std::isfinite(s.newNew[i]) ? std::to_string(s.newNew[i]).substr(0, 7).c_str() : "-");
        os << buf;
    }
    ctx.print(j, os.str());
    return kExitOk;
}

int allocate(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    AllocationSpec spec;
    spec.strategy = a.get("--strategy", spec.strategy);
    if (spec.strategy == "manual") {
        if (!a.has("--experts"))
            throw UsageError("--strategy manual needs --experts N0,N1,...");
        spec.experts = parseExpertList(a.get("--experts"));
    } else if (spec.strategy == "layermoe" || spec.strategy == "uniform") {
        if (!a.has("--budget"))
            throw UsageError("--strategy " + spec.strategy + " needs --budget (" +
                             (spec.strategy == "uniform" ? "experts per layer" : "new experts in all") + ")");
        spec.budget = a.getInt32("--budget", 0, 0, 1000000);
    } else {
        throw UsageError("--strategy must be layermoe, uniform or manual");
    }
    if (a.has("--analysis"))
        spec.analysisId = a.getInt("--analysis", 0);
    spec.modelName = a.get("--model");
    spec.name = a.get("--name");
    const auto o = allocateExperts(store, spec);
    nlohmann::json j = {{"allocation_id", o.id}, {"name", o.name}, {"strategy", spec.strategy}, {"experts", o.experts},
                        {"moe_layers", o.moeLayers}, {"total_experts", o.totalExperts}, {"new_experts", o.newExperts},
                        {"added_parameters", o.addedParameters},
                        {"added_active_parameters_per_token", o.addedActiveParametersPerToken}};
    std::ostringstream os;
    os << "allocation '" << o.name << "' (" << o.id << "): experts per layer " << formatExpertList(o.experts) << "\n"
       << "  " << o.newExperts << " new experts in " << o.moeLayers << " MoE layers; " << o.addedParameters
       << " added parameters, " << o.addedActiveParametersPerToken << " more active per token\n";
    if (!o.nonPositiveScoreLayers.empty()) {
        os << "  note: layer score S_i <= 0 in layer(s)";
        for (int l : o.nonPositiveScoreLayers)
            os << " " << l;
        os << "; allocated as the least similar layer (1/S_i is undefined there)\n";
    }
    j["non_positive_score_layers"] = o.nonPositiveScoreLayers;
    ctx.print(j, os.str());
    return kExitOk;
}

int train(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    ExpansionStageSpec spec;
    spec.stage = a.getInt32("--stage", 0);
    if (spec.stage != 1 && spec.stage != 2)
        throw UsageError("--stage must be 1 or 2");
    spec.model = a.get("--model");
    if (spec.model.empty()) {
        // Stage 1 starts from the base; stage 2 from the newest stage-1 model.
        for (const auto &m : store.models())
            if ((spec.stage == 1 && (m.kind == "base" || m.kind == "imported")) ||
                (spec.stage == 2 && m.kind == "expanded" && m.name.rfind("stage1", 0) == 0))
                spec.model = m.name;
        if (spec.model.empty())
            throw UsageError(spec.stage == 1 ? "no base model in the project; give --model"
                                             : "no stage-1 model in the project; run --stage 1 first or give --model");
    }
    if (a.has("--allocation"))
        spec.allocationId = a.getInt("--allocation", 0);
    spec.train.steps = a.getInt("--steps", spec.train.steps);
    spec.train.lr = a.getDouble("--lr", spec.train.lr);
    spec.train.batchSize = a.getInt("--batch-size", spec.train.batchSize);
    spec.train.gradAccum = a.getInt("--grad-accum", spec.train.gradAccum);
    if (a.has("--checkpoint-activations"))
        spec.train.checkpointActivations = true;
    spec.train.seqLen = a.getInt("--seq-len", spec.train.seqLen);
    spec.train.checkpointEvery = a.getInt("--checkpoint-every", spec.train.checkpointEvery);
    spec.train.threads = a.getInt32("--threads", spec.train.threads, 0, 4096);
    spec.train.dtype = a.get("--dtype", spec.train.dtype);
    spec.train.device = a.get("--device", spec.train.device);
    spec.train.seed = uint64_t(a.getInt("--seed", int64_t(spec.train.seed)));
    spec.topK = a.getInt32("--top-k", spec.topK, 1, 1024);
    spec.balanceCoef = a.getDouble("--balance", spec.balanceCoef);
    spec.lprCoef = a.getDouble("--lpr", spec.lprCoef);
    spec.classifier = a.has("--classifier");
    spec.trainNewTokenRows = a.has("--train-new-token-rows");
    if (spec.trainNewTokenRows && spec.stage != 1)
        throw UsageError("--train-new-token-rows is a stage-1 option");
    spec.classifierShare = a.getDouble("--classifier-share", spec.classifierShare);
    spec.oldShare = a.getDouble("--old-share", spec.oldShare);
    spec.replayShare = a.getDouble("--replay", spec.replayShare);
    spec.routerStatsEvery = a.getInt("--stats-every", spec.routerStatsEvery);
    spec.outputName = a.get("--name");
    spec.resume = a.has("--resume");
    const auto o = trainExpansionStage(store, spec, makeTrainStatus(ctx), ctx.progressFn, ctx.stop);
    nlohmann::json j = {{"run_id", o.runId}, {"stage", spec.stage}, {"model", o.modelName}, {"model_dir", o.modelDir.string()},
                        {"experts", o.experts}, {"classifier_layers", o.classifierLayers}, {"steps", o.train.steps},
                        {"tokens", o.train.tokens}, {"seconds", o.train.seconds}, {"final_loss", o.train.finalLoss},
                        {"dtype", o.train.dtype}, {"device", o.train.device}, {"evaluation", perplexityJson(o.evaluation)}};
    std::ostringstream os;
    os << "stage " << spec.stage << ": model '" << o.modelName << "' (run " << o.runId << "), " << o.train.steps
       << " steps, " << o.train.tokens << " tokens, " << int(o.train.seconds) << " s, " << o.train.dtype << " on "
       << o.train.device << "\n";
    if (!o.train.resumeNote.empty()) {
        j["resume_note"] = o.train.resumeNote;
        os << "note: " << o.train.resumeNote << "\n";
    }
    if (spec.stage == 2) {
        j["old_share"] = spec.oldShare;
        j["replay_tokens"] = o.replayTokens;
        j["stage1_tokens"] = o.stage1Tokens;
        os << "  old-language share of sequences " << spec.oldShare << ", replayed old tokens " << o.replayTokens
           << " (" << (o.stage1Tokens ? 100.0 * double(o.replayTokens) / double(o.stage1Tokens) : 0.0)
           << "% of stage 1's " << o.stage1Tokens << ")\n";
    }
    os << "held-out perplexity:\n" << perplexityTable(o.evaluation);
    // Old-language tokens whose top-1 is expert 0, per MoE layer (METHOD.md section 5: should approach 1 after stage 2).
    j["expert0_top1"] = nlohmann::json::object();
    std::vector<std::string> langs;
    for (const auto &r : o.routerStats)
        if (std::find(langs.begin(), langs.end(), r.language) == langs.end())
            langs.push_back(r.language);
    os << "share of tokens whose top-1 is expert 0, per MoE layer:\n";
    for (const auto &l : langs) {
        os << "  " << l << ":";
        for (size_t layer = 0; layer < o.experts.size(); ++layer) {
            if (o.experts[layer] < 2)
                continue;
            const double v = expert0Top1Share(o.routerStats, int(layer), l);
            j["expert0_top1"][l].push_back({{"layer", layer}, {"share", v}});
            char buf[32];
            std::snprintf(buf, sizeof buf, " %.2f", v);
            os << buf;
        }
        os << "\n";
    }
    ctx.print(j, os.str());
    return kExitOk;
}

// The defaults shown in --help and applied when an option is absent are the core specs' own.
const AllocationSpec kAllocation{};
const ExpansionStageSpec kStage{};

Register analyzeCmd({"analyze", "layer similarity of new and old languages (LayerMoE)", "PROJECT [--model NAME] [--tokens N]",
                     "Runs each language's held-out text through the model and compares the FFN inputs layer by layer:\n"
                     "the mean pairwise cosine per language pair, and the layer score S_i (METHOD.md section 1).",
                     {{"--model", "NAME", "model of the project (default: the newest base or imported model)", ""},
                      {"--tokens", "N", "tokens per language", "100000"}},
                     1, 1, true, analyze});
Register allocateCmd({"allocate", "choose how many experts each layer gets", "PROJECT --strategy layermoe|uniform|manual",
                      "layermoe: --budget new experts in all, spread by 1/S_i (METHOD.md section 2); uniform: --budget\n"
                      "experts in every layer (MoE-LPR); manual: --experts N0,N1,... (N_i counts the frozen original).",
                      {{"--strategy", "NAME", "layermoe, uniform or manual", kAllocation.strategy},
                       {"--budget", "N", "layermoe: new experts in all; uniform: experts per layer", ""},
                       {"--experts", "LIST", "manual: experts per layer, e.g. 3,2,2,3", ""},
                       {"--analysis", "ID", "similarity analysis to use (default: the latest)", ""},
                       {"--model", "NAME", "model whose shape the parameters are counted on", ""},
                       {"--name", "NAME", "name of the allocation", ""}},
                      1, 1, true, allocate});
Register trainCmd({"train", "an expansion stage: 1 = new experts and routers on new text, 2 = routers with replay and LPR",
                   "PROJECT --stage 1|2 [--model NAME] [--allocation ID]",
                   "Stage 1 upcycles the model with the allocation and trains new experts and routers on new-language\n"
                   "text (LM + balance loss). Stage 2 trains the routers (and classifiers) on new text with an old-\n"
                   "language replay (LM + LPR loss). Everything else stays frozen. Steps 0 = automatic: one pass\n"
                   "over the new text for stage 1, the replay budget for stage 2. Stage 1 on an expanded model is\n"
                   "lifelong expansion (METHOD.md section 7): the next wave's languages ('corpus add --wave N') are\n"
                   "new, all earlier ones old (for replay, the LPR loss and the classifier's labels alike); the\n"
                   "allocation's N_i - 1 experts join each layer's frozen ones. A layer given no new expert (N_i = 1)\n"
                   "keeps its router and classifier as they are; stage 2 trains that router on with the others.\n"
                   "Data-parallel: 'polymoe launch --nproc N -- train ...', torchrun or srun (README).",
                   {{"--stage", "1|2", "which stage", ""},
                    {"--model", "NAME", "input model (stage 1: the dense base, or an expanded model for the next wave; stage 2: the stage-1 model)", ""},
                    {"--allocation", "ID", "stage 1: the allocation (default: the latest)", ""},
                    {"--steps", "N", "optimiser steps (0: automatic)", ""},
                    {"--lr", "LR", "peak learning rate (default 1e-3 stage 1, 1e-2 stage 2)", ""},
                    {"--batch-size", "N", "sequences per micro-batch and process", fmtDefault(kStage.train.batchSize)},
                    {"--grad-accum", "K", "micro-batches summed per step (a step: processes x K x batch)", fmtDefault(kStage.train.gradAccum)},
                    {"--seq-len", "N", "tokens per sequence", fmtDefault(kStage.train.seqLen)},
                    {"--checkpoint-activations", "", "recompute each decoder layer in the backward pass: less memory, one more forward", ""},
                    {"--top-k", "K", "experts per token", fmtDefault(kStage.topK)},
                    {"--balance", "C", "stage 1: balance-loss coefficient", fmtDefault(kStage.balanceCoef)},
                    {"--train-new-token-rows", "", "stage 1, beyond the papers: also train the embedding and LM-head rows of tokens found (almost) only in new-language text", ""},
                    {"--lpr", "C", "stage 2: language-priors loss coefficient", fmtDefault(kStage.lprCoef)},
                    {"--classifier", "", "stage 2: train the old/new classifier in the most similar layers", ""},
                    {"--classifier-share", "F", "share of MoE layers that get the classifier", fmtDefault(kStage.classifierShare)},
                    {"--old-share", "F", "stage 2: share of sequences of old-language text", fmtDefault(kStage.oldShare)},
                    {"--replay", "F", "stage 2: replayed old tokens as a share of stage-1 tokens", fmtDefault(kStage.replayShare)},
                    {"--stats-every", "N", "steps between router statistics", fmtDefault(kStage.routerStatsEvery)},
                    {"--checkpoint-every", "N", "steps between checkpoints", fmtDefault(kStage.train.checkpointEvery)},
                    {"--dtype", "TYPE", "auto, fp32 or bf16", kStage.train.dtype},
                    {"--threads", "N", "intra-op threads (0: all cores)", fmtDefault(kStage.train.threads)},
                    {"--device", "NAME", "cpu, cuda (needs a CUDA LibTorch) or auto (cuda when a GPU is visible)", kStage.train.device},
                    {"--seed", "N", "data-order seed", fmtDefault(kStage.train.seed)},
                    {"--name", "NAME", "name of the resulting model", ""},
                    {"--resume", "", "continue the last unfinished run of this stage (by itself after a torchrun restart)", ""}},
                   1, 1, true, train, /*dataParallel=*/true});

} // namespace
} // namespace polymoe::cli
