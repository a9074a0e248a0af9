// The demo's steps as reusable pieces, shared by 'polymoe demo' and 'polymoe bench expansion': each
// step reuses its output when the project has it (a model of that name, an analysis of the base, an
// allocation of that strategy and budget) and resumes an unfinished run, so an interrupted command
// continues where it stopped.
#pragma once

#include "cli.h"

#include "polymoe/dense_jobs.h"
#include "polymoe/project_store.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace polymoe::cli {

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
// Throws UsageError for a name other than tiny, standard or smollm2. smollm2's model folder is
// `pretrained` (default models/smollm2-135m); smoke shrinks every step to a few sequences (a check
// of the pipeline, not a result).
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

class DemoSteps {
public:
    // say: one line per step ("step 3/10: ..."); totalSteps counts the steps the caller will announce.
    DemoSteps(Context &ctx, std::function<void(const std::string &)> say, int totalSteps);

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

    Context &m_ctx;
    std::function<void(const std::string &)> m_say;
    // One run's steps are done: trained now (taking `seconds`), or reused from an earlier demo run.
    void trainingDone(int64_t steps, double seconds, bool reused);

    int m_total = 0, m_done = 0;
    int64_t m_plannedSteps = 0, m_trainedSteps = 0, m_reusedSteps = 0;
    double m_trainSeconds = 0;
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
};

} // namespace polymoe::cli
