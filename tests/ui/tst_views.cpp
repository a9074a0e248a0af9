// The workbench views on a small project written through the ProjectStore API: each view shows the
// numbers that were inserted, the allocation editor's counts follow edits and undo, every item model
// passes QAbstractItemModelTester, charts export, and failures end up in the window, not in a crash.
// QCustomPlot's header uses Qt's keywords; this test includes no LibTorch header, so they can stay on.
#undef QT_NO_KEYWORDS

#include "ui_fixture.h"

#include "allocation_model.h"
#include "allocation_page.h"
#include "chart_export.h"
#include "corpus_stats_model.h"
#include "data_page.h"
#include "chart_style.h"
#include "forgetting_model.h"
#include "forgetting_page.h"

#include <QGuiApplication>
#include "main_window.h"
#include "router_page.h"
#include "runs_model.h"
#include "runs_page.h"
#include "similarity_job.h"
#include "similarity_page.h"
#include "start_page.h"
#include "token_inspector_page.h"
#include "training_job.h"
#include "training_page.h"

#include "polymoe/allocation.h"

#include <qcustomplot.h>

#include <QAbstractItemModelTester>
#include <QDir>
#include <QJsonDocument>
#include <QLabel>
#include <QMessageBox>
#include <QTimer>
#include <QSignalSpy>
#include <QTableWidget>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QUndoStack>

#include <cmath>

using namespace polymoe;
using namespace polymoe::ui;

