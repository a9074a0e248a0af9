// Copying a name -> tensor map (a loaded checkpoint) into a torch::nn::Module's parameters and
// buffers by exact name, and taking one out for saving.
//
// Usage:
//   polymoe::loadStateInto(*model, polymoe::loadCheckpointFolder(dir), /*strict=*/true);
//   polymoe::saveCheckpointFolder(out, polymoe::stateOf(*model));
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <map>
#include <string>

namespace polymoe {

// Copies each tensor of `state` into the parameter or buffer of the same name (names as
// named_parameters() / named_buffers() give them, e.g. "0.weight" in a Sequential), converting
// dtype and device. Every name is checked before anything is copied, so a failure leaves the module
// untouched. Throws FormatError listing (up to 10 of each) shape mismatches ("tensor 'x': shape
// [a, b] does not match the model's [c, d]") and, when `strict`, names the model has but `state`
// lacks (missing) and names `state` has but the model lacks (unexpected). Without `strict` those
// are skipped: missing ones keep their current values.
void loadStateInto(torch::nn::Module &module, const std::map<std::string, at::Tensor> &state, bool strict = true);

// The module's parameters and buffers by name, detached (they share storage with the module).
std::map<std::string, at::Tensor> stateOf(const torch::nn::Module &module);

} // namespace polymoe
