// Held-out perplexity and its document bootstrap: the interval against cases worked out by hand
// and against the delta-method approximation computed here, and evaluatePerplexity's point
// estimate against a plain mean cross-entropy over the same sequences, with each target counted in
// the document it belongs to. An out-of-domain probe (evaluateProbe) scores text exactly as the
// held-out shards are scored, and reaches the forgetting report.
#include "bootstrap.h"
#include "common/tiny_model.h"
#include "evaluation.h"
#include "model_io.h"
#include "polymoe/corpus.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/error.h"
#include "polymoe/forgetting_report.h"
#include "polymoe/project_tokenizer.h"

#include <nlohmann/json.hpp>
#include <torch/nn/functional/loss.h>

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include <cmath>
#include <random>

using namespace polymoe;

class TestEvaluation : public QObject {
    Q_OBJECT

    // Documents of the given text lengths, each as BOS (1) text EOS (2); text token i of a document
    // of length len is 3 + (i * step + len) % 29.
    static LanguageStream bosEosStream(std::initializer_list<int> lengths, int step)
    {
        LanguageStream s;
        s.language = "xx";
        s.bos = 1;
        for (int len : lengths) {
            s.tokens.push_back(1);
            for (int i = 0; i < len; ++i)
                s.tokens.push_back(int32_t(3 + (i * step + len) % 29));
            s.tokens.push_back(2);
            s.documentEnds.push_back(int64_t(s.tokens.size()));
        }
        return s;
    }

    // Tokenizes the project's corpora with the Llama-3 test tokenizer and imports a random tiny model
    // (saved to dir/tiny) sized for it.
    static ModelRecord tokenizeAndImportTinyModel(ProjectStore &store, const std::filesystem::path &dir)
    {
        importTokenizer(store, std::filesystem::path(POLYMOE_TEST_DATA_DIR) / "tokenizer" / "llama3.tokenizer.json");
        tokenizeProject(store);
        ModelConfig cfg = test::tinyLlamaConfig();
        cfg.vocabSize = 2268;
        torch::manual_seed(3);
        CausalLM model(cfg);
        saveModelFolder(*model, dir / "tiny", std::string());
        return importModelFolder(store, dir / "tiny", "tiny");
    }

private Q_SLOTS:
    void twoDocumentsByHand()
    {
        // A: 10 targets at 2 nats, B: 10 targets at 4 nats. Resampling two documents gives AA, AB/BA
        // and BB with probabilities 1/4, 1/2, 1/4, so perplexity e^2, e^3 or e^4; the 2.5% and 97.5%
        // quantiles of 1,000 resamples fall inside the AA and BB masses.
        const auto ci = bootstrapPerplexity({20.0, 40.0}, {10, 10});
        QVERIFY2(std::abs(ci.low - std::exp(2.0)) < 1e-9, qPrintable(QString::number(ci.low)));
        QVERIFY2(std::abs(ci.high - std::exp(4.0)) < 1e-9, qPrintable(QString::number(ci.high)));
    }

    void equalDocumentsGiveAPoint()
    {
        // Every document at 3 nats per target (lengths differ): every resample has perplexity e^3.
        const auto ci = bootstrapPerplexity({30.0, 6.0, 60.0, 3.0}, {10, 2, 20, 1});
        QVERIFY(std::abs(ci.low - std::exp(3.0)) < 1e-9);
        QVERIFY(std::abs(ci.high - std::exp(3.0)) < 1e-9);
    }

    void documentsWithoutTargetsAreLeftOut()
    {
        // Same as the two-document case with empty documents beside: those must not be drawn.
        const auto ci = bootstrapPerplexity({0.0, 20.0, 0.0, 40.0, 0.0}, {0, 10, 0, 10, 0});
        QVERIFY(std::abs(ci.low - std::exp(2.0)) < 1e-9);
        QVERIFY(std::abs(ci.high - std::exp(4.0)) < 1e-9);
        const auto one = bootstrapPerplexity({20.0, 0.0}, {10, 0});
        QVERIFY(std::isnan(one.low) && std::isnan(one.high));
        QVERIFY(std::isnan(bootstrapPerplexity({}, {}).low));
    }

