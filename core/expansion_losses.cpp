// Stage-1 and stage-2 losses (see expansion_losses.h).
#include "expansion_losses.h"

#include "moe_losses.h"
#include "polymoe/error.h"

namespace polymoe {

std::vector<std::pair<int, std::shared_ptr<MoeBlockImpl>>> moeBlocks(const CausalLMImpl &model)
{
    std::vector<std::pair<int, std::shared_ptr<MoeBlockImpl>>> out;
    for (int64_t i = 0; i < model.numLayers(); ++i)
        if (auto b = std::dynamic_pointer_cast<MoeBlockImpl>(model.layer(i)->mlp()))
            out.emplace_back(int(i), b);
    return out;
}

LossFn stage1Loss(CausalLM model, double balanceCoef)
{
    auto blocks = moeBlocks(*model);
    if (blocks.empty())
        throw ConfigError("stage 1: the model has no MoE layer");
    return [model = model.ptr(), blocks, balanceCoef](const SequenceBatch &, const at::Tensor &inputs, const at::Tensor &targets,
                                        std::map<std::string, double> &metrics) {
        const at::Tensor lm = languageModelLoss(*model, inputs, targets);
        // Section 4: L_balance = N_i sum_e f_e P_e per layer, averaged over the MoE layers.
        at::Tensor balance;
        for (const auto &[layer, block] : blocks) {
            const at::Tensor b = balanceLoss(block->lastRouting().routing, block->numExperts());
            balance = balance.defined() ? balance + b : b;
        }
        balance = balance / double(blocks.size());
        metrics["lm"] += lm.item<double>();
        metrics["balance"] += balance.item<double>();
        return lm + balanceCoef * balance;
    };
}

LossFn stage2Loss(CausalLM model, double lprCoef, double classifierCoef)
{
    auto blocks = moeBlocks(*model);
    if (blocks.empty())
        throw ConfigError("stage 2: the model has no MoE layer");
    return [model = model.ptr(), blocks, lprCoef, classifierCoef](const SequenceBatch &batch, const at::Tensor &inputs,
                                                    const at::Tensor &targets, std::map<std::string, double> &metrics) {
        const at::Tensor lm = languageModelLoss(*model, inputs, targets);
        const auto device = inputs.device();
        // Per row: old (isNew == 0) -> every token of the row is an old-language token, (rows * seq,).
        std::vector<uint8_t> isNew(batch.isNew.begin(), batch.isNew.end());
        const int64_t rows = inputs.size(0), seq = inputs.size(1);
        const at::Tensor rowNew = torch::from_blob(isNew.data(), {rows}, at::kByte).clone().to(device);
        const at::Tensor tokenOld = rowNew.eq(0).unsqueeze(1).expand({rows, seq}).reshape({-1});
        // Section 5: L_LPR = mean over old tokens of -log p_0, averaged over the MoE layers.
        at::Tensor lpr, cls;
        int nCls = 0;
        double correct = 0;
        for (const auto &[layer, block] : blocks) {
            const MoeLastForward &last = block->lastRouting();
            const at::Tensor l = lprLoss(last.routing.logits, tokenOld);
            lpr = lpr.defined() ? lpr + l : l;
            if (last.classifierLogits.defined()) {
                // Section 6: cross-entropy of the per-sequence old/new decision.
                const at::Tensor target = rowNew.to(at::kLong);
                const at::Tensor c = classifierLoss(last.classifierLogits, target);
                cls = cls.defined() ? cls + c : c;
                correct += last.classifierLogits.argmax(-1).eq(target).to(at::kDouble).mean().item<double>();
                ++nCls;
            }
        }
        lpr = lpr / double(blocks.size());
        metrics["lm"] += lm.item<double>();
        metrics["lpr"] += lpr.item<double>();
        at::Tensor loss = lm + lprCoef * lpr;
        if (nCls > 0) {
            cls = cls / double(nCls);
            metrics["classifier"] += cls.item<double>();
            metrics["classifier_accuracy"] += correct / double(nCls);
            loss = loss + classifierCoef * cls;
        }
        return loss;
    };
}

} // namespace polymoe
