// The forgetting report (METHOD.md section 8) on a project written by hand: ratios to the base,
// geometric means per group and active parameters, each checked against values worked out here.
#include "polymoe/error.h"
#include "polymoe/forgetting_report.h"
#include "polymoe/project_store.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace polymoe;

class TestForgettingReport : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;

    static std::string config(const std::string &moe)
    {
        return R"({"model_type": "llama", "hidden_size": 4, "intermediate_size": 10, "num_hidden_layers": 2)" +
               (moe.empty() ? std::string() : ", \"polymoe\": " + moe) + "}";
    }

private Q_SLOTS:
    void report()
    {
        auto store = ProjectStore::create(m_dir.filePath("r.polymoe").toStdString());
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.addLanguage({"de", "German", LanguageGroup::New, 1});
        store.addLanguage({"es", "Spanish", LanguageGroup::Old, 0});
        const int64_t base = store.addModel({0, "base", "base", "models/base", config(""), {}, {}, 1000, {}});
        // An unrelated model (no parent in the family) stays out of the report.
        store.addModel({0, "other", "imported", "/elsewhere", config(""), {}, {}, 10, {}});
        // Experts 3 and 1 with top-2: one expert of 3 * 4 * 10 weights is inactive per token.
        const int64_t s1 = store.addModel({0, "s1", "expanded", "models/s1",
                                           config(R"({"experts_per_layer": [3, 1], "top_k": 2})"), base, {}, 1252, {}});
        const int64_t run = store.beginRun("stage1", "{}", base);
        store.addMetrics(run, 10, {{"tokens", 2048}, {"seconds", 3.5}});
        store.finishRun(run, "completed", "", s1);
        store.addRouterStats({{run, s1, 10, 0, "en", 0, 0.5, 0.75, 0.6}, {run, s1, 10, 0, "en", 1, 0.5, 0.25, 0.6},
                              {run, std::nullopt, 0, 0, "en", 0, 0.3, 0.1, 0.9}});
        EvaluationRecord baseEn{base, {}, "en", "heldout", 100, 0, 50.0, {}};
        baseEn.documents = 12;
        baseEn.perplexityLow = 44.25;
        baseEn.perplexityHigh = 57.5;
        store.addEvaluations({baseEn, {base, {}, "es", "heldout", 100, 0, 40.0, {}},
                              {base, {}, "de", "heldout", 100, 0, 400.0, {}}, {s1, {}, "en", "heldout", 100, 0, 60.0, {}},
                              {s1, {}, "es", "heldout", 100, 0, 50.0, {}}, {s1, {}, "de", "heldout", 100, 0, 100.0, {}}});

        const auto r = buildForgettingReport(store);
        QCOMPARE(r.base, std::string("base"));
        QCOMPARE(r.models.size(), size_t(2));
        QCOMPARE(r.models[1].name, std::string("s1"));
        QCOMPARE(r.models[1].role, std::string("MoE stage 1"));
        QCOMPARE(r.languages[0].code, std::string("en")); // old first, then new
        QCOMPARE(r.languages[2].code, std::string("de"));
        QCOMPARE(r.ratio("s1", "en"), 1.2);
        QCOMPARE(r.ratio("s1", "de"), 0.25);
        // Old group: sqrt(1.2 * 1.25) = 1.22474...; new group: 0.25.
        for (const auto &g : r.groups)
            if (g.model == "s1")
                QVERIFY(std::abs(g.ratio - (g.group == "old" ? std::sqrt(1.2 * 1.25) : 0.25)) < 1e-12);
        QCOMPARE(r.models[1].addedParameters, int64_t(252));
        QCOMPARE(r.models[1].activeParametersPerToken, int64_t(1252 - 3 * 4 * 10));
        QCOMPARE(r.models[1].tokens, int64_t(2048));
        QCOMPARE(r.models[1].seconds, 3.5);
        // Only the saved model's statistics, expert 0's row.
        QCOMPARE(r.routing.size(), size_t(1));
        QCOMPARE(r.routing[0].expert0Top1, 0.75);
        QCOMPARE(r.routing[0].group, std::string("old"));
        const std::string text = forgettingReportText(r);
        QVERIFY2(text.find("60.0 (x1.20)") != std::string::npos, text.c_str());
        QVERIFY(forgettingReportJson(r).find("\"ratio_to_base\"") != std::string::npos);
        // The base's English interval, where it was recorded, and nothing made up for the rest.
        QCOMPARE(r.models[0].perplexityInterval.size(), size_t(1));
        QCOMPARE(r.models[0].perplexityInterval.at("en"), std::make_pair(44.25, 57.5));
        QVERIFY(r.models[1].perplexityInterval.empty());
        QVERIFY2(text.find("base                    en 44.2-57.5\n") != std::string::npos, text.c_str());
        const auto json = nlohmann::json::parse(forgettingReportJson(r));
        QCOMPARE(json["models"][0]["perplexity_interval"]["en"][1].get<double>(), 57.5);
        QVERIFY(json["models"][1]["perplexity_interval"].empty());
        QVERIFY(json["samples"].empty());
        QVERIFY(text.find("bits per character") == std::string::npos); // no text sizes recorded
    }

    // Bits per character and per byte from the recorded loss, tokens and text size; generation
    // samples grouped by prompt, languages old first, models in report order.
    void bitsPerCharacterAndSamples()
    {
        auto store = ProjectStore::create(m_dir.filePath("b.polymoe").toStdString());
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.addLanguage({"ru", "Russian", LanguageGroup::New, 1});
        const int64_t base = store.addModel({0, "base", "imported", "/m", config(""), {}, {}, 1000, {}});
        const int64_t ft = store.addModel({0, "ft", "finetuned", "models/ft", config(""), base, {}, 1000, {}});
        EvaluationRecord en{base, {}, "en", "heldout", 300, 2.0, std::exp(2.0), {}};
        en.characters = 1200; // 300 tokens x 2 nats = 865.617 bits over 1,200 characters
        en.bytes = 1250;
        EvaluationRecord ru{base, {}, "ru", "heldout", 800, 3.0, std::exp(3.0), {}};
        ru.characters = 1000;
        ru.bytes = 1900;
        store.addEvaluations({en, ru, {ft, {}, "en", "heldout", 300, 2.5, std::exp(2.5), {}}});
        store.addSamples({{ft, "ru", "Столица", " Москва", 4}, {ft, "en", "Hi", " there", 4}});
        store.addSamples({{base, "en", "Hi", " you", 4}, {base, "ru", "Столица", " —", 4}});

        const auto r = buildForgettingReport(store);
        const double ln2 = std::log(2.0);
        QVERIFY(std::abs(r.models[0].bitsPerCharacter.at("en") - 300 * 2.0 / ln2 / 1200) < 1e-12);
        QVERIFY(std::abs(r.models[0].bitsPerByte.at("en") - 300 * 2.0 / ln2 / 1250) < 1e-12);
        QVERIFY(std::abs(r.models[0].bitsPerCharacter.at("ru") - 800 * 3.0 / ln2 / 1000) < 1e-12);
        QVERIFY(r.models[1].bitsPerCharacter.empty()); // its evaluation has no text size
        QCOMPARE(r.samples.size(), size_t(4));
        const std::vector<std::pair<std::string, std::string>> order = {{"en", "base"}, {"en", "ft"}, {"ru", "base"}, {"ru", "ft"}};
        for (size_t i = 0; i < order.size(); ++i) {
            QCOMPARE(r.samples[i].language, order[i].first);
            QCOMPARE(r.samples[i].model, order[i].second);
        }
        const std::string text = forgettingReportText(r);
        QVERIFY2(text.find("0.721 (0.692)") != std::string::npos, text.c_str()); // en: 865.6 bits / 1,200 chars, / 1,250 bytes
        QVERIFY2(text.find("[ru] Столица") != std::string::npos && text.find(" Москва") != std::string::npos, text.c_str());
        const auto json = nlohmann::json::parse(forgettingReportJson(r));
        QCOMPARE(json["samples"].size(), size_t(4));
        QCOMPARE(json["samples"][3]["continuation"].get<std::string>(), std::string(" Москва"));
        QVERIFY(std::abs(json["models"][0]["bits_per_character"]["ru"].get<double>() - 3.4624) < 1e-4);
    }

    void missingEvaluationIsNamed()
    {
        auto store = ProjectStore::create(m_dir.filePath("e.polymoe").toStdString());
        QVERIFY_THROWS_EXCEPTION(ConfigError, buildForgettingReport(store)); // no model at all
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.addModel({0, "base", "base", "models/base", config(""), {}, {}, 1000, {}});
        try {
            buildForgettingReport(store);
            QFAIL("expected an error");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("'base' has no held-out evaluation") != std::string::npos, e.what());
        }
        QVERIFY_THROWS_EXCEPTION(ConfigError, buildForgettingReport(store, "nope"));
    }
};

QTEST_GUILESS_MAIN(TestForgettingReport)
#include "tst_forgetting_report.moc"
