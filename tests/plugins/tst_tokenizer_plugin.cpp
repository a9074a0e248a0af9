// Tests the SentencePiece tokenizer plugin through core's loader on real text (Debian's fortunes in
// English, German and Russian): training, round trips, model files, errors, and LibTorch in the
// same process (the deep-bind isolation of PLATFORM.md, trap 2).
#include "polymoe/corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"
#include "utf8.h"
#include "polymoe/tokenizer.h"
#include "polymoe/tokenizer_plugin_api.h"

#include <ATen/ATen.h>

#include <QByteArray>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QStringDecoder>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

using namespace polymoe;
namespace fs = std::filesystem;

namespace {

const QString kFortunes = QStringLiteral("/usr/share/games/fortunes");

bool isUtf8(const QByteArray &bytes)
{
    QStringDecoder decoder(QStringDecoder::Utf8);
    const QString text = decoder(bytes);
    Q_UNUSED(text);
    return !decoder.hasError();
}

// Fortune entries of one file: lines between '%' separators, joined by spaces; invalid UTF-8 lines
// are dropped.
QList<QByteArray> readFortunes(const QString &path)
{
    QList<QByteArray> entries;
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return entries;
    QByteArray entry;
    auto flush = [&] {
        entry = entry.simplified();
        if (!entry.isEmpty())
            entries.append(entry);
        entry.clear();
    };
    for (const QByteArray &raw : file.readAll().split('\n')) {
        const QByteArray line = raw.trimmed();
        if (line == "%") {
            flush();
            continue;
        }
        if (!isUtf8(line))
            continue;
        if (!entry.isEmpty())
            entry += ' ';
        entry += line;
    }
    flush();
    return entries;
}

// The plain fortune files of a folder: no .dat indexes, no .u8 links to the same text.
QStringList fortuneFiles(const QString &folder)
{
    QStringList files;
    const QDir dir(folder);
    for (const QFileInfo &info : dir.entryInfoList(QDir::Files | QDir::NoSymLinks, QDir::Name))
        if (info.suffix() != QLatin1String("dat") && info.suffix() != QLatin1String("u8"))
            files.append(info.absoluteFilePath());
    return files;
}

std::string toStd(const QByteArray &bytes) { return std::string(bytes.constData(), bytes.size()); }

bool hasBytePiece(const ITokenizer &tok, const std::vector<int32_t> &ids)
{
    for (int32_t id : ids)
        if (tok.idToPiece(id).rfind("<0x", 0) == 0)
            return true;
    return false;
}

// Sets an environment variable for one scope.
class EnvGuard {
public:
    EnvGuard(const char *name, const QByteArray &value) : m_name(name)
    {
        if (qEnvironmentVariableIsSet(name))
            m_old = qgetenv(name);
        qputenv(name, value);
    }
    ~EnvGuard()
    {
        if (m_old)
            qputenv(m_name, *m_old);
        else
            qunsetenv(m_name);
    }

private:
    const char *m_name;
    std::optional<QByteArray> m_old;
};

} // namespace

class TestTokenizerPlugin : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void pluginInfo();
    void unigramVocabSize();
    void roundTrip_data();
    void roundTrip();
    void germanIsLearnedRussianFallsBack();
    void bpeTraining();
    void serializeLoadBytes();
    void loadFileGivesSameIds();
    void malformedModelFiles_data();
    void malformedModelFiles();
    void missingModelFile();
    void idToPieceAndSpecialIds();
    void trainErrors();
    void tokenizerOutlivesPlugin();
    void torchInSameProcess();
    void missingBackendListsFolders();
    void envFolderComesFirst();
    void brokenPluginFiles();
    void apiVersionMismatch();
    void projectTokenizerTrainsOnWhatItEncodes();

private:
    std::shared_ptr<TokenizerPlugin> m_plugin;
    QTemporaryDir m_dir;
    fs::path m_corpus;
    QList<QByteArray> m_german; // real German entries with umlauts
    QByteArray m_english;
    QByteArray m_russian;
    std::string m_unigram; // model bytes, trained once
};

