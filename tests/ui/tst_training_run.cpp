// The training view driving a real `polymoe train` child process on a tiny synthetic project (the
// approach of tests/core/tst_expansion.cpp, smaller): stage 1 runs to the end with live progress and
// lands in the store; stage 2 is cancelled (the CLI keeps a checkpoint, exit code 3) and resumed.
#include "export_page.h"
#include "runs_model.h"
#include "runs_page.h"
#include "token_inspector_page.h"
#include "training_job.h"
#include "training_page.h"

#include "polymoe/dense_jobs.h"
#include "polymoe/error.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"
#include "polymoe/token_inspector.h"
#include "sqlite_db.h"
#include "token_shard.h"
#include "common/tiny_training_project.h"

#include <QComboBox>
#include <QFileInfo>
#include <QLineEdit>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>

using namespace polymoe;
using namespace polymoe::ui;

class TestTrainingRun : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_path;

    TrainingSettings tiny(int stage, qint64 steps) const
    {
        TrainingSettings s;
        s.stage = stage;
        s.steps = steps;
        s.seqLen = 32;
        s.batchSize = 8;
        s.dtype = "fp32";
        s.threads = 1;
        s.statsEvery = 4;
        s.checkpointEvery = 5;
        s.oldShare = 0.5;
        return s;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_path = m_dir.filePath("train.polymoe");
        test::makeTinyTrainingProject(m_path.toStdString());
    }

    void stageOneRunsToTheEnd()
    {
        TrainingPage page;
        page.setProjectPath(m_path);
        TrainingSettings s = tiny(1, 12);
        s.model = "base";
        page.applySettings(s);
        QVERIFY(page.commandLine().contains("--stage 1 --model base --steps 12"));
        QSignalSpy status(page.job(), &TrainingRunController::status);
        QSignalSpy done(&page, &TrainingPage::runFinished);
        page.start();
        QVERIFY(page.job()->isRunning());
        QVERIFY(done.wait(120000));
        QCOMPARE(done.first().first().value<TrainingRunController::Outcome>(), TrainingRunController::Outcome::Completed);
        QVERIFY(status.count() >= 1);
        const auto last = status.last().first().value<TrainingStatus>();
        QCOMPARE(last.step, 12);
        QCOMPARE(last.total, 12);
        QVERIFY(page.lossPoints() >= 1);
        QVERIFY(page.errorText().isEmpty());

        auto store = ProjectStore::open(m_path.toStdString(), true);
        QVERIFY(store.model("stage1"));
        RunsPage runs;
        runs.setProjectPath(m_path);
        const int row = runs.model()->rowCount() - 1;
        QCOMPARE(runs.model()->run(row).kind, std::string("stage1"));
        QCOMPARE(runs.model()->run(row).status, std::string("completed"));
        QVERIFY(!store.routerStats(runs.model()->run(row).id).empty());

        // The token inspector on the new model: every MoE layer routes every token to k = 2 distinct
        // experts of its N_i = 2 (uniform allocation, budget 2) with weights summing to 1.
        const std::vector<int32_t> ids = {33, 35, 40, 3, 5, 7};
        const TokenInspection r = inspectTokenIds(store.modelPath(*store.model("stage1")), ids);
        QCOMPARE(r.numLayers, 2);
        QCOMPARE(r.layers.size(), size_t(2));
        for (const auto &l : r.layers) {
            QCOMPARE(l.numExperts, 2);
            QVERIFY(!l.judgedOld); // stage 1 has no classifier
            QCOMPARE(l.tokens.size(), ids.size());
            for (const auto &t : l.tokens) {
                QCOMPARE(t.experts.size(), size_t(2));
                QVERIFY(t.experts[0] != t.experts[1]);
                QVERIFY(t.experts[0] >= 0 && t.experts[0] < 2);
                QVERIFY(std::abs(t.weights[0] + t.weights[1] - 1.0) < 1e-6);
                QVERIFY(t.weights[0] >= t.weights[1]);
            }
        }
        const std::vector<int32_t> outOfVocabulary = {1, 64};
        QVERIFY_THROWS_EXCEPTION(ConfigError, inspectTokenIds(store.modelPath(*store.model("stage1")), outOfVocabulary));
        TokenInspectorPage page2;
        page2.showInspection(r);
        QCOMPARE(page2.grid()->rowCount(), 6);
        QCOMPARE(page2.grid()->columnCount(), 2);
        QCOMPARE(page2.grid()->item(0, 1)->background().color(), expertColor(r.layers[1].tokens[0].experts[0]));
    }

    // The export view runs `polymoe export` on the stage-1 model and says where the folders went;
    // a second export into the same folder is refused (nothing replaced without "Replace").
    void exportViewWritesTheFolder()
    {
        ExportPage page;
        page.setProjectPath(m_path);
        page.reload();
        QCOMPARE(page.modelBox()->currentText(), QString("stage1")); // expanded models first
        const QString out = m_dir.filePath("exported");
        page.outEdit()->setText(out);
        QVERIFY(page.exportArguments().contains("--json"));
        QSignalSpy ok(&page, &ExportPage::exported), failed(&page, &ExportPage::exportFailed);
        page.startExport();
        QTRY_VERIFY_WITH_TIMEOUT(ok.count() + failed.count() > 0, 120000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().first().toString()));
        const QStringList folders = ok.first().first().toStringList();
        QVERIFY(!folders.isEmpty());
        QVERIFY(QFileInfo::exists(folders.first() + "/model.safetensors"));
        QVERIFY(QFileInfo::exists(folders.first() + "/modeling_polymoe.py"));
        QVERIFY(page.resultText().contains(folders.first()));
        // Uniform 2 experts per layer on a llama base: the stock Mixtral folder too.
        QCOMPARE(folders.size(), 2);

        page.startExport();
        QTRY_VERIFY_WITH_TIMEOUT(failed.count() > 0, 120000);
        QVERIFY2(page.errorText().contains("exported"), qPrintable(page.errorText())); // names the folder
    }

    void stageTwoCancelsAndResumes()
    {
        TrainingPage page;
        page.setProjectPath(m_path);
        TrainingSettings s = tiny(2, 100000);
        page.applySettings(s);
        QSignalSpy status(page.job(), &TrainingRunController::status);
        QSignalSpy done(&page, &TrainingPage::runFinished);
        page.start();
        QTRY_VERIFY_WITH_TIMEOUT(status.count() > 0 && status.last().first().value<TrainingStatus>().step >= 6, 120000);
        page.cancel();
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().value<TrainingRunController::Outcome>(), TrainingRunController::Outcome::Cancelled);
        const qint64 stoppedAt = status.last().first().value<TrainingStatus>().step;
        QVERIFY(page.stateText().contains("cancelled"));
        {
            auto store = ProjectStore::open(m_path.toStdString(), true);
            QCOMPARE(store.runs().back().status, std::string("cancelled"));
        }

        // Resume continues from the checkpoint, not from step 0.
        status.clear();
        done.clear();
        page.start(true);
        QVERIFY(page.job()->lastArguments().contains("--resume"));
        QTRY_VERIFY_WITH_TIMEOUT(status.count() > 0, 120000);
        QVERIFY2(status.first().first().value<TrainingStatus>().step >= 5,
                 qPrintable(QString("resumed at %1, stopped at %2").arg(status.first().first().value<TrainingStatus>().step).arg(stoppedAt)));
        page.cancel();
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().value<TrainingRunController::Outcome>(), TrainingRunController::Outcome::Cancelled);
    }
};

QTEST_MAIN(TestTrainingRun)
#include "tst_training_run.moc"
