// The demo's steps as reusable pieces, shared by 'polymoe demo' and 'polymoe bench expansion': each
// step reuses its output when the project has it (a model of that name, an analysis of the base, an
// allocation of that strategy and budget) and resumes an unfinished run, so an interrupted command
// continues where it stopped.
#pragma once

#include "cli.h"

#include "polymoe/dense_jobs.h"
#include "polymoe/project_store.h"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace polymoe::cli {

// The settings of a profile. standard follows METHOD.md section 9's recipe: full fine-tuning and
// stage 1 on about 1M new-language tokens each (lr 1e-3), stage 2 on 0.43M tokens with half the
// sequences old-language replay (routers only, lr 1e-2, LPR 0.1, no classifier). The budget is
// section 9's: 8 new experts (uniform: 3 experts in each of the 4 layers).
struct DemoProfile {
    std::string name;                  // "tiny" / "standard"
    std::string baseRecipe;            // resources/demo/<name>.json
    int64_t characters = 0;            // per language in the corpus (0: the corpus default)
    int vocabSize = 8000;              // SentencePiece unigram
    int64_t similarityTokens = 100000; // per language (section 1)
    int newExperts = 8;                // new experts in all (uniform: spread evenly over the layers)
    int64_t finetuneSteps = 500;       // full fine-tuning baseline; batch x sequence of the base recipe
    int64_t stage1Steps = 500;
    int64_t stage2Steps = 210;
    double stage2OldShare = 0.5;       // section 9: the demo replays half the stage-2 sequences
    int64_t statsEvery = 25;           // steps between router statistics on the probe set
};
// Throws UsageError for a name other than tiny or standard.
DemoProfile demoProfile(const std::string &name);

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
    // Full fine-tuning of the base: `weights` empty = new languages only.
    void finetune(DemoProject &p, const std::string &name, int64_t steps, const std::map<std::string, double> &weights = {});
    // Stage 1 on `alloc` (model s1Name), then stage 2 (model s2Name) unless s2Name is empty.
    void stages(DemoProject &p, const AllocationRecord &alloc, const std::string &s1Name, const std::string &s2Name);

    void step(const std::string &what);

private:
    TrainConfig trainSettings(const DemoProject &p, int64_t steps, double lr) const;

    Context &m_ctx;
    std::function<void(const std::string &)> m_say;
    int m_total = 0, m_done = 0;
};

} // namespace polymoe::cli
