// Run liveness (run_liveness.h) on real processes and a real store: the process a run records, the
// heartbeat its metrics renew, dead / reused / remote / stale processes, stopping a run by its pid,
// and schema 4's migration (also through a read-only open).
#include "polymoe/project_store.h"
#include "polymoe/run_liveness.h"
#include "sqlite_db.h"

#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <ctime>

#include <sys/wait.h>
#include <unistd.h>

using namespace polymoe;

namespace {
std::string utcAgo(int seconds)
{
    const std::time_t t = std::time(nullptr) - seconds;
    std::tm tm = {};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
}

// A process id that was alive a moment ago and is now gone (reaped).
int64_t deadPid()
{
    const pid_t p = ::fork();
    if (p == 0)
        ::_exit(0);
    int st = 0;
    ::waitpid(p, &st, 0);
    return p;
}
} // namespace

class TestRunLiveness : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    std::filesystem::path file(const char *name) const { return std::filesystem::path(m_dir.filePath(name).toStdString()); }

private Q_SLOTS:
    void aRunRecordsItsProcessAndHeartbeat()
    {
        auto store = ProjectStore::create(file("self.polymoe"));
        const int64_t id = store.beginRun("stage1", "{}");
        auto r = *store.run(id);
        QCOMPARE(*r.pid, int64_t(::getpid()));
        QCOMPARE(r.host, hostName());
        QVERIFY(r.processStart > 0);
        QCOMPARE(r.processStart, processStartTicks(::getpid()));
        QVERIFY(secondsSince(r.heartbeatAt).has_value());
        QVERIFY(std::abs(*secondsSince(r.heartbeatAt)) < 60);
        QCOMPARE(runLiveness(r), RunLiveness::Alive);
        QCOMPARE(displayStatus(r), std::string("running"));

        // addMetrics renews the heartbeat (same transaction as the metrics).
        store.db().exec("UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = " + std::to_string(id));
        QVERIFY(*secondsSince(store.run(id)->heartbeatAt) > 365.0 * 86400);
        store.addMetrics(id, 10, {{"loss", 2.0}});
        QVERIFY(std::abs(*secondsSince(store.run(id)->heartbeatAt)) < 60);
        QCOMPARE(store.metricSeries(id, "loss", 9).size(), size_t(1));
        QCOMPARE(store.metricSeries(id, "loss", 10).size(), size_t(0));

        store.finishRun(id, "completed");
        QCOMPARE(runLiveness(*store.run(id)), RunLiveness::Ended);
        QCOMPARE(displayStatus(*store.run(id)), std::string("completed"));
        QVERIFY(!store.run(id + 100));
    }

    void aGoneProcessIsInterrupted()
    {
        auto store = ProjectStore::create(file("dead.polymoe"));
        const int64_t id = store.beginRun("stage2", "{}");
        const int64_t gone = deadPid();
        store.db().exec("UPDATE runs SET pid = " + std::to_string(gone) + " WHERE id = " + std::to_string(id));
        const auto r = *store.run(id);
        QCOMPARE(r.status, std::string("running"));
        QCOMPARE(runLiveness(r), RunLiveness::Dead);
        QCOMPARE(displayStatus(r), std::string("interrupted"));
        const std::string why = requestRunStop(r);
        QVERIFY2(why.find("gone") != std::string::npos && why.find(std::to_string(gone)) != std::string::npos, why.c_str());

        // Resume records the resuming process: alive again, message "resumed", no finish time.
        store.finishRun(id, "cancelled");
        store.resumeRun(id);
        const auto again = *store.run(id);
        QCOMPARE(again.status, std::string("running"));
        QCOMPARE(again.message, std::string("resumed"));
        QCOMPARE(again.finishedAt, std::string());
        QCOMPARE(*again.pid, int64_t(::getpid()));
        QCOMPARE(runLiveness(again), RunLiveness::Alive);
    }

    void aReusedPidIsNotTheRun()
    {
        auto store = ProjectStore::create(file("reused.polymoe"));
        const int64_t id = store.beginRun("stage1", "{}");
        // Same pid, another start time: the run's process died and the id went to another one.
        store.db().exec("UPDATE runs SET process_start = process_start + 1 WHERE id = " + std::to_string(id));
        QCOMPARE(runLiveness(*store.run(id)), RunLiveness::Dead);
        QVERIFY(!processAlive(::getpid(), processStartTicks(::getpid()) + 1));
        QVERIFY(processAlive(::getpid(), processStartTicks(::getpid())));
        QVERIFY(processAlive(::getpid()));
        QVERIFY(!processAlive(0));
    }

    void aRemoteRunLivesByItsHeartbeat()
    {
        auto store = ProjectStore::create(file("remote.polymoe"));
        const int64_t id = store.beginRun("stage1", "{}");
        store.db().exec("UPDATE runs SET host = 'gpu-node-7', pid = 4242, heartbeat_at = '" + utcAgo(30) +
                        "' WHERE id = " + std::to_string(id));
        auto r = *store.run(id);
        QVERIFY(!runIsLocal(r));
        QCOMPARE(runLiveness(r), RunLiveness::Remote);
        QCOMPARE(displayStatus(r), std::string("running"));
        const std::string why = requestRunStop(r);
        QVERIFY2(why.find("gpu-node-7") != std::string::npos && why.find("4242") != std::string::npos, why.c_str());
        // Stale: older than kStaleHeartbeatSeconds (600 s).
        store.db().exec("UPDATE runs SET heartbeat_at = '" + utcAgo(kStaleHeartbeatSeconds + 100) + "' WHERE id = " +
                        std::to_string(id));
        r = *store.run(id);
        QCOMPARE(runLiveness(r), RunLiveness::Dead);
        QCOMPARE(displayStatus(r), std::string("interrupted"));
        QCOMPARE(runLiveness(r, kStaleHeartbeatSeconds + 200), RunLiveness::Remote);
    }

    void secondsSinceParsesTheStoreFormats()
    {
        QVERIFY(std::abs(*secondsSince(utcAgo(3600)) - 3600) < 3); // tolerance: the clock ticks during the test
        const std::string plain = utcAgo(120).substr(0, 19);        // "YYYY-MM-DDTHH:MM:SS"
        std::string spaced = plain;
        spaced[10] = ' ';
        QVERIFY(std::abs(*secondsSince(spaced) - 120) < 3);
        QVERIFY(!secondsSince("yesterday"));
        QVERIFY(!secondsSince(""));
    }

    void stopSignalsTheRecordedProcess()
    {
        const pid_t child = ::fork();
        if (child == 0) {
            std::signal(SIGTERM, SIG_DFL); // not Qt Test's crash handler
            ::pause();                     // until a signal ends it
            ::_exit(0);
        }
        auto store = ProjectStore::create(file("stop.polymoe"));
        const int64_t id = store.beginRun("stage1", "{}");
        store.db().exec("UPDATE runs SET pid = " + std::to_string(child) + ", process_start = " +
                        std::to_string(processStartTicks(child)) + " WHERE id = " + std::to_string(id));
        const auto r = *store.run(id);
        QCOMPARE(runLiveness(r), RunLiveness::Alive);
        QCOMPARE(requestRunStop(r), std::string());
        int st = 0;
        QCOMPARE(::waitpid(child, &st, 0), child);
        QVERIFY(WIFSIGNALED(st));
        QCOMPARE(WTERMSIG(st), SIGTERM);
    }

    void schemaFourMigrates()
    {
        // A file at schema 3 (runs without the liveness columns), opened read-only: migrated first.
        const auto p = file("v3.polymoe");
        {
            auto old = ProjectStore::createAtVersion(p, 3);
            QCOMPARE(old.schemaVersion(), 3);
            old.db().exec("INSERT INTO runs(kind, config, status, pid) VALUES ('stage1', '{}', 'running', " +
                          std::to_string(deadPid()) + ")");
        }
        auto store = ProjectStore::open(p, true);
        QVERIFY(store.readOnly());
        QCOMPARE(store.schemaVersion(), ProjectStore::kSchemaVersion);
        const auto r = store.runs().at(0);
        QCOMPARE(r.host, std::string()); // recorded before schema 4: taken as local
        QVERIFY(runIsLocal(r));
        QCOMPARE(displayStatus(r), std::string("interrupted"));
    }
};

QTEST_MAIN(TestRunLiveness)
#include "tst_run_liveness.moc"
