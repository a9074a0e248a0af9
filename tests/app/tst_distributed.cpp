// Data-parallel training over c10d Gloo on 127.0.0.1, with the real CLI as separate processes: two
// ranks give the weights of one process with the same global batch (pre-training and stage 1), a
// rank killed with SIGKILL ends the other with a message naming it within the timeout, a run
// stopped and resumed with two ranks ends where an uninterrupted one does, only rank 0 writes; and
// the launcher variables (torchrun, SLURM) read as documented.
#include "common/tiny_training_project.h"
#include "polymoe/distributed.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "safetensors.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <csignal>
#include <fstream>
#include <map>

using namespace polymoe;

class TestDistributed : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_project, m_recipe;
    QString m_torchrun; // the interop venv's torchrun (POLYMOE_TEST_TORCHRUN), if any

    struct Result {
        int code = -1;
        QByteArray out, err;
    };

    static QString binary() { return QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe"); }

    Result run(const QStringList &args, const QProcessEnvironment &env = QProcessEnvironment::systemEnvironment(),
               int timeoutMs = 240000)
    {
        QProcess p;
        p.setProcessEnvironment(env);
        p.setWorkingDirectory(m_dir.path());
        p.start(binary(), args);
        if (!p.waitForFinished(timeoutMs)) {
            p.kill();
            p.waitForFinished();
        }
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                p.readAllStandardError()};
    }

    static QJsonObject json(const Result &r)
    {
        QJsonParseError e;
        auto doc = QJsonDocument::fromJson(r.out, &e);
        if (e.error != QJsonParseError::NoError)
            qWarning() << "not JSON:" << r.out.left(400) << r.err.left(800);
        return doc.object();
    }

    // The largest absolute difference between two model folders' tensors (all names must match).
    static double maxDifference(const QString &dirA, const QString &dirB)
    {
        SafetensorsFile a((dirA + "/model.safetensors").toStdString()), b((dirB + "/model.safetensors").toStdString());
        if (a.names() != b.names())
            return 1e9;
        double worst = 0;
        for (const auto &n : a.names())
            worst = std::max(worst, (a.tensor(n).to(at::kDouble) - b.tensor(n).to(at::kDouble)).abs().max().item<double>());
        return worst;
    }

    // Whether two folders' weights differ at all (the runs must have trained something).
    static bool differs(const QString &dirA, const QString &dirB) { return maxDifference(dirA, dirB) > 1e-5; }

    QString modelDir(const QString &name) const
    {
        const auto store = ProjectStore::open(m_project.toStdString(), true);
        const auto m = store.model(name.toStdString());
        return m ? QString::fromStdString(store.modelPath(*m).string()) : QString();
    }

    // A short pre-training run of the tiny recipe; an empty name leaves --name out.
    QStringList pretrainArgs(const QString &name, int batch, int accum, int steps = 4) const
    {
        QStringList args = {"pretrain", m_project, "--recipe", m_recipe};
        if (!name.isEmpty())
            args << "--name" << name;
        return args + QStringList{"--steps", QString::number(steps), "--batch-size", QString::number(batch),
                                  "--grad-accum", QString::number(accum), "--threads", "1", "--json", "--progress", "none"};
    }

    // The variables of two ranks started by hand on 127.0.0.1 (each test its own port), without RANK.
    static QProcessEnvironment rankEnvironment(int portOffset)
    {
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert("WORLD_SIZE", "2");
        env.insert("MASTER_ADDR", "127.0.0.1");
        env.insert("MASTER_PORT", QString::number(29000 + (QCoreApplication::applicationPid() + portOffset) % 900));
        return env;
    }

    // Starts ranks 0 and 1 of `args` with `env` (rankEnvironment) and RANK set, as torchrun would.
    void startRanks(QProcess (&ranks)[2], const QProcessEnvironment &env, const QStringList &args) const
    {
        for (int r = 0; r < 2; ++r) {
            auto e = env;
            e.insert("RANK", QString::number(r));
            ranks[r].setProcessEnvironment(e);
            ranks[r].setWorkingDirectory(m_dir.path());
            ranks[r].start(binary(), args);
        }
    }

    // Runs `args` under 'polymoe launch --nproc 2' with a JSON line per step and stops it with SIGTERM
    // once it trains: it must end with exit code 3 (cancelled, with a checkpoint).
    void launchAndStop(const QStringList &args)
    {
        QProcess p;
        p.setWorkingDirectory(m_dir.path());
        QStringList all = QStringList{"launch", "--nproc", "2", "--"} + args;
        all.replace(all.indexOf("none"), "json"); // one JSON line per step (rank 0)
        p.start(binary(), all);
        QVERIFY(p.waitForStarted());
        QByteArray seen;
        QTRY_VERIFY_WITH_TIMEOUT((seen += p.readAllStandardOutput()).contains("\"event\":\"train\""), 120000);
        ::kill(pid_t(p.processId()), SIGTERM);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 3);
    }

    // What the ranks torchrun starts need: the venv's libraries, and a timeout well inside the test's.
    static QProcessEnvironment torchrunEnvironment()
    {
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert("LD_LIBRARY_PATH", qEnvironmentVariable("POLYMOE_TEST_TORCHRUN_LD_LIBRARY_PATH"));
        env.insert("POLYMOE_DIST_TIMEOUT", "30");
        return env;
    }

    std::vector<RunRecord> runs() const { return ProjectStore::open(m_project.toStdString(), true).runs(); }
    int runCount() const { return int(runs().size()); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(QFileInfo::exists(binary()), qPrintable(binary()));
        if (!distributedAvailable())
            QSKIP("this build has no c10d Gloo (libgloo-dev with Debian's libtorch-dev)");
        m_torchrun = qEnvironmentVariable("POLYMOE_TEST_TORCHRUN");
        if (!m_torchrun.isEmpty() && !QFileInfo(m_torchrun).isExecutable())
            m_torchrun.clear();
        m_project = m_dir.filePath("dist.polymoe");
        test::makeTinyTrainingProject(m_project.toStdString());
        // A recipe for a fresh model: the tiny project's shape, warm-up and clipping on, so the
        // comparison covers the whole update.
        m_recipe = m_dir.filePath("tiny.json");
        std::ofstream(m_recipe.toStdString()) << R"({"model": {"model_type": "llama", "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 64, "tie_word_embeddings": false},
            "train": {"seq_len": 32, "lr": 0.003, "warmup_steps": 2, "dtype": "fp32", "log_every": 1,
                      "checkpoint_every": 2, "eval_tokens": 256, "seed": 3}})";
    }

    // torchrun's and SLURM's variables, as polymoe/distributed.h documents them.
    void launcherVariables()
    {
        auto from = [](std::map<std::string, std::string> vars) {
            return distributedEnvFrom([vars](const std::string &n) -> std::optional<std::string> {
                const auto it = vars.find(n);
                return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
            });
        };
        const auto one = from({});
        QCOMPARE(one.worldSize, 1);
        QVERIFY(one.launcher.empty());
        const auto tr = from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                              {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29411"}, {"TORCHELASTIC_RUN_ID", "x"},
                              {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}});
        QCOMPARE(tr.rank, 3);
        QCOMPARE(tr.worldSize, 8);
        QCOMPARE(tr.localRank, 1);
        QCOMPARE(tr.localWorldSize, 2);
        QCOMPARE(tr.masterAddr, std::string("node7"));
        QCOMPARE(tr.masterPort, 29411);
        QCOMPARE(tr.launcher, std::string("torchrun"));
        QVERIFY(tr.agentStore);
        QCOMPARE(tr.restartCount, 2);
        // SLURM: srun's step variables; the master is the node list's first host; the port follows the job.
        const auto sl = from({{"SLURM_PROCID", "5"}, {"SLURM_STEP_NUM_TASKS", "6"}, {"SLURM_NTASKS", "12"},
                              {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS_PER_NODE", "3(x2)"},
                              {"SLURM_JOB_NODELIST", "gpu[007-009,012],cpu1"}, {"SLURM_JOB_ID", "123456"}});
        QCOMPARE(sl.rank, 5);
        QCOMPARE(sl.worldSize, 6);
        QCOMPARE(sl.localRank, 2);
        QCOMPARE(sl.localWorldSize, 3);
        QCOMPARE(sl.masterAddr, std::string("gpu007"));
        QCOMPARE(sl.masterPort, 29500 + 456);
        QCOMPARE(sl.launcher, std::string("slurm"));
        QCOMPARE(firstSlurmHost("a1,b2"), std::string("a1"));
        QCOMPARE(firstSlurmHost("n[10-11]-ib"), std::string("n10-ib"));
        QCOMPARE(firstSlurmHost("single"), std::string("single"));
        // Bad values are refused by name.
        const auto refused = [&](std::map<std::string, std::string> vars, const char *word) {
            try {
                from(vars);
            } catch (const ConfigError &e) {
                return QString(e.what()).contains(word);
            }
            return false;
        };
        QVERIFY(refused({{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "rank 2"));
        QVERIFY(refused({{"WORLD_SIZE", "two"}, {"RANK", "0"}}, "WORLD_SIZE"));
        QVERIFY(refused({{"WORLD_SIZE", "2"}}, "RANK"));
        QVERIFY(refused({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT"));
        QVERIFY(refused({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"POLYMOE_DIST_TIMEOUT", "nan"}}, "POLYMOE_DIST_TIMEOUT"));
    }

    // Two ranks with batch B read rows [0, B) and [B, 2B) of each global batch: one process with
    // batch B and accumulation 2 reads the same micro-batches, and one with batch 2B the same rows
    // in one piece. All three end with the same weights.
    void twoRanksEqualOneProcessPretraining()
    {
        const int before = runCount();
        auto two = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("two", 2, 1));
        QVERIFY2(two.code == 0, two.err.constData());
        QCOMPARE(json(two)["steps"].toInt(), 4);
        QCOMPARE(json(two)["tokens"].toInt(), 4 * 4 * 32); // the global batch: 2 ranks x 2 sequences
        // Rank 0 alone wrote: one run row and one model more, and rank 1 printed no result.
        QCOMPARE(runCount(), before + 1);
        QCOMPARE(two.out.count("\"run_id\""), 1);

        auto accum = run(pretrainArgs("accum", 2, 2));
        QVERIFY2(accum.code == 0, accum.err.constData());
        auto whole = run(pretrainArgs("whole", 4, 1));
        QVERIFY2(whole.code == 0, whole.err.constData());
        auto shorter = run(pretrainArgs("half", 2, 1)); // half the global batch: other weights
        QVERIFY2(shorter.code == 0, shorter.err.constData());

        const double dAccum = maxDifference(modelDir("two"), modelDir("accum"));
        const double dWhole = maxDifference(modelDir("two"), modelDir("whole"));
        QVERIFY2(dAccum < 1e-6, qPrintable(QString::number(dAccum)));
        QVERIFY2(dWhole < 1e-5, qPrintable(QString::number(dWhole)));
        QVERIFY(differs(modelDir("two"), modelDir("half")));

        // Accumulation on two ranks: the sums overlap the last micro-batch's backward and must carry
        // the earlier micro-batch's gradients with them (one process accumulating all four).
        auto twoAccum = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("two-accum", 2, 2));
        QVERIFY2(twoAccum.code == 0, twoAccum.err.constData());
        auto accum4 = run(pretrainArgs("accum4", 2, 4));
        QVERIFY2(accum4.code == 0, accum4.err.constData());
        const double dTwoAccum = maxDifference(modelDir("two-accum"), modelDir("accum4"));
        QVERIFY2(dTwoAccum < 1e-6, qPrintable(QString::number(dTwoAccum)));
    }

    // The held-out evaluation that ends a two-rank run (each rank scores every other batch, the sums
    // added up) equals one process scoring the same model alone.
    void twoRanksEvaluateAsOneProcess()
    {
        auto two = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("eval-two", 2, 1));
        QVERIFY2(two.code == 0, two.err.constData());
        // The store keeps the latest evaluation per language: read the run's before the one-process one.
        const auto evaluations = [&] {
            const auto store = ProjectStore::open(m_project.toStdString(), true);
            std::map<std::string, EvaluationRecord> out;
            for (const auto &e : store.evaluations(store.model("eval-two")->id))
                out[e.language] = e;
            return out;
        };
        const auto byRun = evaluations();
        auto alone = run({"eval", m_project, "--model", "eval-two", "--tokens", "256", "--seq-len", "32", "--json",
                          "--progress", "none"});
        QVERIFY2(alone.code == 0, alone.err.constData());
        const auto byEval = evaluations();
        QVERIFY(!byRun.empty());
        QCOMPARE(byRun.size(), byEval.size());
        for (const auto &[language, r] : byRun) {
            const EvaluationRecord &e = byEval.at(language);
            QVERIFY(r.runId && !e.runId);
            QCOMPARE(r.tokens, e.tokens); // every target once: no batch skipped, none scored twice
            QCOMPARE(r.documents, e.documents);
            QVERIFY2(std::abs(r.loss - e.loss) < 1e-6 * std::abs(e.loss), qPrintable(QString::fromStdString(language)));
            QVERIFY2(std::abs(r.perplexityHigh - e.perplexityHigh) < 1e-4 * e.perplexityHigh,
                     qPrintable(QString::fromStdString(language)));
        }
    }

    // Stage 1 (new experts and routers, LM + balance loss; the frozen rest untouched): two ranks
    // equal one process that accumulates the same micro-batches.
    void twoRanksEqualOneProcessStage1()
    {
        const QStringList common = {"train", m_project, "--stage", "1", "--model", "base", "--steps", "3",
                                    "--batch-size", "2", "--seq-len", "32", "--threads", "1", "--json",
                                    "--progress", "none", "--stats-every", "2"};
        auto two = run(QStringList{"launch", "--nproc", "2", "--"} + common + QStringList{"--name", "s1-two"});
        QVERIFY2(two.code == 0, two.err.constData());
        auto one = run(common + QStringList{"--grad-accum", "2", "--name", "s1-one"});
        QVERIFY2(one.code == 0, one.err.constData());
        const double d = maxDifference(modelDir("s1-two"), modelDir("s1-one"));
        QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
        QVERIFY(json(two)["steps"].toInt() == 3);
        // With accumulation on both ranks too (experts a micro-batch did not reach included).
        auto twoAccum = run(QStringList{"launch", "--nproc", "2", "--"} + common +
                            QStringList{"--grad-accum", "2", "--name", "s1-two-accum"});
        QVERIFY2(twoAccum.code == 0, twoAccum.err.constData());
        auto oneAccum = run(common + QStringList{"--grad-accum", "4", "--name", "s1-one-accum"});
        QVERIFY2(oneAccum.code == 0, oneAccum.err.constData());
        const double dAccum = maxDifference(modelDir("s1-two-accum"), modelDir("s1-one-accum"));
        QVERIFY2(dAccum < 1e-6, qPrintable(QString::number(dAccum)));
    }

    // Stopped (SIGTERM to the launcher) after a few steps, then resumed with two ranks: the weights
    // of an uninterrupted two-rank run.
    void stoppedAndResumedEqualsUninterrupted()
    {
        // Long enough (400 steps of a few ms) for the signal to land mid-run.
        const QStringList every = {"--checkpoint-every", "50"};
        auto straight = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("straight", 2, 1, 400) + every);
        QVERIFY2(straight.code == 0, straight.err.constData());

        launchAndStop(pretrainArgs("resumed", 2, 1, 400) + every);
        if (QTest::currentTestFailed())
            return;
        const auto stopped = runs().back();
        QCOMPARE(stopped.status, std::string("cancelled"));
        auto resumed = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("resumed", 2, 1, 400) + every +
                           QStringList{"--resume"});
        QVERIFY2(resumed.code == 0, resumed.err.constData());
        const double d = maxDifference(modelDir("straight"), modelDir("resumed"));
        QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
        QCOMPARE(json(resumed)["steps"].toInt(), 400);
    }

    // Rank 1 killed with SIGKILL mid-run (started as torchrun starts ranks): rank 0 exits non-zero
    // within the timeout with a message that names rank 1, and the run is recorded as failed.
    void aKilledRankEndsTheOther()
    {
        auto env = rankEnvironment(0);
        env.insert("POLYMOE_DIST_TIMEOUT", "20");
        QProcess ranks[2];
        QStringList args = pretrainArgs("killed", 2, 1, 100000);
        args.replace(args.indexOf("none"), "json");
        startRanks(ranks, env, args);
        for (auto &r : ranks)
            QVERIFY(r.waitForStarted());
        QByteArray seen;
        QTRY_VERIFY_WITH_TIMEOUT((seen += ranks[0].readAllStandardOutput()).contains("\"step\":2"), 120000);
        ::kill(pid_t(ranks[1].processId()), SIGKILL);
        QElapsedTimer t;
        t.start();
        QVERIFY2(ranks[0].waitForFinished(45000), "rank 0 did not end after rank 1 was killed");
        qInfo() << "rank 0 ended" << t.elapsed() << "ms after rank 1 was killed";
        ranks[1].waitForFinished(5000);
        // It ends by itself with a message, not by a signal (SIGPIPE, from writing to the dead peer's socket).
        QCOMPARE(ranks[0].exitStatus(), QProcess::NormalExit);
        QVERIFY(ranks[0].exitCode() != 0);
        const QByteArray err = ranks[0].readAllStandardError();
        QVERIFY2(err.contains("rank 0 of 2") && err.contains("rank 1 stopped"), err.constData());
        bool failed = false;
        for (const auto &r : runs())
            failed = failed || (r.status == "failed" && r.message.find("rank 1") != std::string::npos);
        QVERIFY(failed);
    }

    // A launcher that names a backend with one process joins a group of one (the way NCCL is checked
    // on a machine with one GPU): the sums are then over one rank, so the weights are a plain run's,
    // and the run records the backend it joined. A backend this build lacks is refused by name.
    void groupOfOne()
    {
        auto grouped = run(QStringList{"launch", "--nproc", "1", "--backend", "gloo", "--"} + pretrainArgs("group1", 4, 1));
        QVERIFY2(grouped.code == 0, grouped.err.constData());
        auto plain = run(pretrainArgs("plain1", 4, 1));
        QVERIFY2(plain.code == 0, plain.err.constData());
        const double d = maxDifference(modelDir("group1"), modelDir("plain1"));
        QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
        std::map<QString, QString> backendOf;
        for (const RunRecord &r : runs()) {
            const QJsonObject cfg = QJsonDocument::fromJson(QByteArray::fromStdString(r.config)).object();
            backendOf[cfg["output_name"].toString()] = cfg["dist_backend"].toString("none");
        }
        QCOMPARE(backendOf["group1"], QStringLiteral("gloo"));
        QCOMPARE(backendOf["plain1"], QStringLiteral("none"));

        if (distributedBackends().find("nccl") == std::string::npos) {
            // launch refuses before it starts a rank; a rank started by hand (torchrun) on its own.
            auto nccl = run(QStringList{"launch", "--nproc", "2", "--backend", "nccl", "--"} + pretrainArgs("nccl", 2, 1));
            QVERIFY(nccl.code != 0);
            QVERIFY2(nccl.err.contains("backend nccl: this polymoe was built without NCCL") &&
                         !nccl.err.contains("polymoe launch: 2 ranks"), nccl.err.constData());
            auto env = QProcessEnvironment::systemEnvironment();
            env.insert("WORLD_SIZE", "1");
            env.insert("RANK", "0");
            env.insert("POLYMOE_DIST_BACKEND", "nccl"); // refused before any rendezvous: no port needed
            auto rank = run(pretrainArgs("nccl", 2, 1), env);
            QVERIFY(rank.code != 0);
            QVERIFY2(rank.err.contains("backend nccl: this polymoe was built without NCCL"), rank.err.constData());
        }
    }

    // torchrun (PyTorch 2.x's, the interop venv's: POLYMOE_TEST_TORCHRUN) starts two ranks as the
    // README says. With the c10d rendezvous and TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 rank 0 serves the
    // store, and the weights are those of one process with the same global batch. With torchrun's
    // own store (the static rendezvous) a build whose LibTorch speaks its protocol trains alike; one
    // that does not (Debian's 1.13) is refused within seconds, saying what to run instead.
    void torchrunStartsTheRanks()
    {
        if (m_torchrun.isEmpty())
            QSKIP("no torchrun (POLYMOE_TEST_TORCHRUN: the interop venv's, installer/interop-venv.sh)");
        const auto env = torchrunEnvironment();
        auto viaTorchrun = [&](const QStringList &rendezvous, const QProcessEnvironment &e, const QString &name) {
            QProcess p;
            p.setProcessEnvironment(e);
            p.setWorkingDirectory(m_dir.path());
            p.start(m_torchrun, rendezvous + QStringList{"--nnodes", "1", "--nproc-per-node", "2", "--no-python",
                                                       binary()} + pretrainArgs(name, 2, 1));
            if (!p.waitForFinished(240000)) {
                p.kill();
                p.waitForFinished();
            }
            return Result{p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                          p.readAllStandardError()};
        };
        auto accum = run(pretrainArgs("tr-accum", 2, 2));
        QVERIFY2(accum.code == 0, accum.err.constData());

        auto own = env;
        own.insert("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1");
        auto c10d = viaTorchrun({"--standalone"}, own, "tr-c10d");
        QVERIFY2(c10d.code == 0, (c10d.out + c10d.err).constData());
        const double d = maxDifference(modelDir("tr-c10d"), modelDir("tr-accum"));
        QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));

        const QString port = QString::number(29000 + (QCoreApplication::applicationPid() + 300) % 900);
        QElapsedTimer t;
        t.start();
        auto agent = viaTorchrun({"--rdzv-backend", "static", "--master-addr", "127.0.0.1", "--master-port", port,
                                  "--node-rank", "0"}, env, "tr-static");
        qInfo() << "torchrun with its own store ended after" << t.elapsed() << "ms, exit" << agent.code;
        for (const QByteArray &line : agent.err.split('\n'))
            if (line.contains("polymoe"))
                qInfo().noquote() << line;
