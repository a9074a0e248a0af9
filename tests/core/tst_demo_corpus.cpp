// The demo corpus: roff rendering on hand-written pages, fortune parsing, and a real build from
// the installed Debian packages (fortunes-*, manpages-*), checked for content and provenance.
#include "polymoe/demo_corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "roff_text.h"
#include "sqlite_db.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <fstream>
#include <set>
#include <tuple>

using namespace polymoe;
namespace fs = std::filesystem;

class TestDemoCorpus : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path tmp(const std::string &name) const { return fs::path(m_dir.path().toStdString()) / name; }

private Q_SLOTS:
    void roffRendering_data()
    {
        QTest::addColumn<QString>("roff");
        QTest::addColumn<QString>("text");
        QTest::newRow("heading and paragraph")
            << ".TH LS 1 \"2022\"\n.SH NAME\nls \\- list directory contents\n.SH BESCHREIBUNG\n.PP\nZeigt \\fBDateien\\fP an.\n"
            << "NAME\nls - list directory contents\nBESCHREIBUNG\nZeigt Dateien an.";
        QTest::newRow("alternating fonts and quotes")
            << ".BR ls (1),\n.B \"two words\"\nend\n" << "ls(1), two words end";
        QTest::newRow("comments and macro definitions")
            << ".\\\" a comment\n.de XX\n.ft B\n..\nkept \\\" trailing comment\n" << "kept";
        QTest::newRow("special characters")
            << "a \\(em b \\[u00E4] \\(aqq\\(aq \\e \\&.dot\n" << "a \u2014 b \u00e4 'q' \\ .dot";
        QTest::newRow("tagged paragraph")
            << ".TP\n\\fB\\-a\\fR, \\fB\\-\\-all\\fR\ndo not ignore entries\n.IP \\(bu 2\nitem\n"
            << "-a, --all do not ignore entries\n\u2022 item";
        QTest::newRow("size escapes and strings") << "\\s-1SMALL\\s0 \\*(lqq\\*(rq\n" << "SMALL q";
        QTest::newRow("so redirect is empty") << ".so man1/other.1\n" << "";
    }
    void roffRendering()
    {
        QFETCH(QString, roff);
        QFETCH(QString, text);
        QCOMPARE(QString::fromStdString(roffToText(roff.toStdString())), text);
    }

    void fortunesSplitOnPercent()
    {
        const auto p = tmp("fort");
        std::ofstream(p) << "Erste Zeile\nzweite Zeile\n%\nZweiter Spruch\n%\n%\nDritter\n";
        auto docs = readFortunes(p);
        QCOMPARE(int(docs.size()), 3);
        QCOMPARE(QString::fromStdString(docs[0].text), QString("Erste Zeile\nzweite Zeile"));
        QVERIFY(QString::fromStdString(docs[1].origin).endsWith(":4"));
        QCOMPARE(QString::fromStdString(docs[2].text), QString("Dritter"));
    }

    void scanFindsInstalledLanguages()
    {
        const auto langs = scanDemoLanguages();
        QStringList codes;
        for (const auto &l : langs)
            codes << QString::fromStdString(l.code);
        for (const char *c : {"en", "es", "de", "ru"})
            QVERIFY2(codes.contains(c), qPrintable("demo language not installed: " + QString(c) +
                                                   " (installer/setup.sh installs it); found " + codes.join(',')));
        for (const auto &l : langs)
            if (l.code == "de") {
                QVERIFY(!l.fortuneFiles.empty());
                QVERIFY(l.manPages.size() > 100);
                QVERIFY(std::find(l.packages.begin(), l.packages.end(), "manpages-de") != l.packages.end());
            }
    }

    void englishManPagesTranslatedOrAll()
    {
        const auto pagesOf = [](const std::vector<DemoLanguage> &langs) {
            std::set<std::string> pages;
            for (const auto &l : langs)
                if (l.code == "en")
                    for (const auto &p : l.manPages)
                        pages.insert(p.string());
            return pages;
        };
        const auto translated = pagesOf(scanDemoLanguages());
        const auto all = pagesOf(scanDemoLanguages("/", true));
        QVERIFY(!translated.empty());
        QVERIFY2(all.size() > translated.size(), qPrintable(QString("%1 vs %2").arg(all.size()).arg(translated.size())));
        QVERIFY(std::includes(all.begin(), all.end(), translated.begin(), translated.end()));
        // Every translated English page has a German, Spanish... counterpart of the same name.
        QVERIFY(translated.count("/usr/share/man/man1/ls.1.gz") == 1);
    }

    void splitSeedHoldsOutOtherDocuments()
    {
        const auto build = [&](const char *name, uint64_t seed) {
            auto store = ProjectStore::create(tmp(name));
            DemoCorpusOptions o;
            o.languages = {"de"};
            o.oldLanguages = {};
            o.maxCharactersPerLanguage = 200'000;
            o.splitSeed = seed;
            buildDemoCorpus(store, o);
            const auto list = [&](const std::string &where) {
                auto st = store.db().prepare("SELECT group_concat(sha256) FROM (SELECT sha256 FROM documents " + where +
                                             " ORDER BY sha256)");
                st.step();
                return st.text(0);
            };
            return std::tuple(list(""), list("WHERE split = 'heldout'"),
                              store.db().queryInt("SELECT count(*) FROM documents WHERE split = 'heldout'"));
        };
        const auto [docsA, heldA, nA] = build("seed0.polymoe", 0);
        const auto [docsB, heldB, nB] = build("seed7.polymoe", 7);
        const auto [docsC, heldC, nC] = build("seed7b.polymoe", 7);
        QCOMPARE(docsA, docsB);   // the same documents are selected
        QVERIFY(heldA != heldB);  // but others are held out
        QCOMPARE(heldB, heldC);   // and the same seed holds out the same ones
        QVERIFY(nA > 0 && nB > 0);
    }

    void missingLanguageNamesPackages()
    {
        auto store = ProjectStore::create(tmp("missing.polymoe"));
        DemoCorpusOptions o;
        o.languages = {"en", "xx"};
        try {
            buildDemoCorpus(store, o);
            QFAIL("built a corpus for a language with no text");
        } catch (const ConfigError &e) {
            QVERIFY2(QString(e.what()).contains("fortunes-xx") && QString(e.what()).contains("manpages-xx"), e.what());
        }
        QCOMPARE(int(store.languages().size()), 0);
    }

    void buildsRealCorpus()
    {
        auto store = ProjectStore::create(tmp("demo.polymoe"));
        DemoCorpusOptions o;
        o.maxCharactersPerLanguage = 300'000;
        int progressCalls = 0;
        auto rep = buildDemoCorpus(store, o, [&](const Progress &) { ++progressCalls; });
        QVERIFY(progressCalls > 0);
        QCOMPARE(int(rep.languages.size()), 4);
        auto &db = store.db();
        for (const char *code : {"en", "es", "de", "ru"}) {
            const std::string c = code;
            const int64_t docs = db.queryInt("SELECT count(*) FROM documents WHERE language = '" + c + "'");
            const int64_t chars = db.queryInt("SELECT sum(n_characters) FROM documents WHERE language = '" + c + "'");
            QVERIFY2(docs > 50, code);
            // Up to the cap, overshooting by at most one document.
            QVERIFY2(chars >= 250'000 && chars < 300'000 + 200'000, qPrintable(QString("%1: %2").arg(code).arg(chars)));
            const int64_t held = db.queryInt("SELECT count(*) FROM documents WHERE split = 'heldout' AND language = '" + c + "'");
            QVERIFY2(held > 0 && held < docs / 5, code);
            // Provenance names the Debian package.
            auto st = db.prepare("SELECT provenance FROM corpora WHERE language = ? ORDER BY id");
            st.bind(1, c);
            QVERIFY(st.step());
            QVERIFY2(QString::fromStdString(st.text(0)).contains("fortunes"), st.text(0).c_str());
        }
        QCOMPARE(QString::fromStdString(toString(store.language("de")->group)), QString("new"));
        QCOMPARE(QString::fromStdString(toString(store.language("es")->group)), QString("old"));
        // Rendered man pages carry no roff left-overs; Russian text is Cyrillic.
        QCOMPARE(db.queryInt("SELECT count(*) FROM documents WHERE text LIKE '%\\fB%' OR text LIKE '.SH %'"), int64_t(0));
        QVERIFY(db.queryInt("SELECT count(*) FROM documents WHERE language = 'ru' AND text LIKE '%и%'") > 10);
        QVERIFY(db.queryInt("SELECT count(*) FROM documents WHERE language = 'de' AND origin LIKE '/usr/share/man/de/%'") > 0);
        // The same build again selects the same documents.
        auto store2 = ProjectStore::create(tmp("demo2.polymoe"));
        buildDemoCorpus(store2, o);
        auto a = db.prepare("SELECT group_concat(sha256) FROM (SELECT sha256 FROM documents ORDER BY sha256)");
        auto b = store2.db().prepare("SELECT group_concat(sha256) FROM (SELECT sha256 FROM documents ORDER BY sha256)");
        QVERIFY(a.step() && b.step());
        QCOMPARE(a.text(0), b.text(0));
    }
};

QTEST_GUILESS_MAIN(TestDemoCorpus)
#include "tst_demo_corpus.moc"