    void matchesTheDeltaMethodOnManyDocuments()
    {
        // 400 documents, lengths 20-200, per-target loss around 4 nats. For the ratio estimator
        // R = sum L / sum N, var(R) ~ sum (L_i - R N_i)^2 / (sum N)^2, so the 95% interval of the
        // perplexity is about exp(R -+ 1.96 se). The bootstrap must agree within 10% of the width.
        std::mt19937 rng(11);
        std::uniform_int_distribution<int> len(20, 200);
        std::normal_distribution<double> rate(4.0, 0.6);
        std::vector<double> loss;
        std::vector<int64_t> n;
        for (int i = 0; i < 400; ++i) {
            n.push_back(len(rng));
            loss.push_back(rate(rng) * double(n.back()));
        }
        double sl = 0, sn = 0;
        for (size_t i = 0; i < n.size(); ++i) {
            sl += loss[i];
            sn += double(n[i]);
        }
        const double r = sl / sn;
        double v = 0;
        for (size_t i = 0; i < n.size(); ++i)
            v += std::pow(loss[i] - r * double(n[i]), 2);
        const double se = std::sqrt(v) / sn;
        const double low = std::exp(r - 1.96 * se), high = std::exp(r + 1.96 * se);
        const auto ci = bootstrapPerplexity(loss, n, 4000);
        const double width = high - low;
        QVERIFY2(std::abs(ci.low - low) < 0.1 * width && std::abs(ci.high - high) < 0.1 * width,
                 qPrintable(QString("bootstrap %1-%2, delta method %3-%4").arg(ci.low).arg(ci.high).arg(low).arg(high)));
        QVERIFY(ci.low < std::exp(r) && std::exp(r) < ci.high);
    }

