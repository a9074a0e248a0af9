// The Start view and the window around it: the new-project wizard (pages filled in, corpus files
// given by drag and drop, the project checked in its store; a malformed corpus file, a bad model
// folder and a cancel leave no project file), presentation mode's stepping, the dark palette on
// every chart, --screenshots (also at QT_SCALE_FACTOR=2), and "Open the demo" running the real
// `polymoe demo --profile tiny` on a demo that tst_demo built (ctest fixture demo_tiny).
// QCustomPlot's header uses Qt's keywords; this test includes no LibTorch header, so they can stay on.
#undef QT_NO_KEYWORDS

#include "ui_fixture.h"

#include "chart_style.h"
#include "cli_process.h"
#include "corpus_stats_model.h"
#include "data_page.h"
#include "forgetting_model.h"
#include "forgetting_page.h"
#include "main_window.h"
#include "new_project_wizard.h"
#include "similarity_page.h"
#include "start_page.h"

#include "polymoe/corpus.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include <qcustomplot.h>

#include <QAbstractButton>
#include <QDir>
#include <QDropEvent>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>

#include <cstring>
#include <tuple>

using namespace polymoe;
using namespace polymoe::ui;

namespace {

void writeFile(const QString &path, const QByteArray &bytes)
{
    QFile f(path);
    QVERIFY2(f.open(QIODevice::WriteOnly), qPrintable(path));
    f.write(bytes);
}

// A dense Llama folder written by hand (config.json + one safetensors file, tied embeddings): the
// format as the Hugging Face spec gives it, independent of the engine's writer.
struct TinyLlama {
    static constexpr int64_t kVocab = 32, kD = 8, kFfn = 16, kLayers = 1;
    // Hand count: embedding (tied LM head), per layer q/k/v/o, gate/up/down and two norms, final norm.
    static constexpr int64_t kParameters = kVocab * kD + kLayers * (4 * kD * kD + 3 * kD * kFfn + 2 * kD) + kD;

    static void write(const QString &dir, const QByteArray &extraConfig = {})
    {
        QDir().mkpath(dir);
        writeFile(dir + "/config.json",
                  "{\"model_type\": \"llama\", \"vocab_size\": 32, \"hidden_size\": 8, \"intermediate_size\": 16, "
                  "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"tie_word_embeddings\": true" +
                      extraConfig + "}");
        QList<QPair<QString, QList<int64_t>>> tensors = {{"model.embed_tokens.weight", {kVocab, kD}},
                                                         {"model.norm.weight", {kD}}};
        const QString l = "model.layers.0.";
        for (const char *p : {"q_proj", "k_proj", "v_proj", "o_proj"})
            tensors.append({l + "self_attn." + p + ".weight", {kD, kD}});
        tensors.append({l + "mlp.gate_proj.weight", {kFfn, kD}});
        tensors.append({l + "mlp.up_proj.weight", {kFfn, kD}});
        tensors.append({l + "mlp.down_proj.weight", {kD, kFfn}});
        tensors.append({l + "input_layernorm.weight", {kD}});
        tensors.append({l + "post_attention_layernorm.weight", {kD}});
        QJsonObject header;
        QByteArray data;
        for (const auto &[name, shape] : tensors) {
            int64_t n = 1;
            QJsonArray s;
            for (int64_t v : shape)
                n *= v, s.append(qint64(v));
            const qint64 begin = data.size();
            for (int64_t i = 0; i < n; ++i) {
                const float x = 0.01f * float((i * 7) % 13 - 6);
                data.append(reinterpret_cast<const char *>(&x), sizeof x);
            }
            header[name] = QJsonObject{{"dtype", "F32"}, {"shape", s}, {"data_offsets", QJsonArray{begin, qint64(data.size())}}};
        }
        QByteArray h = QJsonDocument(header).toJson(QJsonDocument::Compact);
        while (h.size() % 8)
            h.append(' ');
        QByteArray file(8, '\0');
        const quint64 len = quint64(h.size());
        std::memcpy(file.data(), &len, 8); // little-endian u64 (x86-64)
        writeFile(dir + "/model.safetensors", file + h + data);
    }
};

double lightness(const QImage &img, int x, int y)
{
    return img.pixelColor(x, y).lightnessF();
}

} // namespace

