// The training view attaching to runs it did not start: a real `polymoe train` child started here
// (as from a terminal) is found when the window opens the project, its settings shown read-only,
// its curve filled from the store and then live, and Cancel from the view stops it with a resumable
// checkpoint. A run left "running" by a killed process shows as interrupted (Training and Runs views)
// and Resume continues it from its checkpoint. A run on another host is followed but not cancelled.
#include "cli_process.h"
#include "main_window.h"
#include "runs_model.h"
#include "runs_page.h"
#include "training_job.h"
#include "training_page.h"

#include "polymoe/project_store.h"
#include "polymoe/run_liveness.h"
#include "sqlite_db.h"
#include "common/tiny_training_project.h"

#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>

#include <fcntl.h>
#include <unistd.h>

using namespace polymoe;
using namespace polymoe::ui;

class TestTrainingAttach : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_path;

    // A tiny stage-1 run from a "terminal": no window involved, no progress on stdout.
    QStringList terminalRun(const QString &name) const
    {
        return {"train", m_path, "--stage", "1", "--model", "base", "--steps", "100000", "--seq-len", "32",
                "--batch-size", "8", "--dtype", "fp32", "--threads", "1", "--checkpoint-every", "5",
                "--stats-every", "0", "--name", name, "--progress", "none"};
    }

    // The Training view's settings for the same endless tiny stage-1 run, started from the view.
    static TrainingSettings endlessStage1(const QString &name)
    {
        TrainingSettings s;
        s.stage = 1;
        s.model = "base";
        s.steps = 100000;
        s.seqLen = 32;
        s.batchSize = 8;
        s.dtype = "fp32";
        s.threads = 1;
        s.statsEvery = 0;
        s.checkpointEvery = 5;
        s.name = name;
        return s;
    }

    std::optional<RunRecord> runOf(qint64 pid) const
    {
        auto store = ProjectStore::open(m_path.toStdString(), true);
        for (const auto &r : store.runs())
            if (r.pid && *r.pid == pid)
                return r;
        return std::nullopt;
    }

    size_t lossCount(int64_t runId) const
    {
        return ProjectStore::open(m_path.toStdString(), true).metricSeries(runId, "loss").size();
    }

    int64_t checkpointStep(int64_t runId) const
    {
        QFile f(QString("%1.d/runs/%2/checkpoint/state.json").arg(m_path).arg(runId));
        if (!f.open(QIODevice::ReadOnly))
            return -1;
        return QJsonDocument::fromJson(f.readAll()).object().value("step").toInteger(-1);
    }

    // Points this process's descriptors of the pipe on `pid`'s stdout at /dev/null: the pipe has no
    // reader left, and the child's next write fails (EPIPE, or death by SIGPIPE if not ignored).
    static bool releaseReadEnd(qint64 pid)
    {
        const auto link = [](const QString &path) {
            char buf[256] = {};
            const ssize_t n = ::readlink(path.toLocal8Bit().constData(), buf, sizeof buf - 1);
            return n > 0 ? QString::fromLocal8Bit(buf, n) : QString();
        };
        const QString pipe = link(QString("/proc/%1/fd/1").arg(pid));
        if (!pipe.startsWith("pipe:"))
            return false;
        const int devnull = ::open("/dev/null", O_RDONLY);
        bool found = false;
        for (const QString &fd : QDir("/proc/self/fd").entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot)) {
            if (fd.toInt() != devnull && link("/proc/self/fd/" + fd) == pipe) {
                ::dup2(devnull, fd.toInt());
                found = true;
            }
        }
        ::close(devnull);
        return found;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_path = m_dir.filePath("attach.polymoe");
        test::makeTinyTrainingProject(m_path.toStdString());
        QVERIFY2(QFile::exists(CliProcess::executable()), qPrintable(CliProcess::executable()));
    }

    void attachesToATerminalRunAndCancelsIt()
    {
        QProcess child;
        child.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        child.start(CliProcess::executable(), terminalRun("stage1"));
        QVERIFY(child.waitForStarted(10000));
        std::optional<RunRecord> run;
        QTRY_VERIFY_WITH_TIMEOUT((run = runOf(child.processId())) && lossCount(run->id) >= 2, 120000);
        QCOMPARE(runLiveness(*run), RunLiveness::Alive);
        QCOMPARE(run->host, hostName());

        // The window opens the project: the Training view attaches to the run.
        MainWindow w;
        QVERIFY(w.openProject(m_path));
        TrainingPage *page = w.trainingPage();
        QCOMPARE(page->attachedRunId(), run->id);
        QVERIFY(!page->settingsEditable());
        const TrainingSettings shown = page->settings();
        QCOMPARE(shown.stage, 1);
        QCOMPARE(shown.steps, 100000);
        QCOMPARE(shown.seqLen, 32);
        QCOMPARE(shown.batchSize, 8);
        QCOMPARE(shown.checkpointEvery, 5);
        QCOMPARE(shown.name, QString("stage1"));
        QCOMPARE(shown.model, QString("base"));

        // The curve holds the recorded points (same steps and values as the store), then grows live.
        const int atAttach = page->lossPoints();
        QVERIFY(atAttach >= 2);
        {
            const auto series = ProjectStore::open(m_path.toStdString(), true).metricSeries(run->id, "loss");
            QVERIFY(series.size() >= size_t(atAttach));
            const QList<QPointF> curve = page->lossCurve();
            for (int i = 0; i < atAttach; ++i) {
                QCOMPARE(curve[i].x(), double(series[size_t(i)].first));
                QCOMPARE(curve[i].y(), series[size_t(i)].second);
            }
            // Stage 1's loss terms (LM and balance) as curves of their own, from the same records; no
            // LPR curve in stage 1.
            for (const char *term : {"lm", "balance"}) {
                const auto terms = ProjectStore::open(m_path.toStdString(), true).metricSeries(run->id, term);
                const QList<QPointF> drawn = page->metricCurve(term);
                QVERIFY2(drawn.size() >= 2, term);
                for (int i = 0; i < drawn.size() && size_t(i) < terms.size(); ++i) {
                    QCOMPARE(drawn[i].x(), double(terms[size_t(i)].first));
                    QCOMPARE(drawn[i].y(), terms[size_t(i)].second);
                }
            }
            QVERIFY(page->metricCurve("lpr").isEmpty());
        }
        QTRY_VERIFY_WITH_TIMEOUT(page->lossPoints() > atAttach + 1, 60000);
        QVERIFY2(page->stateText().contains(QString("run %1").arg(run->id)) && page->stateText().contains("/ 100000") &&
                     page->stateText().contains("tokens/s"),
                 qPrintable(page->stateText()));
        // The run shows as running in the Runs view.
        RunsModel *runs = w.runsPage()->model();
        w.runsPage()->reload();
        QCOMPARE(runs->displayStatus(runs->rowCount() - 1), QString("running"));
        QVERIFY(runs->anyRunning());

        // Cancel from the view: SIGTERM to the recorded pid; the CLI stops at the next step, exit 3.
        QSignalSpy ended(page, &TrainingPage::attachedRunEnded);
        page->cancel();
        QVERIFY2(page->errorText().isEmpty(), qPrintable(page->errorText()));
        QVERIFY(child.waitForFinished(60000));
        QCOMPARE(child.exitStatus(), QProcess::NormalExit);
        QCOMPARE(child.exitCode(), cli::kExitCancelled);
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 1, 10000);
        QCOMPARE(ended.first().first().toString(), QString("cancelled"));
        QCOMPARE(page->attachedRunId(), 0);
        QVERIFY(page->settingsEditable());
        QVERIFY2(page->stateText().contains("cancelled"), qPrintable(page->stateText()));
        QVERIFY(w.statusBar()->currentMessage().contains("cancelled"));

        // A resumable checkpoint at or past the last logged step.
        const auto after = ProjectStore::open(m_path.toStdString(), true).run(run->id);
        QCOMPARE(after->status, std::string("cancelled"));
        const auto lastLogged = ProjectStore::open(m_path.toStdString(), true).metricSeries(run->id, "loss").back().first;
        QVERIFY2(checkpointStep(run->id) >= lastLogged,
                 qPrintable(QString("checkpoint %1, logged %2").arg(checkpointStep(run->id)).arg(lastLogged)));
        QCOMPARE(QString::fromStdString(after->checkpoint), QString("%1.d/runs/%2/checkpoint").arg(m_path).arg(run->id));
        w.runsPage()->reload();
        QCOMPARE(runs->displayStatus(runs->rowCount() - 1), QString("cancelled"));
    }

    void killedRunIsInterruptedAndResumes()
    {
        QProcess child;
        child.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        child.start(CliProcess::executable(), terminalRun("s1b"));
        QVERIFY(child.waitForStarted(10000));
        std::optional<RunRecord> run;
        QTRY_VERIFY_WITH_TIMEOUT((run = runOf(child.processId())) && checkpointStep(run->id) >= 10, 120000);
        child.kill(); // SIGKILL: no chance to record anything; the row stays "running"
        QVERIFY(child.waitForFinished(10000));
        const int64_t saved = checkpointStep(run->id);
        run = ProjectStore::open(m_path.toStdString(), true).run(run->id);
        QCOMPARE(run->status, std::string("running"));
        QCOMPARE(runLiveness(*run), RunLiveness::Dead);
        QCOMPARE(displayStatus(*run), std::string("interrupted"));

        // Runs view: interrupted beside the cancelled and completed runs, never running.
        RunsPage runsPage;
        runsPage.setProjectPath(m_path);
        RunsModel *runs = runsPage.model();
        QStringList statuses;
        for (int r = 0; r < runs->rowCount(); ++r)
            statuses << runs->displayStatus(r);
        QCOMPARE(statuses, QStringList({"completed", "cancelled", "interrupted"})); // base, stage1, s1b
        QCOMPARE(runs->index(2, RunsModel::Status).data().toString(), QString("interrupted"));
        QVERIFY(runs->index(2, RunsModel::Status).data(Qt::ToolTipRole).toString().contains(QString::number(*run->pid)));
        QVERIFY(!runs->anyRunning());

        // Training view: not attached, says interrupted, Resume continues the same run from its checkpoint.
        TrainingPage page;
        page.setProjectPath(m_path);
        QCOMPARE(page.attachedRunId(), 0);
        QVERIFY2(page.stateText().contains("interrupted") && page.stateText().contains(QString("Run %1").arg(run->id)),
                 qPrintable(page.stateText()));
        QCOMPARE(page.settings().name, QString("s1b"));
        QVERIFY(page.lossPoints() >= 2); // the curve it recorded before it died
        QSignalSpy status(page.job(), &TrainingRunController::status);
        QSignalSpy done(&page, &TrainingPage::runFinished);
        page.start(true);
        QVERIFY(page.job()->lastArguments().contains("--resume"));
        QTRY_VERIFY_WITH_TIMEOUT(status.count() > 0, 120000);
        const auto first = status.first().first().value<TrainingStatus>();
        QVERIFY2(first.step == saved + 1, qPrintable(QString("resumed at %1, checkpoint %2").arg(first.step).arg(saved)));
        const auto resumed = ProjectStore::open(m_path.toStdString(), true).run(run->id);
        QCOMPARE(resumed->status, std::string("running"));
        QCOMPARE(*resumed->pid, page.job()->processId());
        QCOMPARE(runLiveness(*resumed), RunLiveness::Alive);
        page.cancel();
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().value<TrainingRunController::Outcome>(), TrainingRunController::Outcome::Cancelled);
        QCOMPARE(ProjectStore::open(m_path.toStdString(), true).run(run->id)->status, std::string("cancelled"));
    }

    // A window that goes away (crash) closes the child's stdout: the child must not die of SIGPIPE on
    // its next progress line, so the run goes on for a new window to attach to.
    void childOutlivesItsClosedOutput()
    {
        TrainingPage page;
        page.setProjectPath(m_path);
        page.applySettings(endlessStage1("s1c"));
        QSignalSpy status(page.job(), &TrainingRunController::status);
        QSignalSpy done(&page, &TrainingPage::runFinished);
        page.start();
        QTRY_VERIFY_WITH_TIMEOUT(status.count() > 0, 120000);
        // What a crash does: the read end of the child's stdout pipe goes (here: replaced by /dev/null
        // under QProcess, which then just sees the end of the output).
        QVERIFY(releaseReadEnd(page.job()->processId()));
        const auto run = runOf(page.job()->processId());
        QVERIFY(run);
        const size_t before = lossCount(run->id);
        QTRY_VERIFY_WITH_TIMEOUT(lossCount(run->id) >= before + 3, 60000); // it goes on logging to the store
        QVERIFY(page.job()->isRunning());
        QCOMPARE(done.count(), 0);
        page.cancel();
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().value<TrainingRunController::Outcome>(), TrainingRunController::Outcome::Cancelled);
    }

    // "Keep running" when the window quits: the job lets go of its child, which goes on training
    // after the view is destroyed, and still stops cleanly when asked.
    void detachedRunOutlivesTheView()
    {
        qint64 pid = 0;
        std::optional<RunRecord> run;
        {
            TrainingPage page;
            page.setProjectPath(m_path);
            page.applySettings(endlessStage1("s1d"));
            QSignalSpy status(page.job(), &TrainingRunController::status);
            QSignalSpy done(&page, &TrainingPage::runFinished);
            page.start();
            QTRY_VERIFY_WITH_TIMEOUT(status.count() > 0, 120000);
            pid = page.job()->processId();
            run = runOf(pid);
            QVERIFY(run);
            page.job()->detach();
            QCOMPARE(done.count(), 0);
        } // the view and its job are gone here
        QCOMPARE(::kill(pid_t(pid), 0), 0);
        const size_t before = lossCount(run->id);
        QTRY_VERIFY_WITH_TIMEOUT(lossCount(run->id) >= before + 3, 60000); // still training, into the store
        QCOMPARE(::kill(pid_t(pid), SIGTERM), 0); // what a reopened window's Cancel sends
        QTRY_VERIFY_WITH_TIMEOUT(runOf(pid) && runOf(pid)->status == "cancelled", 60000);
    }

    // A run recorded by another host: followed while its heartbeat is fresh, never signalled from here.
    void remoteRunIsFollowedNotCancelled()
    {
        int64_t id = 0;
        {
            auto store = ProjectStore::open(m_path.toStdString());
            id = store.beginRun("stage2", R"({"train": {"steps": 40, "seq_len": 32}, "expansion": {"stage": 2}})");
            store.db().exec("UPDATE runs SET host = 'gpu-node-7', pid = 4242 WHERE id = " + std::to_string(id));
            store.addMetrics(id, 10, {{"loss", 3.25}, {"lr", 0.01}, {"tokens", 2560}, {"seconds", 2}});
            store.addMetrics(id, 20, {{"loss", 3.0}, {"lr", 0.01}, {"tokens", 5120}, {"seconds", 4}});
        }
        TrainingPage page;
        page.setProjectPath(m_path);
        QCOMPARE(page.attachedRunId(), id);
        QCOMPARE(page.settings().stage, 2);
        QCOMPARE(page.lossPoints(), 2);
        // tokens/s over the logged steps: (5120 - 2560) / (4 - 2) = 1280; ETA 20 steps at 0.2 s = 4 s.
        QVERIFY2(page.stateText().contains("1280 tokens/s") && page.stateText().contains("ETA 0m04s"),
                 qPrintable(page.stateText()));
        page.cancel();
        QVERIFY2(page.errorText().contains("gpu-node-7") && page.errorText().contains("4242"), qPrintable(page.errorText()));
        QCOMPARE(page.attachedRunId(), id); // still followed

        QSignalSpy ended(&page, &TrainingPage::attachedRunEnded);
        {
            auto store = ProjectStore::open(m_path.toStdString());
            store.addMetrics(id, 30, {{"loss", 2.75}, {"lr", 0.01}, {"tokens", 7680}, {"seconds", 6}});
            store.finishRun(id, "failed", "out of memory on gpu-node-7");
        }
        QVERIFY(ended.wait(5000));
        QCOMPARE(ended.first().first().toString(), QString("failed"));
        QCOMPARE(page.lossPoints(), 3); // the last logged step is drawn before the end
        QVERIFY(page.errorText().contains("out of memory"));
    }
};

QTEST_MAIN(TestTrainingAttach)
#include "tst_training_attach.moc"