void TestTokenizerPlugin::initTestCase()
{
    QVERIFY(m_dir.isValid());
#if defined(__SANITIZE_ADDRESS__)
    QSKIP("tokenizer plugins need dlopen(RTLD_DEEPBIND), which AddressSanitizer refuses");
#endif
    m_plugin = TokenizerPlugin::load("sentencepiece");
    QVERIFY(m_plugin);

    // The corpus: every German fortune file and the English "fortunes" file, one entry per line.
    QList<QByteArray> entries = readFortunes(kFortunes + QStringLiteral("/fortunes"));
    QVERIFY2(entries.size() > 100, "fortunes (English) is not installed");
    m_english = entries.at(3);
    const QStringList german = fortuneFiles(kFortunes + QStringLiteral("/de"));
    QVERIFY2(german.size() > 10, "fortunes-de is not installed");
    for (const QString &file : german) {
        for (const QByteArray &e : readFortunes(file)) {
            entries.append(e);
            const QString s = QString::fromUtf8(e);
            if (m_german.size() < 5 && s.size() > 40 && s.size() < 300
                && s.contains(QRegularExpression(QStringLiteral("[äöüÄÖÜß]"))))
                m_german.append(e);
        }
    }
    QCOMPARE(m_german.size(), 5);
    const QStringList russian = fortuneFiles(kFortunes + QStringLiteral("/ru"));
    QVERIFY2(!russian.isEmpty(), "fortunes-ru is not installed");
    m_russian = readFortunes(russian.first()).value(0);
    QVERIFY(QString::fromUtf8(m_russian).contains(QRegularExpression(QStringLiteral("[а-яА-Я]"))));

    m_corpus = fs::path(m_dir.path().toStdString()) / "corpus.txt";
    QFile out(QString::fromStdString(m_corpus.string()));
    QVERIFY(out.open(QIODevice::WriteOnly));
    for (const QByteArray &e : entries)
        out.write(e + '\n');
    out.close();
    QVERIFY(entries.size() > 5000);

    QElapsedTimer timer;
    timer.start();
    m_unigram = m_plugin->train(
        m_corpus,
        {.modelType = "unigram", .vocabSize = 1500, .inputSentenceSize = 4000, .seed = 7});
    qInfo("unigram, 1500 pieces, 4000 of %lld entries (%lld bytes): %lld ms",
          qint64(entries.size()), qint64(fs::file_size(m_corpus)), timer.elapsed());
    QVERIFY(m_unigram.size() > 1000);
}

void TestTokenizerPlugin::pluginInfo()
{
    QCOMPARE(QString::fromStdString(m_plugin->name()), QStringLiteral("sentencepiece"));
    QVERIFY2(m_plugin->version().find("SentencePiece") != std::string::npos,
             m_plugin->version().c_str());
    const fs::path lib = m_plugin->libraryPath();
    QCOMPARE(QString::fromStdString(lib.filename().string()),
             QStringLiteral("libpolymoe_tokenizer_sentencepiece.so"));
    QVERIFY(fs::is_regular_file(lib));
}

void TestTokenizerPlugin::unigramVocabSize()
{
    const auto tok = m_plugin->loadBytes(m_unigram);
    QCOMPARE(tok->vocabSize(), 1500);
    QCOMPARE(QString::fromStdString(tok->backend()), QStringLiteral("sentencepiece"));
}

void TestTokenizerPlugin::roundTrip_data()
{
    QTest::addColumn<QByteArray>("text");
    for (int i = 0; i < m_german.size(); ++i)
        QTest::addRow("german %d", i) << m_german.at(i);
    QTest::newRow("english") << m_english;
    QTest::newRow("russian (bytes)") << m_russian;
    QTest::newRow("umlauts") << QByteArray("Größenwahn? Übermäßig schöne Äpfel, öde Häuser.");
    QTest::newRow("whitespace kept")
        << QByteArray("  zwei  Leerzeichen,\tein Tab\nund eine neue Zeile ");
    QTest::newRow("digits") << QByteArray("Am 24.12.2026 um 18:30 Uhr: 1234567890");
    QTest::newRow("cjk and emoji (bytes)") << QByteArray("日本語のテキスト 😀 🚀");
}

