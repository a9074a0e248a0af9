// Tests for layer similarity (METHOD.md section 1) and classifier layers (section 6): the running-sum
// similarity against the explicit N x N mean of pairwise cosines, S_i on a case worked on paper, the
// single-new-language Decision, errors, and the choice of the K most similar MoE layers.
#include "models/llama.h"
#include "polymoe/error.h"
#include "similarity.h"
#include "similarity_sample.h"

#include <QtTest>

#include <cmath>
#include <random>
#include <set>

using namespace polymoe;

namespace {

using Vec = std::vector<double>;

// The message of the ConfigError that f throws, or "" (and a test failure at the caller) if none.
template <typename F>
QString configErrorOf(F &&f)
{
    try {
        f();
    } catch (const ConfigError &e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

// Reference: 1/(|A||B|) sum_a sum_b cos(a, b), with plain loops over every token pair.
double explicitMeanCosine(const std::vector<Vec> &a, const std::vector<Vec> &b)
{
    double sum = 0.0;
    for (const Vec &x : a)
        for (const Vec &y : b) {
            double dot = 0.0, xx = 0.0, yy = 0.0;
            for (size_t k = 0; k < x.size(); ++k) {
                dot += x[k] * y[k];
                xx += x[k] * x[k];
                yy += y[k] * y[k];
            }
            sum += dot / (std::sqrt(xx) * std::sqrt(yy));
        }
    return sum / (static_cast<double>(a.size()) * static_cast<double>(b.size()));
}

// rows (n, d) of float values -> a float tensor (n, d); the test keeps the same values in double.
at::Tensor toTensor(const std::vector<Vec> &rows, at::ScalarType dtype = at::kFloat)
{
    const auto n = static_cast<int64_t>(rows.size());
    const auto d = static_cast<int64_t>(rows.empty() ? 0 : rows[0].size());
    at::Tensor t = at::empty({n, d}, at::TensorOptions().dtype(at::kDouble));
    auto acc = t.accessor<double, 2>();
    for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < d; ++k)
            acc[i][k] = rows[static_cast<size_t>(i)][static_cast<size_t>(k)];
    return t.to(dtype);
}

// |got - want| <= 1e-9 |want| + 1e-13: the running sums and the pair loops differ only by double
// rounding (~1e-15 here); the absolute floor covers means that are close to 0.
bool near(double got, double want) { return std::abs(got - want) <= 1e-9 * std::abs(want) + 1e-13; }

Vec unitAxis(int d, int k, double scale = 1.0)
{
    Vec v(static_cast<size_t>(d), 0.0);
    v[static_cast<size_t>(k)] = scale;
    return v;
}

} // namespace

class TestSimilarity : public QObject {
    Q_OBJECT

private:
    // The paper example (see handWorkedScores): languages in the order en, de, es, ru; old = en, es.
    // Layer 0 has vectors whose pairwise cosines are 0, 1, 0.6, 0.8 or 0.48; layer 1 has +-e1 only.
    static SimilarityAccumulator paperExample()
    {
        SimilarityAccumulator acc(2, 4, {"en", "de", "es", "ru"});
        const Vec u34 = {3, 4, 0, 0};       // unit (0.6, 0.8, 0, 0)
        const Vec u034 = {0, 3, 4, 0};      // unit (0, 0.6, 0.8, 0)
        // Layer 0. en = {2 e1, e2}: the norm must not matter.
        acc.add(0, 0, toTensor({unitAxis(4, 0, 2.0), unitAxis(4, 1)}));
        // de = {e1, e3}, given as (1, 3, 4) with a third, masked-out token far from both.
        {
            at::Tensor h = toTensor({unitAxis(4, 0), unitAxis(4, 2), {-9, 7, -5, 3}}).reshape({1, 3, 4});
            at::Tensor mask = at::tensor(std::vector<uint8_t>{1, 1, 0}).to(at::kBool).reshape({1, 3});
            acc.add(0, 1, h, mask);
        }
        // es = {5 e1, (3, 4, 0, 0)} in two chunks.
        acc.add(0, 2, toTensor({unitAxis(4, 0, 5.0)}));
        acc.add(0, 2, toTensor({u34}));
        // ru = {(0, 3, 4, 0), e4}.
        acc.add(0, 3, toTensor({u034, unitAxis(4, 3)}, at::kDouble));
        // Layer 1: every token is e1, except ru = {-e1}.
        for (int l = 0; l < 3; ++l)
            acc.add(1, l, toTensor({unitAxis(4, 0), unitAxis(4, 0, 3.0)}));
        acc.add(1, 3, toTensor({unitAxis(4, 0, -1.0)}));
        return acc;
    }

private Q_SLOTS:
    void identityMatchesExplicitPairs_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<QList<int>>("counts");   // tokens per language
        QTest::addColumn<int>("chunks");          // each language's tokens fed in this many add() calls
        QTest::addColumn<bool>("batched");        // (B, T, d) chunks instead of (N, d)
        QTest::addColumn<bool>("masked");         // extra masked-out tokens in every chunk
        QTest::addColumn<double>("offset");       // added to every coordinate: 0 gives means near 0
        QTest::newRow("d3 tiny") << 3 << QList<int>{1, 2} << 1 << false << false << 0.0;
        QTest::newRow("d8 three langs") << 8 << QList<int>{5, 17, 9} << 3 << false << false << 0.3;
        QTest::newRow("d16 batched masked") << 16 << QList<int>{24, 7, 40} << 4 << true << true << 0.0;
        QTest::newRow("d64 unequal") << 64 << QList<int>{100, 3, 57, 1} << 5 << true << true << 0.5;
        QTest::newRow("d33 flat masked") << 33 << QList<int>{31, 64} << 7 << false << true << -0.2;
    }
    void identityMatchesExplicitPairs()
    {
        QFETCH(int, d);
        QFETCH(QList<int>, counts);
        QFETCH(int, chunks);
        QFETCH(bool, batched);
        QFETCH(bool, masked);
        QFETCH(double, offset);
        const int layers = 2;
        std::mt19937 rng(1234 + d);
        std::normal_distribution<float> normal(0.0f, 1.0f);

        std::vector<std::string> names;
        for (int l = 0; l < counts.size(); ++l)
            names.push_back("lang" + std::to_string(l));
        SimilarityAccumulator acc(layers, d, names);

        // tokens[layer][language]: the included vectors, as float values kept in double.
        std::vector<std::vector<std::vector<Vec>>> tokens(layers, std::vector<std::vector<Vec>>(counts.size()));
        for (int layer = 0; layer < layers; ++layer) {
            for (int l = 0; l < counts.size(); ++l) {
                std::vector<Vec> &mine = tokens[layer][l];
                for (int i = 0; i < counts[l]; ++i) {
                    Vec v(static_cast<size_t>(d));
                    // Each layer and language has its own shift so that the similarities differ.
                    for (int k = 0; k < d; ++k)
                        v[k] = static_cast<float>(normal(rng) + offset * (1 + (k + l + layer) % 3));
                    mine.push_back(v);
                }
                // Split into `chunks` consecutive pieces (some may be empty) and feed each.
                const int n = counts[l];
                for (int c = 0; c < chunks; ++c) {
                    const int begin = n * c / chunks, end = n * (c + 1) / chunks;
                    std::vector<Vec> rows(mine.begin() + begin, mine.begin() + end);
                    std::vector<uint8_t> keep(rows.size(), 1);
                    if (masked) {
                        // Two extra tokens, masked out, pointing far away: counting them would show.
                        for (int extra = 0; extra < 2; ++extra) {
                            Vec far(static_cast<size_t>(d), 0.0);
                            far[static_cast<size_t>(extra % d)] = (extra ? -50.0 : 80.0);
                            rows.insert(rows.begin() + static_cast<long>(rows.size() / 2), far);
                            keep.insert(keep.begin() + static_cast<long>(keep.size() / 2), 0);
                        }
                    }
                    if (rows.empty())
                        continue;
                    at::Tensor h = toTensor(rows);
                    at::Tensor mask = masked ? at::tensor(keep).to(at::kBool) : at::Tensor();
                    if (batched && rows.size() % 2 == 0) {
                        const auto half = static_cast<int64_t>(rows.size() / 2);
                        h = h.reshape({2, half, d});
                        if (mask.defined())
                            mask = mask.reshape({2, half});
                    } else if (batched) {
                        h = h.unsqueeze(0);
                        if (mask.defined())
                            mask = mask.unsqueeze(0);
                    }
                    acc.add(layer, l, h, mask);
                }
            }
        }

        for (int layer = 0; layer < layers; ++layer)
            for (int a = 0; a < counts.size(); ++a) {
                QCOMPARE(acc.tokens(layer, a), static_cast<int64_t>(counts[a]));
                for (int b = 0; b < counts.size(); ++b) {
                    const double want = explicitMeanCosine(tokens[layer][a], tokens[layer][b]);
                    const double got = acc.similarity(layer, a, b);
                    if (!near(got, want))
                        QFAIL(qPrintable(QString("layer %1, languages %2/%3: %4 against explicit %5")
                                             .arg(layer).arg(a).arg(b).arg(got, 0, 'g', 17).arg(want, 0, 'g', 17)));
                }
            }
        // Same-language similarity includes the self-pairs (cos = 1): a single token gives exactly 1.
        if (counts[0] == 1)
            QVERIFY(near(acc.similarity(0, 0, 0), 1.0));
    }

