// The demo corpus: man pages rendered by groff (hand-written pages, and real pages of each demo
// language against what `man` itself prints), fortune parsing, and a real build from the installed
// Debian packages (fortunes-*, manpages-*), checked for content and provenance.
#include "polymoe/demo_corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "man_page_text.h"
#include "sqlite_db.h"

#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
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
    void plainText_data()
    {
        QTest::addColumn<QString>("groff");
        QTest::addColumn<QString>("text");
        const QString gap(40, ' ');
        QTest::newRow("header and footer dropped")
            << "LS(1)" + gap + "User Commands" + gap + "LS(1)\n\n\n\nNAME\n       ls - list\n\nGNU" + gap + "2022" + gap + "LS(1)\n"
            << "NAME\nls - list";
        QTest::newRow("paragraph lines kept") << "First line\n\n\n   second   paragraph\tend  \n" << "First line\n\nsecond paragraph end";
        QTest::newRow("overstrikes") << "b\bbo\bol\bld _\bu_\bn_\bd\xc3\xa4\b\xc3\xa4" << "bold und\u00e4";
        QTest::newRow("underlined umlaut") << "_\b\xc3\xa4x" << "\u00e4x";
        QTest::newRow("colour sequences") << "\x1b[1mbold\x1b[0m text" << "bold text";
        QTest::newRow("hyphen as minus") << "Tabulator\u2010Zeichen" << "Tabulator-Zeichen";
    }
    void plainText()
    {
        QFETCH(QString, groff);
        QFETCH(QString, text);
        QCOMPARE(QString::fromStdString(plainManText(groff.toStdString())), text);
    }

    void renderedByGroff_data()
    {
        QTest::addColumn<QString>("roff");
        QTest::addColumn<QString>("text");
        QTest::newRow("heading and paragraph")
            << ".TH LS 1 \"2022\"\n.SH NAME\nls \\- list directory contents\n.SH BESCHREIBUNG\n.PP\nZeigt \\fBDateien\\fP an.\n"
            << "NAME\nls - list directory contents\n\nBESCHREIBUNG\nZeigt Dateien an.";
        // The audit's leak: italic corrections came out as "," and "/".
        QTest::newRow("italic corrections")
            << ".TH CAT 1\n.SH \\(:UBERSICHT\n\\fBcat\\fP [\\fI\\,OPTION\\/\\fP]\\&...\n" << "\u00dcBERSICHT\ncat [OPTION]...";
        QTest::newRow("special characters")
            << ".TH X 1\n.SH A\na \\(em b \\[u00E4] \\(aqq\\(aq \\e \\&.dot\n" << "A\na \u2014 b \u00e4 'q' \\ .dot";
        QTest::newRow("tbl table") << ".TH X 1\n.SH T\n.TS\nl l.\nKey\tValue\n.TE\n" << "T\nKey Value";
        QTest::newRow("mdoc") << ".Dd March 1, 2022\n.Dt LS 1\n.Os\n.Sh NAME\n.Nm ls\n.Nd list directory contents\n"
                              << "NAME\nls \u2014 list directory contents";
        QTest::newRow("UTF-8 text") << ".TH X 1\n.SH \u041e\u041f\u0418\u0421\u0410\u041d\u0418\u0415\n\u0442\u0435\u043a\u0441\u0442\n"
                                    << "\u041e\u041f\u0418\u0421\u0410\u041d\u0418\u0415\n\u0442\u0435\u043a\u0441\u0442";
        QTest::newRow("so redirect is empty") << ".\\\" a link\n.so man1/other.1\n" << "";
    }
    void renderedByGroff()
    {
        QFETCH(QString, roff);
        QFETCH(QString, text);
        QCOMPARE(QString::fromStdString(renderManPage(roff.toStdString(), "test page")), text);
    }

    // Real pages of every demo language: the words of our text are those `man` prints for the page
    // (man-db picks the preprocessors and options itself), less its running header and footer.
    void realPagesMatchMan()
    {
        QVERIFY2(!QStandardPaths::findExecutable("man").isEmpty(), "man is not installed (installer/setup.sh installs man-db)");
        const auto words = [](QString t) {
            t.replace(QChar(0x2010), '-');
            return t.split(QRegularExpression("\\s+"), Qt::SkipEmptyParts);
        };
        int pages = 0, mdoc = 0;
        for (const auto &lang : scanDemoLanguages()) {
            if (lang.manPages.empty() || !QStringList({"en", "de", "es", "ru"}).contains(QString::fromStdString(lang.code)))
                continue;
            std::vector<fs::path> chosen;
            for (size_t i = 0; i < 6; ++i)
                chosen.push_back(lang.manPages[i * lang.manPages.size() / 6]);
            for (const auto &p : lang.manPages)
                if (p.filename() == "cat.1.gz" || p.filename() == "ssh.1.gz" || p.filename() == "tar.1.gz")
                    chosen.push_back(p);
            for (const auto &page : chosen) {
                const std::string roff = readManPage(page);
                const QString ours = QString::fromStdString(renderManPage(roff, page.string()));
                if (roff.find("\n.Dd") != std::string::npos || roff.rfind(".Dd", 0) == 0)
                    ++mdoc;
                QProcess man;
                auto env = QProcessEnvironment::systemEnvironment();
                env.insert("MANWIDTH", "2000");
                env.insert("LC_ALL", "C.UTF-8");
                env.remove("MAN_KEEP_FORMATTING");
                man.setProcessEnvironment(env);
                man.start("man", {"-l", "--nh", "--nj", "-E", "UTF-8", QString::fromStdString(page.string())});
                QVERIFY(man.waitForFinished(60000));
                QStringList lines = QString::fromUtf8(man.readAllStandardOutput()).split('\n');
                while (!lines.isEmpty() && lines.front().trimmed().isEmpty())
                    lines.removeFirst();
                while (!lines.isEmpty() && lines.back().trimmed().isEmpty())
                    lines.removeLast();
                if (lines.isEmpty()) {
                    QCOMPARE(ours, QString()); // a redirect, or a page man prints nothing of
                    continue;
                }
                // The running header and footer: parts spread over the 2000-column line.
                const QRegularExpression running("\\S\\s{100,}\\S|^\\s{100,}\\S");
                if (running.match(lines.front()).hasMatch())
                    lines.removeFirst();
                if (!lines.isEmpty() && running.match(lines.back()).hasMatch())
                    lines.removeLast();
                QString reference = lines.join('\n');
                reference.remove(QRegularExpression(".\b")); // man's own overstrikes, if any
                const QStringList a = words(ours), b = words(reference);
                if (a != b) {
                    int k = 0;
                    while (k < a.size() && k < b.size() && a[k] == b[k])
                        ++k;
                    QFAIL(qPrintable(QString::fromStdString(page.string()) + ": word " + QString::number(k) + " is '" +
                                     a.value(k) + "', man prints '" + b.value(k) + "'"));
                }
                ++pages;
            }
        }
        QVERIFY2(pages >= 20, qPrintable(QString::number(pages) + " pages compared"));
        QVERIFY2(mdoc >= 1, "no mdoc page among those compared");
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
