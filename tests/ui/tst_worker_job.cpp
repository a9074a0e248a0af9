// WorkerJob, the worker thread behind the similarity analysis, the new-project wizard and the token
// inspector: tasks run off the GUI thread, the result continuation runs on it, errors and
// cancellation become signals, a second task is refused while one runs, progress is throttled,
// and destroying a job mid-task stops and waits for it.
#include "worker_job.h"

#include "polymoe/error.h"

#include <QSignalSpy>
#include <QThread>
#include <QtTest>

#include <atomic>
#include <stdexcept>

using namespace polymoe;
using namespace polymoe::ui;

class TestWorkerJob : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void resultRunsOnTheGuiThread()
    {
        WorkerJob job(QStringLiteral("test"));
        QThread *taskThread = nullptr;
        QThread *doneThread = nullptr;
        int value = 0;
        QVERIFY(job.run([&](std::stop_token, const ProgressFn &) -> WorkerJob::Done {
            taskThread = QThread::currentThread();
            const int computed = 6 * 7;
            return [&, computed] {
                doneThread = QThread::currentThread();
                value = computed;
            };
        }));
        QVERIFY(job.isRunning());
        QTRY_VERIFY(!job.isRunning());
        QCOMPARE(value, 42);
        QVERIFY(taskThread && taskThread != QThread::currentThread());
        QCOMPARE(taskThread->objectName(), QStringLiteral("test"));
        QCOMPARE(doneThread, QThread::currentThread());
    }

    void errorsBecomeFailed()
    {
        WorkerJob job(QStringLiteral("test"));
        QSignalSpy failed(&job, &WorkerJob::failed);
        QSignalSpy cancelled(&job, &WorkerJob::cancelled);
        bool doneRan = false;
        job.run([&](std::stop_token, const ProgressFn &) -> WorkerJob::Done {
            throw ConfigError("corpus.txt: no usable documents");
            return [&] { doneRan = true; };
        });
        QVERIFY(failed.wait(5000));
        QCOMPARE(failed.at(0).at(0).toString(), QString::fromStdString(ConfigError("corpus.txt: no usable documents").what()));
        QCOMPARE(cancelled.count(), 0);
        QVERIFY(!doneRan);
        QVERIFY(!job.isRunning());

        // An exception with an empty message is still a failure, not a success.
        job.run([](std::stop_token, const ProgressFn &) -> WorkerJob::Done { throw std::runtime_error(""); });
        QVERIFY(failed.wait(5000));
        QCOMPARE(failed.count(), 2);
    }

    void cancelStopsTheTaskAndRefusesASecondOne()
    {
        WorkerJob job(QStringLiteral("test"));
        QSignalSpy cancelled(&job, &WorkerJob::cancelled);
        QSignalSpy failed(&job, &WorkerJob::failed);
        std::atomic<bool> started{false};
        QVERIFY(job.run([&](std::stop_token stop, const ProgressFn &) -> WorkerJob::Done {
            started = true;
            while (true) {
                throwIfStopped(stop);
                QThread::msleep(1);
            }
        }));
        QTRY_VERIFY(started.load());
        bool secondRan = false;
        QVERIFY(!job.run([&](std::stop_token, const ProgressFn &) -> WorkerJob::Done {
            secondRan = true;
            return {};
        }));
        job.cancel();
        QVERIFY(cancelled.wait(5000));
        QCOMPARE(failed.count(), 0);
        QVERIFY(!secondRan);
        QVERIFY(!job.isRunning());
        // After it ended, a new task runs again (with a fresh stop source).
        std::atomic<bool> ran{false};
        QVERIFY(job.run([&](std::stop_token stop, const ProgressFn &) -> WorkerJob::Done {
            ran = !stop.stop_requested();
            return {};
        }));
        QTRY_VERIFY(!job.isRunning());
        QVERIFY(ran.load());
    }

    void progressIsThrottledButTheLastUpdateArrives()
    {
        WorkerJob job(QStringLiteral("test"));
        QSignalSpy progress(&job, &WorkerJob::progress);
        job.run([](std::stop_token, const ProgressFn &p) -> WorkerJob::Done {
            for (int i = 1; i <= 100000; ++i)
                p({"count", i, 100000, "items", {}});
            return {};
        });
        QTRY_VERIFY(!job.isRunning());
        QCoreApplication::processEvents();
        QVERIFY(progress.count() >= 1);
        QVERIFY2(progress.count() < 1000, qPrintable(QString::number(progress.count()))); // not 100,000
        QCOMPARE(progress.last().at(0).toString(), QStringLiteral("count"));
        QCOMPARE(progress.last().at(1).toLongLong(), 100000);
    }

    void destroyingTheJobStopsAndWaits()
    {
        std::atomic<bool> stopped{false}, finished{false};
        {
            WorkerJob job(QStringLiteral("test"));
            std::atomic<bool> started{false};
            job.run([&](std::stop_token stop, const ProgressFn &) -> WorkerJob::Done {
                started = true;
                while (!stop.stop_requested())
                    QThread::msleep(1);
                stopped = true;
                QThread::msleep(50); // clean-up after the stop: the destructor waits for it
                finished = true;
                return {};
            });
            QTRY_VERIFY(started.load());
        }
        QVERIFY(stopped.load());
        QVERIFY(finished.load());
        QCoreApplication::processEvents(); // the dead job's queued calls are dropped, not run
    }
};

QTEST_MAIN(TestWorkerJob)
#include "tst_worker_job.moc"
