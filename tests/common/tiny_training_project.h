// A tiny project a real `polymoe train` can run on in seconds (tst_training_run, tst_training_attach):
// the synthetic token languages (synthetic_tokens.h) as shards, a tokenizer row without a plugin
// (training reads only its special ids), a 2-layer dense base "base" trained 20 steps in process,
// and a uniform allocation of 2 experts per layer.
#pragma once

#include "common/synthetic_tokens.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/project_store.h"
#include "sqlite_db.h"
#include "token_shard.h"

#include <string>

namespace polymoe::test {

inline void makeTinyTrainingProject(const std::string &path)
{
    auto store = ProjectStore::create(path);
    for (const auto &l : kSyntheticLanguages)
        store.addLanguage({l.code, l.code, l.group, l.group == LanguageGroup::New ? 1 : 0});
    addSyntheticTokenizer(store);
    uint32_t seed = 7;
    for (const auto &l : kSyntheticLanguages)
        seed = addSyntheticShards(store, l, 30, 4, 160, seed);
    Recipe r;
    r.modelConfigJson = R"({"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 64, "tie_word_embeddings": false})";
    r.train.kind = "pretrain";
    r.train.seqLen = 32;
    r.train.batchSize = 8;
    r.train.steps = 20;
    r.train.lr = 3e-3;
    r.train.warmupSteps = 2;
    r.train.dtype = "fp32";
    r.train.threads = 1;
    r.train.logEvery = 5;
    r.train.checkpointEvery = 0;
    r.train.evalTokens = 1024;
    r.source = "tiny_training_project";
    DenseTrainSpec spec;
    spec.recipe = r;
    spec.outputName = "base";
    trainDenseModel(store, spec);
    allocateExperts(store, {.strategy = "uniform", .budget = 2, .modelName = "base"});
}

} // namespace polymoe::test
