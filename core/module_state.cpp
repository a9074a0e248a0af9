// Name-checked state loading into torch::nn::Module parameters and buffers.
#include "module_state.h"

#include "polymoe/error.h"

#include <vector>

namespace polymoe {

namespace {

constexpr size_t kMaxListed = 10;

std::string shapeString(at::IntArrayRef shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string listNames(const std::vector<std::string> &names)
{
    std::string s;
    for (size_t i = 0; i < names.size() && i < kMaxListed; ++i)
        s += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > kMaxListed)
        s += " and " + std::to_string(names.size() - kMaxListed) + " more";
    return s;
}

} // namespace

void loadStateInto(torch::nn::Module &module, const std::map<std::string, at::Tensor> &state, bool strict)
{
    std::map<std::string, at::Tensor> targets;
    for (const auto &item : module.named_parameters(true))
        targets.emplace(item.key(), item.value());
    for (const auto &item : module.named_buffers(true))
        if (item.value().defined())
            targets.emplace(item.key(), item.value());

    std::vector<std::string> mismatches, missing, unexpected;
    for (const auto &[name, source] : state) {
        const auto it = targets.find(name);
        if (it == targets.end()) {
            unexpected.push_back(name);
        } else if (!source.defined()) {
            mismatches.push_back("tensor '" + name + "' is undefined");
        } else if (source.sizes() != it->second.sizes()) {
            mismatches.push_back("tensor '" + name + "': shape " + shapeString(source.sizes()) +
                                 " does not match the model's " + shapeString(it->second.sizes()));
        }
    }
    for (const auto &entry : targets)
        if (!state.count(entry.first))
            missing.push_back(entry.first);

    std::vector<std::string> problems;
    for (size_t i = 0; i < mismatches.size() && i < kMaxListed; ++i)
        problems.push_back(mismatches[i]);
    if (mismatches.size() > kMaxListed)
        problems.push_back("and " + std::to_string(mismatches.size() - kMaxListed) + " more shape mismatches");
    if (strict && !missing.empty())
        problems.push_back(std::to_string(missing.size()) + " missing (in the model, not in the state): " +
                           listNames(missing));
    if (strict && !unexpected.empty())
        problems.push_back(std::to_string(unexpected.size()) + " unexpected (in the state, not in the model): " +
                           listNames(unexpected));
    if (!problems.empty()) {
        std::string message = "the state does not match the model: ";
        for (size_t i = 0; i < problems.size(); ++i)
            message += (i ? "; " : "") + problems[i];
        throw FormatError(message);
    }

    at::NoGradGuard noGrad;
    for (const auto &[name, source] : state) {
        const auto it = targets.find(name);
        if (it != targets.end())
            it->second.copy_(source);
    }
}

std::map<std::string, at::Tensor> stateOf(const torch::nn::Module &module)
{
    std::map<std::string, at::Tensor> out;
    for (const auto &item : module.named_parameters(true))
        out.emplace(item.key(), item.value().detach());
    for (const auto &item : module.named_buffers(true))
        if (item.value().defined())
            out.emplace(item.key(), item.value().detach());
    return out;
}

} // namespace polymoe
