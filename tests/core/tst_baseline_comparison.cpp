// The baseline comparison's scores (polymoe/demo.h, `polymoe bench expansion`) on a report written
// by hand: the share of full fine-tuning's new-language gain, the old-language cost, the wall time
// summed over a method's runs and the trained rows its stage-1 run recorded, each against values
// worked out here; and the table's columns following the project's languages.
#include "polymoe/demo.h"
#include "polymoe/error.h"

#include <QtTest>

#include <cmath>

using namespace polymoe;

class TestBaselineComparison : public QObject {
    Q_OBJECT

    static ReportModel model(int64_t id, const std::string &name, std::map<std::string, double> ppl, double seconds,
                             int64_t added)
    {
        ReportModel m;
        m.id = id;
        m.name = name;
        m.perplexity = std::move(ppl);
        m.seconds = seconds;
        m.addedParameters = added;
        return m;
    }

    static BaselineMethod method(const std::string &label, const std::string &model, std::vector<std::string> runs)
    {
        BaselineMethod m;
        m.label = label;
        m.model = model;
        m.runModels = std::move(runs);
        return m;
    }

    // Old: en; new: sw. Fine-tuning: old x4, new x0.25; the MoE run (two stages): old x1.1, new x0.5.
    static ForgettingReport report()
    {
        ForgettingReport r;
        r.project = "/p/demo-x.polymoe";
        r.base = "base";
        r.models = {model(1, "base", {{"en", 10}, {"sw", 200}}, 100, 0),
                    model(2, "ft", {{"en", 40}, {"sw", 50}}, 30, 0),
                    model(3, "s1", {{"en", 12}, {"sw", 90}}, 20, 500),
                    model(4, "s2", {{"en", 11}, {"sw", 100}}, 5, 500)};
        r.groups = {{"ft", "old", 4.0}, {"ft", "new", 0.25}, {"s1", "old", 1.2}, {"s1", "new", 0.45},
                    {"s2", "old", 1.1}, {"s2", "new", 0.5}};
        return r;
    }

private Q_SLOTS:
    void scores()
    {
        BaselineComparison c;
        c.methods = {method("fine-tuning", "ft", {"ft"}), method("MoE-LPR", "s2", {"s1", "s2"})};
        RunRecord stage1;
        stage1.kind = "stage1";
        stage1.modelOut = 3;
        stage1.config = R"({"new_token_rows_parameters": 1234})";
        RunRecord other; // a stage-2 run's record says nothing of rows
        other.kind = "stage2";
        other.modelOut = 4;
        other.config = R"({"new_token_rows_parameters": 99})";
        scoreBaselines(c, report(), {stage1, other});

        const BaselineMethod &ft = c.methods[0], &moe = c.methods[1];
        QCOMPARE(ft.shareOfFinetuningGain, 1.0);
        QVERIFY(std::abs(ft.oldCost - std::log(4.0)) < 1e-12);
        // log 0.5 / log 0.25 = 1/2: half of fine-tuning's gain in log perplexity.
        QVERIFY(std::abs(moe.shareOfFinetuningGain - 0.5) < 1e-12);
        QVERIFY(std::abs(moe.oldCost - 0.0953101798043249) < 1e-12); // ln 1.1
        QCOMPARE(moe.oldRatio, 1.1);
        QCOMPARE(moe.newRatio, 0.5);
        QCOMPARE(moe.seconds, 25.0); // stage 1 + stage 2
        QCOMPARE(moe.trainedRowParameters, int64_t(1234));
        QCOMPARE(ft.trainedRowParameters, int64_t(0));
        QCOMPARE(moe.addedParameters, int64_t(500));
        QCOMPARE(c.basePerplexity.at("sw"), 200.0);
    }

    void tableFollowsTheLanguages()
    {
        BaselineComparison c;
        c.profile = "x";
        c.project = "/p/demo-x.polymoe";
        c.languages = {"en", "sw"};
        c.oldLanguages = {"en"};
        c.stage1Steps = 7;
        c.stage2Steps = 3;
        c.methods = {method("fine-tuning", "ft", {"ft"}), method("MoE-LPR", "s2", {"s1", "s2"})};
        scoreBaselines(c, report(), {});
        const std::string md = baselineComparisonMarkdown(c);
        QVERIFY2(md.find("(old: en; new: sw); every method 10 steps") != std::string::npos, md.c_str());
        QVERIFY2(md.find("| old cost | en | sw | added parameters |") != std::string::npos, md.c_str());
        QVERIFY2(md.find("| base |  |  |  |  | 10.0 | 200.0 | 0 |") != std::string::npos, md.c_str());
        QVERIFY2(md.find("| MoE-LPR | x1.100 | x0.500 | 50% | +0.095 | 11.0 | 100.0 | 500 | 0 | 25 |") != std::string::npos,
                 md.c_str());
        QVERIFY2(md.find("| es |") == std::string::npos && md.find("| de |") == std::string::npos, md.c_str());
    }

    void aMissingModelIsNamed()
    {
        BaselineComparison c;
        c.methods = {method("fine-tuning", "nope", {"nope"})};
        try {
            scoreBaselines(c, report(), {});
            QFAIL("expected ConfigError");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("no model 'nope'") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestBaselineComparison)
#include "tst_baseline_comparison.moc"