    // Worked on paper with the unit vectors of paperExample(). Layer 0, cosines per token pair:
    //   de-en: {e1,e3} x {e1,e2}             = 1,0,0,0       -> 1/4   = 0.25
    //   de-es: {e1,e3} x {e1,(.6,.8,0,0)}    = 1,.6,0,0      -> 1.6/4 = 0.40
    //   ru-en: {(0,.6,.8,0),e4} x {e1,e2}    = 0,.6,0,0      -> 0.6/4 = 0.15
    //   ru-es: {(0,.6,.8,0),e4} x {e1,(.6,.8,0,0)} = 0,.48,0,0 -> 0.12
    //   de-ru: {e1,e3} x {(0,.6,.8,0),e4}    = 0,0,.8,0      -> 0.20
    //   en-es (old-old, not in S_i): 1,.6,0,.8 -> 0.60;  en-en: 1,0,0,1 -> 0.5;  es-es: 1,.6,.6,1 -> 0.8
    //   newOld = (0.25 + 0.40 + 0.15 + 0.12) / 4 = 0.23;  newNew = 0.20;  S_0 = (0.23 + 0.20) / 2 = 0.215
    // Layer 1 (all e1, ru = -e1): de-en 1, de-es 1, ru-en -1, ru-es -1 -> newOld 0; de-ru -1 -> newNew -1;
    //   S_1 = -0.5.
    void handWorkedScores()
    {
        const SimilarityAccumulator acc = paperExample();
        QCOMPARE(acc.tokens(0, 1), int64_t(2));  // the masked token of de is not counted
        const LayerScores s = layerScores(acc, {false, true, false, true});
        QCOMPARE(s.score.size(), size_t(2));
        // Tolerance 1e-12: sums of a few doubles.
        const auto close = [](double got, double want) { return std::abs(got - want) <= 1e-12; };
        const auto &m = s.pairs[0];  // order en, de, es, ru
        QVERIFY(close(m[1][0], 0.25));
        QVERIFY(close(m[1][2], 0.40));
        QVERIFY(close(m[3][0], 0.15));
        QVERIFY(close(m[3][2], 0.12));
        QVERIFY(close(m[1][3], 0.20));
        QVERIFY(close(m[3][1], 0.20));
        QVERIFY(close(m[0][2], 0.60));
        QVERIFY(close(m[0][0], 0.50));
        QVERIFY(close(m[2][2], 0.80));
        QVERIFY(close(m[1][1], 0.50));  // de-de: 1,0,0,1
        QVERIFY(close(s.newOld[0], 0.23));
        QVERIFY(close(s.newNew[0], 0.20));
        QVERIFY(close(s.score[0], 0.215));
        QVERIFY(close(s.newOld[1], 0.0));
        QVERIFY(close(s.newNew[1], -1.0));
        QVERIFY(close(s.score[1], -0.5));
    }