void TestTokenizerPlugin::roundTrip()
{
    QFETCH(QByteArray, text);
    const auto tok = m_plugin->loadBytes(m_unigram);
    const std::vector<int32_t> ids = tok->encode(toStd(text));
    QVERIFY(!ids.empty());
    for (int32_t id : ids)
        QVERIFY(id >= 0 && id < tok->vocabSize());
    QCOMPARE(QByteArray::fromStdString(tok->decode(ids)), text);
}

void TestTokenizerPlugin::germanIsLearnedRussianFallsBack()
{
    const auto tok = m_plugin->loadBytes(m_unigram);
    // German was in the training text: several bytes per token. Russian was not: its letters
    // (2 bytes each in UTF-8) come out as byte pieces, about one token per byte.
    qsizetype germanBytes = 0, germanIds = 0;
    for (const QByteArray &g : m_german) {
        germanBytes += g.size();
        germanIds += qsizetype(tok->encode(toStd(g)).size());
    }
    const auto russianIds = tok->encode(toStd(m_russian));
    const double germanBytesPerId = double(germanBytes) / double(germanIds);
    const double russianBytesPerId = double(m_russian.size()) / double(russianIds.size());
    qInfo("bytes per token: German %.2f, Russian %.2f", germanBytesPerId, russianBytesPerId);
    QVERIFY2(germanBytesPerId > 2.2, qPrintable(QString::number(germanBytesPerId)));
    QVERIFY2(russianBytesPerId < 1.5, qPrintable(QString::number(russianBytesPerId)));
    QVERIFY(hasBytePiece(*tok, russianIds));
    QVERIFY(!hasBytePiece(*tok, tok->encode("Die Katze")));
}

void TestTokenizerPlugin::bpeTraining()
{
    const std::string bpe = m_plugin->train(
        m_corpus, {.modelType = "bpe", .vocabSize = 1000, .inputSentenceSize = 4000, .seed = 3});
    const auto tok = m_plugin->loadBytes(bpe);
    QCOMPARE(tok->vocabSize(), 1000);
    QVERIFY(bpe != m_unigram);
    for (const QByteArray &text : {m_german.first(), m_russian, m_english}) {
        const auto ids = tok->encode(toStd(text));
        QVERIFY(ids.size() < size_t(text.size()) || text == m_russian);
        QCOMPARE(QByteArray::fromStdString(tok->decode(ids)), text);
    }
}

void TestTokenizerPlugin::serializeLoadBytes()
{
    const auto tok = m_plugin->loadBytes(m_unigram);
    const std::string bytes = tok->serialize();
    QVERIFY(!bytes.empty());
    const auto again = m_plugin->loadBytes(bytes);
    QCOMPARE(again->vocabSize(), tok->vocabSize());
    QVERIFY(again->serialize() == bytes);
    for (const QByteArray &text : {m_german.at(1), m_english, m_russian})
        QVERIFY(again->encode(toStd(text)) == tok->encode(toStd(text)));
}

void TestTokenizerPlugin::loadFileGivesSameIds()
{
    const fs::path path = fs::path(m_dir.path().toStdString()) / "tokenizer.model";
    std::ofstream(path, std::ios::binary) << m_unigram;
    const auto fromFile = m_plugin->loadFile(path);
    const auto fromBytes = m_plugin->loadBytes(m_unigram);
    QCOMPARE(fromFile->vocabSize(), 1500);
    for (const QByteArray &text : m_german) {
        const auto ids = fromFile->encode(toStd(text));
        QVERIFY(ids == fromBytes->encode(toStd(text)));
        QCOMPARE(QByteArray::fromStdString(fromFile->decode(ids)), text);
    }
}

void TestTokenizerPlugin::malformedModelFiles_data()
{
    QTest::addColumn<QByteArray>("content");
    QTest::newRow("empty") << QByteArray();
    QTest::newRow("plain text") << m_german.first();
    QByteArray binary;
    for (int i = 0; i < 4096; ++i)
        binary.append(char((i * 131 + 7) % 256));
    QTest::newRow("binary noise") << binary;
    QTest::newRow("truncated model")
        << QByteArray::fromStdString(m_unigram.substr(0, m_unigram.size() / 2));
}

