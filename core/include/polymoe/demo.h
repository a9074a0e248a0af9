// The demo (METHOD.md section 9) and the baseline comparison of section 8, as core jobs that any
// front end runs: `polymoe demo` and `polymoe bench expansion` parse options and print, the tests
// and the workbench call them directly. Every step reuses its output when the project has it (a
// model of that name, an analysis of the base, an allocation of that strategy and budget) and
// resumes an unfinished run, so an interrupted job continues where it stopped. The languages are
// the profile's: any installed Debian fortunes-LL / manpages-LL language can be old or new.
#pragma once

#include "polymoe/allocation.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/forgetting_report.h"
#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "polymoe/training.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

// The settings of a profile. standard follows METHOD.md section 9's recipe: full fine-tuning and
// stage 1 on about 1M new-language tokens each (lr 1e-3), stage 2 on 0.43M tokens with half the
// sequences old-language replay (routers only, lr 1e-2, LPR 0.1, no classifier). The budget is
// section 9's: 8 new experts (uniform: 3 experts in each of the 4 layers).
// smollm2 expands a real pretrained model instead of a base trained here: SmolLM2-135M (fetched by
// installer/fetch-smollm2.sh), its own tokenizer.json, old = en, new = de, ru, with every baseline
// (fine-tuning with and without replay, uniform MoE-LPR and LayerMoE with 40% of its new experts).
struct DemoProfile {
    std::string name;                  // "tiny" / "standard" / "smollm2"
    std::string baseRecipe;            // resources/demo/<name>.json (training settings; the shape without a pretrained model)
    int64_t characters = 0;            // per language in the corpus (0: the corpus default)
    int vocabSize = 8000;              // SentencePiece unigram (not for a pretrained model: its own tokenizer)
    int64_t similarityTokens = 100000; // per language (section 1)
    int newExperts = 8;                // new experts in all (uniform: spread evenly over the layers)
    int64_t finetuneSteps = 500;       // full fine-tuning baseline; batch x sequence of the base recipe
    int64_t stage1Steps = 500;
    int64_t stage2Steps = 210;
    double stage2OldShare = 0.5;       // section 9: the demo replays half the stage-2 sequences
    int64_t statsEvery = 25;           // steps between router statistics on the probe set
    std::vector<std::string> languages{"en", "es", "de", "ru"};
    std::vector<std::string> oldLanguages{"en", "es"};
    std::string pretrained{};          // a Hugging Face model folder to expand ("": train a base here)
    // Training settings (0: the base recipe's).
    int64_t batchSize = 0, seqLen = 0, evalTokens = 0, checkpointEvery = 100;
    std::string dtype{};               // "": the base recipe's (fp32, as calibrated); "auto": bf16 where the CPU has it
    double finetuneLr = 1e-3, stage1Lr = 1e-3, stage2Lr = 1e-2;
    bool allBaselines = false;         // fine-tuning with replay, and both allocations, in 'polymoe demo'
    int64_t sampleTokens = 24;         // generation samples: new tokens per prompt
    // The out-of-domain probe of the first old language: Debian's licence texts (base-files, on every
    // Debian machine), legal prose unlike the corpus's fortunes and manuals. Empty folder: no probe.
    std::string probeName = "licenses";
    std::filesystem::path probeFolder = "/usr/share/common-licenses";
};
// The profiles' names: tiny, standard, smollm2.
const std::vector<std::string> &demoProfileNames();
// Throws ConfigError for a name not in demoProfileNames(), or a `pretrained` folder for a profile
// that trains its own base. smollm2's model folder is `pretrained` (default models/smollm2-135m);
// smoke shrinks every step to a few sequences (a check of the pipeline, not a result).
DemoProfile demoProfile(const std::string &name, const std::string &pretrained = {}, bool smoke = false);

// The generation-sample prompts of a profile's languages: the same few sentences in each language.
std::vector<SamplePrompt> demoSamplePrompts(const std::vector<std::string> &languages);

// A demo project with its corpus, tokenizer, shards, base model and the base's layer similarity.
struct DemoProject {
    DemoProfile profile;
    std::filesystem::path path;
    ProjectStore store;
    Recipe baseRecipe;
    ModelRecord base;
    int64_t analysisId = 0;
};

// How a demo job reports and stops: one line per step, the core jobs' progress and training status,
// and the stop request every job checks.
struct DemoIo {
    std::function<void(const std::string &)> say; // "step 3/10: ...\n"; empty: silent
    ProgressFn progress{};
    TrainStatusFn trainStatus{};
    std::stop_token stop{};
};

class DemoSteps {
public:
    // totalSteps counts the steps the caller will announce.
    DemoSteps(DemoIo io, int totalSteps);

