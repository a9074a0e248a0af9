// A tiny Llama configuration for tests that need a real model but not a particular shape
// (tst_trainer, tst_evaluation): vocabulary 32, 2 layers of width 32, GQA 4 heads over 2.
#pragma once

#include "model_config.h"

namespace polymoe::test {

inline ModelConfig tinyLlamaConfig()
{
    ModelConfig c;
    c.modelType = "llama";
    c.vocabSize = 32;
    c.hiddenSize = 32;
    c.intermediateSize = 64;
    c.numLayers = 2;
    c.numHeads = 4;
    c.numKvHeads = 2;
    c.headDim = 8;
    c.maxPositionEmbeddings = 64;
    return c;
}

} // namespace polymoe::test