void TestTokenizerPlugin::malformedModelFiles()
{
    QFETCH(QByteArray, content);
    const fs::path path = fs::path(m_dir.path().toStdString()) / "malformed.model";
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(content.constData(), content.size());
    }
    try {
        m_plugin->loadFile(path);
        QFAIL("a malformed model file was accepted");
    } catch (const FormatError &e) {
        qInfo("%s", e.what());
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.contains(QString::fromStdString(path.string())), e.what());
        QVERIFY2(what.startsWith(QLatin1String("format: ")), e.what());
    }
    QVERIFY_THROWS_EXCEPTION(FormatError, m_plugin->loadBytes(toStd(content)));
}

void TestTokenizerPlugin::missingModelFile()
{
    const fs::path path = fs::path(m_dir.path().toStdString()) / "no-such" / "tokenizer.model";
    try {
        m_plugin->loadFile(path);
        QFAIL("a missing model file was accepted");
    } catch (const IoError &e) {
        qInfo("%s", e.what());
        QVERIFY2(QString::fromUtf8(e.what()).contains(QString::fromStdString(path.string())),
                 e.what());
    }
    QVERIFY_THROWS_EXCEPTION(IoError, m_plugin->loadFile(fs::path(m_dir.path().toStdString())));
}

void TestTokenizerPlugin::idToPieceAndSpecialIds()
{
    const auto tok = m_plugin->loadBytes(m_unigram);
    const SpecialTokens special = tok->specialTokens();
    QVERIFY(special.unk >= 0 && special.unk < tok->vocabSize());
    QVERIFY(special.bos >= 0 && special.bos < tok->vocabSize());
    QVERIFY(special.eos >= 0 && special.eos < tok->vocabSize());
    QVERIFY(special.bos != special.eos && special.bos != special.unk);
    QVERIFY(special.pad == -1 || (special.pad >= 0 && special.pad < tok->vocabSize()));
    QCOMPARE(QString::fromStdString(tok->idToPiece(special.unk)), QStringLiteral("<unk>"));
    QCOMPARE(QString::fromStdString(tok->idToPiece(special.bos)), QStringLiteral("<s>"));
    QCOMPARE(QString::fromStdString(tok->idToPiece(special.eos)), QStringLiteral("</s>"));
    // Byte fallback put the 256 byte pieces into the vocabulary.
    const int32_t byteA = tok->pieceToId("<0x41>");
    QVERIFY(byteA != special.unk && byteA > special.eos);
    QCOMPARE(QString::fromStdString(tok->idToPiece(byteA)), QStringLiteral("<0x41>"));
    for (int32_t id : {3, 100, 700, tok->vocabSize() - 1})
        QCOMPARE(tok->pieceToId(tok->idToPiece(id)), id);
    QCOMPARE(tok->pieceToId("no such piece in any vocabulary"), special.unk);

    QVERIFY_THROWS_EXCEPTION(ConfigError, tok->idToPiece(tok->vocabSize()));
    QVERIFY_THROWS_EXCEPTION(ConfigError, tok->idToPiece(-1));
    QVERIFY_THROWS_EXCEPTION(ConfigError, tok->decode({5, tok->vocabSize() + 3}));
}

void TestTokenizerPlugin::trainErrors()
{
    const fs::path missing = fs::path(m_dir.path().toStdString()) / "no-corpus.txt";
    try {
        m_plugin->train(missing, {.vocabSize = 500});
        QFAIL("training on a missing file succeeded");
    } catch (const IoError &e) {
        qInfo("%s", e.what());
        QVERIFY2(QString::fromUtf8(e.what()).contains(QString::fromStdString(missing.string())),
                 e.what());
    }
    QVERIFY_THROWS_EXCEPTION(ConfigError, m_plugin->train(m_corpus, {.modelType = "word"}));

    // Three lines cannot fill 5000 pieces: SentencePiece's refusal comes back as a PluginError
    // that names the file.
    const fs::path tiny = fs::path(m_dir.path().toStdString()) / "tiny.txt";
    std::ofstream(tiny) << m_german.at(0).constData() << '\n'
                        << m_german.at(1).constData() << '\n'
                        << m_english.constData() << '\n';
    try {
        m_plugin->train(tiny, {.vocabSize = 5000});
        QFAIL("training 5000 pieces on three lines succeeded");
    } catch (const PluginError &e) {
        qInfo("%s", e.what());
        QVERIFY2(QString::fromUtf8(e.what()).contains(QString::fromStdString(tiny.string())),
                 e.what());
    }
}