class TestStart : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_fixture; // a project written through the store (tests/ui/ui_fixture.h)

    // Corpus files with known document counts (auto format: lines without blank lines, paragraphs
    // with them, jsonl).
    struct Corpus {
        QString path;
        QStringList lines; // documents, when one per line (for the held-out check)
        int documents = 0;
    };

    static Corpus linesCorpus(const QString &path, const QString &stem, int n)
    {
        Corpus c{path, {}, n};
        QByteArray bytes;
        for (int i = 0; i < n; ++i) {
            c.lines << QString("%1 %2 words in a line").arg(stem).arg(i);
            bytes += c.lines.last().toUtf8() + "\n";
        }
        bytes += c.lines.first().toUtf8() + "\n"; // a duplicate: skipped
        writeFile(path, bytes);
        return c;
    }

    static QStringList filesIn(const QString &dir)
    {
        return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
    }

    // Fills the wizard's pages the way a user does and goes to the last page.
    static void fillWizard(NewProjectWizard *w, const QString &path, const QList<NewProjectLanguage> &langs,
                           double heldout, const QString &modelDir = {})
    {
        w->filePage()->pathEdit()->setText(path);
        w->filePage()->nameEdit()->setText("Wizard test");
        w->next();
        QCOMPARE(w->currentId(), int(NewProjectWizard::kBasePage));
        if (modelDir.isEmpty())
            w->basePage()->useRecipe("demo-base-tiny");
        else
            w->basePage()->useFolder(modelDir);
        w->next();
        QCOMPARE(w->currentId(), int(NewProjectWizard::kLanguagesPage));
        for (const auto &l : langs)
            w->languagesPage()->addLanguage(l.code, l.name, l.isNew, l.files);
        w->languagesPage()->setHeldoutFraction(heldout);
        w->next();
    }

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QVERIFY(m_dir.isValid());
        m_fixture = m_dir.filePath("fixture.polymoe");
        auto store = ProjectStore::create(m_fixture.toStdString());
        fixture::build(store);
    }

    void wizardCreatesTheProjectAndTheWindowOpensIt()
    {
        QTemporaryDir dir;
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "english", 12);
        const Corpus ru = linesCorpus(dir.filePath("ru.txt"), "русский", 20);
        writeFile(dir.filePath("es.jsonl"), "{\"text\": \"uno dos\"}\n{\"text\": \"tres cuatro\"}\nnot json\n"
                                            "{\"text\": \"cinco\"}\n{\"text\": \"seis siete\"}\n");
        writeFile(dir.filePath("de.txt"), "Absatz eins\nzweite Zeile\n\nAbsatz zwei\n\n\nAbsatz drei\n");
        const QString path = dir.filePath("made/new.polymoe");
        QVERIFY(QDir().mkpath(dir.filePath("made")));

        MainWindow window;
        window.show();
        window.startPage()->newProject();
        NewProjectWizard *w = window.startPage()->wizard();
        QVERIFY(w);
        QVERIFY(w->isVisible());
        // Old languages through the table's API (what Add language + Add files do) ...
        fillWizard(w, path.chopped(QString(".polymoe").size()), // the suffix is added
                   {{"en", "English", false, {en.path}}, {"es", "Spanish", false, {dir.filePath("es.jsonl")}}}, 0.2);
        // Only old languages: the page says what is missing and stays.
        QCOMPARE(w->currentId(), int(NewProjectWizard::kLanguagesPage));
        QVERIFY2(w->languagesPage()->errorText().contains("at least one language as new"),
                 qPrintable(w->languagesPage()->errorText()));
        // ... the new ones by dropping files onto their rows.
        LanguagesWizardPage *page = w->languagesPage();
        QTableWidget *table = page->table();
        for (const auto &[code, name, file] : {std::tuple{"de", "German", dir.filePath("de.txt")},
                                              std::tuple{"ru", "Russian", ru.path}}) {
            const int row = page->addLanguage(code, name, true);
            QApplication::processEvents();
            table->setCurrentCell(-1, -1);
            const QPoint at = table->viewport()->mapTo(page, table->visualItemRect(table->item(row, 3)).center());
            QMimeData mime;
            mime.setUrls({QUrl::fromLocalFile(file)});
            QDragEnterEvent enter(at, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
            QApplication::sendEvent(page, &enter);
            QVERIFY(enter.isAccepted());
            QDropEvent drop(QPointF(at), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
            QApplication::sendEvent(page, &drop);
            QVERIFY(drop.isAccepted());
            QCOMPARE(page->languages()[row].files, QStringList{file});
        }
        QCOMPARE(table->rowCount(), 4);
        w->next();
        QCOMPARE(w->currentId(), int(NewProjectWizard::kCreatePage));
        QVERIFY(w->createPage()->findChild<QLabel *>("summary")->text().contains("ru Russian (new)"));

        QSignalSpy accepted(w, &QDialog::accepted);
        w->button(QWizard::FinishButton)->click();
        QVERIFY2(accepted.wait(60000), qPrintable(w->createPage()->errorText()));
        // The window opened the new project; its views show it.
        QTRY_COMPARE(window.projectPath(), QFileInfo(path).absoluteFilePath());
        QCOMPARE(window.dataPage()->model()->rowCount(), 4);
        // The Start view says how the recipe's base model is made.
        const QString startLog = window.startPage()->findChild<QPlainTextEdit *>("log")->toPlainText();
        QVERIFY2(startLog.contains("polymoe pretrain " + QFileInfo(path).absoluteFilePath() + " --recipe demo-base-tiny"),
                 qPrintable(startLog));

        // The store, read directly: languages, groups, names, documents and the held-out split.
        auto store = ProjectStore::open(path.toStdString(), true);
        QCOMPARE(store.setting("name").value_or(""), std::string("Wizard test"));
        QCOMPARE(store.setting("base_recipe").value_or(""), std::string("demo-base-tiny"));
        const auto langs = store.languages();
        QCOMPARE(int(langs.size()), 4);
        const std::map<std::string, std::tuple<std::string, LanguageGroup, int>> expected = {
            {"en", {"English", LanguageGroup::Old, en.documents}},
            {"es", {"Spanish", LanguageGroup::Old, 4}}, // 5 lines, one not JSON
            {"de", {"German", LanguageGroup::New, 3}},  // 3 paragraphs
            {"ru", {"Russian", LanguageGroup::New, ru.documents}}};
        for (const auto &s : corpusStats(store)) {
            const auto &[name, group, docs] = expected.at(s.language.code);
            QCOMPARE(s.language.name, name);
            QCOMPARE(toString(s.language.group), toString(group));
            QCOMPARE(s.language.wave, group == LanguageGroup::New ? 1 : 0);
            QCOMPARE(s.trainDocuments + s.heldoutDocuments, int64_t(docs));
        }
        // One document per line: the held-out count is the split rule applied to each line.
        for (const Corpus *c : {&en, &ru}) {
            int64_t held = 0;
            for (const QString &line : c->lines)
                held += isHeldOut(line.toStdString(), 0.2, 0) ? 1 : 0;
            const std::string code = c == &en ? "en" : "ru";
            for (const auto &s : corpusStats(store))
                if (s.language.code == code)
                    QCOMPARE(s.heldoutDocuments, held);
        }
        QVERIFY(w->createPage()->logText().contains("es (old): 4 documents"));
        // Nothing else in the folder: no temporary file left.
        // (the open project has its WAL files beside it).
        QStringList left = filesIn(dir.filePath("made"));
        left.removeAll("new.polymoe-wal");
        left.removeAll("new.polymoe-shm");
        QCOMPARE(left, QStringList{"new.polymoe"});
    }

    void malformedCorpusLeavesNoProjectFile()
    {
        QTemporaryDir dir;
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "english", 5);
        const QString bad = QString(POLYMOE_TEST_DATA_DIR) + "/corpus/all_invalid.txt";
        const QString path = dir.filePath("bad.polymoe");
        NewProjectWizard w;
        w.show();
        fillWizard(&w, path, {{"en", "English", false, {en.path}}, {"de", "German", true, {bad}}}, 0.05);
        QCOMPARE(w.currentId(), int(NewProjectWizard::kCreatePage));
        QSignalSpy failed(w.createPage()->job(), &NewProjectJob::failed);
        w.button(QWizard::FinishButton)->click();
        QVERIFY(failed.wait(60000));
        const QString error = w.createPage()->errorText();
        QVERIFY2(error.contains(bad) && error.contains("no usable documents"), qPrintable(error));
        QVERIFY(w.isVisible()); // the wizard stays open to fix it
        QCOMPARE(w.result(), 0);
        QVERIFY(!QFileInfo::exists(path));
        QCOMPARE(filesIn(dir.path()), QStringList{"en.txt"});
        // Back is possible again, and so is a second try once the file is removed from the list.
        QVERIFY(w.button(QWizard::BackButton)->isEnabled());
    }

    void cancelLeavesNoProjectFile()
    {
        QTemporaryDir dir;
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "english", 50);
        const Corpus de = linesCorpus(dir.filePath("de.txt"), "deutsch", 50);
        const QString path = dir.filePath("cancelled.polymoe");
        NewProjectWizard w;
        w.show();
        fillWizard(&w, path, {{"en", "English", false, {en.path}}, {"de", "German", true, {de.path}}}, 0.05);
        QCOMPARE(w.currentId(), int(NewProjectWizard::kCreatePage));
        QSignalSpy cancelled(w.createPage()->job(), &NewProjectJob::cancelled);
        QSignalSpy rejected(&w, &QDialog::rejected);
        w.button(QWizard::FinishButton)->click();
        QVERIFY(w.createPage()->job()->isRunning());
        w.reject(); // Cancel while the job runs: it stops before its next step
        QVERIFY(cancelled.wait(60000));
        QTRY_COMPARE(rejected.count(), 1);
        QVERIFY(!QFileInfo::exists(path));
        QCOMPARE(filesIn(dir.path()), (QStringList{"de.txt", "en.txt"}));
    }

    void pagesRefuseBadInput()
    {
        QTemporaryDir dir;
        NewProjectWizard w;
        w.show();
        // An existing file is not overwritten.
        w.filePage()->pathEdit()->setText(m_fixture);
        w.next();
        QCOMPARE(w.currentId(), int(NewProjectWizard::kFilePage));
        QVERIFY2(w.filePage()->errorText().contains("already exists"), qPrintable(w.filePage()->errorText()));
        w.filePage()->pathEdit()->setText(dir.filePath("p.polymoe"));
        w.next();
        QCOMPARE(w.currentId(), int(NewProjectWizard::kBasePage));
        w.next();
        LanguagesWizardPage *page = w.languagesPage();
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "english", 3);
        const struct {
            QList<NewProjectLanguage> langs;
            QString message;
        } cases[] = {
            {{}, "at least one old and one new"},
            {{{"English", "", false, {en.path}}}, "'English' is not a language code"},
            {{{"en", "", false, {en.path}}, {"en", "", true, {en.path}}}, "en is listed twice"},
            {{{"en", "", false, {}}}, "en has no corpus files"},
            {{{"en", "", false, {en.path}}, {"es", "", false, {en.path}}}, "Mark at least one language as new"},
            {{{"de", "", true, {en.path}}}, "Mark at least one language as old"},
        };
        for (const auto &c : cases) {
            page->table()->setRowCount(0);
            for (const auto &l : c.langs)
                page->addLanguage(l.code, l.name, l.isNew, l.files);
            w.next();
            QCOMPARE(w.currentId(), int(NewProjectWizard::kLanguagesPage));
            QVERIFY2(page->errorText().contains(c.message), qPrintable(page->errorText() + " / " + c.message));
        }
    }

    void baseModelFolderIsCheckedAndImported()
    {
        QTemporaryDir dir;
        NewProjectWizard w;
        BaseModelWizardPage *page = w.basePage();
        // No config.json; malformed JSON; a MoE config; a dense folder whose tensor is missing.
        QDir().mkpath(dir.filePath("empty"));
        page->useFolder(dir.filePath("empty"));
        QVERIFY(!page->validatePage());
        QVERIFY2(page->errorText().contains(dir.filePath("empty/config.json") + ": not found"), qPrintable(page->errorText()));
        QDir().mkpath(dir.filePath("broken"));
        writeFile(dir.filePath("broken/config.json"), "{\"model_type\": \"llama\",");
        page->useFolder(dir.filePath("broken"));
        QVERIFY(!page->validatePage());
        QVERIFY2(page->errorText().contains("broken/config.json") && page->errorText().contains("not valid JSON"),
                 qPrintable(page->errorText()));
        TinyLlama::write(dir.filePath("moe"), ", \"num_local_experts\": 4");
        page->useFolder(dir.filePath("moe"));
        QVERIFY(!page->validatePage());
        QVERIFY2(page->errorText().contains("Mixture-of-Experts"), qPrintable(page->errorText()));
        TinyLlama::write(dir.filePath("llama"));
        page->useFolder(dir.filePath("llama"));
        QVERIFY2(page->validatePage(), qPrintable(page->errorText()));

        // The whole wizard with that folder: the project's base model is it.
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "english", 4);
        const Corpus de = linesCorpus(dir.filePath("de.txt"), "deutsch", 4);
        NewProjectWizard full;
        full.show();
        const QString path = dir.filePath("with-model.polymoe");
        fillWizard(&full, path, {{"en", "", false, {en.path}}, {"de", "", true, {de.path}}}, 0.05, dir.filePath("llama"));
        QCOMPARE(full.currentId(), int(NewProjectWizard::kCreatePage));
        QSignalSpy accepted(&full, &QDialog::accepted);
        full.button(QWizard::FinishButton)->click();
        QVERIFY2(accepted.wait(60000), qPrintable(full.createPage()->errorText()));
        auto store = ProjectStore::open(path.toStdString(), true);
        const auto base = store.model("base");
        QVERIFY(base.has_value());
        QCOMPARE(base->kind, std::string("imported"));
        QCOMPARE(base->parameters, TinyLlama::kParameters);
        QCOMPARE(QString::fromStdString(base->path), QFileInfo(dir.filePath("llama")).absoluteFilePath());
        QCOMPARE(store.languages()[0].name, std::string("en")); // no name given: the code
    }

    void presentationModeStepsThroughTheViews()
    {
        MainWindow w;
        QVERIFY(w.openProject(m_fixture));
        w.show();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        const double normalSize = QApplication::font().pointSizeF();
        w.showPage(0);
        w.setPresentationMode(true);
        QVERIFY(QApplication::font().pointSizeF() > normalSize * 1.3);
        auto *bar = w.findChild<QWidget *>("presentationBar");
        auto *label = w.findChild<QLabel *>("presentationStep");
        QVERIFY(bar->isVisible());
        const int n = int(w.pages().size());
        QCOMPARE(n, 10);
        QVERIFY2(w.presentationStepText().startsWith("Step 1 of 10: Start — "), qPrintable(w.presentationStepText()));
        QVERIFY(label->text().contains("Step 1 of 10"));
        QVERIFY(w.presentationStepText().contains("section 9"));
        // Keys: Page Down and Right forward, Page Up and Left back.
        QTest::keyClick(&w, Qt::Key_PageDown);
        QCOMPARE(w.currentPage(), 1);
        QVERIFY2(label->text().contains("Step 2 of 10: Data"), qPrintable(label->text()));
        QTest::keyClick(&w, Qt::Key_Right);
        QCOMPARE(w.currentPage(), 2);
        QVERIFY(w.presentationStepText().contains("Layer similarity") && w.presentationStepText().contains("section 1"));
        QVERIFY(w.pages()[2]->findChild<QLabel *>("explanation")->isVisible());
        QTest::keyClick(&w, Qt::Key_Left);
        QCOMPARE(w.currentPage(), 1);
        QTest::keyClick(&w, Qt::Key_PageUp);
        QCOMPARE(w.currentPage(), 0);
        QTest::keyClick(&w, Qt::Key_PageUp); // stops at the first step
        QCOMPARE(w.currentPage(), 0);
        // The buttons walk the whole demo in the method's order, and stop at the end.
        auto *next = w.findChild<QPushButton *>("nextStep");
        auto *previous = w.findChild<QPushButton *>("previousStep");
        QVERIFY(!previous->isEnabled());
        QStringList titles;
        for (int i = 0; i < n; ++i) {
            titles << w.pages()[w.currentPage()]->title();
            QVERIFY(w.presentationStepText().startsWith(QString("Step %1 of 10: ").arg(i + 1)));
            QVERIFY2(w.presentationStepText().contains("section"), qPrintable(w.presentationStepText()));
            if (i + 1 < n)
                next->click();
        }
        QCOMPARE(titles, (QStringList{"Start", "Data", "Layer similarity", "Expert allocation", "Training",
                                      "Router monitor", "Forgetting", "Runs", "Token inspector", "Export"}));
        QVERIFY(!next->isEnabled());
        previous->click();
        QCOMPARE(w.currentPage(), n - 2);
        // Esc leaves: normal font, no bar, stepping keys off.
        QTest::keyClick(&w, Qt::Key_Escape);
        QVERIFY(!w.presentationMode());
        QVERIFY(!bar->isVisible());
        QCOMPARE(QApplication::font().pointSizeF(), normalSize);
        w.showPage(3);
        w.findChild<QListWidget *>("sidebar")->clearFocus();
        w.pages()[3]->setFocus();
        QTest::keyClick(&w, Qt::Key_PageDown);
        QCOMPARE(w.currentPage(), 3);
    }

    void darkPaletteReachesEveryChart()
    {
        MainWindow w;
        QVERIFY(w.openProject(m_fixture));
        w.resize(1200, 800);
        w.show();
        const QList<QCustomPlot *> plots = w.findChildren<QCustomPlot *>();
        QVERIFY(plots.size() >= 8);
        const QPalette dark = darkPalette();
        w.setDarkPalette(true);
        QVERIFY(w.isDarkPalette());
        QApplication::processEvents(); // the palette change reaches the widgets as events
        QCOMPARE(QApplication::palette().color(QPalette::Base), dark.color(QPalette::Base));
        for (QCustomPlot *plot : plots) {
            plot->replot();
            QVERIFY2(plot->palette().color(QPalette::Base) == dark.color(QPalette::Base),
                     qPrintable(plot->parentWidget()->objectName() + " " + plot->palette().color(QPalette::Base).name()));
            QCOMPARE(plot->xAxis->tickLabelColor(), dark.color(QPalette::Text));
            QCOMPARE(plot->yAxis->labelColor(), dark.color(QPalette::Text));
            QCOMPARE(plot->legend->textColor(), dark.color(QPalette::Text));
            QCOMPARE(plot->xAxis->grid()->pen().style(), Qt::DotLine);
        }
        // Sidebar icons stay visible: the Training icon (a black triangle in Fusion) is redrawn light.
        {
            const QImage icon = w.findChild<QListWidget *>("sidebar")->item(4)->icon().pixmap(QSize(20, 20)).toImage();
            double sum = 0;
            int n = 0;
            for (int y = 0; y < icon.height(); ++y)
                for (int x = 0; x < icon.width(); ++x)
                    if (icon.pixelColor(x, y).alphaF() > 0.5)
                        sum += icon.pixelColor(x, y).lightnessF(), ++n;
            QVERIFY(n > 0);
            QVERIFY2(sum / n > 0.5, qPrintable(QString::number(sum / n)));
        }
        // A colour scale the view made on its own (the similarity heatmap) follows too.
        QCustomPlot *heat = w.similarityPage()->heatmap();
        QCPColorScale *scale = nullptr;
        for (int i = 0; i < heat->plotLayout()->elementCount(); ++i)
            if (auto *s = qobject_cast<QCPColorScale *>(heat->plotLayout()->elementAt(i)))
                scale = s;
        QVERIFY(scale);
        QCOMPARE(scale->axis()->tickLabelColor(), dark.color(QPalette::Text));
        // Pixels: the forgetting chart's background and the explanation label are dark.
        w.showPage(6);
        w.setPresentationMode(true);
        QApplication::processEvents();
        const QImage chart = w.forgettingPage()->plot()->grab().toImage();
        QVERIFY2(lightness(chart, 3, 3) < 0.25, qPrintable(QString::number(lightness(chart, 3, 3))));
        const QImage expl = w.forgettingPage()->findChild<QLabel *>("explanation")->grab().toImage();
        QVERIFY2(lightness(expl, expl.width() - 4, expl.height() / 2) < 0.35,
                 qPrintable(QString::number(lightness(expl, expl.width() - 4, expl.height() / 2))));
        w.setPresentationMode(false);
        // And back.
        w.setDarkPalette(false);
        QApplication::processEvents();
        w.forgettingPage()->plot()->replot();
        QVERIFY(lightness(w.forgettingPage()->plot()->grab().toImage(), 3, 3) > 0.9);
        QCOMPARE(w.forgettingPage()->plot()->xAxis->tickLabelColor(), QApplication::palette().color(QPalette::Text));
    }

    void screenshotsCommandLine()
    {
        const QString studio = QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe-studio");
        QVERIFY2(QFileInfo::exists(studio), qPrintable(studio));
        QTemporaryDir out;
        const auto run = [&](const QStringList &args, const QStringList &env, QByteArray *err = nullptr) {
            QProcess p;
            QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
            e.insert("QT_QPA_PLATFORM", "offscreen");
            e.insert("XDG_DATA_HOME", out.filePath("xdg")); // the workbench's own demo folder: empty
            for (const QString &kv : env)
                e.insert(kv.section('=', 0, 0), kv.section('=', 1));
            p.setProcessEnvironment(e);
            p.setWorkingDirectory(out.path());
            p.start(studio, args);
            if (!p.waitForFinished(120000))
                return -1;
            if (err)
                *err = p.readAllStandardError();
            return p.exitCode();
        };
        // At scale 2 and dark: every view, NN-name.png, at twice the pixels of the 1400x900 window.
        QCOMPARE(run({"--screenshots", out.filePath("s2"), "--project", m_fixture, "--dark"}, {"QT_SCALE_FACTOR=2"}), 0);
        QStringList shots = QDir(out.filePath("s2")).entryList({"*.png"}, QDir::Files, QDir::Name);
        QCOMPARE(shots.size(), 10);
        QCOMPARE(shots.first(), QString("01-start.png"));
        QCOMPARE(shots.last(), QString("10-export.png"));
        const QImage forgetting(out.filePath("s2/07-forgetting.png"));
        QCOMPARE(forgetting.size(), QSize(2800, 1800));
        QVERIFY(lightness(forgetting, 2800 / 2, 1800 - 60) < 0.35); // the dark window, not white
        // The older spelling with the project as argument.
        QCOMPARE(run({"--screenshot", out.filePath("s1"), m_fixture}, {}), 0);
        QCOMPARE(QDir(out.filePath("s1")).entryList({"*.png"}, QDir::Files).size(), 10);
        QCOMPARE(QImage(out.filePath("s1/02-data.png")).size(), QSize(1400, 900));
        // No project and no demo project: the message names the command that builds it.
        QByteArray err;
        QCOMPARE(run({"--screenshots", out.filePath("s0")}, {}, &err), 1);
        QVERIFY2(err.contains("polymoe-demo/demo-standard.polymoe") && err.contains("'polymoe demo'"), err.constData());
        QVERIFY(!QFileInfo::exists(out.filePath("s0")));
        // A file that is not a project: a message, exit 1.
        writeFile(out.filePath("junk.polymoe"), "not a database");
        QCOMPARE(run({"--screenshots", out.filePath("s3"), "--project", out.filePath("junk.polymoe")}, {}, &err), 1);
        QVERIFY2(err.contains("junk.polymoe"), err.constData());
    }

    // "Compare with the baselines" runs `polymoe bench expansion` on the profile's demo folder (the
    // real CLI), and Cancel stops it as a cancellation, with both buttons back.
    void baselinesFromTheStartView()
    {
        if (!qEnvironmentVariableIsEmpty("POLYMOE_DEMO_DIR"))
            QSKIP("tst_start_demo's folder is for the demo itself");
        QTemporaryDir demoDir;
        qputenv("POLYMOE_DEMO_DIR", demoDir.path().toUtf8());
        struct Unset { // also when a check fails: the tests after this one read the variable
            ~Unset() { qunsetenv("POLYMOE_DEMO_DIR"); }
        } unset;
        StartPage page;
        auto *baselines = page.findChild<QPushButton *>("compareBaselines");
        QVERIFY(baselines && baselines->isEnabled());
        baselines->click(); // the profile box starts on "tiny"
        QVERIFY(page.demoRunning());
        QVERIFY(!baselines->isEnabled());
        auto *cli = page.findChild<CliProcess *>();
        QVERIFY(cli);
        QCOMPARE(cli->arguments().mid(0, 6), (QStringList{"bench", "expansion", "--profile", "tiny", "--project-dir",
                                                           demoDir.path()}));
        QVERIFY(cli->arguments().contains(StartPage::baselinesTable("tiny")));
        QSignalSpy finished(cli, &CliProcess::finished);
        QSignalSpy events(cli, &CliProcess::jsonEvent);
        QVERIFY(events.wait(120000)); // its first progress event: the CLI is up and handles SIGTERM
        cli->stop();
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.first().first().toInt(), cli::kExitCancelled);
        QTRY_VERIFY(baselines->isEnabled());
        QVERIFY2(page.errorText().isEmpty(), qPrintable(page.errorText())); // a cancellation is no failure
    }

    // Run by the ctest entry tst_start_demo (POLYMOE_DEMO_DIR set to the folder tst_demo filled):
    // the Start view's "Open the demo" runs the real CLI, which reuses every step.
    void openTheDemoFromTheStartView()
    {
        if (qEnvironmentVariableIsEmpty("POLYMOE_DEMO_DIR"))
            QSKIP("needs POLYMOE_DEMO_DIR with a tiny demo (ctest runs it as tst_start_demo after tst_demo)");
        const QString project = QDir(StartPage::demoFolder()).filePath("demo-tiny.polymoe");
        QVERIFY2(QFileInfo::exists(project), qPrintable(project + " is missing: tst_demo builds it"));
        MainWindow w;
        w.show();
        QSignalSpy opened(w.startPage(), &Page::openProjectRequested);
        auto *button = w.startPage()->findChild<QPushButton *>("openDemo");
        QVERIFY(button);
        QVERIFY(button->isEnabled());
        button->click(); // the profile box starts on "tiny"
        QVERIFY(w.startPage()->demoRunning());
        QVERIFY2(opened.wait(300000), qPrintable(w.startPage()->errorText()));
        QCOMPARE(opened.first().first().toString(), project);
        QTRY_COMPARE(w.projectPath(), QFileInfo(project).absoluteFilePath());
        QVERIFY(w.startPage()->errorText().isEmpty());

        // The views show the demo's numbers: the data view its four languages ...
        CorpusStatsModel *data = w.dataPage()->model();
        QCOMPARE(data->rowCount(), 4);
        QStringList codes;
        for (int r = 0; r < 4; ++r)
            codes << data->index(r, CorpusStatsModel::Code).data().toString();
        QCOMPARE(codes, (QStringList{"en", "es", "de", "ru"}));
        QCOMPARE(data->index(2, CorpusStatsModel::Group).data().toString(), QString("new"));
        // ... and the forgetting view the perplexities `polymoe report --json` prints.
        QProcess report;
        report.start(QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe"), {"report", project, "--json"});
        QVERIFY(report.waitForFinished(120000));
        QCOMPARE(report.exitCode(), 0);
        const QJsonObject json = QJsonDocument::fromJson(report.readAllStandardOutput()).object();
        ForgettingModel *f = w.forgettingPage()->model();
        // Four languages, then the demo's out-of-domain probe (Debian's licence texts as English).
        QCOMPARE(f->languages().size(), 4);
        QCOMPARE(f->rowCount(), 5);
        QCOMPARE(f->index(4, 0).data().toString(), QString("en · licenses (probe)"));
        int compared = 0;
        for (const auto &v : json["models"].toArray()) {
            const QJsonObject m = v.toObject();
            const int col = int(f->modelNames().indexOf(m["name"].toString()));
            QVERIFY2(col >= 0, qPrintable(m["name"].toString() + " not in " + f->modelNames().join(",")));
            for (int r = 0; r < f->languages().size(); ++r) {
                const double expected = m["perplexity"].toObject()[f->languages()[r]].toDouble();
                QVERIFY(qAbs(f->perplexity(r, col) - expected) <= 1e-6 * expected);
                ++compared;
            }
            const double probe = m["probes"].toObject()["licenses"].toObject()["perplexity"].toDouble();
            QVERIFY2(probe > 1, qPrintable(m["name"].toString()));
            QVERIFY(qAbs(f->index(4, ForgettingModel::kFirstModelColumn + col).data(Qt::EditRole).toDouble() - probe) <=
                    1e-6 * probe);
        }
        QVERIFY(compared >= 16); // base, fine-tuning, stage 1, stage 2 x 4 languages
    }

    // Also with tst_start_demo: the wizard on a real checkpoint with its SentencePiece tokenizer, the
    // demo's base model folder: the tokenizer is imported and the corpora tokenized with it.
    void wizardOnTheDemoBaseModel()
    {
        if (qEnvironmentVariableIsEmpty("POLYMOE_DEMO_DIR"))
            QSKIP("needs POLYMOE_DEMO_DIR with a tiny demo (ctest runs it as tst_start_demo after tst_demo)");
        const QString demo = QDir(StartPage::demoFolder()).filePath("demo-tiny.polymoe");
        QString baseDir;
        {
            auto store = ProjectStore::open(demo.toStdString(), true);
            const auto base = store.model("base");
            QVERIFY(base.has_value());
            baseDir = QString::fromStdString(store.modelPath(*base).string());
        }
        QVERIFY(QFileInfo::exists(baseDir + "/tokenizer.model"));
        QTemporaryDir dir;
        const Corpus en = linesCorpus(dir.filePath("en.txt"), "the quick brown fox", 30);
        const Corpus de = linesCorpus(dir.filePath("de.txt"), "der schnelle braune Fuchs", 30);
        const QString path = dir.filePath("on-demo-base.polymoe");
        NewProjectWizard w;
        w.show();
        fillWizard(&w, path, {{"en", "English", false, {en.path}}, {"de", "German", true, {de.path}}}, 0.1, baseDir);
        QCOMPARE(w.currentId(), int(NewProjectWizard::kCreatePage));
        QSignalSpy accepted(&w, &QDialog::accepted);
        w.button(QWizard::FinishButton)->click();
        QVERIFY2(accepted.wait(120000), qPrintable(w.createPage()->errorText()));
        auto store = ProjectStore::open(path.toStdString(), true);
        const auto tok = currentTokenizerRecord(store);
        QVERIFY(tok.has_value());
        QCOMPARE(tok->vocabSize, 2000); // the tiny demo's tokenizer
        const auto base = store.model("base");
        QVERIFY(base.has_value() && base->tokenizerId == tok->id);
        // Shards of both languages and splits, in the project's own data folder (renamed with it).
        const auto shards = projectShards(store);
        QCOMPARE(int(shards.size()), 4);
        std::map<std::string, int64_t> docs;
        for (const auto &sh : shards) {
            QVERIFY(QFileInfo::exists(QString::fromStdString(sh.path.string())));
            QVERIFY(QString::fromStdString(sh.path.string()).startsWith(QFileInfo(path).absoluteFilePath() + ".d/"));
            if (sh.split == "train")
                QVERIFY(sh.tokens > 2 * sh.documents && sh.documents > 0); // every line has several words
            docs[sh.language] += sh.documents;
        }
        QCOMPARE(docs["en"], int64_t(en.documents));
        QCOMPARE(docs["de"], int64_t(de.documents));
    }
};

QTEST_MAIN(TestStart)
#include "tst_start.moc"
