// polymoe::HfTokenizer against the Python tokenizers library: ids, decode, vocabulary lookups recorded
// by tests/tools/make_hf_tokenizer_fixtures.py for each fixture in tests/data/tokenizer, then the
// errors for malformed files, loading from a folder with its config files, and concurrent use.
#include "hf_tokenizer.h"

#include "polymoe/error.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

using namespace polymoe;

namespace {

const QString kData = QStringLiteral(POLYMOE_TEST_DATA_DIR "/tokenizer");

QByteArray readFile(const QString &path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", qPrintable(path));
    return f.readAll();
}

QJsonObject readJson(const QString &path)
{
    QJsonParseError error{};
    const auto doc = QJsonDocument::fromJson(readFile(path), &error);
    if (error.error != QJsonParseError::NoError)
        qFatal("%s: %s", qPrintable(path), qPrintable(error.errorString()));
    return doc.object();
}

// The test strings in the generator's order: the hard ones, then the fortunes by language.
const std::vector<std::string> &allStrings()
{
    static const std::vector<std::string> strings = [] {
        const QJsonObject s = readJson(kData + "/strings.json");
        std::vector<std::string> out;
        for (const auto v : s["hard"].toArray())
            out.push_back(v.toString().toStdString());
        for (const char *lang : {"en", "de", "ru", "es"})
            for (const auto v : s["fortunes"].toObject()[lang].toArray())
                out.push_back(v.toString().toStdString());
        return out;
    }();
    return strings;
}

size_t hardStringCount()
{
    static const size_t n = size_t(readJson(kData + "/strings.json")["hard"].toArray().size());
    return n;
}

std::vector<int32_t> toIds(const QJsonValue &v)
{
    std::vector<int32_t> ids;
    for (const auto x : v.toArray())
        ids.push_back(int32_t(x.toInteger()));
    return ids;
}

QString show(const std::vector<int32_t> &ids)
{
    QStringList parts;
    for (const int32_t id : ids)
        parts << QString::number(id);
    return "[" + parts.join(",") + "]";
}

QString printable(const std::string &s)
{
    QString out = QString::fromStdString(s.substr(0, 80));
    out.replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r");
    return out;
}

// Checks every case of an expected file: ids without and with special tokens, decode, decode
// skipping special tokens. Returns the number of cases with other ids than the library's.
void checkCases(const HfTokenizer &tok, const QString &name, const QJsonArray &cases)
{
    const auto &strings = allStrings();
    QVERIFY(cases.size() > 0);
    int idMismatches = 0, decodeMismatches = 0, specialMismatches = 0, roundtrips = 0;
    for (qsizetype i = 0; i < cases.size(); ++i) {
        const QJsonObject c = cases[i].toObject();
        // "s": an index into strings.json; "t": the text itself.
        const std::string inlineText = c["t"].toString().toStdString();
        const size_t index = c.contains("s") ? size_t(c["s"].toInt()) : size_t(-1);
        QVERIFY(c.contains("t") || index < strings.size());
        const std::string &text = c.contains("t") ? inlineText : strings[index];
        const std::vector<int32_t> want = toIds(c["ids"]);
        const std::vector<int32_t> got = tok.encode(text);
        if (got != want) {
            if (++idMismatches <= 5)
                qWarning().noquote() << name << "string" << index << printable(text) << "\n  want" << show(want)
                                     << "\n  got " << show(got);
            continue;
        }
        const std::string decoded = c.contains("decoded") ? c["decoded"].toString().toStdString() : text;
        QCOMPARE(c["roundtrip"].toBool(), decoded == text);
        if (tok.decode(got) != decoded) {
            if (++decodeMismatches <= 5)
                qWarning().noquote() << name << "decode of string" << index << printable(text) << "gave"
                                     << printable(tok.decode(got)) << "want" << printable(decoded);
        }
        roundtrips += decoded == text;
        if (c.contains("t") || index < hardStringCount()) {
            const std::vector<int32_t> wantSpecial = c.contains("special") ? toIds(c["special"]) : want;
            const std::vector<int32_t> gotSpecial = tok.encode(text, true);
            const std::string skip = c.contains("decoded_skip") ? c["decoded_skip"].toString().toStdString() : decoded;
            if (gotSpecial != wantSpecial || tok.decode(gotSpecial, true) != skip) {
                if (++specialMismatches <= 5)
                    qWarning().noquote() << name << "with special tokens, string" << index << printable(text)
                                         << "\n  want" << show(wantSpecial) << "\n  got " << show(gotSpecial);
            }
        }
    }
    qInfo().noquote() << name << ":" << cases.size() << "strings," << cases.size() - idMismatches
                      << "with exactly the same ids," << roundtrips << "decode back to the text";
    QCOMPARE(idMismatches, 0);
    QCOMPARE(decodeMismatches, 0);
    QCOMPARE(specialMismatches, 0);
}

} // namespace

