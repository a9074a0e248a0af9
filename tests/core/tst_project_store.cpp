// Tests for the SQLite project store: creation, migrations, refusal of newer schemas and of
// non-project files, transactions rolling back, and a reader seeing a writer's commits (WAL).
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "sqlite_db.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>

using namespace polymoe;

class TestProjectStore : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::filesystem::path file(const char *name) const { return std::filesystem::path(m_dir.path().toStdString()) / name; }

    // A project at an older schema version with one model and its English evaluation (ppl 54.6),
    // written the way that version wrote it.
    std::filesystem::path projectWithOneEvaluation(const char *name, int version) const
    {
        const auto p = file(name);
        auto store = ProjectStore::createAtVersion(p, version);
        if (store.schemaVersion() != version)
            throw std::runtime_error("createAtVersion made another version");
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.db().exec("INSERT INTO models(name, kind, path, config) VALUES ('base', 'base', 'models/base', '{}');"
                        "INSERT INTO evaluations(model_id, language, split, n_tokens, loss, perplexity) "
                        "VALUES (1, 'en', 'heldout', 100, 4.0, 54.6)");
        return p;
    }

    // Independent look at the file through SQLite itself, not through the store.
    static int64_t rawInt(const std::filesystem::path &p, const char *sql)
    {
        sqlite3 *db = nullptr;
        sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
        sqlite3_stmt *st = nullptr;
        sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
        int64_t v = -1;
        if (st && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
    }

private Q_SLOTS:
    void createSetsSchemaAndPragmas()
    {
        auto p = file("a.polymoe");
        {
            auto store = ProjectStore::create(p);
            QCOMPARE(store.schemaVersion(), ProjectStore::kSchemaVersion);
            QCOMPARE(store.db().queryInt("PRAGMA foreign_keys"), int64_t(1));
            auto st = store.db().prepare("PRAGMA journal_mode");
            QVERIFY(st.step());
            QCOMPARE(QString::fromStdString(st.text(0)), QString("wal"));
        }
        QCOMPARE(rawInt(p, "PRAGMA user_version"), int64_t(ProjectStore::kSchemaVersion));
        QCOMPARE(rawInt(p, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           "('languages','corpora','documents','tokenizers','token_shards','models','runs','metrics',"
                           "'evaluations','exports','similarity_analyses','similarity_values','layer_scores',"
                           "'allocations','router_stats')"),
                 int64_t(15));
        QVERIFY(!std::filesystem::exists(p.string() + ".creating"));
    }

    void createRefusesExisting()
    {
        auto p = file("exists.polymoe");
        std::ofstream(p) << "x";
        try {
            ProjectStore::create(p);
            QFAIL("overwrote an existing file");
        } catch (const IoError &e) {
            QVERIFY(QString(e.what()).contains("already exists"));
        }
    }

    void migratesOldSchemaForward()
    {
        // A version-1 file written by hand, as an older PolyMoE left it.
        auto p = file("old.polymoe");
        {
            detail::Database db(p, detail::Database::Mode::Create);
            db.exec("CREATE TABLE project(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                    "CREATE TABLE languages(code TEXT PRIMARY KEY, name TEXT NOT NULL, grp TEXT NOT NULL, "
                    "wave INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL DEFAULT '');"
                    "INSERT INTO languages(code, name, grp) VALUES ('de', 'German', 'new');"
                    "PRAGMA user_version = 1;");
        }
        auto store = ProjectStore::open(p);
        QCOMPARE(store.schemaVersion(), ProjectStore::kSchemaVersion);
        auto de = store.language("de");
        QVERIFY(de.has_value());
        QCOMPARE(QString::fromStdString(de->name), QString("German"));
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM sqlite_master WHERE name = 'runs'"), int64_t(1));
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM sqlite_master WHERE name = 'router_stats'"), int64_t(1));
    }

    void createAtVersionIsMigratedOnOpen()
    {
        auto p = file("v2.polymoe");
        {
            auto store = ProjectStore::createAtVersion(p, 2);
            QCOMPARE(store.schemaVersion(), 2);
        }
        QCOMPARE(ProjectStore::open(p).schemaVersion(), ProjectStore::kSchemaVersion);
    }

    void refusesNewerSchema()
    {
        auto p = file("newer.polymoe");
        { ProjectStore::create(p); }
        {
            detail::Database db(p, detail::Database::Mode::ReadWrite);
            db.exec("PRAGMA user_version = 99");
        }
        try {
            ProjectStore::open(p);
            QFAIL("opened a newer project");
        } catch (const ConfigError &e) {
            const QString msg = e.what();
            QVERIFY2(msg.contains("newer PolyMoE") && msg.contains("99") &&
                         msg.contains(QString::number(ProjectStore::kSchemaVersion)) && msg.contains("newer.polymoe"),
                     e.what());
        }
        QCOMPARE(rawInt(p, "PRAGMA user_version"), int64_t(99)); // untouched
    }

    void refusesANegativeSchemaVersion()
    {
        // A negative user_version once indexed the migrations array before its start (a crash).
        auto p = file("negative.polymoe");
        { ProjectStore::create(p); }
        {
            detail::Database db(p, detail::Database::Mode::ReadWrite);
            db.exec("PRAGMA user_version = -5");
        }
        for (bool readOnly : {false, true}) {
            try {
                ProjectStore::open(p, readOnly);
                QFAIL("opened a project with schema version -5");
            } catch (const FormatError &e) {
                QVERIFY2(QString(e.what()).contains("schema version -5") && QString(e.what()).contains("negative.polymoe"),
                         e.what());
            }
        }
        QCOMPARE(rawInt(p, "PRAGMA user_version"), int64_t(-5)); // untouched
    }

    void namesFromUsersAndFilesStayInsideTheProject()
    {
        for (const char *bad : {"../../victim", "a/b", ".hidden", "", "..", "x\\y", "name with space"})
            QVERIFY_THROWS_EXCEPTION(ConfigError, checkSafeName(bad, "model name"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, checkSafeName(std::string(65, 'a'), "model name"));
        checkSafeName("stage2-s1.v2_final", "model name"); // no throw
        checkSafeName(std::string(64, 'a'), "model name");

        // A project file someone sent: a language code and a model folder that lead outside.
        auto p = file("hostile.polymoe");
        { ProjectStore::create(p); }
        {
            detail::Database db(p, detail::Database::Mode::ReadWrite);
            db.exec("INSERT INTO languages(code, name, grp, wave) VALUES ('../../x', 'x', 'old', 0)");
        }
        auto store = ProjectStore::open(p);
        try {
            store.languages();
            QFAIL("a stored language code with separators was taken");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("../../x") && QString(e.what()).contains("hostile.polymoe"), e.what());
        }
        ModelRecord m;
        m.path = "models/../../../victim";
        QVERIFY_THROWS_EXCEPTION(FormatError, store.modelPath(m));
        m.path = "models/base";
        QCOMPARE(store.modelPath(m), store.dataDir() / "models" / "base");
        m.path = "/elsewhere/imported-model"; // imported models are referenced where they are
        QCOMPARE(store.modelPath(m), std::filesystem::path("/elsewhere/imported-model"));
    }

    void refusesNonProjectFiles_data()
    {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QString>("phrase");
        QTest::newRow("text file") << QByteArray("hello, this is not a database\n") << "not a PolyMoE project";
        QTest::newRow("random bytes") << QByteArray(8192, '\x5a') << "not a PolyMoE project";
    }
    void refusesNonProjectFiles()
    {
        QFETCH(QByteArray, content);
        QFETCH(QString, phrase);
        auto p = file("notaproject.polymoe");
        {
            std::ofstream out(p, std::ios::binary);
            out.write(content.constData(), content.size());
        }
        try {
            ProjectStore::open(p);
            QFAIL("opened a non-project file");
        } catch (const Error &e) {
            QVERIFY2(QString(e.what()).contains(phrase) && QString(e.what()).contains("notaproject.polymoe"), e.what());
        }
        std::filesystem::remove(p);
    }

    void refusesOtherSqliteDatabase()
    {
        auto p = file("other.sqlite");
        {
            detail::Database db(p, detail::Database::Mode::Create);
            db.exec("CREATE TABLE t(x); PRAGMA user_version = 1;");
        }
        QVERIFY_THROWS_EXCEPTION(FormatError, ProjectStore::open(p));
    }

    void transactionRollsBackOnFailure()
    {
        auto p = file("tx.polymoe");
        auto store = ProjectStore::create(p);
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        bool threw = false;
        try {
            store.transaction([&] {
                store.addLanguage({"de", "German", LanguageGroup::New, 1});
                store.setSetting("halfway", "yes");
                throw std::runtime_error("simulated crash in the middle");
            });
        } catch (const std::runtime_error &) {
            threw = true;
        }
        QVERIFY(threw);
        QVERIFY(!store.language("de").has_value());
        QVERIFY(!store.setting("halfway").has_value());
        QVERIFY(store.language("en").has_value());
        // Seen from a separate connection too.
        QCOMPARE(rawInt(p, "SELECT count(*) FROM languages"), int64_t(1));
    }

    void uncommittedWorkIsLostWhenTheProcessDies()
    {
        // A child process begins a transaction, writes, and is killed before COMMIT.
        auto p = file("crash.polymoe");
        { ProjectStore::create(p).addLanguage({"en", "English", LanguageGroup::Old, 0}); }
        const pid_t pid = ::fork();
        if (pid == 0) {
            auto store = ProjectStore::open(p);
            store.db().exec("BEGIN IMMEDIATE");
            store.db().exec("INSERT INTO languages(code, name, grp) VALUES ('ru', 'Russian', 'new')");
            ::_exit(0); // no commit, no destructor
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        auto store = ProjectStore::open(p);
        QCOMPARE(int(store.languages().size()), 1);
        QVERIFY(!store.language("ru").has_value());
    }

    void readerSeesWriterCommits()
    {
        auto p = file("wal.polymoe");
        auto writer = ProjectStore::create(p);
        auto reader = ProjectStore::open(p, true);
        const int64_t run = writer.beginRun("pretrain", R"({"lr": 0.001})");
        writer.db().exec("BEGIN IMMEDIATE");
        writer.db().exec("INSERT INTO metrics(run_id, name, step, value) VALUES (" + std::to_string(run) +
                         ", 'loss', 1, 2.5)");
        // While the writer holds its transaction, the reader is not blocked and sees the last commit.
        QCOMPARE(reader.metricSeries(run, "loss").size(), size_t(0));
        QCOMPARE(int(reader.runs().size()), 1);
        writer.db().exec("COMMIT");
        auto series = reader.metricSeries(run, "loss");
        QCOMPARE(series.size(), size_t(1));
        QCOMPARE(series[0].second, 2.5);
    }

    void languagesAndGroups()
    {
        auto store = ProjectStore::create(file("lang.polymoe"));
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.addLanguage({"de", "German", LanguageGroup::New, 1});
        store.addLanguage({"de", "German", LanguageGroup::New, 1}); // idempotent
        QCOMPARE(int(store.languages().size()), 2);
        QVERIFY_THROWS_EXCEPTION(ConfigError, store.addLanguage({"de", "German", LanguageGroup::Old, 0}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, store.addLanguage({"bad code!", "", LanguageGroup::Old, 0}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, parseLanguageGroup("middle"));
        // Foreign keys are enforced: a document for a language that does not exist is refused.
        QVERIFY_THROWS_EXCEPTION(IoError, store.db().exec("INSERT INTO corpora(language, name, source, sha256, "
                                                          "provenance, format) VALUES ('xx','n','s','h','p','f')"));
    }

    void runsAndMetrics()
    {
        auto store = ProjectStore::create(file("runs.polymoe"));
        const int64_t id = store.beginRun("stage1", R"({"steps": 10})");
        store.addMetrics(id, 1, {{"loss", 3.0}, {"lr", 0.1}});
        store.addMetrics(id, 2, {{"loss", 2.0}, {"lr", 0.05}});
        store.finishRun(id, "completed", "ok", std::nullopt, "ckpt/step-2");
        auto runs = store.runs();
        QCOMPARE(int(runs.size()), 1);
        QCOMPARE(QString::fromStdString(runs[0].status), QString("completed"));
        QCOMPARE(QString::fromStdString(runs[0].checkpoint), QString("ckpt/step-2"));
        QVERIFY(!runs[0].finishedAt.empty());
        auto loss = store.metricSeries(id, "loss");
        QCOMPARE(int(loss.size()), 2);
        QCOMPARE(loss[1].first, int64_t(2));
        QCOMPARE(loss[1].second, 2.0);
        QVERIFY_THROWS_EXCEPTION(Error, store.finishRun(id, "exploded"));   // CHECK constraint
        QVERIFY_THROWS_EXCEPTION(ConfigError, store.finishRun(999, "failed")); // no such run

        // The run a resume continues: the newest unfinished one of the kind, or the one making the model.
        QVERIFY(!store.unfinishedRun("stage1")); // the only stage1 run is completed
        const int64_t a = store.beginRun("stage1", R"({"output_name": "a"})");
        const int64_t b = store.beginRun("stage1", R"({"output_name": "b"})");
        store.finishRun(b, "cancelled");
        QCOMPARE(store.unfinishedRun("stage1")->id, b);
        QCOMPARE(store.unfinishedRun("stage1", "a")->id, a);
        QVERIFY(!store.unfinishedRun("stage1", "c"));
        QVERIFY(!store.unfinishedRun("stage2"));
    }

    void schemaFiveKeepsOlderEvaluations()
    {
        // An evaluation recorded at schema 4 has no interval: after the migration it reads as none.
        auto store = ProjectStore::open(projectWithOneEvaluation("v4.polymoe", 4));
        QCOMPARE(store.schemaVersion(), ProjectStore::kSchemaVersion);
        const auto rows = store.evaluations(1);
        QCOMPARE(rows.size(), size_t(1));
        QCOMPARE(rows[0].perplexity, 54.6);
        QCOMPARE(rows[0].documents, int64_t(0));
        QVERIFY(std::isnan(rows[0].perplexityLow) && std::isnan(rows[0].perplexityHigh));
    }

    void evaluationsKeepTheirInterval()
    {
        auto store = ProjectStore::create(file("eval.polymoe"));
        store.addLanguage({"en", "English", LanguageGroup::Old, 0});
        store.addLanguage({"de", "German", LanguageGroup::New, 1});
        ModelRecord m;
        m.name = "base";
        m.kind = "base";
        m.path = "models/base";
        const int64_t id = store.addModel(m);
        EvaluationRecord en{id, std::nullopt, "en", "heldout", 1000, 4.2, 66.7, {}};
        en.documents = 40;
        en.perplexityLow = 60.5;
        en.perplexityHigh = 74.0;
        EvaluationRecord de{id, std::nullopt, "de", "heldout", 10, 6.0, 403.4, {}}; // one document: no interval
        de.documents = 1;
        store.addEvaluations({en, de});
        const auto rows = store.evaluations(id);
        QCOMPARE(rows.size(), size_t(2));
        QCOMPARE(QString::fromStdString(rows[0].language), QString("de")); // by language
        QCOMPARE(rows[0].documents, int64_t(1));
        QVERIFY(std::isnan(rows[0].perplexityLow) && std::isnan(rows[0].perplexityHigh));
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM evaluations WHERE perplexity_low IS NULL"), int64_t(1));
        QCOMPARE(rows[1].documents, int64_t(40));
        QCOMPARE(rows[1].perplexityLow, 60.5);
        QCOMPARE(rows[1].perplexityHigh, 74.0);
        QCOMPARE(rows[1].characters, 0.0); // not given: stored as NULL, read as unknown
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM evaluations WHERE n_characters IS NULL"), int64_t(2));
    }

    void schemaSixAddsTextSizesAndSamples()
    {
        auto store = ProjectStore::open(projectWithOneEvaluation("v5.polymoe", 5));
        QCOMPARE(store.schemaVersion(), ProjectStore::kSchemaVersion);
        QCOMPARE(store.evaluations(1)[0].characters, 0.0);
        EvaluationRecord e{1, std::nullopt, "en", "heldout", 200, 3.5, 33.1, {}};
        e.characters = 812.5;
        e.bytes = 830.0;
        store.addEvaluations({e});
        QCOMPARE(store.evaluations(1)[0].characters, 812.5);
        QCOMPARE(store.evaluations(1)[0].bytes, 830.0);

        QVERIFY(store.samples(1).empty());
        store.addSamples({{1, "en", "The capital of France is", " Paris.", 8}, {1, "de", "Die Hauptstadt", " von", 8}});
        // The same model, language and prompt again: replaced, not added.
        store.addSamples({{1, "en", "The capital of France is", " Lyon?", 4}});
        const auto samples = store.samples(1);
        QCOMPARE(samples.size(), size_t(2));
        QCOMPARE(QString::fromStdString(samples[0].language), QString("de"));
        QCOMPARE(QString::fromStdString(samples[1].continuation), QString(" Lyon?"));
        QCOMPARE(samples[1].maxNewTokens, int64_t(4));
        // A sample belongs to its model: removing the model removes them.
        store.db().exec("DELETE FROM models WHERE id = 1");
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM samples"), int64_t(0));
    }
};

QTEST_GUILESS_MAIN(TestProjectStore)
#include "tst_project_store.moc"
