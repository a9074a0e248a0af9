// Model folders in the Hugging Face layout: config.json, model.safetensors (or shards and an
// index), tokenizer.model with its JSON companions, generation_config.json. Saving writes a
// temporary folder and renames it into place; loading checks every tensor against the config.
#pragma once

#include "model_config.h"
#include "models/llama.h"

#include <filesystem>
#include <string>

namespace polymoe {

// Loads config.json and the weights (strictly: every tensor present, none unexpected, shapes
// equal). Refuses pickled .bin checkpoints. Errors say which file and which tensor.
CausalLM loadModelFolder(const std::filesystem::path &dir);

// Writes the model (fp32 as trained, or the dtype given: "float32", "bfloat16", "float16") with
// the tokenizer's model bytes (may be empty) and a polymoe.json of provenance.
void saveModelFolder(CausalLMImpl &model, const std::filesystem::path &dir, const std::string &tokenizerBytes,
                     const std::string &provenanceJson = "{}", const std::string &dtype = "float32");

int64_t countParameters(const torch::nn::Module &module);

} // namespace polymoe