    DemoProject prepare(const DemoProfile &profile, const std::filesystem::path &outDir);
    // An allocation of `strategy` with `newExperts` new experts in all, on the project's analysis.
    AllocationRecord allocation(DemoProject &p, const std::string &strategy, int newExperts, const std::string &name = {});
    // LayerMoE with 40% of `uniform`'s new experts (at least one): the comparison of the papers'
    // "about 60% fewer experts".
    AllocationRecord layerMoeAt40Percent(DemoProject &p, const AllocationRecord &uniform, const std::string &name = {});
    // Full fine-tuning of the base: `weights` empty = new languages only.
    void finetune(DemoProject &p, const std::string &name, int64_t steps, const std::map<std::string, double> &weights = {});
    // Stage 1 on `alloc` (model s1Name), then stage 2 (model s2Name) unless s2Name is empty.
    // trainNewTokenRows: stage 1 also trains the new-language tokens' rows (ExpansionStageSpec).
    void stages(DemoProject &p, const AllocationRecord &alloc, const std::string &s1Name, const std::string &s2Name,
                bool trainNewTokenRows = false);
    // Greedy generation samples of the profile's prompts for each model that has none yet.
    void samples(DemoProject &p, const std::vector<std::string> &models);
    // The profile's out-of-domain probe for each model that has no evaluation of it yet.
    void probes(DemoProject &p, const std::vector<std::string> &models);

    void step(const std::string &what);
    // The training steps the caller will run in all (every fine-tuning and stage run): from the second
    // trained run on, each step line adds the time the rest of them will take at the rate seen so far.
    void planTrainingSteps(int64_t steps) { m_plannedSteps = steps; }
    // Language weights with `oldShare` of the sequences old-language replay (split evenly).
    static std::map<std::string, double> replayWeights(const DemoProject &p, double oldShare);

private:
    TrainConfig trainSettings(const DemoProject &p, int64_t steps, double lr) const;

    void say(const std::string &line) const
    {
        if (m_io.say)
            m_io.say(line);
    }

    DemoIo m_io;
    // One run's steps are done: trained now (taking `seconds`), or reused from an earlier demo run.
    void trainingDone(int64_t steps, double seconds, bool reused);

    int m_total = 0, m_done = 0;
    int64_t m_plannedSteps = 0, m_trainedSteps = 0, m_reusedSteps = 0;
    double m_trainSeconds = 0;
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
};

// ---------------------------------------------------------------------------------------------
// The whole demo: prepare, the allocation(s), the fine-tuning baseline(s), stages 1 and 2, the
// Hugging Face export of the stage-2 model, generation samples, the probe and the report.

struct DemoOptions {
    std::filesystem::path outDir = "polymoe-demo"; // the project is outDir/demo-PROFILE.polymoe
    std::string strategy = "layermoe";             // the allocation exported and shown: layermoe or uniform
    bool baseline = true;                          // the full fine-tuning baseline(s)
};

struct DemoOutcome {
    std::filesystem::path project;
    int64_t analysisId = 0;
    AllocationRecord allocation;                   // of the chosen strategy
    std::vector<std::filesystem::path> exported;   // Hugging Face folders (polymoe, then mixtral)
    std::string mixtralNote;                       // why there is no stock Mixtral folder, if there is none
    ForgettingReport report;                       // against "base"
};

// The number of steps runDemo announces for these options (the caller's step counter).
int demoStepCount(const DemoProfile &profile, const DemoOptions &options);
// Throws ConfigError for a strategy other than layermoe or uniform.
DemoOutcome runDemo(const DemoProfile &profile, const DemoOptions &options, const DemoIo &io);

// ---------------------------------------------------------------------------------------------
// The baselines of METHOD.md section 8 on the demo, on the same data and token budget: S1 + S2 steps
// (stage 1 + stage 2 of the profile) for every method. Full fine-tuning sees new-language text only;
// with replay it sees the same old-language share as the MoE runs' stage 2 spread over the whole run.

struct BaselineMethod {
    std::string label, model;            // a row of the table, and the model it scores
    std::vector<std::string> runModels;  // the models whose training time adds up to the method's
    double oldRatio = 0, newRatio = 0;   // geometric means of the perplexity ratios to the base
    // log(newRatio) / log(full fine-tuning's newRatio): the share of fine-tuning's new-language gain
    // (log perplexity, so that gains add up); oldCost = log(oldRatio), 0 = no forgetting.
    double shareOfFinetuningGain = 0, oldCost = 0;
    std::map<std::string, double> perplexity; // per language
    int64_t addedParameters = 0;
    int64_t trainedRowParameters = 0;    // new-language token rows trained beyond the papers (stage 1)
    double seconds = 0;                  // wall time of the method's runs
};

struct BaselineComparison {
    std::string profile, project, machine;
    std::vector<std::string> languages, oldLanguages; // old first
    int64_t stage1Steps = 0, stage2Steps = 0, batchSize = 0, seqLen = 0;
    double stage2OldShare = 0;
    std::map<std::string, double> basePerplexity;
    std::vector<BaselineMethod> methods; // the first is full fine-tuning on new text
};

BaselineComparison runBaselineComparison(const DemoProfile &profile, const std::filesystem::path &projectDir,
                                         const DemoIo &io);
// Fills each method's scores (label, model and runModels set) from a report of its models and the
// project's runs; the first method is the fine-tuning that the shares are of. Throws ConfigError for
// a model the report lacks.
void scoreBaselines(BaselineComparison &c, const ForgettingReport &report, const std::vector<RunRecord> &runs);
std::string baselineComparisonMarkdown(const BaselineComparison &c);
std::string baselineComparisonJson(const BaselineComparison &c);

} // namespace polymoe