void TestTokenizerPlugin::tokenizerOutlivesPlugin()
{
    std::unique_ptr<ITokenizer> tok;
    {
        auto plugin = TokenizerPlugin::load("sentencepiece");
        tok = plugin->loadBytes(m_unigram);
    }
    m_plugin.reset(); // no TokenizerPlugin left; the tokenizer alone keeps the library open
    const auto ids = tok->encode(toStd(m_german.at(2)));
    QCOMPARE(QByteArray::fromStdString(tok->decode(ids)), m_german.at(2));
    m_plugin = TokenizerPlugin::load("sentencepiece");
    QVERIFY(m_plugin);
}

void TestTokenizerPlugin::torchInSameProcess()
{
    const auto tok = m_plugin->loadBytes(m_unigram);
    const std::vector<int32_t> ids = tok->encode(toStd(m_german.at(0)));
    QVERIFY(ids.size() > 3);
    const int64_t n = int64_t(ids.size());
    const int64_t vocab = tok->vocabSize();
    const int64_t dim = 4;

    // Row r of the table is (4r, 4r+1, 4r+2, 4r+3): an embedding lookup gives back the ids.
    const at::Tensor idTensor = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong);
    const at::Tensor table = at::arange(vocab * dim, at::kFloat).reshape({vocab, dim});
    const at::Tensor emb = at::embedding(table, idTensor); // (tokens, dim)
    QCOMPARE(emb.sizes().vec(), (std::vector<int64_t>{n, dim}));
    // (tokens, dim) @ (dim, 1) of ones: row sums 16 id + 6, exact in fp32 for these sizes.
    const at::Tensor sums = at::matmul(emb, at::ones({dim, 1}, at::kFloat)).squeeze(1);
    for (int64_t i = 0; i < n; ++i)
        QCOMPARE(sums[i].item<float>(), float(16 * ids[size_t(i)] + 6));
    // And back: the lookup's first column over 4 is the ids, which decode to the text.
    const at::Tensor back = (emb.select(1, 0) / dim).to(at::kInt).contiguous();
    const std::vector<int32_t> roundTrip(back.data_ptr<int32_t>(), back.data_ptr<int32_t>() + n);
    QCOMPARE(QByteArray::fromStdString(tok->decode(roundTrip)), m_german.at(0));
}

void TestTokenizerPlugin::missingBackendListsFolders()
{
    const QByteArray envDir = QFile::encodeName(m_dir.path() + QStringLiteral("/env-plugins"));
    EnvGuard env("POLYMOE_PLUGIN_DIR", envDir);
    try {
        TokenizerPlugin::load("nosuchbackend");
        QFAIL("a missing backend was loaded");
    } catch (const PluginError &e) {
        qInfo("%s", e.what());
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.contains(QLatin1String("libpolymoe_tokenizer_nosuchbackend.so")), e.what());
        QVERIFY2(what.contains(QString::fromUtf8(envDir)), e.what());
        QVERIFY2(what.contains(QStringLiteral(POLYMOE_BINARY_DIR "/plugins")), e.what());
        QVERIFY2(what.contains(QLatin1String("/lib/polymoe/plugins")), e.what());
        // In the documented order: the environment first, the build tree later.
        QVERIFY(what.indexOf(QString::fromUtf8(envDir))
                < what.indexOf(QStringLiteral(POLYMOE_BINARY_DIR "/plugins")));
    }
    QVERIFY_THROWS_EXCEPTION(PluginError, TokenizerPlugin::load("../sentencepiece"));
    QVERIFY_THROWS_EXCEPTION(PluginError, TokenizerPlugin::load(""));
    // A relative entry would be resolved against the working directory: it is ignored, and said so.
    {
        EnvGuard relative("POLYMOE_PLUGIN_DIR", QByteArray("plugins-here:") + envDir);
        try {
            TokenizerPlugin::load("nosuchbackend");
            QFAIL("a missing backend was loaded");
        } catch (const PluginError &e) {
            const QString what = QString::fromUtf8(e.what());
            QVERIFY2(what.contains(QLatin1String("ignored: POLYMOE_PLUGIN_DIR entry 'plugins-here' is not an absolute path")),
                     e.what());
            QVERIFY2(what.contains(QString::fromUtf8(envDir)), e.what());
        }
    }
}