#if TORCH_VERSION_MAJOR < 2
        QVERIFY(agent.code != 0);
        QVERIFY2(agent.err.contains("rank 0 of 2") || agent.err.contains("rank 1 of 2"), agent.err.constData());
        QVERIFY2(agent.err.contains("LibTorch is " TORCH_VERSION) &&
                     agent.err.contains("--rdzv-backend c10d") &&
                     agent.err.contains("TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"), agent.err.constData());
        QVERIFY2(t.elapsed() < 60000, qPrintable(QString::number(t.elapsed())));
        QVERIFY(modelDir("tr-static").isEmpty());
#else
        QVERIFY2(agent.code == 0, (agent.out + agent.err).constData());
        const double ds = maxDifference(modelDir("tr-static"), modelDir("tr-accum"));
        QVERIFY2(ds < 1e-6, qPrintable(QString::number(ds)));
#endif
    }

    // torchrun restarts the ranks after one was killed (--max-restarts 1): the restarted ranks,
    // started with the same command line (no --resume), continue the run from its last checkpoint
    // and end with the weights of an uninterrupted run, in the same run row.
    void torchrunRestartsAndTheRunGoesOn()
    {
        if (m_torchrun.isEmpty())
            QSKIP("no torchrun (POLYMOE_TEST_TORCHRUN: the interop venv's, installer/interop-venv.sh)");
        const QStringList every = {"--checkpoint-every", "50"};
        const int steps = 1500; // a few ms each: long enough for the kill to land mid-run
        auto straight = run(QStringList{"launch", "--nproc", "2", "--"} + pretrainArgs("tr-straight", 2, 1, steps) + every);
        QVERIFY2(straight.code == 0, straight.err.constData());
        const int before = runCount();

        auto env = torchrunEnvironment();
        env.insert("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1");
        QProcess p;
        p.setProcessEnvironment(env);
        p.setWorkingDirectory(m_dir.path());
        QStringList args = pretrainArgs("tr-restarted", 2, 1, steps) + every;
        args.replace(args.indexOf("none"), "json"); // one JSON line per step (rank 0)
        p.start(m_torchrun, QStringList{"--standalone", "--nproc-per-node", "2", "--max-restarts", "1",
                                      "--monitor-interval", "1", "--no-python", binary()} + args);
        QVERIFY(p.waitForStarted());
        // Past the first checkpoint, kill one rank (torchrun's child).
        QByteArray seen;
        const QRegularExpression stepRe("\"step\":(\\d+)");
        const auto lastStep = [&] {
            int last = 0;
            for (auto it = stepRe.globalMatch(QString::fromUtf8(seen)); it.hasNext();)
                last = std::max(last, it.next().captured(1).toInt());
            return last;
        };
        QTRY_VERIFY_WITH_TIMEOUT((seen += p.readAllStandardOutput(), lastStep() >= 120), 120000);
        QVERIFY2(lastStep() < steps - 200, "the run ended before a rank could be killed");
        QProcess children;
        children.start("pgrep", {"-P", QString::number(p.processId())});
        QVERIFY(children.waitForFinished(10000));
        const QList<QByteArray> pids = children.readAllStandardOutput().trimmed().split('\n');
        QCOMPARE(pids.size(), 2);
        ::kill(pid_t(pids.first().toInt()), SIGKILL);
        const int killedAt = lastStep();
        QVERIFY2(p.waitForFinished(240000), "torchrun did not end");
        const QByteArray err = p.readAllStandardError();
        seen += p.readAllStandardOutput();
        qInfo() << "rank killed at about step" << killedAt << "; torchrun exit" << p.exitCode();
        QVERIFY2(p.exitCode() == 0, err.right(3000).constData());
        // A rank was lost (the survivor said so) and the restarted ranks finished: they resumed the run
        // it had started (one run row more), from a checkpoint (step 1 was trained once, not again).
        QVERIFY2(err.contains("stopped (it died, was killed"), err.right(3000).constData());
        QCOMPARE(QString::fromUtf8(seen).count(QRegularExpression("\"step\":1[^0-9]")), 1);
        QVERIFY(lastStep() == steps);
        QCOMPARE(runCount(), before + 1);
        QCOMPARE(runs().back().status, std::string("completed"));
        const double d = maxDifference(modelDir("tr-straight"), modelDir("tr-restarted"));
        QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
    }

    // A restarted torchrun job continues only a run it started itself: with another job's unfinished
    // run of the same kind in the project (here one stopped under polymoe launch), the restarted
    // ranks start a run of their own and leave that one as it was.
    void aRestartTakesOnlyItsOwnRun()
    {
        launchAndStop(pretrainArgs("", 2, 1, 400) + QStringList{"--checkpoint-every", "50"});
        if (QTest::currentTestFailed())
            return;
        const RunRecord other = runs().back();
        QCOMPARE(other.status, std::string("cancelled"));

        auto env = rankEnvironment(600);
        env.insert("TORCHELASTIC_RUN_ID", "another-job");
        env.insert("TORCHELASTIC_RESTART_COUNT", "1");
        QProcess ranks[2];
        startRanks(ranks, env, pretrainArgs("", 2, 1, 4));
        for (auto &r : ranks) {
            QVERIFY(r.waitForStarted());
            QVERIFY(r.waitForFinished(240000));
            QVERIFY2(r.exitCode() == 0, r.readAllStandardError().constData());
        }
        const auto after = runs();
        QCOMPARE(after.back().status, std::string("completed"));
        QVERIFY(after.back().id != other.id);
        QCOMPARE(QJsonDocument::fromJson(QByteArray::fromStdString(after.back().config)).object()["launch_id"].toString(),
                 QStringLiteral("torchrun another-job"));
        for (const RunRecord &r : after)
            if (r.id == other.id)
                QCOMPARE(r.status, std::string("cancelled"));
    }

    // Rank 0 alone, its peer never started: the rendezvous times out with a clear message; a
    // command that does not run data-parallel refuses to start as a rank.
    void rendezvousTimeoutAndRefusals()
    {
        auto env = rankEnvironment(450);
        env.insert("RANK", "0");
        env.insert("POLYMOE_DIST_TIMEOUT", "3");
        QElapsedTimer t;
        t.start();
        auto alone = run(pretrainArgs("alone", 2, 1), env, 60000);
        QCOMPARE(alone.code, 1);
        QVERIFY2(alone.err.contains("rendezvous") && alone.err.contains("rank 0 of 2"), alone.err.constData());
        QVERIFY2(t.elapsed() < 30000, qPrintable(QString::number(t.elapsed())));

        auto ev = run({"eval", m_project}, env, 60000);
        QCOMPARE(ev.code, 2);
        QVERIFY2(ev.err.contains("data-parallel"), ev.err.constData());
        auto notTraining = run({"launch", "--nproc", "2", "--", "eval", m_project});
        QCOMPARE(notTraining.code, 2);
        QVERIFY(notTraining.err.contains("does not run data-parallel"));
    }
};

QTEST_GUILESS_MAIN(TestDistributed)
#include "tst_distributed.moc"
