// Hostile and careless input to the polymoe command line, in a sandbox: every case ends with exit 1
// or 2 (never a signal or a hang), a message on stderr that names the option or the file and the
// problem, and no file outside the sandbox changed (the sandbox's parent is listed and hashed before
// and after). The parsers' own cases are fuzzed (tests/fuzz) and unit-tested per module.
#include <QCryptographicHash>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>
#include <sys/stat.h>

class TestSecurity : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_parent;
    QString m_sandbox, m_project, m_model;

    struct Result {
        int code = -1;
        bool crashed = false, timedOut = false;
        QString err;
    };

    static QString binary() { return QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe"); }

    Result run(const QStringList &args, int timeoutMs = 120000)
    {
        QProcess p;
        p.setWorkingDirectory(m_sandbox);
        p.start(binary(), args);
        Result r;
        if (!p.waitForFinished(timeoutMs)) {
            r.timedOut = true;
            p.kill();
            p.waitForFinished();
        }
        r.crashed = p.exitStatus() != QProcess::NormalExit;
        r.code = r.crashed ? -1 : p.exitCode();
        r.err = QString::fromUtf8(p.readAllStandardError());
        return r;
    }

    // Every file and folder under the parent but outside the sandbox, with its content's hash.
    QMap<QString, QByteArray> outside() const
    {
        QMap<QString, QByteArray> m;
        QDirIterator it(m_parent.path(), QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden | QDir::System,
                        QDirIterator::Subdirectories);
        while (it.hasNext()) {
            const QString path = it.next();
            if (path == m_sandbox || path.startsWith(m_sandbox + "/"))
                continue;
            QByteArray h = "dir";
            if (it.fileInfo().isFile()) {
                QFile f(path);
                if (f.open(QIODevice::ReadOnly))
                    h = QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256);
            }
            m[path.mid(m_parent.path().size())] = h;
        }
        return m;
    }

    QString write(const QString &rel, const QByteArray &bytes)
    {
        const QString path = m_sandbox + "/" + rel;
        QDir().mkpath(QFileInfo(path).path());
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size())
            qFatal("cannot write %s", qPrintable(path));
        return path;
    }

    // A model folder whose config.json is `config` (and no weights).
    QString modelFolder(const QString &name, const QByteArray &config)
    {
        write("folders/" + name + "/config.json", config);
        return m_sandbox + "/folders/" + name;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_parent.isValid());
        QVERIFY2(QFileInfo::exists(binary()), qPrintable(binary()));
        m_sandbox = m_parent.path() + "/sandbox";
        QVERIFY(QDir().mkpath(m_sandbox));
        // Things beside the sandbox that a path escaping it would reach.
        QDir().mkpath(m_parent.path() + "/victim");
        QFile v(m_parent.path() + "/victim/keep.txt");
        QVERIFY(v.open(QIODevice::WriteOnly));
        v.write("must survive\n");
        v.close();

        // A small real project: English licence text (old), German fortunes (new), a tokenizer, a base.
        m_project = m_sandbox + "/p.polymoe";
        QCOMPARE(run({"project", "init", m_project}).code, 0);
        auto en = run({"corpus", "add", m_project, "--lang", "en", "--group", "old", "--format", "paragraphs",
                       "/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"});
        QVERIFY2(en.code == 0, qPrintable(en.err));
        auto de = run({"corpus", "add", m_project, "--lang", "de", "--group", "new", "--format", "lines",
                       "/usr/share/games/fortunes/de/anekdoten"});
        QVERIFY2(de.code == 0, qPrintable(de.err));
        auto tok = run({"tokenizer", "train", m_project, "--vocab-size", "400"});
        QVERIFY2(tok.code == 0, qPrintable(tok.err));
        auto base = run({"pretrain", m_project, "--recipe", "demo-base-tiny", "--steps", "2", "--name", "base"});
        QVERIFY2(base.code == 0, qPrintable(base.err));
        m_model = m_sandbox + "/p.polymoe.d/models/base";
        QVERIFY(QFileInfo::exists(m_model + "/config.json"));
    }

    void hostileInputIsRefusedInsideTheSandbox_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("names"); // what the message must name (case-insensitive)
        const QString p = QStringLiteral("p.polymoe");

        // Names that would become paths outside the project.
        QTest::newRow("model name with ..") << QStringList{"pretrain", p, "--recipe", "demo-base-tiny", "--steps", "1",
                                                           "--name", "../../victim"} << "../../victim";
        QTest::newRow("model name with a separator") << QStringList{"pretrain", p, "--recipe", "demo-base-tiny",
                                                                    "--steps", "1", "--name", "a/b"} << "a/b";
        QTest::newRow("language code with ..") << QStringList{"corpus", "add", p, "--lang", "../../x", "--group", "new",
                                                              "/usr/share/common-licenses/BSD"} << "../../x";
        QTest::newRow("export into the project's data folder")
            << QStringList{"export", p, "--model", "base", "--out", "p.polymoe.d", "--force"} << "p.polymoe.d";
        QTest::newRow("export over the folder beside it")
            << QStringList{"export", p, "--model", "base", "--out", "..", "--force"} << "project";
        // Numbers out of range, not truncated.
        QTest::newRow("batch size times sequence overflows")
            << QStringList{"pretrain", p, "--recipe", "demo-base-tiny", "--batch-size", "2305843009213693952",
                           "--seq-len", "7"} << "batch_size";
        QTest::newRow("threads") << QStringList{"pretrain", p, "--recipe", "demo-base-tiny", "--threads", "100000"}
                                 << "--threads";
        QTest::newRow("vocabulary size past 32 bits")
            << QStringList{"tokenizer", "train", p, "--vocab-size", "4294967796"} << "--vocab-size";
        QTest::newRow("NaN held-out share") << QStringList{"corpus", "add", p, "--lang", "es", "--group", "old",
                                                           "--heldout", "nan", "/usr/share/common-licenses/BSD"}
                                            << "--heldout";
        QTest::newRow("NaN learning rate") << QStringList{"pretrain", p, "--recipe", "demo-base-tiny", "--lr", "nan"}
                                           << "--lr";
        QTest::newRow("top-k 0") << QStringList{"train", p, "--stage", "1", "--top-k", "0"} << "--top-k";
        QTest::newRow("generate too many tokens")
            << QStringList{"generate", "p.polymoe.d/models/base", "Hallo", "--max-tokens", "100000000"} << "new tokens";
        // Files that are not what they claim.
        QTest::newRow("a program as corpus text")
            << QStringList{"corpus", "add", p, "--lang", "fr", "--group", "new", "/bin/ls"} << "/bin/ls";
        QTest::newRow("a missing corpus file")
            << QStringList{"corpus", "add", p, "--lang", "fr", "--group", "new", "no-such-file.txt"} << "no-such-file.txt";
        QTest::newRow("a folder as the project") << QStringList{"project", "info", "folders"} << "folders";
    }
    void hostileInputIsRefusedInsideTheSandbox()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, names);
        QDir().mkpath(m_sandbox + "/folders");
        const auto before = outside();
        const Result r = run(args);
        QVERIFY2(!r.timedOut, "the command did not end");
        QVERIFY2(!r.crashed, qPrintable("ended by a signal: " + r.err.right(600)));
        QVERIFY2(r.code == 1 || r.code == 2, qPrintable(QString("exit %1: %2").arg(r.code).arg(r.err.right(600))));
        QVERIFY2(r.err.contains(names, Qt::CaseInsensitive), qPrintable("the message does not name '" + names + "': " + r.err));
        QVERIFY2(!r.err.contains("terminate called") && !r.err.contains("Exception raised from"), qPrintable(r.err));
        QCOMPARE(outside(), before);
    }

    // Model folders whose config.json is hostile: `model info` refuses each by name, promptly.
    void hostileConfigsAreRefused_data()
    {
        QTest::addColumn<QByteArray>("config");
        QTest::addColumn<QString>("names");
        const QByteArray ok = R"("model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 64)";
        QTest::newRow("nested a million levels") << QByteArray(1'000'000, '[') << "nested";
        QTest::newRow("a number past a double") << "{" + ok + R"(, "num_hidden_layers": 1e400})" << "out of range";
        QTest::newRow("a hundred million layers") << "{" + ok + R"(, "num_hidden_layers": 100000000})" << "num_hidden_layers";
        QTest::newRow("not an object") << QByteArray("[1, 2]") << "object";
        QTest::newRow("truncated") << "{" + ok.left(40) << "config.json";
    }
    void hostileConfigsAreRefused()
    {
        QFETCH(QByteArray, config);
        QFETCH(QString, names);
        const QString dir = modelFolder(QString::fromUtf8(QTest::currentDataTag()).replace(' ', '_'), config);
        const Result r = run({"model", "info", dir}, 60000);
        QVERIFY2(!r.timedOut && !r.crashed, qPrintable(r.err.right(600)));
        QVERIFY2(r.code == 1 || r.code == 2, qPrintable(QString("exit %1: %2").arg(r.code).arg(r.err.right(600))));
        QVERIFY2(r.err.contains(names, Qt::CaseInsensitive) && r.err.contains("config.json"), qPrintable(r.err));
        QVERIFY2(r.err.size() < 2000, "the message quotes the file"); // no dump of untrusted JSON
    }

    // A FIFO where a file belongs is refused at once, never read (a read would block for ever).
    void fifosAreRefused()
    {
        const QString dir = m_sandbox + "/folders/fifo";
        QDir().mkpath(dir);
        QVERIFY(::mkfifo(QFile::encodeName(dir + "/config.json").constData(), 0600) == 0);
        Result r = run({"model", "info", dir}, 30000);
        QVERIFY2(!r.timedOut && !r.crashed && r.code == 1, qPrintable(QString("exit %1: %2").arg(r.code).arg(r.err)));
        QVERIFY2(r.err.contains("config.json"), qPrintable(r.err));
        QVERIFY(::mkfifo(QFile::encodeName(m_sandbox + "/fifo.txt").constData(), 0600) == 0);
        r = run({"corpus", "add", m_project, "--lang", "it", "--group", "new", m_sandbox + "/fifo.txt"}, 30000);
        QVERIFY2(!r.timedOut && !r.crashed && (r.code == 1 || r.code == 2), qPrintable(r.err));
        QVERIFY2(r.err.contains("fifo.txt"), qPrintable(r.err));
    }

    // A project file whose schema version is negative, or that is not SQLite at all.
    void damagedProjectFilesAreRefused()
    {
        const QString notSqlite = write("garbage.polymoe", QByteArray(4096, 'x'));
        Result r = run({"project", "info", notSqlite});
        QVERIFY2(!r.crashed && r.code == 1 && r.err.contains("garbage.polymoe"), qPrintable(r.err));
        // The store's migrations are indexed by user_version: a negative one must not index before them.
        const QString negative = m_sandbox + "/negative.polymoe";
        QVERIFY(QFile::copy(m_project, negative));
        QProcess py;
        py.start("python3", {"-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = -7'); c.commit()",
                             negative});
        QVERIFY(py.waitForFinished(30000) && py.exitCode() == 0);
        r = run({"project", "info", negative});
        QVERIFY2(!r.crashed && r.code == 1, qPrintable(QString("exit %1: %2").arg(r.code).arg(r.err)));
        QVERIFY2(r.err.contains("negative.polymoe"), qPrintable(r.err));
    }

    // SIGTERM ends a long operation promptly, even the tokenizer trainer (it cannot be interrupted, so
    // it runs in a child process that is killed), with the cancelled exit status and nothing recorded.
    void sigtermEndsTokenizerTrainingPromptly()
    {
        const QString big = m_sandbox + "/big.polymoe";
        QCOMPARE(run({"project", "init", big}).code, 0);
        auto demo = run({"corpus", "demo", big, "--languages", "en,de", "--old", "en", "--max-chars", "1500000"});
        QVERIFY2(demo.code == 0, qPrintable(demo.err));
        QProcess p;
        p.setWorkingDirectory(m_sandbox);
        p.start(binary(), {"tokenizer", "train", big, "--vocab-size", "8000", "--progress", "json"});
        QVERIFY(p.waitForStarted());
        QByteArray seen;
        // The trainer has started once the first progress line is out.
        QTRY_VERIFY_WITH_TIMEOUT((seen += p.readAllStandardOutput()).contains("train tokenizer"), 60000);
        QTest::qWait(1500);
        QVERIFY2(p.state() == QProcess::Running, "the trainer finished before it could be stopped");
        QElapsedTimer t;
        t.start();
        ::kill(pid_t(p.processId()), SIGTERM);
        QVERIFY(p.waitForFinished(30000));
        qInfo("ended %lld ms after SIGTERM", static_cast<long long>(t.elapsed()));
        QVERIFY2(t.elapsed() < 3000, qPrintable(QString::number(t.elapsed())));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 3);
        QVERIFY(p.readAllStandardError().contains("cancelled"));
        auto info = run({"project", "info", big});
        QVERIFY2(info.code == 0, qPrintable(info.err));
    }

    // Nothing above touched the victim folder or the project's own model.
    void cleanupTestCase()
    {
        QFile v(m_parent.path() + "/victim/keep.txt");
        QVERIFY(v.open(QIODevice::ReadOnly));
        QCOMPARE(v.readAll(), QByteArray("must survive\n"));
        QVERIFY(QFileInfo::exists(m_model + "/model.safetensors"));
    }
};

QTEST_GUILESS_MAIN(TestSecurity)
#include "tst_security.moc"
