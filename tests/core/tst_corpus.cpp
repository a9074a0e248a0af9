// Tests for corpus import: formats, invalid UTF-8, empty and duplicate documents (with file and
// line), all-or-nothing imports, a very long line, the deterministic split, and statistics.
#include "polymoe/corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "sqlite_db.h"
#include "utf8.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace polymoe;
namespace fs = std::filesystem;

class TestCorpus : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path tmp(const std::string &name) const { return fs::path(m_dir.path().toStdString()) / name; }
    static fs::path data(const char *name) { return fs::path(POLYMOE_TEST_DATA_DIR) / "corpus" / name; }
    static Language german() { return {"de", "German", LanguageGroup::New, 1}; }

private Q_SLOTS:
    void utf8Validation_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<int>("badAt"); // -1: valid
        QTest::newRow("ascii") << QByteArray("hello") << -1;
        QTest::newRow("umlaut") << QByteArray("\xc3\xa4pfel") << -1;
        QTest::newRow("cyrillic") << QByteArray("\xd0\x9f\xd1\x80\xd0\xb8") << -1;
        QTest::newRow("emoji 4 bytes") << QByteArray("a\xf0\x9f\x98\x80") << -1;
        QTest::newRow("lone continuation") << QByteArray("ab\x80") << 2;
        QTest::newRow("overlong slash") << QByteArray("\xc0\xaf") << 0;
        QTest::newRow("surrogate") << QByteArray("x\xed\xa0\x80") << 1;
        QTest::newRow("past U+10FFFF") << QByteArray("\xf4\x90\x80\x80") << 0;
        QTest::newRow("truncated") << QByteArray("ok\xe2\x82") << 2;
        QTest::newRow("0xff") << QByteArray("\xff") << 0;
    }
    void utf8Validation()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(int, badAt);
        auto r = findInvalidUtf8(std::string_view(bytes.constData(), size_t(bytes.size())));
        QCOMPARE(r.has_value() ? int(*r) : -1, badAt);
    }

    void countsCodePointsAndWords()
    {
        QCOMPARE(countCodePoints("Äpfel über"), int64_t(10));
        QCOMPARE(countWords("  eins zwei\tdrei\nvier  "), int64_t(4));
        QCOMPARE(countWords("a\xc2\xa0" "b"), int64_t(2)); // no-break space separates
    }

    void linesFormat()
    {
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        auto docs = readDocuments(data("lines_with_duplicate.txt"), TextFormat::Lines, issues, empty);
        QCOMPARE(int(docs.size()), 4); // the duplicate is found later, at import
        QCOMPARE(empty, int64_t(2));
        QVERIFY(QString::fromStdString(docs[3].origin).endsWith("lines_with_duplicate.txt:6"));
        QCOMPARE(QString::fromStdString(docs[1].text), QString("Ärger über Öl und Übermut."));
    }

    void paragraphsAutoDetected()
    {
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        auto docs = readDocuments(data("paragraphs.txt"), TextFormat::Auto, issues, empty);
        QCOMPARE(int(docs.size()), 3);
        QCOMPARE(QString::fromStdString(docs[0].text), QString("Erster Absatz,\nzweite Zeile des ersten Absatzes."));
        QVERIFY(QString::fromStdString(docs[2].origin).endsWith(":8"));
    }

    void invalidUtf8IsReportedWithLine()
    {
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        auto docs = readDocuments(data("bad_utf8.txt"), TextFormat::Lines, issues, empty);
        QCOMPARE(int(docs.size()), 2);
        QCOMPARE(int(issues.size()), 2);
        QVERIFY(QString::fromStdString(issues[0].origin).endsWith("bad_utf8.txt:2"));
        QVERIFY(QString::fromStdString(issues[0].problem).contains("invalid UTF-8 at byte 4"));
        QVERIFY(QString::fromStdString(issues[1].origin).endsWith("bad_utf8.txt:3"));
    }

    void jsonlFormat()
    {
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        auto docs = readDocuments(data("mixed.jsonl"), TextFormat::Auto, issues, empty);
        QCOMPARE(int(docs.size()), 3);
        QCOMPARE(QString::fromStdString(docs[2].text), QString("Последний."));
        QCOMPARE(int(issues.size()), 3);
        QVERIFY(QString::fromStdString(issues[0].origin).endsWith("mixed.jsonl:3"));
        QVERIFY(QString::fromStdString(issues[0].problem).contains("\"text\""));
        QVERIFY(QString::fromStdString(issues[1].origin).endsWith("mixed.jsonl:4"));
        QVERIFY(QString::fromStdString(issues[1].problem).contains("not a JSON object"));
        QVERIFY(QString::fromStdString(issues[2].origin).endsWith("mixed.jsonl:5"));
    }

    void importRecordsDocumentsAndDuplicates()
    {
        auto store = ProjectStore::create(tmp("imp.polymoe"));
        CorpusImportOptions o;
        o.format = TextFormat::Lines;
        auto r = importCorpusFiles(store, german(), {data("lines_with_duplicate.txt")}, o);
        QCOMPARE(r.documents, int64_t(3));
        QCOMPARE(r.duplicates, int64_t(1));
        QCOMPARE(r.empty, int64_t(2));
        bool sawDuplicate = false;
        for (const auto &i : r.issues)
            if (QString::fromStdString(i.origin).endsWith(":3") && QString::fromStdString(i.problem).contains("duplicate of") &&
                QString::fromStdString(i.problem).contains(":1"))
                sawDuplicate = true;
        QVERIFY(sawDuplicate);
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM documents WHERE language = 'de'"), int64_t(3));
        QCOMPARE(store.db().queryInt("SELECT n_duplicates FROM corpora"), int64_t(1));
        // The same file again: every document is a duplicate of the project's, so nothing is written.
        try {
            importCorpusFiles(store, german(), {data("lines_with_duplicate.txt")}, o);
            QFAIL("a corpus of duplicates was recorded");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("no new document") && QString(e.what()).contains("4 duplicates"), e.what());
        }
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM corpora"), int64_t(1));
        // Source hash is the file's SHA-256.
        auto st = store.db().prepare("SELECT sha256, provenance FROM corpora ORDER BY id LIMIT 1");
        QVERIFY(st.step());
        QCOMPARE(int(st.text(0).size()), 64);
        QCOMPARE(QString::fromStdString(st.text(1)), QString("user file"));
    }

    void importIsAllOrNothing_data()
    {
        QTest::addColumn<QString>("bad");
        QTest::addColumn<QString>("phrase");
        QTest::newRow("empty file") << "empty.txt" << "the file is empty";
        QTest::newRow("blank lines only") << "blank_only.txt" << "contains no usable documents";
        QTest::newRow("only invalid UTF-8") << "all_invalid.txt" << "invalid UTF-8";
        QTest::newRow("missing file") << "does_not_exist.txt" << "cannot open";
    }
    void importIsAllOrNothing()
    {
        QFETCH(QString, bad);
        QFETCH(QString, phrase);
        auto p = tmp("aon-" + bad.toStdString() + ".polymoe");
        auto store = ProjectStore::create(p);
        try {
            importCorpusFiles(store, german(), {data("paragraphs.txt"), data(bad.toUtf8().constData())}, {});
            QFAIL("imported a bad file");
        } catch (const Error &e) {
            QVERIFY2(QString(e.what()).contains(bad) && QString(e.what()).contains(phrase), e.what());
        }
        // The good file before it was not imported either, and the language was not added.
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM documents"), int64_t(0));
        QCOMPARE(store.db().queryInt("SELECT count(*) FROM corpora"), int64_t(0));
        QVERIFY(!store.language("de").has_value());
    }

    void groupConflictIsRefused()
    {
        auto store = ProjectStore::create(tmp("grp.polymoe"));
        importCorpusFiles(store, german(), {data("paragraphs.txt")}, {});
        Language oldGerman = german();
        oldGerman.group = LanguageGroup::Old;
        QVERIFY_THROWS_EXCEPTION(ConfigError, importCorpusFiles(store, oldGerman, {data("mixed.jsonl")}, {}));
    }

    void veryLongLine()
    {
        const auto p = tmp("long.txt");
        std::string longLine;
        while (longLine.size() < (6u << 20))
            longLine += "Ein sehr langer Satz über Äpfel und Birnen, ";
        {
            std::ofstream out(p, std::ios::binary);
            out << "kurz\n" << longLine << "\nnoch kurz\n";
        }
        auto store = ProjectStore::create(tmp("long.polymoe"));
        auto r = importCorpusFiles(store, german(), {p}, {});
        QCOMPARE(r.documents, int64_t(3));
        QCOMPARE(store.db().queryInt("SELECT max(length(text)) FROM documents"),
                 int64_t(countCodePoints(trimWhitespace(longLine))));
        // Past the limit the document is refused with its line, the others still go in.
        CorpusImportOptions small;
        small.maxDocumentBytes = 1 << 20;
        auto store2 = ProjectStore::create(tmp("long2.polymoe"));
        auto r2 = importCorpusFiles(store2, german(), {p}, small);
        QCOMPARE(r2.documents, int64_t(2));
        QCOMPARE(r2.invalid, int64_t(1));
        QVERIFY(QString::fromStdString(r2.issues.at(0).origin).endsWith("long.txt:2"));
    }

    // Control characters other than tab, LF, FF and CR are not text: such a document is skipped with
    // its line, and a file of nothing else (a binary) writes nothing. A file whose only document is
    // over the length limit writes nothing either. The corpus hash is of the bytes imported.
    void controlCharactersAndOverlongFilesWriteNothing()
    {
        const auto mixed = tmp("ctl.txt");
        std::ofstream(mixed, std::ios::binary) << "Erste Zeile.\n" << std::string("bin\0\x01ary", 8) << "\n"
                                               << "Seite\feins.\n" << "Ende.\x1b[0m\n";
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        const auto docs = readDocuments(mixed, TextFormat::Lines, issues, empty);
        QCOMPARE(int(docs.size()), 2); // the form feed stays
        QCOMPARE(docs[1].text, std::string("Seite\feins."));
        QCOMPARE(int(issues.size()), 2);
        QVERIFY(QString::fromStdString(issues[0].origin).endsWith("ctl.txt:2"));
        QVERIFY2(QString::fromStdString(issues[0].problem).contains("control character U+0000 at byte 3"),
                 issues[0].problem.c_str());
        QVERIFY(QString::fromStdString(issues[1].origin).endsWith("ctl.txt:4"));
        QVERIFY(QString::fromStdString(issues[1].problem).contains("U+001B"));

        const auto binary = tmp("binary.txt");
        std::ofstream(binary, std::ios::binary) << std::string("\x7f" "ELF\x02\x01\x01\0\0\n\x03\0>\0\x01\n", 17);
        const auto longOnly = tmp("one-long-line.txt");
        std::ofstream(longOnly, std::ios::binary) << std::string(300, 'x') << "\n";
        CorpusImportOptions small;
        small.maxDocumentBytes = 100;
        for (const auto &[file, phrase] : {std::pair{binary, std::string("control character")},
                                           std::pair{longOnly, std::string("longer than the limit of 100")}}) {
            auto store = ProjectStore::create(tmp(file.filename().string() + ".polymoe"));
            try {
                importCorpusFiles(store, german(), {file}, small);
                QFAIL("imported");
            } catch (const FormatError &e) {
                QVERIFY2(QString(e.what()).contains(QString::fromStdString(file.filename().string())) &&
                             QString(e.what()).contains(QString::fromStdString(phrase)),
                         e.what());
            }
            QCOMPARE(store.db().queryInt("SELECT count(*) FROM corpora"), int64_t(0));
            QVERIFY(!store.language("de").has_value());
        }

        // sha256 of "hello world\n", a published test vector, recorded from the one read of the file.
        const auto hello = tmp("hello.txt");
        std::ofstream(hello, std::ios::binary) << "hello world\n";
        auto store = ProjectStore::create(tmp("hash.polymoe"));
        importCorpusFiles(store, german(), {hello}, {});
        auto st = store.db().prepare("SELECT sha256 FROM corpora");
        QVERIFY(st.step());
        QCOMPARE(QString::fromStdString(st.text(0)),
                 QString("a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"));
    }

    void splitIsDeterministicAndNearTheFraction()
    {
        int held = 0, heldOtherSeed = 0, same = 0;
        const int n = 20000;
        for (int i = 0; i < n; ++i) {
            const std::string t = "document number " + std::to_string(i);
            const bool h = isHeldOut(t, 0.05, 0);
            held += h;
            heldOtherSeed += isHeldOut(t, 0.05, 7);
            same += h == isHeldOut(t, 0.05, 0);
            QVERIFY(!isHeldOut(t, 0.0, 0));
        }
        QCOMPARE(same, n);
        // Binomial(20000, 0.05): mean 1000, sd ~31; 5 sd either side.
        QVERIFY2(held > 845 && held < 1155, qPrintable(QString::number(held)));
        QVERIFY(heldOtherSeed > 845 && heldOtherSeed < 1155);
    }

    void statsPerLanguage()
    {
        auto store = ProjectStore::create(tmp("stats.polymoe"));
        CorpusImportOptions o;
        o.heldoutFraction = 0;
        importCorpusFiles(store, german(), {data("paragraphs.txt")}, o);
        importCorpusFiles(store, {"ru", "Russian", LanguageGroup::New, 1}, {data("mixed.jsonl")}, o);
        auto stats = corpusStats(store);
        QCOMPARE(int(stats.size()), 2);
        const auto &de = stats[0].language.code == "de" ? stats[0] : stats[1];
        QCOMPARE(de.trainDocuments, int64_t(3));
        QCOMPARE(de.heldoutDocuments, int64_t(0));
        // "Erster Absatz,\nzweite Zeile des ersten Absatzes." 7 words, "Zweiter Absatz." 2, "Dritter Absatz\nmit zwei Zeilen." 5
        QCOMPARE(de.words, int64_t(14));
        QCOMPARE(de.trainTokens, int64_t(-1)); // no tokenizer yet
        QCOMPARE(de.tokensPerWord, 0.0);

        // Shards of a current tokenizer: fertility counts the tokens of both splits, so a language
        // whose documents are all held out (a probe set) has one too.
        store.db().exec("INSERT INTO tokenizers(backend, vocab_size, settings, model, sha256, source, is_current) "
                        "VALUES ('sentencepiece', 100, '{}', x'00', '00', 'test', 1)");
        const std::string tok = std::to_string(store.db().lastInsertId());
        store.db().exec("INSERT INTO token_shards(tokenizer_id, language, split, path, n_documents, n_tokens, n_words, "
                        "n_characters) VALUES (" + tok + ", 'de', 'train', 'a.bin', 3, 20, 14, 0), (" + tok +
                        ", 'de', 'heldout', 'b.bin', 0, 8, 0, 0), (" + tok + ", 'ru', 'heldout', 'c.bin', 1, 9, 0, 0)");
        stats = corpusStats(store);
        const auto &de2 = stats[0].language.code == "de" ? stats[0] : stats[1];
        const auto &ru2 = stats[0].language.code == "de" ? stats[1] : stats[0];
        QCOMPARE(de2.trainTokens, int64_t(20));
        QCOMPARE(de2.heldoutTokens, int64_t(8));
        QCOMPARE(de2.tokensPerWord, 28.0 / 14.0);
        QCOMPARE(de2.tokensPerCharacter, 28.0 / double(de2.characters));
        QCOMPARE(ru2.trainTokens, int64_t(-1));
        QCOMPARE(ru2.tokensPerWord, 9.0 / double(ru2.words));
    }
};

QTEST_GUILESS_MAIN(TestCorpus)
#include "tst_corpus.moc"
