// The headless demo pipeline end to end (tiny profile, real Debian text): every step runs, the
// report has the base, the fine-tuning baseline and both stages, and the method moves the numbers
// the way METHOD.md sections 5 and 9 say: stage 2 forgets less than stage 1 and sends more
// old-language tokens to expert 0, fine-tuning learns the new languages. A second run reuses it all.
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

class TestDemo : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    // POLYMOE_DEMO_DIR (set by ctest): a folder kept after the test, which tst_start_demo then reuses.
    struct Dir {
        QString p;
        QString path() const { return p; }
    } m_dir{qEnvironmentVariableIsEmpty("POLYMOE_DEMO_DIR") ? m_tmp.path() : qEnvironmentVariable("POLYMOE_DEMO_DIR")};

    static QString binary() { return QStringLiteral(POLYMOE_BINARY_DIR "/bin/polymoe"); }

    QJsonObject runJson(const QStringList &args, QByteArray *err = nullptr)
    {
        QProcess p;
        p.setWorkingDirectory(m_dir.path());
        p.start(binary(), args);
        const bool finished = p.waitForFinished(900000);
        const QByteArray out = p.readAllStandardOutput(), e = p.readAllStandardError();
        if (err)
            *err = e;
        if (!finished || p.exitCode() != 0) {
            qWarning() << "polymoe" << args << "failed:" << e.right(2000);
            return {};
        }
        return QJsonDocument::fromJson(out).object();
    }

    static QJsonObject modelByRole(const QJsonObject &report, const QString &role)
    {
        for (const auto &m : report["models"].toArray())
            if (m.toObject()["role"].toString() == role)
                return m.toObject();
        return {};
    }

    // Expert-0 top-1 share of a language, averaged over the MoE layers of a model.
    static double expert0Share(const QJsonObject &report, const QString &model, const QString &language)
    {
        double sum = 0;
        int n = 0;
        for (const auto &v : report["routing"].toArray()) {
            const auto o = v.toObject();
            if (o["model"].toString() == model && o["language"].toString() == language)
                sum += o["expert0_top1"].toDouble(), ++n;
        }
        return n ? sum / n : std::nan("");
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(QFileInfo::exists(binary()), qPrintable(binary()));
        QVERIFY(QDir().mkpath(m_dir.path()));
    }

    void tinyDemoEndToEnd()
    {
        const QJsonObject demo = runJson({"demo", "--profile", "tiny", "--out", m_dir.path(), "--json", "--progress", "none"});
        QVERIFY(!demo.isEmpty());
        QCOMPARE(demo["languages"].toArray().size(), 4);
        QCOMPARE(demo["layer_scores"].toArray().size(), 2); // the tiny base has 2 layers
        const QJsonArray experts = demo["allocation"].toObject()["experts"].toArray();
        int newExperts = 0;
        for (const auto &e : experts)
            newExperts += e.toInt() - 1;
        QCOMPARE(newExperts, 4); // the tiny profile's budget

        const QJsonObject report = demo["report"].toObject();
        const QJsonObject base = modelByRole(report, "base"), ft = modelByRole(report, "full fine-tuning"),
                          s1 = modelByRole(report, "MoE stage 1"), s2 = modelByRole(report, "MoE stage 2");
        QVERIFY(!base.isEmpty() && !ft.isEmpty() && !s1.isEmpty() && !s2.isEmpty());
        for (const auto &m : {ft, s1, s2})
            for (const char *lang : {"en", "es", "de", "ru"}) {
                const double r = m["ratio_to_base"].toObject()[lang].toDouble();
                QVERIFY2(std::isfinite(r) && r > 0, qPrintable(m["name"].toString() + " " + lang));
            }
        // The expanded models add experts; the dense baseline adds nothing.
        QCOMPARE(ft["added_parameters"].toInteger(), 0);
        QVERIFY(s1["added_parameters"].toInteger() > 0);
        QCOMPARE(s2["added_parameters"].toInteger(), s1["added_parameters"].toInteger());
        QVERIFY(s2["active_parameters_per_token"].toInteger() <= s2["parameters"].toInteger());

        const auto group = [](const QJsonObject &m, const char *g) { return m["group_ratio"].toObject()[g].toDouble(); };
        // Fine-tuning on new text learns it (new perplexity falls) and forgets the old languages.
        QVERIFY2(group(ft, "new") < 1.0, qPrintable(QString::number(group(ft, "new"))));
        QVERIFY2(group(ft, "old") > 1.0, qPrintable(QString::number(group(ft, "old"))));
        // Stage 1 learns the new languages; stage 2 (LPR review) forgets less than stage 1.
        QVERIFY2(group(s1, "new") < 1.0, qPrintable(QString::number(group(s1, "new"))));
        QVERIFY2(group(s2, "old") < group(s1, "old"),
                 qPrintable(QString("stage 1 old x%1, stage 2 old x%2").arg(group(s1, "old")).arg(group(s2, "old"))));
        // ... by routing old-language tokens back to the frozen expert 0 (section 5).
        for (const char *lang : {"en", "es"}) {
            const double before = expert0Share(report, s1["name"].toString(), lang),
                         after = expert0Share(report, s2["name"].toString(), lang);
            QVERIFY2(after > before && after > 0.5, qPrintable(QString("%1: %2 -> %3").arg(lang).arg(before).arg(after)));
        }

        // The stage-2 model exported as a Hugging Face folder (remote code; Mixtral only if uniform).
        const QJsonArray exported = demo["exported"].toArray();
        QVERIFY(!exported.isEmpty());
        QVERIFY(QFileInfo::exists(exported[0].toString() + "/model.safetensors"));
        QVERIFY(QFileInfo::exists(exported[0].toString() + "/modeling_polymoe.py"));

        // The report's charts as PNG in DIR/plots (a build with Qt): perplexity, group ratio, and the
        // expert-0 share of both expanded models.
        const QJsonArray plots = demo["plots"].toArray();
        QCOMPARE(plots.size(), 4);
        for (const auto &f : plots) {
            QFile png(f.toString());
            QVERIFY2(png.open(QIODevice::ReadOnly), qPrintable(f.toString()));
            QVERIFY(QFileInfo(png).absolutePath() == QDir(m_dir.path() + "/plots").absolutePath());
            QCOMPARE(png.read(8), QByteArray("\x89PNG\r\n\x1a\n", 8));
            QVERIFY(png.size() > 5000); // a drawn chart, not an empty image
        }

        // The same report from the report command, read-only.
        const QJsonObject again = runJson({"report", demo["project"].toString(), "--json"});
        QCOMPARE(again["models"].toArray().size(), report["models"].toArray().size());
        QCOMPARE(again["models"].toArray()[3].toObject()["perplexity"].toObject()["de"].toDouble(),
                 report["models"].toArray()[3].toObject()["perplexity"].toObject()["de"].toDouble());

        // A second run reuses every step's output and reports the same numbers.
        QByteArray err;
        const QJsonObject second = runJson({"demo", "--profile", "tiny", "--out", m_dir.path(), "--json", "--progress", "none"}, &err);
        QCOMPARE(second["report"].toObject()["models"].toArray().size(), report["models"].toArray().size());
        QCOMPARE(modelByRole(second["report"].toObject(), "MoE stage 2")["perplexity"].toObject()["en"].toDouble(),
                 s2["perplexity"].toObject()["en"].toDouble());

        // Generation samples: the same two prompts in each of the four languages, for every model.
        const QJsonArray samples = report["samples"].toArray();
        QCOMPARE(samples.size(), 2 * 4 * report["models"].toArray().size());
        QSet<QString> prompts;
        for (const auto &v : samples)
            prompts.insert(v.toObject()["language"].toString() + ":" + v.toObject()["prompt"].toString());
        QCOMPARE(prompts.size(), 8);
        QVERIFY(prompts.contains("de:Die Hauptstadt von Frankreich ist"));
        // Bits per character beside every perplexity, and consistent with it: bits/char =
        // log2(ppl) * tokens per character of the scored text (> 0, and finite).
        for (const auto &m : report["models"].toArray())
            for (const char *lang : {"en", "es", "de", "ru"}) {
                const double bpc = m.toObject()["bits_per_character"].toObject()[lang].toDouble(-1);
                const double ppl = m.toObject()["perplexity"].toObject()[lang].toDouble();
                QVERIFY2(bpc > 0 && std::isfinite(bpc), qPrintable(m.toObject()["name"].toString() + " " + lang));
                // A unigram SentencePiece of 2,000 pieces spends between 0.1 and 1 token per character.
                QVERIFY(bpc > 0.1 * std::log2(ppl) && bpc < std::log2(ppl));
            }
    }

    // The smollm2 profile's pipeline on a small stand-in for SmolLM2 (a 2-layer Llama with a byte-level
    // BPE tokenizer.json that the Python tokenizers library trained, tests/data): the model's own
    // tokenizer, three languages, every baseline, the samples, the export. --smoke: a few sequences
    // per step, so only the pipeline is checked here; the real profile is in the README.
    void pretrainedProfileSmoke()
    {
        const QString dir = m_tmp.path() + "/smollm2-like";
        QVERIFY(QDir().mkpath(dir));
        const QString proj = dir + "/maker.polymoe";
        QVERIFY(!runJson({"project", "init", proj, "--json"}).isEmpty());
        QVERIFY(!runJson({"corpus", "demo", proj, "--languages", "en,de,ru", "--old", "en", "--max-chars", "100000",
                          "--json", "--progress", "none"}).isEmpty());
        QVERIFY(!runJson({"tokenizer", "import", proj, QStringLiteral(POLYMOE_TEST_DATA_DIR "/tokenizer/smollm2.tokenizer.json"),
                          "--json", "--progress", "none"}).isEmpty());
        QVERIFY(!runJson({"pretrain", proj, "--recipe", "demo-base-tiny", "--steps", "2", "--name", "stand-in",
                          "--json", "--progress", "none"}).isEmpty());
        const QString model = dir + "/maker.polymoe.d/models/stand-in";
        QVERIFY(QFileInfo::exists(model + "/tokenizer.json"));

        const QJsonObject demo = runJson({"demo", "--profile", "smollm2", "--smoke", "--model", model, "--out", dir + "/out",
                                          "--json", "--progress", "none"});
        QVERIFY(!demo.isEmpty());
        QCOMPARE(demo["languages"].toArray().size(), 3);
        const QJsonObject report = demo["report"].toObject();
        QStringList names;
        for (const auto &m : report["models"].toArray())
            names << m.toObject()["name"].toString();
        QCOMPARE(names, QStringList({"base", "finetuned", "finetuned-replay", "stage1-uniform", "stage2-uniform",
                                     "stage1-layermoe", "stage2-layermoe"}));
        QCOMPARE(report["samples"].toArray().size(), 2 * 3 * 7);
        for (const auto &m : report["models"].toArray())
            QVERIFY(m.toObject()["bits_per_character"].toObject()["ru"].toDouble() > 0);
        // The project's tokenizer is the model's tokenizer.json, and the export carries it.
        const QJsonArray exported = demo["exported"].toArray();
        QVERIFY(!exported.isEmpty());
        QVERIFY(QFileInfo::exists(exported[0].toString() + "/tokenizer.json"));

        // The baseline comparison on the same project (base and similarity reused): every method
        // scored on the project's languages (en, de, ru: no es column), fine-tuning's share 1.
        const QJsonObject bench = runJson({"bench", "expansion", "--profile", "smollm2", "--smoke", "--model", model,
                                           "--project-dir", dir + "/out", "--json", "--progress", "none"});
        const QJsonArray methods = bench["methods"].toArray();
        QCOMPARE(methods.size(), 6);
        QCOMPARE(methods[0].toObject()["model"].toString(), QStringLiteral("bench-finetune"));
        QCOMPARE(methods[0].toObject()["share_of_finetuning_new_gain"].toDouble(), 1.0);
        for (const auto &m : methods)
            QCOMPARE(m.toObject()["perplexity"].toObject().keys(), QStringList({"de", "en", "ru"}));
        // Without the model folder: a clear message saying how to fetch it, not a crash.
        QByteArray err;
        QVERIFY(runJson({"demo", "--profile", "smollm2", "--smoke", "--model", dir + "/missing", "--out", dir + "/out2"}, &err).isEmpty());
        QVERIFY2(err.contains("fetch-smollm2.sh"), err.constData());
    }
};

QTEST_GUILESS_MAIN(TestDemo)
#include "tst_demo.moc"
