// The forgetting report (METHOD.md section 8): held-out perplexity per language for the base model
// and every model trained from it (full fine-tuning, MoE stage 1, stage 2, ...), each relative to
// the base, summarised per group (forgetting on the old languages, gain on the new ones), with added
// and active parameters and the routing of the expanded models. Built from the project store alone:
// nothing is recomputed. No LibTorch here (the GUI includes this header).
//
// Usage:
//   auto r = polymoe::buildForgettingReport(store);          // base: the project's root model
//   std::cout << polymoe::forgettingReportText(r);
//   std::string j = polymoe::forgettingReportJson(r);
#pragma once

#include "polymoe/project_store.h"

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace polymoe {

// A model's perplexity on an out-of-domain probe: text outside the project's corpus, never trained
// on, evaluated as held-out text is (evaluateProbe; recorded as the split "probe:NAME").
struct ReportProbeScore {
    double perplexity = 0;
    double low = std::numeric_limits<double>::quiet_NaN(), high = std::numeric_limits<double>::quiet_NaN();
    double bitsPerCharacter = std::numeric_limits<double>::quiet_NaN();
    double bitsPerByte = std::numeric_limits<double>::quiet_NaN();
};

// One model of the report (a column of its table).
struct ReportModel {
    int64_t id = 0;
    std::string name;
    std::string kind;                    // model record kind: "base", "imported", "finetuned", "expanded"
    std::string runKind;                 // producing run: "pretrain", "finetune", "stage1", "stage2"; "" if none
    std::string role;                    // "base", "full fine-tuning", "MoE stage 1", "MoE stage 2", or runKind
    std::optional<int64_t> parentId;
    int64_t parameters = 0;              // all weights
    int64_t activeParametersPerToken = 0; // weights one token uses: top-k experts per MoE layer
    int64_t addedParameters = 0;         // parameters - the base's
    std::vector<int> experts;            // N_i per layer; empty for a dense model
    int topK = 0;                        // experts per token (0 for a dense model)
    int64_t tokens = 0;                  // tokens its producing run trained on (0 if unknown)
    double seconds = 0;                  // wall time of its producing run (0 if unknown)
    std::map<std::string, double> perplexity; // held-out, by language code
    // Its 95% interval over the held-out documents (document bootstrap), where recorded.
    std::map<std::string, std::pair<double, double>> perplexityInterval;
    // Bits per character and per UTF-8 byte of the same evaluations, where the text size was
    // recorded: unlike per-token perplexity these compare languages (and tokenizers) with each other.
    std::map<std::string, double> bitsPerCharacter, bitsPerByte;
    std::map<std::string, ReportProbeScore> probes; // by probe name
};

// An out-of-domain probe that some model of the report was evaluated on.
struct ReportProbe {
    std::string name;                    // "licenses"
    std::string language;                // the project language its text is in
};

// A model's greedy continuation of a prompt (generation samples, recorded by the demo).
struct ReportSample {
    std::string model;
    std::string language;
    std::string prompt;
    std::string continuation;
};

// Per model and language group: the geometric mean over the group's languages of ppl / base ppl
// (1 = unchanged; > 1 on old languages is forgetting, < 1 on new ones is gain).
struct ReportGroupRatio {
    std::string model;
    std::string group;                   // "old" / "new"
    double ratio = 0;                    // NaN when a language lacks an evaluation
};

// Routing of one expanded model on the probe set, per language and MoE layer (section 8).
struct ReportRouting {
    std::string model;
    std::string language;
    std::string group;
    int layer = 0;
    double expert0Top1 = 0;              // share of tokens whose top-1 is expert 0 (the frozen original)
    double entropy = 0;                  // router entropy, nats
};

struct ForgettingReport {
    std::string project;                 // the project file
    std::string base;                    // the base model's name
    std::vector<Language> languages;     // old ones first
    std::vector<ReportModel> models;     // the base first, then by creation
    std::vector<ReportGroupRatio> groups;
    std::vector<ReportRouting> routing;  // for every expanded model with final statistics
    std::vector<ReportSample> samples;   // by prompt (languages old first), then model in report order
    std::vector<ReportProbe> probes;     // by name

    // ppl(model, language) / ppl(base, language); NaN where either is missing.
    double ratio(const std::string &model, const std::string &language) const;
    // ppl(model, probe) / ppl(base, probe); NaN where either is missing.
    double probeRatio(const std::string &model, const std::string &probe) const;
};

// The report of `baseName` (default: the oldest model without a parent) and its descendants.
// Throws ConfigError when the project has no model or the base has no evaluation.
ForgettingReport buildForgettingReport(const ProjectStore &store, const std::string &baseName = {});

// A plain-text table (languages x models, "63.5 x1.02"), group summaries, parameters and routing.
std::string forgettingReportText(const ForgettingReport &report);
std::string forgettingReportJson(const ForgettingReport &report);

} // namespace polymoe
