// The polymoe command line as scripts use it: --help for every command, --version, exit codes,
// --json output, and a small real pipeline (demo text, tokenizer, pre-training, evaluation,
// generation), including Ctrl-C leaving a checkpoint that --resume continues.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <csignal>

class TestCli : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_project;

    struct Result {
        int code = -1;
        QByteArray out, err;
    };

    static QString binary() { return QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe"); }

    Result run(const QStringList &args, int timeoutMs = 300000)
    {
        QProcess p;
        p.setWorkingDirectory(m_dir.path());
        p.start(binary(), args);
        if (!p.waitForFinished(timeoutMs)) {
            p.kill();
            p.waitForFinished();
        }
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                p.readAllStandardError()};
    }

    static QJsonDocument json(const Result &r)
    {
        QJsonParseError e;
        auto doc = QJsonDocument::fromJson(r.out, &e);
        if (e.error != QJsonParseError::NoError)
            qWarning() << "not JSON:" << r.out.left(400) << r.err.left(400);
        return doc;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(QFileInfo::exists(binary()), qPrintable(binary()));
        m_project = m_dir.filePath("cli.polymoe");
    }

    void versionAndHelp()
    {
        auto v = run({"--version"});
        QCOMPARE(v.code, 0);
        QVERIFY(v.out.startsWith("polymoe "));
        auto h = run({"--help"});
        QCOMPARE(h.code, 0);
        // Every listed command answers --help with its own usage line.
        QStringList commands;
        bool inList = false;
        for (const auto &line : QString::fromUtf8(h.out).split('\n')) {
            if (line.startsWith("commands:")) {
                inList = true;
                continue;
            }
            if (inList && line.isEmpty())
                break;
            if (inList)
                commands << line.trimmed().section(QRegularExpression("\\s{2,}"), 0, 0);
        }
        for (const char *required : {"project init", "corpus demo", "corpus add", "corpus stats", "tokenizer train",
                                     "tokenize", "pretrain", "eval", "generate", "model import", "model info",
                                     "bench train"})
            QVERIFY2(commands.contains(required), required);
        for (const auto &c : commands) {
            auto r = run(c.split(' ') + QStringList{"--help"});
            QVERIFY2(r.code == 0, qPrintable(c));
            QVERIFY2(r.out.contains("usage: polymoe " + c.toUtf8()), qPrintable(c));
        }
    }

    void usageErrorsExitTwo()
    {
        QCOMPARE(run({}).code, 2);
        QCOMPARE(run({"no-such-command"}).code, 2);
        auto r = run({"corpus", "add", m_project});
        QCOMPARE(r.code, 2);
        QVERIFY(r.err.contains("usage: polymoe corpus add"));
        QCOMPARE(run({"corpus", "stats", m_project, "--bogus"}).code, 2);
        QCOMPARE(run({"corpus"}).code, 2); // needs a subcommand
    }

    void projectInitAndErrors()
    {
        auto r = run({"project", "init", m_project, "--json"});
        QCOMPARE(r.code, 0);
        QCOMPARE(json(r).object()["schema_version"].toInt(), 6); // schema 6: text sizes of evaluations, samples
        // Numbers: NaN and infinities refused, an int option never truncated (2^32 + 1 is not 1).
        r = run({"pretrain", m_project, "--lr", "nan"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("--lr expects a finite number"), qPrintable(r.err));
        QCOMPARE(run({"pretrain", m_project, "--lr", "inf"}).code, 2);
        r = run({"pretrain", m_project, "--threads", "4294967297"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("--threads must be between 0 and 4096"), qPrintable(r.err));
        QCOMPARE(run({"train", m_project, "--stage", "1", "--top-k", "0"}).code, 2);
        auto again = run({"project", "init", m_project});
        QCOMPARE(again.code, 1);
        QVERIFY(again.err.contains("already exists"));
        auto missing = run({"corpus", "stats", m_dir.filePath("nope.polymoe")});
        QCOMPARE(missing.code, 1);
        QVERIFY(missing.err.contains("nope.polymoe"));
        // A bad corpus file: non-zero exit, the file named, nothing imported.
        auto bad = run({"corpus", "add", m_project, "--lang", "de", "--group", "new",
                        POLYMOE_TEST_DATA_DIR "/corpus/empty.txt"});
        QCOMPARE(bad.code, 1);
        QVERIFY(bad.err.contains("empty.txt"));
        auto stats = run({"corpus", "stats", m_project, "--json"});
        QCOMPARE(stats.code, 0);
        QCOMPARE(json(stats).object()["languages"].toArray().size(), 0);
    }

    void corpusAddReportsIssues()
    {
        auto r = run({"corpus", "add", m_dir.filePath("other.polymoe"), "--lang", "ru", "--group", "new",
                      POLYMOE_TEST_DATA_DIR "/corpus/mixed.jsonl", "--json"});
        QCOMPARE(r.code, 1); // the project does not exist yet
        run({"project", "init", m_dir.filePath("other.polymoe")});
        r = run({"corpus", "add", m_dir.filePath("other.polymoe"), "--lang", "ru", "--group", "new",
                 POLYMOE_TEST_DATA_DIR "/corpus/mixed.jsonl", "--json"});
        QCOMPARE(r.code, 0);
        const auto o = json(r).object();
        QCOMPARE(o["documents"].toInt(), 3);
        QCOMPARE(o["invalid"].toInt(), 3);
        QVERIFY(o["issues"].toArray()[0].toObject()["where"].toString().endsWith("mixed.jsonl:3"));
    }

    void pipeline()
    {
        auto demo = run({"corpus", "demo", m_project, "--max-chars", "120000", "--json"});
        QVERIFY2(demo.code == 0, demo.err.constData());
        QCOMPARE(json(demo).object()["languages"].toArray().size(), 4);
        auto tok = run({"tokenizer", "train", m_project, "--vocab-size", "600", "--json"});
        QVERIFY2(tok.code == 0, tok.err.constData());
        QCOMPARE(json(tok).object()["tokenizer"].toObject()["vocab_size"].toInt(), 600);
        QCOMPARE(json(tok).object()["shards"].toArray().size(), 8);
        auto stats = run({"corpus", "stats", m_project, "--json"});
        for (const auto &l : json(stats).object()["languages"].toArray()) {
            const auto o = l.toObject();
            QVERIFY(o["train_tokens"].toInt() > 1000);
            QVERIFY(o["tokens_per_word"].toDouble() > 1.0 && o["tokens_per_word"].toDouble() < 6.0);
        }
        auto t = run({"tokenize", m_project, "Über", "den", "Wolken", "--json"});
        QCOMPARE(t.code, 0);
        QVERIFY(json(t).object()["count"].toInt() >= 3);

        // Pre-training, stopped with Ctrl-C after the first steps, then resumed.
        QProcess p;
        p.setWorkingDirectory(m_dir.path());
        p.start(binary(), {"pretrain", m_project, "--recipe", "demo-base-tiny", "--steps", "40",
                           "--checkpoint-every", "1000", "--progress", "json"});
        QVERIFY(p.waitForStarted());
        QByteArray seen;
        QTRY_VERIFY_WITH_TIMEOUT((seen += p.readAllStandardOutput()).contains("\"step\":3"), 120000);
        ::kill(pid_t(p.processId()), SIGINT);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 3);
        QVERIFY(p.readAllStandardError().contains("cancelled"));
        auto info = run({"project", "info", m_project, "--json"});
        const auto runs = json(info).object()["runs"].toArray();
        QCOMPARE(runs.size(), 1);
        QCOMPARE(runs[0].toObject()["status"].toString(), QString("cancelled"));

        auto resumed = run({"pretrain", m_project, "--recipe", "demo-base-tiny", "--steps", "40", "--resume",
                            "--json"});
        QVERIFY2(resumed.code == 0, resumed.err.constData());
        const auto ro = json(resumed).object();
        QCOMPARE(ro["steps"].toInt(), 40);
        QCOMPARE(ro["model"].toString(), QString("base"));
        QCOMPARE(ro["evaluation"].toArray().size(), 4);
        const QString modelDir = ro["model_dir"].toString();
        for (const char *f : {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"})
            QVERIFY2(QFileInfo::exists(modelDir + "/" + f), f);

        auto ev = run({"eval", m_project, "--json"});
        QCOMPARE(ev.code, 0);
        for (const auto &row : json(ev).object()["evaluation"].toArray()) {
            // Old languages (95% of the text) must beat a uniform guess over 600 pieces; new ones
            // have seen too little text for that after 40 steps, but must be finite.
            const double ppl = row.toObject()["perplexity"].toDouble();
            QVERIFY2(std::isfinite(ppl) && ppl > 1, qPrintable(QString::fromUtf8(ev.out)));
            if (row.toObject()["group"].toString() == "old")
                QVERIFY2(ppl < 600, qPrintable(QString::fromUtf8(ev.out)));
        }
        auto mi = run({"model", "info", modelDir, "--json"});
        QCOMPARE(mi.code, 0);
        QCOMPARE(json(mi).object()["config"].toObject()["vocab_size"].toInt(), 600);
        auto gen = run({"generate", modelDir, "Der", "--max-tokens", "8", "--temperature", "0", "--json"});
        QVERIFY2(gen.code == 0, gen.err.constData());
        QVERIFY(json(gen).object()["completion"].toString().size() > 0);
        auto imp = run({"model", "import", m_project, modelDir, "--name", "copy", "--json"});
        QCOMPARE(imp.code, 0);
        QVERIFY(json(imp).object()["parameters"].toInt() > 100000);

        // A run whose process died (SIGKILL: no chance to record anything) is "interrupted" in
        // `project info`, never "running"; the stored status stays beside it.
        QProcess k;
        k.setWorkingDirectory(m_dir.path());
        k.start(binary(), {"pretrain", m_project, "--recipe", "demo-base-tiny", "--steps", "400", "--name", "killed",
                           "--progress", "json"});
        QVERIFY(k.waitForStarted());
        QByteArray out;
        QTRY_VERIFY_WITH_TIMEOUT((out += k.readAllStandardOutput()).contains("\"step\":2"), 120000);
        k.kill();
        QVERIFY(k.waitForFinished(30000));
        auto after = run({"project", "info", m_project, "--json"});
        const auto last = json(after).object()["runs"].toArray().last().toObject();
        QCOMPARE(last["stored_status"].toString(), QString("running"));
        QCOMPARE(last["status"].toString(), QString("interrupted"));
        QVERIFY(QString::fromUtf8(run({"project", "info", m_project}).out).contains("pretrain  interrupted"));

        // A device or dtype the build cannot train on is refused before any run is recorded.
        const auto runsBefore = json(run({"project", "info", m_project, "--json"})).object()["runs"].toArray().size();
        auto badName = run({"pretrain", m_project, "--recipe", "demo-base-tiny", "--name", "tpu", "--device", "tpu"});
        QCOMPARE(badName.code, 1);
        QVERIFY2(badName.err.contains("training device must be cpu, cuda or auto, not 'tpu'"), badName.err.constData());
        auto badDtype = run({"pretrain", m_project, "--recipe", "demo-base-tiny", "--name", "fp8", "--dtype", "fp8"});
        QCOMPARE(badDtype.code, 1);
        QVERIFY2(badDtype.err.contains("training dtype must be auto, fp32 or bf16, not 'fp8'"), badDtype.err.constData());
        QCOMPARE(json(run({"project", "info", m_project, "--json"})).object()["runs"].toArray().size(), runsBefore);
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