class TestHfTokenizer : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void fixtures_data()
    {
        QTest::addColumn<QString>("name");
        for (const char *name : {"gpt2", "gpt2_prefix_space", "llama3", "qwen2", "smollm2", "sp_metaspace",
                                 "sp_prepend_replace", "nfkc_lowercase", "classic_prefix", "suffix_words", "split_behaviors"})
            QTest::newRow(name) << QString(name);
        // Hand-written files for the options the trained ones leave out.
        for (const QString &f : QDir(kData).entryList({"edge_*.expected.json"}, QDir::Files, QDir::Name)) {
            const QString name = f.chopped(int(sizeof(".expected.json") - 1));
            QTest::newRow(qPrintable(name)) << name;
        }
    }

    // Every string: ids without and with special tokens, decode, decode skipping special tokens.
    void fixtures()
    {
        QFETCH(QString, name);
        const QJsonObject expected = readJson(kData + "/" + name + ".expected.json");
        const auto tok = loadHfTokenizerFolder((kData + "/" + expected["tokenizer"].toString()).toStdString());
        QCOMPARE(tok->backend(), std::string("hf-tokenizers"));
        QCOMPARE(tok->vocabSize(), expected["vocab_size"].toInt());
        const QJsonObject idToToken = expected["id_to_token"].toObject();
        for (auto it = idToToken.begin(); it != idToToken.end(); ++it)
            QCOMPARE(QString::fromStdString(tok->idToPiece(it.key().toInt())), it.value().toString());
        const QJsonObject tokenToId = expected["token_to_id"].toObject();
        for (auto it = tokenToId.begin(); it != tokenToId.end(); ++it)
            QCOMPARE(tok->pieceToId(it.key().toStdString()), it.value().toInt());

        checkCases(*tok, name, expected["cases"].toArray());
    }

    // A real tokenizer fetched by the installer (models/, not committed), when it is there.
    void realModels_data()
    {
        QTest::addColumn<QString>("file");
        for (const QString &f : QDir(kData).entryList({"real_*.expected.json"}, QDir::Files, QDir::Name))
            QTest::newRow(qPrintable(f)) << f;
    }
    void realModels()
    {
        QFETCH(QString, file);
        const QJsonObject expected = readJson(kData + "/" + file);
        const QString folder = QStringLiteral(POLYMOE_SOURCE_DIR "/") + expected["folder"].toString();
        if (!QFile::exists(folder + "/tokenizer.json"))
            QSKIP(qPrintable(folder + " is absent (installer/fetch-smollm2.sh fetches it)"));
        if (QFileInfo(folder + "/tokenizer.json").size() != expected["bytes"].toInteger())
            QSKIP(qPrintable(folder + "/tokenizer.json is not the file the expected ids were made with"));
        const auto tok = loadHfTokenizerFolder(folder.toStdString());
        QCOMPARE(tok->vocabSize(), expected["vocab_size"].toInt());
        const QJsonObject specials = expected["special_tokens"].toObject();
        QCOMPARE(tok->specialTokens().bos, specials["bos"].toInt());
        QCOMPARE(tok->specialTokens().eos, specials["eos"].toInt());
        QCOMPARE(tok->specialTokens().unk, specials["unk"].toInt());
        QCOMPARE(tok->specialTokens().pad, specials["pad"].toInt());
        checkCases(*tok, file, expected["cases"].toArray());
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("tag");
        QTest::addColumn<QString>("message");
        auto row = [](const char *file, const char *tag, const char *message) {
            QTest::newRow(file) << QString(file) << QString(tag) << QString(message);
        };
        row("truncated.json", "format", "not valid JSON: the file ends early (truncated?)");
        row("not_json.json", "format", "not valid JSON: invalid literal at byte");
        row("empty.json", "format", "not valid JSON: the file ends early");
        row("array.json", "format", "top level: expected an object");
        row("no_model.json", "format", "model: missing");
        row("merge_unknown_token.json", "format", "model.merges[1]: token 'zz' is not in the vocabulary");
        row("merge_result_unknown.json", "format", "model.merges[1]: the merged token 'bc' is not in the vocabulary");
        row("merge_three_parts.json", "format", "model.merges[0]: expected two tokens separated by one space");
        row("merges_not_array.json", "format", "model.merges: expected an array");
        row("id_negative.json", "format", "model.vocab['c']: value -3 out of range (0 to 16777215)");
        row("id_huge.json", "format", "model.vocab['c']: value 4294967296 out of range (at most 16777215)");
        row("id_not_integer.json", "format", "model.vocab['c']: expected an integer");
        row("duplicate_ids.json", "format", "model.vocab: id 1 is given to two tokens, 'b' and 'c'");
        row("unsupported_pre_tokenizer.json", "config", "pre_tokenizer.pretokenizers[1]: type 'UnicodeScripts' is not supported");
        row("unsupported_model.json", "config", "model: model type 'WordPiece' is not supported (only BPE)");
        row("dropout.json", "config", "model.dropout: BPE dropout 0.1 is not supported (encoding would be random)");
        row("bad_regex.json", "config", "pre_tokenizer.pattern: the pattern does not compile (missing closing parenthesis");
        row("bad_behavior.json", "format", "pre_tokenizer.behavior: unknown split behavior 'Sideways'");
        row("template_unknown_special.json", "format", "post_processor.single[0]: special token '<s>' is not in special_tokens");
        row("version.json", "format", "version: unknown tokenizer.json version '2.0'");
        row("added_token_negative_id.json", "format", "added_tokens[0].id: value -1 out of range");
        row("type_not_a_name.json", "config", "normalizer: type 'NFC\\x00\\x0a{\"x\": 1}' is not supported");
    }

    // The message names the file, the JSON path and the problem, under the error's category tag.
    void malformed()
    {
        QFETCH(QString, file);
        QFETCH(QString, tag);
        QFETCH(QString, message);
        const std::string path = (kData + "/malformed/" + file).toStdString();
        try {
            loadHfTokenizerFolder(path);
            QFAIL("no error");
        } catch (const Error &e) {
            const QString what = QString::fromStdString(e.what());
            QVERIFY2(what.startsWith(tag + ": " + QString::fromStdString(path) + ": "), qPrintable(what));
            QVERIFY2(what.contains(message), qPrintable(what));
            QVERIFY2(what.size() < 400, qPrintable(what)); // nothing of the file dumped into it
            const bool rightType = tag == "format" ? dynamic_cast<const FormatError *>(&e) != nullptr
                                                   : dynamic_cast<const ConfigError *>(&e) != nullptr;
            QVERIFY2(rightType, qPrintable(what));
        }
    }

    void deepNesting()
    {
        std::string json = R"({"model": )";
        for (int i = 0; i < 100000; ++i)
            json += "[";
        try {
            loadHfTokenizer(json, "deep.json");
            QFAIL("no error");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("deep.json: JSON nested deeper than 64 levels at byte 73"), e.what());
        }
        // 64 levels are fine for the parser (the file is still refused, for what it holds).
        std::string ok = R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "x": )";
        for (int i = 0; i < 62; ++i)
            ok += "[";
        for (int i = 0; i < 62; ++i)
            ok += "]";
        ok += "}";
        QCOMPARE(loadHfTokenizer(ok, "ok.json")->vocabSize(), 0);
    }

    void fifoIsRefused()
    {
        QTemporaryDir dir;
        const std::string fifo = (dir.path() + "/tokenizer.json").toStdString();
        QCOMPARE(::mkfifo(fifo.c_str(), 0600), 0);
        const auto start = std::chrono::steady_clock::now();
        QVERIFY_THROWS_EXCEPTION(IoError, loadHfTokenizerFolder(fifo));
        QVERIFY_THROWS_EXCEPTION(IoError, loadHfTokenizerFolder(dir.path().toStdString()));
        try {
            loadHfTokenizerFolder(dir.path().toStdString());
        } catch (const IoError &e) {
            QVERIFY2(QString(e.what()).contains("tokenizer.json: not a regular file"), e.what());
        }
        QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
        QVERIFY_THROWS_EXCEPTION(IoError, loadHfTokenizerFolder(dir.path().toStdString() + "/absent"));
    }

    // A folder: tokenizer.json with tokenizer_config.json (objects and strings) and
    // special_tokens_map.json for what the config leaves out.
    void folderWithConfig()
    {
        QTemporaryDir dir;
        QFile::copy(kData + "/llama3.tokenizer.json", dir.path() + "/tokenizer.json");
        {
            std::ofstream(dir.path().toStdString() + "/tokenizer_config.json")
                << R"({"bos_token": {"content": "<|begin_of_text|>", "lstrip": false}, "eos_token": "<|end_of_text|>",
                      "pad_token": null, "model_max_length": 1000})";
            std::ofstream(dir.path().toStdString() + "/special_tokens_map.json")
                << R"({"pad_token": "<|reserved_special_token_0|>", "eos_token": "<|reserved_special_token_1|>"})";
        }
        const auto tok = loadHfTokenizerFolder(dir.path().toStdString());
        const SpecialTokens s = tok->specialTokens();
        QCOMPARE(s.bos, tok->findPiece("<|begin_of_text|>"));
        QCOMPARE(s.eos, tok->findPiece("<|end_of_text|>"));
        QCOMPARE(s.pad, tok->findPiece("<|reserved_special_token_0|>"));
        QCOMPARE(s.unk, -1);
        QVERIFY(s.bos >= 0 && s.eos >= 0 && s.pad >= 0);
        QVERIFY(tok->isSpecial(s.bos));

        std::ofstream(dir.path().toStdString() + "/tokenizer_config.json") << R"({"bos_token": 5})";
        try {
            loadHfTokenizerFolder(dir.path().toStdString());
            QFAIL("no error");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("tokenizer_config.json: bos_token: expected a string or an object"), e.what());
        }
    }

    // Without config files: unk from the model, bos/eos from the post-processor.
    void specialTokensInferred()
    {
        const auto llama = loadHfTokenizerFolder((kData + "/llama3.tokenizer.json").toStdString());
        QCOMPARE(llama->specialTokens().bos, llama->findPiece("<|begin_of_text|>"));
        QCOMPARE(llama->specialTokens().eos, -1);
        const auto sp = loadHfTokenizerFolder((kData + "/sp_metaspace.tokenizer.json").toStdString());
        QCOMPARE(sp->specialTokens().unk, 0);
        QCOMPARE(sp->specialTokens().bos, 1);
        const auto roberta = loadHfTokenizerFolder((kData + "/gpt2_prefix_space.tokenizer.json").toStdString());
        QCOMPARE(roberta->specialTokens().bos, roberta->findPiece("<s>"));
        QCOMPARE(roberta->specialTokens().eos, roberta->findPiece("</s>"));
        const auto gpt2 = loadHfTokenizerFolder((kData + "/gpt2.tokenizer.json").toStdString());
        QCOMPARE(gpt2->specialTokens().bos, -1);
        QCOMPARE(gpt2->specialTokens().unk, -1);
        QCOMPARE(gpt2->pieceToId("no such piece"), -1);
        QCOMPARE(sp->pieceToId("no such piece"), 0);
    }

    void serializeKeepsBytes()
    {
        const QByteArray bytes = readFile(kData + "/qwen2.tokenizer.json");
        const auto tok = loadHfTokenizer(bytes.toStdString(), "qwen2.tokenizer.json");
        QCOMPARE(QByteArray::fromStdString(tok->serialize()), bytes);
    }

    // Bytes that are not UTF-8 read as Python's decode("utf-8", "replace") would give them.
    void invalidUtf8IsReplaced()
    {
        const auto tok = loadHfTokenizerFolder((kData + "/gpt2.tokenizer.json").toStdString());
        QCOMPARE(tok->encode("a\xff" "b\xe2\x82 c\xed\xa0\x80"), tok->encode("a\xef\xbf\xbd" "b\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
        QCOMPARE(tok->decode({-5, 1 << 30}), std::string());
    }

    void idToPieceOutOfRange()
    {
        const auto tok = loadHfTokenizerFolder((kData + "/gpt2.tokenizer.json").toStdString());
        QVERIFY_THROWS_EXCEPTION(ConfigError, tok->idToPiece(tok->vocabSize()));
        QVERIFY_THROWS_EXCEPTION(ConfigError, tok->idToPiece(-1));
    }

    // Several threads encoding at once get what one thread gets.
    void concurrentEncodes()
    {
        const auto tok = loadHfTokenizerFolder((kData + "/llama3.tokenizer.json").toStdString());
        const auto &strings = allStrings();
        std::vector<std::vector<int32_t>> want;
        for (const auto &s : strings)
            want.push_back(tok->encode(s));
        std::vector<std::future<int>> runs;
        for (int t = 0; t < 4; ++t)
            runs.push_back(std::async(std::launch::async, [&, t] {
                int bad = 0;
                for (int round = 0; round < 3; ++round)
                    for (size_t i = 0; i < strings.size(); ++i) {
                        const size_t k = (i * 7 + size_t(t) * 13 + size_t(round)) % strings.size();
                        bad += tok->encode(strings[k]) != want[k];
                    }
                return bad;
            }));
        for (auto &r : runs)
            QCOMPARE(r.get(), 0);
    }
};

QTEST_APPLESS_MAIN(TestHfTokenizer)
#include "tst_hf_tokenizer.moc"