    void badInputIsRefused()
    {
        QVERIFY_THROWS_EXCEPTION(ConfigError, bootstrapPerplexity({1.0, 2.0}, {1}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, bootstrapPerplexity({1.0, 2.0}, {1, 1}, 1));
        QVERIFY_THROWS_EXCEPTION(ConfigError, bootstrapPerplexity({1.0, 2.0}, {1, 1}, 100, 1.0));
    }

    void aDocumentsLeadingBosIsNoTarget()
    {
        // [BOS 5 1 EOS][BOS 7 EOS] with BOS = 1 and EOS = 2: position 4 is the second document's BOS,
        // given to the model after the first one's EOS, never predicted. A token equal to BOS inside
        // a document (position 2) is text and is scored.
        LanguageStream s;
        s.tokens = {1, 5, 1, 2, 1, 7, 2};
        s.documentEnds = {4, 7};
        s.bos = 1;
        const std::vector<int64_t> expected = {0, 0, 0, -1, 1, 1}; // positions 1..6
        for (int64_t pos = 1; pos <= 6; ++pos)
            QCOMPARE(targetDocument(s, pos), expected[size_t(pos - 1)]);
        // Without a BOS every position is a target, each in its document.
        s.bos = -1;
        const std::vector<int64_t> all = {0, 0, 0, 1, 1, 1};
        for (int64_t pos = 1; pos <= 6; ++pos)
            QCOMPARE(targetDocument(s, pos), all[size_t(pos - 1)]);
    }

    void evaluationLeavesOutBosTargets()
    {
        const ModelConfig c = test::tinyLlamaConfig();
        torch::manual_seed(5);
        CausalLM model(c);
        // Documents of 20, 9 and 30 text tokens, each as BOS text EOS (BOS 1, EOS 2): 65 tokens,
        // sequences of 16 -> 4 sequences, target positions 1..64. The BOS of documents 2 and 3 sit at
        // positions 22 and 33, so 62 targets are scored: 21 (positions 1-21) + 10 (23-32) + 31 (34-64).
        LanguageStream s = bosEosStream({20, 9, 30}, 5);
        QCOMPARE(s.tokens.size(), size_t(65));
        const auto rows = evaluatePerplexity(*model, {s}, 16, 0, 4);
        QCOMPARE(rows[0].tokens, int64_t(62));
        QCOMPARE(rows[0].documents, int64_t(3));

        // The same number by hand: cross-entropy of every target but positions 22 and 33.
        at::NoGradGuard g;
        model->eval();
        std::vector<int64_t> flat(s.tokens.begin(), s.tokens.begin() + 65);
        const auto all = torch::from_blob(flat.data(), {1, 65}, at::kLong).clone();
        double sum = 0;
        int n = 0;
        for (int k = 0; k < 4; ++k) {
            const auto window = all.slice(1, k * 16, k * 16 + 17);
            const auto logits = model->forward(window.slice(1, 0, 16));
            const auto losses = torch::nn::functional::cross_entropy(
                logits.reshape({-1, c.vocabSize}), window.slice(1, 1, 17).reshape({-1}),
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
            for (int t = 0; t < 16; ++t) {
                const int pos = k * 16 + 1 + t;
                if (pos == 22 || pos == 33)
                    continue;
                sum += losses[t].item<double>();
                ++n;
            }
        }
        QCOMPARE(n, 62);
        QVERIFY2(std::abs(rows[0].loss - sum / n) < 1e-5, qPrintable(QString("%1 vs %2").arg(rows[0].loss).arg(sum / n)));
    }

    void evaluationCountsEveryTargetInItsDocument()
    {
        const ModelConfig c = test::tinyLlamaConfig();
        torch::manual_seed(3);
        CausalLM model(c);
        // Three documents of 30, 50 and 21 tokens: 101 tokens, sequences of 16 -> 6 sequences,
        // 96 targets (the last 5 tokens do not fill a sequence).
        LanguageStream s;
        s.language = "xx";
        for (int len : {30, 50, 21}) {
            for (int i = 0; i < len; ++i)
                s.tokens.push_back(int32_t((i * 7 + len) % 32));
            s.documentEnds.push_back(int64_t(s.tokens.size()));
        }
        const auto rows = evaluatePerplexity(*model, {s}, 16, 0, 4);
        QCOMPARE(rows.size(), size_t(1));
        const auto &r = rows[0];
        QCOMPARE(r.tokens, int64_t(96));
        QCOMPARE(r.documents, int64_t(3)); // targets 1..96 reach into every document

        // The point estimate: plain mean cross-entropy over the same six sequences.
        at::NoGradGuard g;
        std::vector<int64_t> flat;
        for (int k = 0; k < 6; ++k)
            flat.insert(flat.end(), s.tokens.begin() + k * 16, s.tokens.begin() + k * 16 + 17);
        const auto all = torch::from_blob(flat.data(), {6, 17}, at::kLong).clone();
        model->eval();
        const auto logits = model->forward(all.slice(1, 0, 16));
        const double mean = torch::nn::functional::cross_entropy(logits.reshape({-1, c.vocabSize}),
                                                                 all.slice(1, 1, 17).reshape({-1}))
                                .item<double>();
        QVERIFY2(std::abs(r.loss - mean) < 1e-5, qPrintable(QString("%1 vs %2").arg(r.loss).arg(mean)));
        QVERIFY(std::abs(r.perplexity - std::exp(mean)) < 1e-3);
        QVERIFY(r.perplexityLow <= r.perplexity && r.perplexity <= r.perplexityHigh);
        QVERIFY(r.perplexityLow < r.perplexityHigh);

        // One document: no interval.
        LanguageStream one = s;
        one.documentEnds = {int64_t(one.tokens.size())};
        const auto single = evaluatePerplexity(*model, {one}, 16, 0, 4);
        QCOMPARE(single[0].documents, int64_t(1));
        QVERIFY(std::isnan(single[0].perplexityLow) && std::isnan(single[0].perplexityHigh));
        QVERIFY(std::abs(single[0].loss - r.loss) < 1e-9);
    }

    // Bits per character: the text the scored targets cover. With document sizes, the first two
    // documents (BOS + 20 and BOS + 9 text tokens + EOS) are scored whole; sequences of 16 and
    // maxTokens 32 score targets 1..32, so the third document (BOS at 33) is not reached. With
    // maxTokens 48 it is scored at positions 34..48: 15 of its 31 targets.
    void bitsPerCharacterCoverTheScoredText()
    {
        QVERIFY(std::isnan(bitsPerUnit(2.0, 10, 0)));
        QVERIFY(std::abs(bitsPerUnit(std::log(2.0), 12, 4.0) - 3.0) < 1e-12); // 12 tokens of 1 bit over 4 characters

        const ModelConfig c = test::tinyLlamaConfig();
        torch::manual_seed(9);
        CausalLM model(c);
        LanguageStream s = bosEosStream({20, 9, 30}, 3);
        const auto noSizes = evaluatePerplexity(*model, {s}, 16, 32, 4);
        QCOMPARE(noSizes[0].characters, 0.0);
        s.documentCharacters = {100, 40, 155};
        s.documentBytes = {110, 80, 310};
        const auto two = evaluatePerplexity(*model, {s}, 16, 32, 4);
        QCOMPARE(two[0].tokens, int64_t(31)); // 21 + 10: position 22 is the second BOS
        QVERIFY(std::abs(two[0].characters - 140.0) < 1e-9);
        QVERIFY(std::abs(two[0].bytes - 190.0) < 1e-9);
        const auto three = evaluatePerplexity(*model, {s}, 16, 48, 4);
        QCOMPARE(three[0].tokens, int64_t(31 + 15));
        QVERIFY(std::abs(three[0].characters - (140.0 + 155.0 * 15.0 / 31.0)) < 1e-9);
        QVERIFY(std::abs(three[0].bytes - (190.0 + 310.0 * 15.0 / 31.0)) < 1e-9);
        // Sizes that do not match the documents are ignored, not misread.
        s.documentCharacters.pop_back();
        QCOMPARE(evaluatePerplexity(*model, {s}, 16, 32, 4)[0].characters, 0.0);
    }

    // The held-out documents of a language, written as a probe file (paragraphs), score exactly as
    // the held-out shard does: the same tokens, loss and characters, by the other road (file ->
    // paragraphs -> project tokenizer, instead of corpus -> shard). The report shows the probe.
    // A language whose documents are all training text has no held-out figure: evaluating the model
    // reports it with no tokens and records nothing for it (its loss would be NaN), instead of failing.
    void aLanguageWithoutHeldOutTextIsNotRecorded()
    {
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString();
        ProjectStore store = ProjectStore::create(dir / "p.polymoe");
        std::vector<RawDocument> en, de;
        for (int i = 0; i < 30; ++i) {
            en.push_back({"English document " + std::to_string(i) + " about the lazy dog and the fox.", "gen"});
            de.push_back({"Deutsches Dokument " + std::to_string(i) + " \u00fcber den faulen Hund.", "gen"});
        }
        importDocuments(store, {"en", "English", LanguageGroup::Old, 0}, {{{"en", "test", "", "test", "txt"}, en}},
                        {.heldoutFraction = 0.5});
        importDocuments(store, {"de", "German", LanguageGroup::New, 1}, {{{"de", "test", "", "test", "txt"}, de}},
                        {.heldoutFraction = 0.0});
        const ModelRecord rec = tokenizeAndImportTinyModel(store, dir);
        const auto rows = evaluateModel(store, "tiny", 0, {}, {}, 16);
        QCOMPARE(rows.size(), size_t(2));
        for (const auto &r : rows)
            QCOMPARE(r.tokens == 0, r.language == "de");
        const auto recorded = store.evaluations(rec.id);
        QCOMPARE(recorded.size(), size_t(1));
        QCOMPARE(recorded[0].language, std::string("en"));
    }

    void probeScoresTextAsHeldOutTextIs()
    {
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString();
        ProjectStore store = ProjectStore::create(dir / "p.polymoe");
        std::vector<RawDocument> docs;
        std::string probeText;
        for (int i = 0; i < 40; ++i) {
            std::string t = "Document " + std::to_string(i) + ": the quick brown fox jumps " + std::to_string(i * 7 % 13) +
                            " times over the lazy dog, sagt der Fuchs, und läuft " + std::string(size_t(i % 5 + 1), 'x') + ".";
            if (isHeldOut(t, 0.5, 0))
                probeText += (probeText.empty() ? "" : "\n\n") + t;
            docs.push_back({t, "gen"});
        }
        importDocuments(store, {"en", "English", LanguageGroup::Old, 0}, {{{"gen", "test", "", "test", "txt"}, docs}},
                        {.heldoutFraction = 0.5});
        tokenizeAndImportTinyModel(store, dir);
        const std::filesystem::path file = dir / "probe.txt";
        std::ofstream(file, std::ios::binary) << probeText << "\n";

        const auto held = evaluateModel(store, "tiny", 0, {}, {}, 16);
        const auto probe = evaluateProbe(store, "tiny", "same-text", "en", {file}, 0, {}, {}, 16);
        QCOMPARE(held.size(), size_t(1));
        QCOMPARE(probe.size(), size_t(1));
        QVERIFY(held[0].tokens > 100);
        QCOMPARE(probe[0].tokens, held[0].tokens);
        QCOMPARE(probe[0].documents, held[0].documents);
        QVERIFY2(std::abs(probe[0].loss - held[0].loss) < 1e-9, qPrintable(QString::number(probe[0].loss - held[0].loss)));
        QVERIFY(probe[0].characters > 0 && std::abs(probe[0].characters - held[0].characters) < 1e-9);

        const ForgettingReport r = buildForgettingReport(store);
        QCOMPARE(r.probes.size(), size_t(1));
        QCOMPARE(r.probes[0].name, std::string("same-text"));
        QCOMPARE(r.probes[0].language, std::string("en"));
        const ReportProbeScore &score = r.models.front().probes.at("same-text");
        QVERIFY(std::abs(score.perplexity - std::exp(held[0].loss)) < 1e-9 * score.perplexity);
        // bits per character: loss in nats per token x tokens / characters / ln 2.
        const double bpc = held[0].loss * double(held[0].tokens) / held[0].characters / std::log(2.0);
        QVERIFY(std::abs(score.bitsPerCharacter - bpc) < 1e-9);
        QCOMPARE(r.probeRatio("tiny", "same-text"), 1.0);
        QVERIFY(std::isnan(r.probeRatio("tiny", "other")));
        QVERIFY(forgettingReportText(r).find("out-of-domain probe 'same-text' (en") != std::string::npos);
        const auto j = nlohmann::json::parse(forgettingReportJson(r));
        QCOMPARE(j["probes"][0]["name"].get<std::string>(), std::string("same-text"));
        QVERIFY(std::abs(j["models"][0]["probes"]["same-text"]["perplexity"].get<double>() - score.perplexity) < 1e-12);

        // Refused, naming the problem: a name that is no plain word, a language the project lacks,
        // text that is not UTF-8 (file and line), a file with no text.
        QVERIFY_THROWS_EXCEPTION(ConfigError, evaluateProbe(store, "tiny", "../up", "en", {file}, 0));
        QVERIFY_THROWS_EXCEPTION(ConfigError, evaluateProbe(store, "tiny", "x", "zz", {file}, 0));
        const std::filesystem::path bad = dir / "bad.txt", blank = dir / "blank.txt";
        std::ofstream(bad, std::ios::binary) << "fine\n\nnot \xff utf-8\n";
        std::ofstream(blank, std::ios::binary) << "\n\n  \n";
        try {
            evaluateProbe(store, "tiny", "bad", "en", {bad}, 0);
            QFAIL("invalid UTF-8 accepted");
        } catch (const FormatError &e) {
            QVERIFY2(std::string(e.what()).find("bad.txt:3") != std::string::npos, e.what());
        }
        QVERIFY_THROWS_EXCEPTION(ConfigError, evaluateProbe(store, "tiny", "blank", "en", {blank}, 0));
        // Nothing of the refused probes was recorded.
        QCOMPARE(buildForgettingReport(store).probes.size(), size_t(1));
    }
};

QTEST_GUILESS_MAIN(TestEvaluation)
#include "tst_evaluation.moc"