void TestTokenizerPlugin::envFolderComesFirst()
{
    const QString folder = m_dir.path() + QStringLiteral("/copy");
    QVERIFY(QDir().mkpath(folder));
    const QString copy = folder + QStringLiteral("/libpolymoe_tokenizer_sentencepiece.so");
    QVERIFY(QFile::copy(QString::fromStdString(m_plugin->libraryPath().string()), copy));
    EnvGuard env("POLYMOE_PLUGIN_DIR", QFile::encodeName(folder));
    const auto plugin = TokenizerPlugin::load("sentencepiece");
    QCOMPARE(QString::fromStdString(plugin->libraryPath().string()), copy);
    const auto tok = plugin->loadBytes(m_unigram);
    QCOMPARE(QByteArray::fromStdString(tok->decode(tok->encode(toStd(m_english)))), m_english);
}

void TestTokenizerPlugin::brokenPluginFiles()
{
    const QString folder = m_dir.path() + QStringLiteral("/broken");
    QVERIFY(QDir().mkpath(folder));
    EnvGuard env("POLYMOE_PLUGIN_DIR", QFile::encodeName(folder));

    // Not a shared library at all.
    const QString garbage = folder + QStringLiteral("/libpolymoe_tokenizer_garbage.so");
    QFile file(garbage);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(m_german.first());
    file.close();
    try {
        TokenizerPlugin::load("garbage");
        QFAIL("a text file was loaded as a plugin");
    } catch (const PluginError &e) {
        qInfo("%s", e.what());
        QVERIFY2(QString::fromUtf8(e.what()).contains(garbage), e.what());
    }

    // A real shared library without the entry: the plugin itself, renamed, is not one (its entry
    // is there); a system library is.
    const QString zlib = QStringLiteral("/usr/lib/x86_64-linux-gnu/libz.so.1");
    if (!QFile::exists(zlib))
        QSKIP("no libz.so.1 to stand in for a library without the entry");
    const QString noEntry = folder + QStringLiteral("/libpolymoe_tokenizer_noentry.so");
    QVERIFY(QFile::copy(zlib, noEntry));
    try {
        TokenizerPlugin::load("noentry");
        QFAIL("a library without the entry was loaded");
    } catch (const PluginError &e) {
        qInfo("%s", e.what());
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.contains(noEntry) && what.contains(QLatin1String(POLYMOE_TOKENIZER_ENTRY)),
                 e.what());
    }
}

void TestTokenizerPlugin::apiVersionMismatch()
{
    // A plugin from the future, compiled here from the real API header with another version.
    const QString cc = QStandardPaths::findExecutable(QStringLiteral("cc"));
    if (cc.isEmpty())
        QSKIP("no C compiler to build a plugin with another API version");
    const QString folder = m_dir.path() + QStringLiteral("/future");
    QVERIFY(QDir().mkpath(folder));
    const QString source = folder + QStringLiteral("/future.c");
    QFile file(source);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(
        "#include \"polymoe/tokenizer_plugin_api.h\"\n"
        "static const PolymoeTokenizerPluginApi api = { POLYMOE_TOKENIZER_API_VERSION + 41, "
        "\"future\", \"0\" };\n"
        "const PolymoeTokenizerPluginApi *polymoe_tokenizer_plugin(void) { return &api; }\n");
    file.close();
    const QString library = folder + QStringLiteral("/libpolymoe_tokenizer_future.so");
    QProcess compiler;
    compiler.start(cc, {QStringLiteral("-shared"), QStringLiteral("-fPIC"),
                        QStringLiteral("-I" POLYMOE_SOURCE_DIR "/core/include"), source,
                        QStringLiteral("-o"), library});
    QVERIFY(compiler.waitForFinished(60000));
    QVERIFY2(compiler.exitCode() == 0, compiler.readAllStandardError().constData());

    EnvGuard env("POLYMOE_PLUGIN_DIR", QFile::encodeName(folder));
    try {
        TokenizerPlugin::load("future");
        QFAIL("a plugin with another API version was loaded");
    } catch (const PluginError &e) {
        qInfo("%s", e.what());
        const QString what = QString::fromUtf8(e.what());
        QVERIFY2(what.contains(library), e.what());
        QVERIFY2(what.contains(QString::number(POLYMOE_TOKENIZER_API_VERSION + 41)), e.what());
        QVERIFY2(what.contains(QString::number(POLYMOE_TOKENIZER_API_VERSION)), e.what());
    }
}


