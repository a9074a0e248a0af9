// The expansion jobs end to end on a tiny synthetic project (no tokenizer plugin): similarity
// analysis, allocation, stage 1 (loss falls, frozen weights bit-identical, new-language perplexity
// improves), stage 2 (LPR moves old-language tokens to expert 0, only routers change), router
// statistics, bit-exact MoE model folders, and the old/new classifier.
#include "expansion_stage.h"
#include "model_io.h"
#include "moe_block.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/error.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"
#include "sqlite_db.h"
#include "token_shard.h"
#include "upcycle.h"
#include "common/synthetic_tokens.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>

using namespace polymoe;
namespace fs = std::filesystem;

namespace {

using test::kSyntheticLanguages;
using test::addSyntheticShards;
using test::addSyntheticTokenizer;
using test::SyntheticLanguage;
const auto &kLanguages = kSyntheticLanguages;
constexpr int kVocab = test::kSyntheticVocab;

std::map<std::string, at::Tensor> paramsOf(const CausalLM &m)
{
    std::map<std::string, at::Tensor> out;
    for (const auto &item : m->named_parameters())
        out[item.key()] = item.value().detach().clone();
    return out;
}

double meanOldExpert0(const std::vector<RouterStatRow> &rows, const std::vector<int> &layers)
{
    double sum = 0;
    int n = 0;
    for (int l : layers)
        for (const char *lang : {"en", "es"}) {
            sum += expert0Top1Share(rows, l, lang);
            ++n;
        }
    return sum / n;
}

double perplexityOf(const std::vector<PerplexityRow> &rows, const std::string &lang)
{
    for (const auto &r : rows)
        if (r.language == lang)
            return r.perplexity;
    return std::nan("");
}

} // namespace

