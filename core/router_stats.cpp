// Router statistics on the probe set (see router_stats.h).
#include "router_stats.h"

#include "moe_block.h"

namespace polymoe {

std::vector<ProbeSet> makeProbeSets(const std::vector<LanguageStream> &heldout, int64_t seqLen, int64_t sequences)
{
    std::vector<ProbeSet> out;
    for (const auto &s : heldout) {
        std::vector<int64_t> flat;
        int64_t rows = 0;
        for (const auto &seq : evaluationSequences(s, seqLen, sequences * seqLen)) {
            if (int64_t(seq.size()) < seqLen + 1 || rows == sequences)
                break;
            flat.insert(flat.end(), seq.begin(), seq.begin() + seqLen);
            ++rows;
        }
        if (rows == 0)
            continue;
        ProbeSet p;
        p.language = s.language;
        p.isNew = s.isNew;
        p.inputs = torch::from_blob(flat.data(), {rows, seqLen}, at::kLong).clone();
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<RouterStatRow> routerStatistics(CausalLMImpl &model, const std::vector<ProbeSet> &probe)
{
    std::vector<std::pair<int, std::shared_ptr<MoeBlockImpl>>> blocks;
    for (int64_t i = 0; i < model.numLayers(); ++i)
        if (auto b = std::dynamic_pointer_cast<MoeBlockImpl>(model.layer(i)->mlp()))
            blocks.emplace_back(int(i), b);
    std::vector<RouterStatRow> rows;
    if (blocks.empty())
        return rows;
    const at::NoGradGuard noGrad;
    const bool wasTraining = model.is_training();
    model.eval();
    const auto device = model.parameters().front().device();
    for (const auto &p : probe) {
        model.forward(p.inputs.to(device));
        for (const auto &[layer, block] : blocks) {
            const MoeLastForward &last = block->lastRouting();
            const Routing &r = last.routing;
            const int64_t T = r.topIdx.size(0), N = block->numExperts();
            at::Tensor idx = r.topIdx.to(at::kCPU);                   // (T, k)
            at::Tensor slotValid = at::ones_like(idx, at::kBool);     // (T, k)
            if (last.hardToExpert0.defined() && idx.size(1) > 1) {
                // A token sent to expert 0 alone fills one slot.
                slotValid = slotValid.clone();
                slotValid.narrow(1, 1, idx.size(1) - 1).masked_fill_(last.hardToExpert0.to(at::kCPU).unsqueeze(1), false);
            }
            const at::Tensor validIdx = idx.masked_select(slotValid);
            const at::Tensor slots = at::bincount(validIdx, {}, N).to(at::kDouble);
            const at::Tensor top1 = at::bincount(idx.select(1, 0).contiguous(), {}, N).to(at::kDouble);
            // Entropy of the router's distribution, nats, mean over the tokens.
            const at::Tensor probs = r.probs.to(at::kCPU, at::kDouble);
            const double entropy = T > 0 ? (-(probs * probs.clamp_min(1e-30).log()).sum(1)).mean().item<double>() : 0.0;
            const double nSlots = double(validIdx.numel());
            for (int64_t e = 0; e < N; ++e) {
                RouterStatRow row;
                row.layer = layer;
                row.language = p.language;
                row.isNew = p.isNew;
                row.expert = int(e);
                row.slotShare = nSlots > 0 ? slots[e].item<double>() / nSlots : 0.0;
                row.top1Share = T > 0 ? top1[e].item<double>() / double(T) : 0.0;
                row.entropy = entropy;
                rows.push_back(row);
            }
        }
    }
    for (const auto &[layer, block] : blocks)
        block->clearLastRouting();
    if (wasTraining)
        model.train();
    return rows;
}

} // namespace polymoe