// Issue: SentencePiece trained on lines but encoded whole documents, so every newline became a byte
// piece and the next word lost its word-start piece. Trained tokenizers now collapse whitespace, in
// training and in encoding alike, and record the policy.
void TestTokenizerPlugin::projectTokenizerTrainsOnWhatItEncodes()
{
    const fs::path file = fs::path(m_dir.path().toStdString()) / "ws.polymoe";
    ProjectStore store = ProjectStore::create(file);
    std::vector<RawDocument> docs;
    const QList<QByteArray> entries = readFortunes(kFortunes + QStringLiteral("/fortunes"));
    for (qsizetype i = 0; i < 400 && i < entries.size(); ++i) {
        // Multi-line documents, with tabs and blank lines, as fortunes and man pages are.
        QByteArray e = entries.at(i);
        e.replace(' ', i % 2 ? "\n" : "  \t");
        docs.push_back({e.toStdString() + "\n\n", "fortunes:" + std::to_string(i)});
    }
    importDocuments(store, {"en", "English", LanguageGroup::Old, 0},
                    {{{"ws", "test", "", "test", "txt"}, docs}}, {.heldoutFraction = 0.0});
    const auto rec = trainProjectTokenizer(store, {.modelType = "unigram", .vocabSize = 400, .seed = 3});
    QCOMPARE(projectWhitespacePolicy(store), std::string(kWhitespaceCollapse));

    // The training units are the collapsed documents, cut only when longer than the limit.
    const std::string doc = docs[1].text;
    const auto units = tokenizerTrainingUnits(doc, 16384);
    QCOMPARE(units.size(), size_t(1));
    QVERIFY(units[0].find('\n') == std::string::npos && units[0].find("  ") == std::string::npos);
    QCOMPARE(units[0], collapseWhitespace(doc));
    const std::string abc = std::string(50, 'a') + " " + std::string(50, 'b') + "\n" + std::string(10, 'c');
    QCOMPARE(tokenizerTrainingUnits(abc, 60),
             (std::vector<std::string>{std::string(50, 'a'), std::string(50, 'b'), std::string(10, 'c')}));
    QCOMPARE(tokenizerTrainingUnits(abc, 70),
             (std::vector<std::string>{std::string(50, 'a'), std::string(50, 'b') + " " + std::string(10, 'c')}));

    // Encoding a document gives the ids of its training unit: no newline byte piece, and every line
    // start keeps its word-start piece.
    auto tok = loadProjectTokenizer(store);
    const auto raw = tok->encode(doc);
    QCOMPARE(raw, tok->encode(units[0]));
    const int32_t newline = tok->pieceToId("<0x0A>");
    QVERIFY(newline != tok->specialTokens().unk);
    QVERIFY(std::find(raw.begin(), raw.end(), newline) == raw.end());
    // The plain plugin tokenizer, encoding verbatim, has the newline byte pieces the fix removes.
    const auto verbatim = m_plugin->loadBytes(projectTokenizerBytes(store))->encode(doc);
    QVERIFY(std::find(verbatim.begin(), verbatim.end(), newline) != verbatim.end());
    QVERIFY(verbatim.size() > raw.size());

    // An imported tokenizer.model is used verbatim.
    const fs::path model = fs::path(m_dir.path().toStdString()) / "imported.model";
    {
        std::ofstream out(model, std::ios::binary);
        out << projectTokenizerBytes(store);
    }
    importTokenizerModel(store, model);
    QCOMPARE(projectWhitespacePolicy(store), std::string(kWhitespaceVerbatim));
    QCOMPARE(loadProjectTokenizer(store)->encode(doc), verbatim);
    Q_UNUSED(rec);
}

QTEST_GUILESS_MAIN(TestTokenizerPlugin)
#include "tst_tokenizer_plugin.moc"