class TestExpansion : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::optional<ProjectStore> m_store;
    DenseTrainOutcome m_base;
    ExpansionOutcome m_stage1, m_stage2;
    int64_t m_allocationId = 0;

    fs::path root() const { return fs::path(m_dir.path().toStdString()); }

    static TrainConfig stageConfig(int64_t steps, double lr)
    {
        TrainConfig c;
        c.seqLen = 32;
        c.batchSize = 16;
        c.steps = steps;
        c.lr = lr;
        c.warmupSteps = 5;
        c.dtype = "fp32";
        c.threads = 1;
        c.logEvery = 5;
        c.checkpointEvery = 0;
        c.evalTokens = 4096;
        return c;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_store.emplace(ProjectStore::create(root() / "t.polymoe"));
        ProjectStore &store = *m_store;
        for (const auto &l : kLanguages)
            store.addLanguage({l.code, l.code, l.group, l.group == LanguageGroup::New ? 1 : 0});
        addSyntheticTokenizer(store);
        uint32_t seed = 11;
        for (const auto &l : kLanguages)
            seed = addSyntheticShards(store, l, 60, 8, 200, seed);

        // The tiny recipe: the base sees mostly old-language text (5% new, section 9).
        Recipe r;
        r.modelConfigJson = R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 64, "tie_word_embeddings": false})";
        r.train = stageConfig(200, 3e-3);
        r.train.kind = "pretrain";
        r.newLanguageShare = 0.05;
        r.source = "tst_expansion";
        DenseTrainSpec spec;
        spec.recipe = r;
        spec.outputName = "base";
        m_base = trainDenseModel(store, spec);
        QCOMPARE(m_base.modelName, std::string("base"));
    }

    void moeFolderRoundTripIsBitExact()
    {
        ModelConfig c;
        c.vocabSize = kVocab;
        c.hiddenSize = 16;
        c.intermediateSize = 24;
        c.numLayers = 3;
        c.numHeads = 2;
        c.numKvHeads = 1;
        c.headDim = 8;
        c.maxPositionEmbeddings = 32;
        torch::manual_seed(5);
        CausalLM m(c);
        upcycleModel(m, {3, 1, 2}, 2, 9);
        std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(2)->mlp())->setClassifier(true);
        {
            // Make every expert different, as after training.
            const at::NoGradGuard ng;
            for (auto &p : m->parameters())
                p.add_(at::randn_like(p) * 0.01);
        }
        const fs::path dir = root() / "roundtrip";
        saveModelFolder(*m, dir, "");
        std::ifstream in(dir / "config.json");
        const auto cj = nlohmann::json::parse(in);
        QCOMPARE(cj["model_type"].get<std::string>(), std::string("llama"));
        QVERIFY(cj.contains("architectures"));
        QCOMPARE(cj["polymoe"]["experts_per_layer"].get<std::vector<int>>(), (std::vector<int>{3, 1, 2}));
        QCOMPARE(cj["polymoe"]["top_k"].get<int>(), 2);
        QCOMPARE(cj["polymoe"]["classifier_layers"].get<std::vector<int>>(), (std::vector<int>{2}));
        QCOMPARE(cj["polymoe"]["format_version"].get<int>(), 1);

        CausalLM back = loadModelFolder(dir);
        const auto a = paramsOf(m), b = paramsOf(back);
        QCOMPARE(a.size(), b.size());
        QVERIFY(b.count("model.layers.0.mlp.experts.2.up_proj.weight"));
        QVERIFY(b.count("model.layers.0.mlp.gate.weight"));
        QVERIFY(b.count("model.layers.1.mlp.up_proj.weight"));
        QVERIFY(b.count("model.layers.2.mlp.classifier.weight"));
        for (const auto &[name, t] : a) {
            QVERIFY2(b.count(name), name.c_str());
            QVERIFY2(at::equal(t, b.at(name)), name.c_str());
        }
        const MoeLayout layout = moeLayoutOf(*back);
        QCOMPARE(layout.expertsPerLayer, (std::vector<int>{3, 1, 2}));
        QCOMPARE(layout.classifierLayers, (std::vector<int>{2}));
        // The same outputs, classifier's hard routing included (eval mode).
        m->eval();
        const at::Tensor ids = at::randint(0, kVocab, {2, 12}, at::kLong);
        QVERIFY(at::equal(m->forward(ids), back->forward(ids)));
    }

    void analyzeAndAllocate()
    {
        ProjectStore &store = *m_store;
        const SimilarityAnalysis a = analyzeSimilarity(store, "base", 2000);
        QCOMPARE(a.languages, (std::vector<std::string>{"en", "es", "de", "ru"}));
        QCOMPARE(a.isNew, (std::vector<bool>{false, false, true, true}));
        QCOMPARE(int(a.score.size()), 2);
        for (size_t l = 0; l < 2; ++l) {
            QVERIFY(std::isfinite(a.score[l]) && std::isfinite(a.newNew[l]));
            QVERIFY(std::abs(a.score[l] - (a.newOld[l] + a.newNew[l]) / 2) < 1e-12);
            QVERIFY(std::abs(a.pairs[l][2][3] - a.newNew[l]) < 1e-12); // one new-new pair: de-ru
        }
        // Held-out text (8 x 202 tokens) is shorter than 2000: the train text is used.
        QCOMPARE(a.tokens, (std::vector<int64_t>{2000, 2000, 2000, 2000}));
        QCOMPARE(int(store.layerScores(a.id).size()), 2);
        QCOMPARE(int(store.similarityValues(a.id).size()), 2 * 10);

        const AllocationOutcome u = allocateExperts(store, {.strategy = "uniform", .budget = 3});
        m_allocationId = u.id;
        QCOMPARE(u.experts, (std::vector<int>{3, 3}));
        QCOMPARE(u.newExperts, 4);
        QCOMPARE(u.analysisId, std::optional<int64_t>(a.id));
        QCOMPARE(u.addedParameters, int64_t(4 * 3 * 64 * 128 + 2 * 3 * 64)); // experts + routers
        // LayerMoE divides by S_i: a tiny model with disjoint token ranges can score a layer <= 0, so the
        // rule runs on a stored analysis with known scores (the rule itself is tst_allocation's).
        SimilarityAnalysisRecord known;
        known.modelId = m_base.modelId;
        known.tokensPerLanguage = 1;
        known.settings = "{}";
        const int64_t knownId = store.addSimilarityAnalysis(known, {}, {{0, 0.02, {}, {}}, {1, 0.04, {}, {}}});
        const AllocationOutcome lm =
            allocateExperts(store, {.strategy = "layermoe", .budget = 3, .analysisId = knownId, .name = "lm3"});
        QCOMPARE(lm.experts, (std::vector<int>{3, 2})); // the less similar layer gets more
        QCOMPARE(lm.newExperts, 3);
        QCOMPARE(store.allocations().size(), size_t(2));
        QCOMPARE(store.allocation(lm.id)->experts, (std::vector<int>{3, 2}));
        QCOMPARE(store.allocation(lm.id)->strategy, std::string("layermoe"));
        const AllocationOutcome man = allocateExperts(store, {.strategy = "manual", .experts = {1, 4}, .modelName = "base"});
        QCOMPARE(man.newExperts, 3);
        QCOMPARE(man.moeLayers, 1);
        QVERIFY_THROWS_EXCEPTION(ConfigError, allocateExperts(store, {.strategy = "manual", .experts = {2}, .modelName = "base"}));
    }

    void stage1TrainsNewExpertsOnly()
    {
        ProjectStore &store = *m_store;
        ExpansionStageSpec spec{.stage = 1, .model = "base", .allocationId = m_allocationId};
        spec.train = stageConfig(300, 1e-2);
        spec.routerStatsEvery = 40;
        m_stage1 = trainExpansionStage(store, spec);
        QCOMPARE(m_stage1.modelName, std::string("stage1"));
        QCOMPARE(m_stage1.experts, (std::vector<int>{3, 3}));

        // The loss falls; balance and lm are recorded.
        const auto loss = store.metricSeries(m_stage1.runId, "loss");
        QVERIFY(loss.size() > 5);
        QVERIFY2(loss.back().second < 0.9 * loss.front().second,
                 qPrintable(QString("%1 -> %2").arg(loss.front().second).arg(loss.back().second)));
        QVERIFY(!store.metricSeries(m_stage1.runId, "balance").empty());
        QVERIFY(!store.metricSeries(m_stage1.runId, "lm").empty());

        // Frozen: everything but the new experts and the routers, bit for bit; expert 0 = the base FFN.
        const CausalLM base = loadModelFolder(m_base.modelDir);
        const CausalLM s1 = loadModelFolder(m_stage1.modelDir);
        const auto pb = paramsOf(base), p1 = paramsOf(s1);
        int changedExperts = 0;
        for (const auto &[name, t] : p1) {
            if (name.find(".mlp.gate.") != std::string::npos)
                continue;
            const auto e = name.find(".mlp.experts.");
            if (e != std::string::npos) {
                const std::string rest = name.substr(e + 13);            // "E.up_proj.weight"
                const int expert = std::stoi(rest);
                const std::string dense = name.substr(0, e) + ".mlp." + rest.substr(rest.find('.') + 1);
                if (expert == 0)
                    QVERIFY2(at::equal(t, pb.at(dense)), name.c_str());
                else
                    changedExperts += !at::equal(t, pb.at(dense));
                continue;
            }
            QVERIFY2(at::equal(t, pb.at(name)), name.c_str());
        }
        QCOMPARE(changedExperts, 2 * 2 * 3); // 2 layers x 2 new experts x 3 matrices

        for (const char *lang : {"en", "es", "de", "ru"})
            qInfo("%s ppl: base %.3f, stage 1 %.3f", lang, perplexityOf(m_base.evaluation, lang),
                  perplexityOf(m_stage1.evaluation, lang));
        // New languages gain over the base (the geometric mean of the perplexity ratios by 10%). The
        // frozen embeddings and LM head limit the gain (METHOD.md section 9): measured de 1.99 -> 1.95,
        // ru 4.40 -> 3.15.
        double ratio = 1;
        for (const char *lang : {"de", "ru"}) {
            const double before = perplexityOf(m_base.evaluation, lang), after = perplexityOf(m_stage1.evaluation, lang);
            QVERIFY2(after < before, qPrintable(QString("%1: %2 -> %3").arg(lang).arg(before).arg(after)));
            ratio *= after / before;
        }
        QVERIFY2(std::sqrt(ratio) < 0.9, qPrintable(QString::number(std::sqrt(ratio))));
        // Router statistics at steps 0, 40, ..., 280 and the end (300, with the model).
        const auto rows = store.routerStats(m_stage1.runId);
        std::set<int64_t> steps;
        for (const auto &r : rows)
            steps.insert(r.step);
        QCOMPARE(steps, (std::set<int64_t>{0, 40, 80, 120, 160, 200, 240, 280, 300}));
        QCOMPARE(int(m_stage1.routerStats.size()), 2 * 4 * 3); // layers x languages x experts
        for (const auto &r : rows)
            if (r.step == 300)
                QCOMPARE(r.modelId, std::optional<int64_t>(m_stage1.modelId));
        const auto model = store.model("stage1");
        QVERIFY(model && model->kind == "expanded" && model->parentId == m_base.modelId);
    }

    void stage2MovesOldTokensToExpert0()
    {
        ProjectStore &store = *m_store;
        ExpansionStageSpec spec{.stage = 2, .model = "stage1"};
        spec.train = stageConfig(200, 1e-2);
        spec.oldShare = 0.5;
        spec.routerStatsEvery = 0;
        m_stage2 = trainExpansionStage(store, spec);

        // The learning test of LPR: old-language tokens choose expert 0 first more often.
        const double before = meanOldExpert0(m_stage1.routerStats, {0, 1});
        const double after = meanOldExpert0(m_stage2.routerStats, {0, 1});
        qInfo("old tokens top-1 expert 0 (mean of en, es x layers 0, 1): %.3f -> %.3f", before, after); // measured 0.48 -> 0.72
        QVERIFY2(after > before + 0.1, qPrintable(QString("old tokens top-1 expert 0: %1 -> %2").arg(before).arg(after)));
        QVERIFY(!store.metricSeries(m_stage2.runId, "lpr").empty());

        // Only the routers changed.
        const auto p1 = paramsOf(loadModelFolder(m_stage1.modelDir)), p2 = paramsOf(loadModelFolder(m_stage2.modelDir));
        QCOMPARE(p1.size(), p2.size());
        int changedRouters = 0;
        for (const auto &[name, t] : p2) {
            if (name.find(".mlp.gate.") != std::string::npos)
                changedRouters += !at::equal(t, p1.at(name));
            else
                QVERIFY2(at::equal(t, p1.at(name)), name.c_str());
        }
        QCOMPARE(changedRouters, 2);

        // Both replay settings go with the run.
        const auto runs = store.runs();
        const auto cfg = nlohmann::json::parse(runs.back().config);
        QCOMPARE(cfg["old_share"].get<double>(), 0.5);
        QVERIFY(cfg.contains("replay_share") && cfg.contains("replay_tokens") && cfg.contains("stage1_tokens"));
        QCOMPARE(cfg["stage1_tokens"].get<int64_t>(), int64_t(300 * 16 * 32));
        QCOMPARE(m_stage2.stage1Tokens, int64_t(300 * 16 * 32));
        QCOMPARE(int(store.routerStats(m_stage2.runId).size()), 2 * 2 * 4 * 3); // steps 0 and 80

        // The saved folder reads back bit-exactly, and saves again identically.
        CausalLM back = loadModelFolder(m_stage2.modelDir);
        saveModelFolder(*back, root() / "again", "");
        const auto p3 = paramsOf(loadModelFolder(root() / "again"));
        for (const auto &[name, t] : p2)
            QVERIFY2(at::equal(t, p3.at(name)), name.c_str());
    }

    void stage2DefaultLengthFollowsTheReplayShare()
    {
        // steps = replayShare * stage-1 tokens / (oldShare * batch * seq) = 0.1 * 153600 / (0.5 * 512) = 60;
        // stop before the first step: the run is recorded with its settings and cancelled.
        ExpansionStageSpec spec{.stage = 2, .model = "stage1", .replayShare = 0.1, .outputName = "never"};
        spec.oldShare = 0.5;
        spec.train = stageConfig(0, 1e-2);
        std::stop_source stop;
        stop.request_stop();
        QVERIFY_THROWS_EXCEPTION(Cancelled, trainExpansionStage(*m_store, spec, {}, {}, stop.get_token()));
        const auto run = m_store->runs().back();
        QCOMPARE(run.status, std::string("cancelled"));
        const auto cfg = nlohmann::json::parse(run.config);
        QCOMPARE(cfg["train"]["steps"].get<int64_t>(), int64_t(60));
        QCOMPARE(cfg["replay_tokens"].get<int64_t>(), int64_t(60 * 512 / 2));
    }

    void classifierTrainsAndRoutesHard()
    {
        ProjectStore &store = *m_store;
        ExpansionStageSpec spec{.stage = 2, .model = "stage1", .classifier = true, .classifierShare = 0.5,
                                .outputName = "stage2-cls"};
        spec.train = stageConfig(60, 1e-2);
        spec.oldShare = 0.5;
        spec.routerStatsEvery = 0;
        const ExpansionOutcome out = trainExpansionStage(store, spec);
        QCOMPARE(int(out.classifierLayers.size()), 1);
        const int layer = out.classifierLayers.front();

        const auto cls = store.metricSeries(out.runId, "classifier");
        QVERIFY(!cls.empty());
        QVERIFY2(cls.back().second < cls.front().second,
                 qPrintable(QString("classifier loss %1 -> %2").arg(cls.front().second).arg(cls.back().second)));
        const auto acc = store.metricSeries(out.runId, "classifier_accuracy");
        QVERIFY2(acc.back().second > 0.9, qPrintable(QString::number(acc.back().second)));

        // At inference the classifier layer sends old-language sequences to expert 0 alone.
        CausalLM m = loadModelFolder(out.modelDir);
        QCOMPARE(moeLayoutOf(*m).classifierLayers, out.classifierLayers);
        const auto block = std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(layer)->mlp());
        const TokenShard en = syntheticShard(kLanguages[0], 1, 40, 777), de = syntheticShard(kLanguages[2], 1, 40, 778);
        auto run = [&](const TokenShard &s) {
            std::vector<int64_t> ids(s.tokens.begin(), s.tokens.end());
            const at::NoGradGuard ng;
            m->forward(torch::from_blob(ids.data(), {1, int64_t(ids.size())}, at::kLong).clone());
            return block->lastRouting().hardToExpert0;
        };
        const at::Tensor hardEn = run(en);
        QVERIFY(hardEn.defined() && hardEn.all().item<bool>());
        const at::Tensor hardDe = run(de);
        QVERIFY(!hardDe.defined() || !hardDe.any().item<bool>());
        QCOMPARE(expert0Top1Share(out.routerStats, layer, "en"), 1.0);
    }

    // Section 7: a second wave (tr) on the stage-2 model. Every existing expert stays bit-identical,
    // the allocation's N_i - 1 experts are added as copies of expert 0, the routers widen, and stage 1
    // learns the new language; stage 2 then replays all four earlier languages.
    void lifelongAddsAWave()
    {
        ProjectStore &store = *m_store;
        const SyntheticLanguage tr{"tr", LanguageGroup::New, 25, 13, 7}; // tokens 25..39, a new pattern
        store.addLanguage({"tr", "tr", LanguageGroup::New, 2});
        addSyntheticShards(store, tr, 60, 8, 200, 999);
        const auto alloc = allocateExperts(store, {.strategy = "manual", .experts = {2, 1}, .modelName = "base"});
        ExpansionStageSpec spec{.stage = 1, .model = m_stage2.modelName, .allocationId = alloc.id, .outputName = "wave2-s1"};
        spec.train = stageConfig(200, 1e-2);
        spec.routerStatsEvery = 0;
        const ExpansionOutcome s1 = trainExpansionStage(store, spec);
        QCOMPARE(s1.experts, (std::vector<int>{4, 3}));
        const auto run = nlohmann::json::parse(store.runs().back().config);
        QCOMPARE(run["wave"].get<int>(), 2);
        QCOMPARE(run["new_languages"].get<std::vector<std::string>>(), (std::vector<std::string>{"tr"}));
        QCOMPARE(run["old_languages"].get<std::vector<std::string>>().size(), size_t(4));

        const CausalLM before = loadModelFolder(m_stage2.modelDir), after = loadModelFolder(s1.modelDir);
        const auto pb = paramsOf(before), pa = paramsOf(after);
        int changed = 0;
        for (const auto &[name, t] : pa) {
            if (name.find(".mlp.gate.") != std::string::npos) {
                QCOMPARE(t.size(0), int64_t(name.find("layers.0.") != std::string::npos ? 4 : 3));
                continue;
            }
            if (name.find("layers.0.mlp.experts.3.") != std::string::npos) {
                changed += !at::equal(t, pa.at(name.substr(0, name.find("experts.3.")) + "experts.0." +
                                                name.substr(name.find("experts.3.") + 10)));
                continue;
            }
            QVERIFY2(pb.count(name) && at::equal(t, pb.at(name)), name.c_str()); // all else frozen, bit for bit
        }
        QCOMPARE(changed, 3); // the new expert's three matrices moved away from their copy of expert 0
        // Stage 1 of the wave learns tr (the earlier model, evaluated now that tr exists, is the reference).
        const double trBefore = perplexityOf(evaluateModel(store, m_stage2.modelName, 4096), "tr");
        const double trAfter = perplexityOf(s1.evaluation, "tr");
        qInfo("tr ppl: before %.3f, after wave-2 stage 1 %.3f", trBefore, trAfter);
        QVERIFY2(trAfter < 0.8 * trBefore, qPrintable(QString("tr: %1 -> %2").arg(trBefore).arg(trAfter)));

        ExpansionStageSpec spec2{.stage = 2, .model = "wave2-s1", .outputName = "wave2-s2"};
        spec2.train = stageConfig(40, 1e-2);
        spec2.oldShare = 0.5;
        spec2.routerStatsEvery = 0;
        const ExpansionOutcome s2 = trainExpansionStage(store, spec2);
        QCOMPARE(s2.experts, (std::vector<int>{4, 3}));
        const auto run2 = nlohmann::json::parse(store.runs().back().config);
        QCOMPARE(run2["wave"].get<int>(), 2);
        QCOMPARE(run2["old_languages"].get<std::vector<std::string>>().size(), size_t(4));
        // Section 7: in wave 2 the wave-1 languages are old everywhere: the rows of de and ru (wave 1)
        // are old rows for the LPR mask and the classifier, as en and es are; only tr's are new.
        auto oldRows = run2["old_rows_languages"].get<std::vector<std::string>>();
        std::sort(oldRows.begin(), oldRows.end());
        QCOMPARE(oldRows, (std::vector<std::string>{"de", "en", "es", "ru"}));
    }

    // The new-language tokens of --train-new-token-rows, by frequency per group, on streams made here.
    void newLanguageTokensByFrequency()
    {
        LanguageStream en{.language = "en"}, de{.language = "de"}, fr{.language = "fr"};
        // en: 1000 tokens: 999 of token 5 and one of token 7 (frequency 0.001 each for 7).
        en.tokens.assign(999, 5);
        en.tokens.push_back(7);
        // de: 10 tokens: 7 once (0.1), 6 eight times, 5 once (0.1 against en's 0.999).
        de.tokens = {7, 6, 6, 6, 6, 6, 6, 6, 6, 5};
        fr.tokens = {9, 9, 9}; // a later wave's language: not counted
        polymoe::detail::WavePlan wave;
        wave.old = {"en"};
        wave.fresh = {"de"};
        const auto fresh = polymoe::detail::newLanguageTokens({en, de, fr}, wave, 12, 0.01);
        // 6: new only. 7: old share 0.001 / (0.001 + 0.1) = 0.0099 <= 0.01, although half of its
        // occurrences are old-language ones. 5: 0.999 / 1.099. 9: not in the wave. 0: nowhere.
        const std::vector<bool> expect = {false, false, false, false, false, false, true, true, false, false, false, false};
        QCOMPARE(fresh, expect);
        // A stricter share leaves 7 out.
        QVERIFY(!polymoe::detail::newLanguageTokens({en, de}, wave, 12, 0.009)[7]);
        // Without old-language text every token of the new text counts.
        polymoe::detail::WavePlan onlyNew;
        onlyNew.fresh = {"de"};
        const auto all = polymoe::detail::newLanguageTokens({de}, onlyNew, 12);
        QVERIFY(all[5] && all[6] && all[7] && !all[9]);
    }

    // Beyond the papers: stage 1 also trains the embedding and LM-head rows of the new languages'
    // tokens (de 33..47, ru 48..62); every other row and every other frozen weight stays bit for bit.
    void stage1TrainsNewTokenRows()
    {
        ProjectStore &store = *m_store;
        ExpansionStageSpec spec{.stage = 1, .model = "base", .allocationId = m_allocationId, .trainNewTokenRows = true,
                                .outputName = "stage1-rows"};
        spec.train = stageConfig(300, 1e-2);
        spec.routerStatsEvery = 0;
        const ExpansionOutcome s = trainExpansionStage(store, spec);
        const auto run = nlohmann::json::parse(store.run(s.runId)->config);
        QCOMPARE(run["new_token_rows"].get<int64_t>(), int64_t(30));
        QCOMPARE(run["new_token_rows_parameters"].get<int64_t>(), int64_t(30 * 64 * 2));
        QVERIFY(run["expansion"]["train_new_token_rows"].get<bool>());
        const auto pb = paramsOf(loadModelFolder(m_base.modelDir)), ps = paramsOf(loadModelFolder(s.modelDir));
        for (const char *name : {"model.embed_tokens.weight", "lm_head.weight"}) {
            int moved = 0;
            for (int64_t t = 0; t < kVocab; ++t) {
                const bool same = at::equal(ps.at(name)[t], pb.at(name)[t]);
                if (t >= 33 && t <= 62)
                    moved += !same;
                else
                    QVERIFY2(same, qPrintable(QString("%1 row %2").arg(name).arg(t)));
            }
            QCOMPARE(moved, 30);
        }
        for (const auto &[name, t] : ps)
            if (name.find(".mlp.") == std::string::npos && name != "model.embed_tokens.weight" && name != "lm_head.weight")
                QVERIFY2(at::equal(t, pb.at(name)), name.c_str());
        // The base's rows by group (model rows): de and ru's 30 tokens, en and es's 30, BOS and EOS
        // shared, 0 and 63 never in the text; medians of the row norms computed here.
        const auto groups = tokenRowStatistics(store, "base");
        QCOMPARE(int(groups.size()), 4);
        const std::vector<std::vector<int64_t>> ids = {{}, {}, {1, 2}, {0, 63}};
        std::vector<std::vector<int64_t>> members = ids;
        for (int64_t t = 3; t <= 62; ++t)
            members[t >= 33 ? 0 : 1].push_back(t);
        for (size_t g = 0; g < 4; ++g) {
            QCOMPARE(groups[g].tokens, int64_t(members[g].size()));
            for (const auto &[matrix, value] : {std::pair{"model.embed_tokens.weight", groups[g].medianEmbeddingNorm},
                                                std::pair{"lm_head.weight", groups[g].medianHeadNorm}}) {
                std::vector<double> norms;
                for (int64_t t : members[g])
                    norms.push_back(pb.at(matrix)[t].norm().item<double>());
                std::sort(norms.begin(), norms.end());
                const size_t n = norms.size();
                const double expect = n % 2 ? norms[n / 2] : (norms[n / 2 - 1] + norms[n / 2]) / 2;
                QVERIFY2(std::abs(value - expect) < 1e-5, qPrintable(QString("%1 %2: %3 vs %4").arg(g).arg(matrix).arg(value).arg(expect)));
            }
        }
        // The rows help the new languages beyond the experts alone (stage 1 with the same steps).
        for (const char *lang : {"de", "ru"}) {
            const double experts = perplexityOf(m_stage1.evaluation, lang), rows = perplexityOf(s.evaluation, lang);
            qInfo("%s ppl: stage 1 %.3f, with the new-token rows %.3f", lang, experts, rows);
            QVERIFY2(rows < experts, qPrintable(QString("%1: %2 -> %3").arg(lang).arg(experts).arg(rows)));
        }
    }
};

QTEST_GUILESS_MAIN(TestExpansion)
#include "tst_expansion.moc"