class TestViews : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_path;
    fixture::Ids m_ids;

    int64_t expectedAdded(const std::vector<int> &experts) const
    {
        // Hand count, METHOD.md section 2: 3 d_model d_ffn per new expert, N_i d_model per router.
        int64_t p = 0;
        for (int n : experts)
            if (n >= 2)
                p += int64_t(n - 1) * 3 * fixture::kDModel * fixture::kDFfn + int64_t(n) * fixture::kDModel;
        return p;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QVERIFY(m_dir.isValid());
        m_path = m_dir.filePath("views.polymoe");
        auto store = ProjectStore::create(m_path.toStdString());
        m_ids = fixture::build(store);
    }

    void dataPageShowsCorpusStats()
    {
        DataPage page;
        page.setProjectPath(m_path);
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
        CorpusStatsModel *m = page.model();
        QAbstractItemModelTester tester(m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(m->rowCount(), 4);
        for (int r = 0; r < m->rowCount(); ++r) {
            const std::string code = m->index(r, CorpusStatsModel::Code).data().toString().toStdString();
            const int docs = m->index(r, CorpusStatsModel::TrainDocuments).data(Qt::EditRole).toInt() +
                             m->index(r, CorpusStatsModel::HeldoutDocuments).data(Qt::EditRole).toInt();
            QCOMPARE(docs, fixture::kDocuments.at(code));
            // Not tokenized: shown as a dash, not as -1.
            QCOMPARE(m->index(r, CorpusStatsModel::TrainTokens).data().toString(), QStringLiteral("–"));
            QCOMPARE(m->index(r, CorpusStatsModel::TokensPerCharacter).data().toString(), QStringLiteral("–"));
        }
    }

    // Generation samples in their own tab, grouped by prompt; bits per character beside the
    // perplexity where the evaluation recorded the text's size (4,096 tokens x ln(63.5) nats / ln 2
    // over 10,000 characters for the base's English: 2.4530 bits per character).
    void forgettingShowsSamplesAndBitsPerCharacter()
    {
        const QString path = m_dir.filePath("samples.polymoe");
        {
            auto store = ProjectStore::create(path.toStdString());
            const auto ids = fixture::build(store);
            const double ppl = fixture::kPerplexity.at("base").at("en");
            EvaluationRecord e{ids.models.at("base"), std::nullopt, "en", "heldout", 4096, std::log(ppl), ppl, ""};
            e.characters = 10000;
            e.bytes = 10000;
            store.addEvaluations({e});
            store.addSamples({{ids.models.at("stage1"), "en", "The capital of France is", " Paris.\nIt", 4},
                              {ids.models.at("base"), "en", "The capital of France is", " Lyon.", 4},
                              {ids.models.at("base"), "de", "Die Hauptstadt", " ist", 4}});
        }
        ForgettingPage page;
        page.setProjectPath(path);
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
        QTableWidget *t = page.samplesTable();
        QCOMPARE(t->rowCount(), 3);
        QCOMPARE(t->item(0, 1)->text(), QString("The capital of France is")); // old language first
        QCOMPARE(t->item(0, 2)->text(), QString("base"));
        QCOMPARE(t->item(1, 1)->text(), QString()); // the same prompt is not repeated
        QCOMPARE(t->item(1, 2)->text(), QString("stage1"));
        QCOMPARE(t->item(1, 3)->text(), QString("Paris. It"));
        QCOMPARE(t->item(2, 0)->text(), QString("de"));
        const double bpc = 4096 * std::log(fixture::kPerplexity.at("base").at("en")) / std::log(2.0) / 10000;
        QCOMPARE(QString::number(bpc, 'f', 3), QString("2.453"));
        const QString cell = page.model()->index(0, ForgettingModel::kFirstModelColumn).data().toString();
        QVERIFY2(cell.contains("2.453 b/c"), qPrintable(cell));
        QVERIFY(!page.model()->index(1, ForgettingModel::kFirstModelColumn).data().toString().contains("b/c"));
    }

    void forgettingTableEqualsEvaluations()
    {
        ForgettingPage page;
        page.setProjectPath(m_path);
        ForgettingModel *m = page.model();
        QAbstractItemModelTester tester(m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(m->modelNames(), (QStringList{"base", "stage1", "stage2"}));
        QCOMPARE(m->rowCount(), 4);
        QCOMPARE(m->languages(), (QStringList{"en", "es", "de", "ru"})); // old first
        for (int r = 0; r < m->rowCount(); ++r)
            for (int c = 0; c < m->modelNames().size(); ++c) {
                const double expected = fixture::kPerplexity.at(m->modelNames()[c].toStdString()).at(m->languages()[r].toStdString());
                QCOMPARE(m->index(r, ForgettingModel::kFirstModelColumn + c).data(Qt::EditRole).toDouble(), expected);
            }
        // The base's interval over its held-out documents is in the tooltip; none is made up for a model without one.
        {
            const double ppl = fixture::kPerplexity.at("base").at("en");
            const QString tip = m->index(0, ForgettingModel::kFirstModelColumn).data(Qt::ToolTipRole).toString();
            QVERIFY2(tip.contains(QString("95% interval over the held-out documents: %1 – %2")
                                      .arg(ppl * fixture::kIntervalLow, 0, 'f', 1)
                                      .arg(ppl * fixture::kIntervalHigh, 0, 'f', 1)),
                     qPrintable(tip));
            QVERIFY(!m->index(0, ForgettingModel::kFirstModelColumn + 1).data(Qt::ToolTipRole).toString().contains("interval"));
        }
        // A ratio's colour says worse (> 1) or better, readable on the palette: dark on a light base,
        // light on a dark one (--dark).
        {
            const int r = 0, c = ForgettingModel::kFirstModelColumn + 1; // en, stage1 against base
            const double q = fixture::kPerplexity.at("stage1").at("en") / fixture::kPerplexity.at("base").at("en");
            const QPalette saved = QGuiApplication::palette();
            QGuiApplication::setPalette(darkPalette());
            const QColor onDark = m->index(r, c).data(Qt::ForegroundRole).value<QColor>();
            QGuiApplication::setPalette(saved);
            const QColor onLight = m->index(r, c).data(Qt::ForegroundRole).value<QColor>();
            QVERIFY2(onDark.lightness() > 128 && onLight.lightness() < 128,
                     qPrintable(onDark.name() + " / " + onLight.name()));
            QCOMPARE(onLight.red() > onLight.green(), q > 1); // red for worse, green for better
        }
        // The group summaries are the engine's geometric means (the numbers `polymoe report` prints),
        // recomputed here from the perplexities the fixture inserted.
        const auto geometric = [](const std::string &model, const std::vector<std::string> &langs) {
            double logSum = 0;
            for (const auto &l : langs)
                logSum += std::log(fixture::kPerplexity.at(model).at(l) / fixture::kPerplexity.at("base").at(l));
            return std::exp(logSum / double(langs.size()));
        };
        for (int c = 1; c < 3; ++c) {
            const std::string name = m->modelNames()[c].toStdString();
            QVERIFY(std::abs(m->groupRatio(c, false) - geometric(name, {"en", "es"})) < 1e-12);
            QVERIFY(std::abs(m->groupRatio(c, true) - geometric(name, {"de", "ru"})) < 1e-12);
        }
        // Stage 1, old group: sqrt(87.9/63.5 * 127.6/61.3) = 1.69747 (hand-computed, 1e-5); the
        // arithmetic mean of the two ratios would be 1.73291, so a view averaging ratios fails here.
        QVERIFY(std::abs(m->groupRatio(1, false) - 1.69747) < 1e-5);
        QVERIFY2(page.summaryText().contains("stage1: old ×1.697, new ×0.488"), qPrintable(page.summaryText()));
        QVERIFY(page.summaryText().contains("stage2: old ×1.028, new ×0.543"));
        // The models table: one row per model, its group ratios and parameters from the report.
        ForgettingSummaryModel *sm = page.summaryModel();
        QAbstractItemModelTester summaryTester(sm, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(sm->rowCount(), 3);
        QCOMPARE(sm->index(1, ForgettingSummaryModel::Model).data().toString(), QStringLiteral("stage1"));
        QCOMPARE(sm->index(1, ForgettingSummaryModel::Role).data().toString(), QStringLiteral("MoE stage 1"));
        QVERIFY(std::abs(sm->index(1, ForgettingSummaryModel::OldRatio).data(Qt::EditRole).toDouble() -
                         geometric("stage1", {"en", "es"})) < 1e-12);
        QCOMPARE(sm->index(1, ForgettingSummaryModel::OldRatio).data().toString(), QStringLiteral("×1.697"));
        QCOMPARE(sm->index(2, ForgettingSummaryModel::Experts).data().toString(), QStringLiteral("1,3,2,2"));
        // Every model has 100000 weights in the fixture: nothing added; top-2 of 3 experts in layer 1
        // leaves one expert (3 d_model d_ffn) inactive per token.
        QCOMPARE(sm->index(2, ForgettingSummaryModel::Added).data(Qt::EditRole).toLongLong(), 0LL);
        QCOMPARE(sm->index(2, ForgettingSummaryModel::ActivePerToken).data(Qt::EditRole).toLongLong(),
                 100000LL - 3 * fixture::kDModel * fixture::kDFfn);
        // Three bar series, one per model, with the same numbers.
        QCOMPARE(page.plot()->plottableCount(), 3);
        auto *bars = qobject_cast<QCPBars *>(page.plot()->plottable(1));
        QVERIFY(bars);
        QCOMPARE(bars->data()->at(2)->value, 136.9); // stage1, de
    }

    void similarityPageShowsLatestAnalysis()
    {
        SimilarityPage page;
        page.setProjectPath(m_path);
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
        QCOMPARE(page.analysisId(), m_ids.analysis);
        QCOMPARE(page.scores(), fixture::kScores);
        QCOMPARE(page.newOld(), fixture::kNewOld);
        QCOMPARE(page.newNew(), fixture::kNewNew);
        // Six unordered pairs, new-old ones first, the new language named first.
        QCOMPARE(page.pairLabels().size(), 6);
        QCOMPARE(page.pairLabels().first(), QStringLiteral("de–en"));
        const int deEn = 0;
        for (int layer = 0; layer < fixture::kLayers; ++layer)
            QCOMPARE(page.heatValue(layer, deEn), fixture::pairValue(layer, "de", "en"));
        QCOMPARE(page.classifierLayers(), (std::vector<int>{2}));
        QVERIFY(qobject_cast<QCPColorMap *>(page.heatmap()->plottable(0)));
        QCOMPARE(page.curve()->graph(0)->dataCount(), fixture::kLayers);
    }

    void classifierLayersRule_data()
    {
        QTest::addColumn<std::vector<double>>("scores");
        QTest::addColumn<std::vector<int>>("experts");
        QTest::addColumn<std::vector<int>>("expected");
        // 0.3 * 24 = 7.2 -> 7 layers (METHOD.md section 6).
        std::vector<double> s24;
        for (int i = 0; i < 24; ++i)
            s24.push_back(0.01 * double(i % 12)); // highest: 11 and 23, then 10 and 22...
        QTest::newRow("24 layers") << s24 << std::vector<int>(24, 2) << std::vector<int>{8, 9, 10, 11, 21, 22, 23};
        QTest::newRow("dense layers skipped") << std::vector<double>{0.9, 0.1, 0.2} << std::vector<int>{1, 2, 2}
                                              << std::vector<int>{2};
        QTest::newRow("no MoE layer") << std::vector<double>{0.1, 0.2} << std::vector<int>{1, 1} << std::vector<int>{};
    }

    void classifierLayersRule()
    {
        QFETCH(std::vector<double>, scores);
        QFETCH(std::vector<int>, experts);
        QFETCH(std::vector<int>, expected);
        QCOMPARE(classifierLayersFor(scores, experts), expected);
    }

    void similarityRecomputeFailureIsShown()
    {
        // The fixture's models have no folders: the analysis fails in the worker, the page says so.
        SimilarityPage page;
        page.setProjectPath(m_path);
        QSignalSpy failed(page.job(), &SimilarityJob::failed);
        page.recompute();
        QVERIFY(failed.wait(10000));
        QVERIFY(page.errorText().contains("similarity analysis failed"));
        QCOMPARE(page.analysisId(), m_ids.analysis); // nothing new stored
    }

    void allocationEditUpdatesCountsAndUndoRestores()
    {
        AllocationPage page;
        page.setProjectPath(m_path);
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText()));
        AllocationModel *m = page.model();
        QAbstractItemModelTester tester(m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(m->experts(), fixture::kAllocation); // the latest stored allocation
        QCOMPARE(m->summary().newExperts, 4);
        QCOMPARE(m->summary().addedParameters, expectedAdded(fixture::kAllocation));
        QVERIFY(page.countsText().startsWith("4 new experts in 3 MoE layers"));

        // Typing 4 in layer 0.
        QVERIFY(m->setData(m->index(0, AllocationModel::Experts), 4));
        QCOMPARE(m->experts(), (std::vector<int>{4, 3, 2, 2}));
        QCOMPARE(page.strategy(), QStringLiteral("manual"));
        QCOMPARE(m->summary().newExperts, 7);
        QCOMPARE(m->summary().moeLayers, 4);
        QCOMPARE(m->summary().addedParameters, expectedAdded({4, 3, 2, 2}));
        QVERIFY(page.countsText().startsWith("7 new experts in 4 MoE layers"));
        QVERIFY(!m->setData(m->index(1, AllocationModel::Experts), 0)); // below 1: refused
        QVERIFY(!m->setData(m->index(1, AllocationModel::Score), 2));   // not editable

        m->undoStack()->undo();
        QCOMPARE(m->experts(), fixture::kAllocation);
        QVERIFY(page.countsText().startsWith("4 new experts in 3 MoE layers"));
        m->undoStack()->redo();
        QCOMPARE(m->experts(), (std::vector<int>{4, 3, 2, 2}));

        // LayerMoE with a budget recomputes live from the stored S_i.
        page.setStrategy("layermoe");
        page.setBudget(6);
        QCOMPARE(m->experts(), layerMoeAllocationForBudget(fixture::kScores, 6));
        QCOMPARE(m->summary().newExperts, 6);
        page.setStrategy("uniform");
        page.setBudget(3);
        QCOMPARE(m->experts(), (std::vector<int>(4, 3)));
        // Bars: the allocation and the uniform comparison.
        auto *bars = qobject_cast<QCPBars *>(page.plot()->plottable(0));
        QVERIFY(bars);
        QCOMPARE(bars->data()->at(0)->value, 3.0);
        // Undo walks back through the strategy changes to the typed edit.
        while (m->undoStack()->canUndo() && m->experts() != std::vector<int>{4, 3, 2, 2})
            m->undoStack()->undo();
        QCOMPARE(m->experts(), (std::vector<int>{4, 3, 2, 2}));
    }

    void allocationDragEditsOneBar()
    {
        AllocationPage page;
        page.resize(900, 600);
        page.show();
        QVERIFY(QTest::qWaitForWindowExposed(&page));
        page.setProjectPath(m_path);
        AllocationModel *m = page.model();
        QCustomPlot *plot = page.plot();
        plot->replot();
        const QPoint from(int(plot->xAxis->coordToPixel(1)), int(plot->yAxis->coordToPixel(2.5)));
        const QPoint to(from.x(), int(plot->yAxis->coordToPixel(5)));
        QTest::mousePress(plot, Qt::LeftButton, {}, from);
        QTest::mouseMove(plot, to);
        QMouseEvent move(QEvent::MouseMove, QPointF(to), plot->mapToGlobal(QPointF(to)), Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(plot, &move);
        QTest::mouseRelease(plot, Qt::LeftButton, {}, to);
        QCOMPARE(m->experts(), (std::vector<int>{1, 5, 2, 2}));
        QCOMPARE(m->undoStack()->count(), 1);
        m->undoStack()->undo();
        QCOMPARE(m->experts(), fixture::kAllocation);
    }

    void allocationSaveStoresIt()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath("save.polymoe");
        {
            auto store = ProjectStore::create(path.toStdString());
            fixture::build(store);
        }
        AllocationPage page;
        page.setProjectPath(path);
        QVERIFY(page.model()->setData(page.model()->index(0, AllocationModel::Experts), 2));
        QSignalSpy modified(&page, &Page::projectModified);
        QSignalSpy saved(&page, &AllocationPage::saved);
        QVERIFY(page.save("edited")); // in a worker: the window stays responsive
        QVERIFY2(saved.wait(10000), qPrintable(page.errorText()));
        const qint64 id = saved.first().first().toLongLong();
        QVERIFY(id > 0);
        QCOMPARE(modified.count(), 1);
        auto store = ProjectStore::open(path.toStdString(), true);
        const auto a = store.allocation(id);
        QVERIFY(a);
        QCOMPARE(a->name, std::string("edited"));
        QCOMPARE(a->strategy, std::string("manual"));
        QCOMPARE(a->experts, (std::vector<int>{2, 3, 2, 2}));
        QCOMPARE(*a->addedParameters, expectedAdded({2, 3, 2, 2}));
    }

    void routerMonitorShowsSharesAndFollowsTheStore()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath("router.polymoe");
        fixture::Ids ids;
        {
            auto store = ProjectStore::create(path.toStdString());
            ids = fixture::build(store);
        }
        RouterPage page;
        page.setProjectPath(path);
        page.selectRun(ids.stage2Run);
        page.selectLanguage("en");
        QCOMPARE(page.currentStep(), 20); // the latest by default
        const auto expected = fixture::routerRows(ids.stage2Run, 20);
        for (const auto &r : expected)
            if (r.language == "en")
                QCOMPARE(page.slotShare(r.layer, r.expert), r.slotShare);
        QVERIFY(std::isnan(page.slotShare(0, 0))); // layer 0 is dense
        const auto series = page.expert0Top1(3);
        QCOMPARE(series.size(), size_t(3));
        QCOMPARE(series[1].first, 10);
        QCOMPARE(series[1].second, 0.5 + 0.02 + 0.15);
        page.selectStep(10);
        QCOMPARE(page.currentStep(), 10);

        // A writer adds a step (as a running training does): the poll picks it up.
        QVERIFY(!page.pollOnce());
        {
            auto store = ProjectStore::open(path.toStdString());
            store.addRouterStats(fixture::routerRows(ids.stage2Run, 30));
        }
        QTRY_VERIFY_WITH_TIMEOUT(page.pollOnce() || page.expert0Top1(3).size() == 4, 5000);
        QCOMPARE(page.expert0Top1(3).size(), size_t(4));
        QCOMPARE(page.currentStep(), 10); // the user's choice is kept
    }

    void runsTableAndOverlay()
    {
        RunsPage page;
        page.setProjectPath(m_path);
        RunsModel *m = page.model();
        QAbstractItemModelTester tester(m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(m->rowCount(), 3);
        QCOMPARE(m->index(0, RunsModel::Kind).data().toString(), QStringLiteral("pretrain"));
        QCOMPARE(m->index(0, RunsModel::Status).data().toString(), QStringLiteral("completed"));
        QCOMPARE(m->index(0, RunsModel::FinalLoss).data(Qt::EditRole).toDouble(), 5.0 - 0.05 * 50);
        QCOMPARE(m->index(2, RunsModel::FinalLoss).data(Qt::EditRole).toDouble(), 3.5 - 0.01 * 30);
        page.selectRuns({m_ids.pretrainRun, m_ids.stage1Run});
        QCOMPARE(page.plot()->graphCount(), 2);
        QCOMPARE(page.plot()->graph(0)->dataCount(), 5);
        QCOMPARE(page.plot()->graph(1)->dataCount(), 4);
    }

    void trainArgumentsFollowTheSettings()
    {
        TrainingSettings s;
        QCOMPARE(trainArguments("p.polymoe", s), (QStringList{"train", "p.polymoe", "--stage", "1"}));
        s.stage = 2;
        s.classifier = true;
        s.steps = 40;
        s.lr = 0.02;
        s.resume = true;
        s.device = "auto";
        QCOMPARE(trainArguments("p.polymoe", s),
                 (QStringList{"train", "p.polymoe", "--stage", "2", "--steps", "40", "--lr", "0.02", "--classifier",
                              "--old-share", QString::number(1.0 / 3.0, 'g', 10), "--device", "auto", "--resume"}));
        // A stored run's device comes back with its settings (Training view re-attaching to it).
        QCOMPARE(settingsFromRunConfig(R"({"train": {"kind": "stage1", "device": "cuda"}})").device, QStringLiteral("cuda"));
        QCOMPARE(settingsFromRunConfig(R"({"train": {"kind": "stage1"}})").device, QStringLiteral("cpu"));
        QCOMPARE(settingsFromRunConfig(R"({"train": {"kind": "stage2"}})").stage, 2);
        // A stage run's settings as beginStageRun records them.
        const TrainingSettings back = settingsFromRunConfig(
            R"({"train": {"kind": "stage2", "steps": 40, "lr": 0.02}, "model_in": "s1",
                "expansion": {"stage": 2, "model": "s1", "old_share": 0.5, "classifier": true, "output_name": "s2b"}})");
        QCOMPARE(back.stage, 2);
        QCOMPARE(back.model, QStringLiteral("s1"));
        QCOMPARE(back.steps, qint64(40));
        QCOMPARE(back.oldShare, 0.5);
        QVERIFY(back.classifier);
        QCOMPARE(back.name, QStringLiteral("s2b"));
        // Settings core cannot read leave the defaults.
        QCOMPARE(settingsFromRunConfig("not json").stage, TrainingSettings{}.stage);
        // N processes: the same train command under polymoe launch, and a run's world size read back.
        TrainingSettings dp;
        dp.processes = 3;
        QCOMPARE(trainArguments("p.polymoe", dp).mid(0, 7),
                 (QStringList{"launch", "--nproc", "3", "--", "train", "p.polymoe", "--stage"}));
        QCOMPARE(trainArguments("p.polymoe", TrainingSettings{}).first(), QStringLiteral("train"));
        QCOMPARE(settingsFromRunConfig(R"({"train": {"kind": "stage1"}, "world_size": 4})").processes, 4);
        QCOMPARE(settingsFromRunConfig(R"({"train": {"kind": "stage1"}})").processes, 1);
        QCOMPARE(shellCommand("polymoe", {"train", "my project.polymoe"}), QStringLiteral("polymoe train 'my project.polymoe'"));
        TrainingStatus st;
        const auto line = QJsonDocument::fromJson(R"({"event":"train","kind":"stage1","step":5,"total":20,"loss":3.25,
            "lr":0.001,"tokens_per_s":1500,"elapsed_s":2,"eta_s":6,"metrics":{"balance":1.02}})").object();
        QVERIFY(parseTrainingStatus(line, &st));
        QCOMPARE(st.step, 5);
        QCOMPARE(st.total, 20);
        QCOMPARE(st.loss, 3.25);
        QCOMPARE(st.metrics.value("balance"), 1.02);
        QVERIFY(!parseTrainingStatus(QJsonDocument::fromJson(R"({"event":"progress"})").object(), &st));
    }

    void trainingPageShowsTheCommand()
    {
        TrainingPage page;
        page.setProjectPath(m_path);
        TrainingSettings s;
        s.stage = 1;
        s.model = "base";
        s.allocationId = m_ids.allocation;
        page.applySettings(s);
        QCOMPARE(page.settings().allocationId, m_ids.allocation);
        QVERIFY(page.commandLine().startsWith("polymoe train "));
        QVERIFY(page.commandLine().contains(QString("--model base --allocation %1").arg(m_ids.allocation)));
        QVERIFY(!page.commandLine().contains("--device"));
        s.device = "cuda";
        page.applySettings(s);
        QCOMPARE(page.settings().device, QStringLiteral("cuda"));
        QVERIFY2(page.commandLine().contains("--device cuda"), qPrintable(page.commandLine()));
    }

    void chartsExport()
    {
        ForgettingPage page;
        page.setProjectPath(m_path);
        QTemporaryDir dir;
        QString error;
        for (const char *ext : {"png", "pdf", "csv"}) {
            const QString f = dir.filePath(QString("chart.") + ext);
            QVERIFY2(saveChart(page.plot(), f, &error), qPrintable(error));
            QVERIFY(QFileInfo(f).size() > 0);
        }
        QFile csv(dir.filePath("chart.csv"));
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QString text = QString::fromUtf8(csv.readAll());
        QVERIFY(text.contains("stage1,2,136.9"));
        QVERIFY(!saveChart(page.plot(), dir.filePath("chart.xyz"), &error));
        QVERIFY(error.contains("xyz"));
    }

    void openTheDemoRunsTheCliAndOpensTheProject()
    {
        // A stand-in for the polymoe binary (POLYMOE_CLI): prints the CLI's JSON progress lines and
        // writes the project where `polymoe demo --out DIR` would.
        QTemporaryDir dir;
        const QString script = dir.filePath("fake-polymoe");
        QFile f(script);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QString("#!/bin/sh\n"
                        "[ \"$1 $2 $3 $4 $6 $7\" = \"demo --profile tiny --out --progress json\" ] || exit 2\n"
                        "echo '{\"event\":\"progress\",\"stage\":\"import de\",\"done\":3,\"total\":4,\"unit\":\"documents\"}'\n"
                        "echo 'building the demo' >&2\n"
                        "echo '{\"event\":\"train\",\"kind\":\"pretrain\",\"step\":10,\"total\":10,\"loss\":4.5}'\n"
                        "mkdir -p \"$5\" && cp '%1' \"$5/demo-tiny.polymoe\"\n").arg(m_path).toUtf8());
        f.close();
        QVERIFY(f.setPermissions(f.permissions() | QFileDevice::ExeOwner));
        qputenv("POLYMOE_CLI", script.toUtf8());
        MainWindow w;
        QSignalSpy opened(w.startPage(), &Page::openProjectRequested);
        w.startPage()->startDemo("tiny");
        QVERIFY(opened.wait(10000));
        qunsetenv("POLYMOE_CLI");
        const QString expected = QDir(StartPage::demoFolder()).filePath("demo-tiny.polymoe");
        QCOMPARE(opened.first().first().toString(), expected);
        QTRY_COMPARE(w.projectPath(), QFileInfo(expected).absoluteFilePath());
        QCOMPARE(w.forgettingPage()->model()->rowCount(), 4);
        QVERIFY(w.startPage()->errorText().isEmpty());
        QFile::remove(expected);
    }

    void tokenInspectorFailureIsShown()
    {
        // The fixture has no tokenizer and no model folders: the inspection fails inline.
        TokenInspectorPage page;
        page.setProjectPath(m_path);
        QSignalSpy failed(&page, &TokenInspectorPage::inspectionFailed);
        page.inspect("stage2", "hello");
        QVERIFY(failed.wait(20000));
        QVERIFY(page.errorText().startsWith("Inspection failed"));
        QVERIFY(!page.busy());
    }

    void mainWindowOpensTheProjectInEveryView()
    {
        MainWindow w;
        QVERIFY(w.openProject(m_path));
        QCOMPARE(w.pages().size(), 10);
        for (Page *p : w.pages())
            QCOMPARE(p->projectPath(), QFileInfo(m_path).absoluteFilePath());
        QCOMPARE(w.forgettingPage()->model()->rowCount(), 4);
        QVERIFY(StartPage::recentProjects().contains(QFileInfo(m_path).absoluteFilePath()));
        w.setPresentationMode(true);
        QVERIFY(w.presentationMode());
        QVERIFY(w.pages().first()->findChild<QLabel *>("explanation")->isVisibleTo(w.pages().first()));
        w.setPresentationMode(false);
        QTemporaryDir dir;
        const QStringList shots = w.saveScreenshots(dir.path(), {1000, 700});
        QCOMPARE(shots.size(), 10);
        // A file that is not a project: refused with a message, the open project stays.
        QTimer::singleShot(0, [] {
            if (auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget()))
                box->accept();
        });
        QFile junk(dir.filePath("junk.polymoe"));
        QVERIFY(junk.open(QIODevice::WriteOnly));
        junk.write("not sqlite at all, just text");
        junk.close();
        QVERIFY(!w.openProject(junk.fileName()));
        QCOMPARE(w.projectPath(), QFileInfo(m_path).absoluteFilePath());
    }
};

QTEST_MAIN(TestViews)
#include "tst_views.moc"