    // Decision: one new language (de) has no new-new pair; S_i is the new-old mean and newNew is NaN.
    // Layer 0: (de-en 0.25 + de-es 0.40 + de-ru 0.20) / 3 = 0.85 / 3; layer 1: (1 + 1 - 1) / 3 = 1/3.
    void singleNewLanguage()
    {
        const SimilarityAccumulator acc = paperExample();
        const LayerScores s = layerScores(acc, {false, true, false, false});
        QVERIFY(std::isnan(s.newNew[0]) && std::isnan(s.newNew[1]));
        QVERIFY(std::abs(s.newOld[0] - 0.85 / 3) <= 1e-12);
        QVERIFY(std::abs(s.score[0] - 0.85 / 3) <= 1e-12);
        QVERIFY(std::abs(s.score[1] - 1.0 / 3) <= 1e-12);
    }

    // The accumulator fed by the model's FFN-input hook, padding masked: same numbers as the explicit
    // pairs over the hooked tensors' unpadded tokens.
    void fedByModelHook()
    {
        const ModelConfig c{.vocabSize = 40, .hiddenSize = 16, .intermediateSize = 32, .numLayers = 2,
                            .numHeads = 2, .numKvHeads = 2, .headDim = 8, .maxPositionEmbeddings = 32};
        at::manual_seed(5);
        CausalLM lm(c);
        SimilarityAccumulator acc(2, 16, {"old", "new"});
        std::vector<std::vector<std::vector<Vec>>> seen(2, std::vector<std::vector<Vec>>(2));
        int language = 0;
        at::Tensor mask;
        lm->setFfnInputHook([&](int layer, const at::Tensor &h) {
            acc.add(layer, language, h, mask);
            at::Tensor hd = h.to(at::kDouble);
            for (int64_t b = 0; b < h.size(0); ++b)
                for (int64_t t = 0; t < h.size(1); ++t) {
                    if (!mask[b][t].item<bool>())
                        continue;
                    Vec v(16);
                    for (int64_t k = 0; k < 16; ++k)
                        v[k] = hd[b][t][k].item<double>();
                    seen[layer][language].push_back(v);
                }
        });
        const at::NoGradGuard noGrad;
        language = 0;
        mask = at::tensor(std::vector<uint8_t>{1, 1, 1, 1, 1, 1, 1, 0}).to(at::kBool).reshape({2, 4});
        lm->forward(at::tensor(std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9, 0}).reshape({2, 4}));
        language = 1;
        mask = at::tensor(std::vector<uint8_t>{1, 1, 1, 0, 0, 0}).to(at::kBool).reshape({1, 6});
        lm->forward(at::tensor(std::vector<int64_t>{20, 21, 22, 0, 0, 0}).reshape({1, 6}));
        for (int layer = 0; layer < 2; ++layer) {
            QCOMPARE(acc.tokens(layer, 0), int64_t(7));
            QCOMPARE(acc.tokens(layer, 1), int64_t(3));
            for (int a = 0; a < 2; ++a)
                for (int b = 0; b < 2; ++b)
                    QVERIFY(near(acc.similarity(layer, a, b), explicitMeanCosine(seen[layer][a], seen[layer][b])));
        }
    }

    // A copy owns its sums: adding to it leaves the original as it was (at::Tensor alone would share them).
    void copiesAreIndependent()
    {
        SimilarityAccumulator a(1, 2, {"x", "y"});
        a.add(0, 0, toTensor({{1, 0}}));
        a.add(0, 1, toTensor({{2, 0}}));
        SimilarityAccumulator b = a;
        b.add(0, 1, toTensor({{0, 3}}));  // y in b = {e1, e2}: sim(x, y) = (1 + 0) / 2
        QCOMPARE(a.tokens(0, 1), int64_t(1));
        QCOMPARE(a.similarity(0, 0, 1), 1.0);
        QCOMPARE(b.similarity(0, 0, 1), 0.5);
        a = b;
        b.add(0, 0, toTensor({{0, 1}}));
        QCOMPARE(a.similarity(0, 0, 1), 0.5);
        QCOMPARE(a.tokens(0, 0), int64_t(1));
    }

    void errors_data()
    {
        QTest::addColumn<int>("which");
        QTest::addColumn<QString>("expected");  // a part of the message
        QTest::newRow("no new language") << 0 << "no new language";
        QTest::newRow("no old language") << 1 << "no old language";
        QTest::newRow("flags do not match") << 2 << "3 old/new flags for 4 languages";
        QTest::newRow("language without tokens") << 3 << "layer 1, language 'ru' has no tokens";
        QTest::newRow("all tokens masked") << 4 << "layer 0, language 'b' has no tokens";
        QTest::newRow("wrong d_model") << 5 << "h has shape [2, 5]; expected (N, 4)";
        QTest::newRow("mask shape") << 6 << "mask has shape [3], h has shape [2, 4]";
        QTest::newRow("mask dtype") << 7 << "mask must be a bool tensor";
        QTest::newRow("layer out of range") << 8 << "layer 2 out of range [0, 2)";
        QTest::newRow("language out of range") << 9 << "language index 4 out of range [0, 4)";
        QTest::newRow("integer h") << 10 << "h must be floating point";
    }
    void errors()
    {
        QFETCH(int, which);
        QFETCH(QString, expected);
        const QString message = configErrorOf([&] {
            SimilarityAccumulator acc = paperExample();
            SimilarityAccumulator partial(2, 4, {"en", "de", "es", "ru"});
            for (int l = 0; l < 4; ++l)
                partial.add(0, l, toTensor({unitAxis(4, l)}));
            for (int l = 0; l < 3; ++l)
                partial.add(1, l, toTensor({unitAxis(4, l)}));
            switch (which) {
            case 0: layerScores(acc, {false, false, false, false}); break;
            case 1: layerScores(acc, {true, true, true, true}); break;
            case 2: layerScores(acc, {false, true, true}); break;
            case 3: layerScores(partial, {false, true, false, true}); break;
            case 4: {
                SimilarityAccumulator two(1, 4, {"a", "b"});
                two.add(0, 0, toTensor({unitAxis(4, 0)}));
                two.add(0, 1, toTensor({unitAxis(4, 1)}), at::zeros({1}, at::TensorOptions().dtype(at::kBool)));
                two.similarity(0, 0, 1);
                break;
            }
            case 5: acc.add(0, 0, at::ones({2, 5})); break;
            case 6: acc.add(0, 0, at::ones({2, 4}), at::ones({3}, at::TensorOptions().dtype(at::kBool))); break;
            case 7: acc.add(0, 0, at::ones({2, 4}), at::ones({2})); break;
            case 8: acc.add(2, 0, at::ones({2, 4})); break;
            case 9: acc.similarity(0, 0, 4); break;
            case 10: acc.add(0, 0, at::ones({2, 4}, at::TensorOptions().dtype(at::kLong))); break;
            }
        });
        QVERIFY2(message.contains(expected), qPrintable("got: '" + message + "'"));
        QVERIFY2(message.startsWith("config: "), qPrintable(message));
    }

    void classifierLayerChoice_data()
    {
        QTest::addColumn<QList<double>>("scores");
        QTest::addColumn<QList<int>>("experts");
        QTest::addColumn<double>("share");
        QTest::addColumn<QList<int>>("expected");
        // 10 MoE layers, 30% -> the 3 highest (layers 2, 5, 7), returned ascending.
        QTest::newRow("top 3 of 10") << QList<double>{.1, .2, .9, .3, .4, .8, .05, .7, .6, .5}
                                     << QList<int>(10, 2) << 0.3 << QList<int>{2, 5, 7};
        // Layers 2 and 5 are dense (N = 1): skipped although their scores are the highest. 8 MoE layers,
        // round(2.4) = 2 -> layers 7 (0.7) and 8 (0.6).
        QTest::newRow("dense layers skipped") << QList<double>{.1, .2, .9, .3, .4, .8, .05, .7, .6, .5}
                                              << QList<int>{2, 3, 1, 2, 2, 1, 4, 2, 2, 2} << 0.3 << QList<int>{7, 8};
        // Three layers tie at 0.9 for two places (round(0.4 * 5) = 2): the lower layers 1 and 2 win.
        QTest::newRow("ties: lower layer wins") << QList<double>{.5, .9, .9, .9, .1} << QList<int>(5, 3) << 0.4
                                                << QList<int>{1, 2};
        // Ties across a dense layer: layer 1 is dense, so the tied layers are 2, 3 and 2 wins the place.
        QTest::newRow("tie with dense layer") << QList<double>{.5, .9, .9, .9, .1} << QList<int>{2, 1, 2, 2, 2} << 0.3
                                              << QList<int>{2};
        // round(0.1 * 2) = 0, but share > 0 gives at least one layer.
        QTest::newRow("at least one") << QList<double>{.3, .4} << QList<int>{2, 2} << 0.1 << QList<int>{1};
        QTest::newRow("share 0") << QList<double>{.3, .4} << QList<int>{2, 2} << 0.0 << QList<int>{};
        QTest::newRow("no MoE layer") << QList<double>{.3, .4} << QList<int>{1, 1} << 0.3 << QList<int>{};
        QTest::newRow("share 1") << QList<double>{.3, .4, .1} << QList<int>{2, 1, 5} << 1.0 << QList<int>{0, 2};
        // Qwen1.5-1.8B has 24 layers: 0.3 * 24 = 7.2 -> 7, the papers' 7 of 24. Scores rise to layer 12.
        QList<double> hump;
        for (int i = 0; i < 24; ++i)
            hump << 1.0 - std::abs(i - 12) / 24.0 + 0.001 * i;
        QTest::newRow("Qwen 24 layers") << hump << QList<int>(24, 3) << 0.3 << QList<int>{9, 10, 11, 12, 13, 14, 15};
    }
    void classifierLayerChoice()
    {
        QFETCH(QList<double>, scores);
        QFETCH(QList<int>, experts);
        QFETCH(double, share);
        QFETCH(QList<int>, expected);
        const std::vector<int> got = classifierLayers(std::vector<double>(scores.begin(), scores.end()),
                                                      std::vector<int>(experts.begin(), experts.end()), share);
        QCOMPARE(QList<int>(got.begin(), got.end()), expected);
    }

    void classifierLayerErrors()
    {
        QVERIFY(configErrorOf([] { classifierLayers({.1, .2}, {2, 2, 2}); }).contains("2 scores for 3 layers"));
        QVERIFY(configErrorOf([] { classifierLayers({.1, .2}, {2, 2}, 1.5); }).contains("outside [0, 1]"));
        QVERIFY(configErrorOf([] { classifierLayers({.1, std::nan("")}, {2, 2}); }).contains("layer 1 has a NaN"));
    }

    // ---- The sample (section 1): seeded documents of the whole corpus, special tokens out ----

    void sampleDrawsDocumentsAcrossTheCorpusWithoutSpecials()
    {
        // Two splits of 40 documents each, document k of split p holding 5 + k % 7 text tokens, all
        // with id 100 + 10 * p + k % 10 (never BOS = 1 or EOS = 2), each as BOS text EOS.
        auto makeSplit = [](int p) {
            LanguageStream s;
            s.bos = 1;
            for (int k = 0; k < 40; ++k) {
                s.tokens.push_back(1);
                for (int t = 0; t < 5 + k % 7; ++t)
                    s.tokens.push_back(100 + 10 * p + k % 10);
                s.tokens.push_back(2);
                s.documentEnds.push_back(int64_t(s.tokens.size()));
            }
            return s;
        };
        const LanguageStream a = makeSplit(0), b = makeSplit(1);
        const int64_t budget = 150, seqLen = 4;
        const SimilaritySample s = similaritySample({&a, &b}, 2, budget, seqLen, 7);
        QCOMPARE(s.tokens, budget);
        int64_t counted = 0;
        std::set<std::pair<int, int64_t>> seen;
        for (const auto &w : s.windows) {
            QVERIFY(int64_t(w.ids.size()) <= seqLen);
            QVERIFY(w.firstCounted == 0 || (w.firstCounted == 1 && w.ids[0] == 1));
            for (size_t t = size_t(w.firstCounted); t < w.ids.size(); ++t) {
                QVERIFY2(w.ids[t] != 1 && w.ids[t] != 2, "a special token is counted");
                QCOMPARE(w.ids[t], int64_t(100 + 10 * w.part + w.document % 10)); // the window's own document
                ++counted;
            }
            seen.insert({w.part, w.document});
        }
        QCOMPARE(counted, budget);
        // Every listed document was drawn once, and both splits contribute.
        size_t listed = 0;
        for (int p = 0; p < 2; ++p) {
            const auto &d = s.documents[size_t(p)];
            QCOMPARE(std::set<int64_t>(d.begin(), d.end()).size(), d.size());
            QVERIFY2(!d.empty(), "a split gave no document");
            listed += d.size();
        }
        QCOMPARE(seen.size(), listed);
        // Not the first documents of the corpus: 150 tokens would be the first 18 documents of split
        // 0 in order; a seeded draw reaches beyond them.
        QVERIFY(*std::max_element(s.documents[0].begin(), s.documents[0].end()) >= 18 || !s.documents[1].empty());
        // The same seed draws the same documents; another seed other ones.
        QCOMPARE(similaritySample({&a, &b}, 2, budget, seqLen, 7).documents, s.documents);
        QVERIFY(similaritySample({&a, &b}, 2, budget, seqLen, 8).documents != s.documents);
        // More budget than text: all of it (80 documents, 5..11 tokens), and no more.
        int64_t all = 0;
        for (int k = 0; k < 40; ++k)
            all += 2 * (5 + k % 7);
        QCOMPARE(similaritySample({&a, &b}, 2, 1000000, 16, 1).tokens, all);
        QVERIFY_THROWS_EXCEPTION(ConfigError, similaritySample({&a}, 2, 0, 16, 1));
    }
};

QTEST_GUILESS_MAIN(TestSimilarity)
#include "tst_similarity.moc"
