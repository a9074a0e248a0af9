// A Hugging Face tokenizer.json as the project tokenizer: imported from a file or a folder (with its
// tokenizer_config.json), its ids in the token shards equal to those of the Python `tokenizers`
// library (the fixtures of tests/data/tokenizer, made by that library), carried into model folders
// and read back from them; malformed or unsupported files leave the project's tokenizer as it was.
#include "polymoe/corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"
#include "project_data.h"
#include "token_shard.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <sys/stat.h>
#include <map>
#include <sstream>

using namespace polymoe;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(POLYMOE_TEST_DATA_DIR) / "tokenizer";

std::string slurp(const fs::path &p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

class TestProjectTokenizer : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path dir() const { return fs::path(m_dir.path().toStdString()); }

    // The fixture's strings as documents of one language, with the library's ids for each.
    static std::map<std::string, std::vector<int32_t>> expectedIds(const std::string &fixture)
    {
        // strings.json: "hard" strings, then the fortunes of en, de, ru, es; a case's "s" indexes that list.
        const auto strings = nlohmann::json::parse(slurp(kData / "strings.json"));
        std::vector<std::string> all = strings["hard"].get<std::vector<std::string>>();
        for (const char *lang : {"en", "de", "ru", "es"})
            for (const auto &v : strings["fortunes"][lang])
                all.push_back(v.get<std::string>());
        const auto expected = nlohmann::json::parse(slurp(kData / (fixture + ".expected.json")));
        std::map<std::string, std::vector<int32_t>> out;
        for (const auto &c : expected["cases"])
            out[all.at(c["s"].get<size_t>())] = c["ids"].get<std::vector<int32_t>>();
        return out;
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    void importedTokenizerJsonGivesTheLibrarysIds()
    {
        ProjectStore store = ProjectStore::create(dir() / "hf.polymoe");
        const auto expected = expectedIds("llama3");
        std::vector<RawDocument> docs;
        int64_t expectedTokens = 0;
        for (const auto &[text, ids] : expected) {
            if (text.empty() || text.find_first_not_of(" \t\r\n") == std::string::npos)
                continue; // not a document
            docs.push_back({text, "strings.json"});
            expectedTokens += int64_t(ids.size());
        }
        QVERIFY(docs.size() > 20);
        const auto report = importDocuments(store, {"xx", "Mixed", LanguageGroup::Old, 0},
                                            {{{"strings", "test", "", "test", "txt"}, docs}}, {.heldoutFraction = 0.0});
        QCOMPARE(report.documents + report.duplicates + report.empty + report.invalid, int64_t(docs.size()));

        const auto rec = importTokenizer(store, kData / "llama3.tokenizer.json");
        QCOMPARE(rec.backend, std::string("hf-tokenizers"));
        QCOMPARE(rec.modelType, std::string("bpe"));
        QCOMPARE(rec.vocabSize, 2268);
        QCOMPARE(projectWhitespacePolicy(store), std::string(kWhitespaceVerbatim));

        // Every document as the library encodes it (no whitespace policy for an imported tokenizer).
        auto tok = loadProjectTokenizer(store);
        for (const auto &d : docs)
            QVERIFY2(tok->encode(d.text) == expected.at(d.text), d.text.c_str());
        // The shards hold those ids.
        const auto shards = tokenizeProject(store);
        int64_t tokens = 0;
        for (const auto &s : shards)
            tokens += s.tokens;
        qInfo("%lld documents imported, %lld duplicates, %lld invalid", qint64(report.documents),
              qint64(report.duplicates), qint64(report.invalid));
        QCOMPARE(report.documents, int64_t(docs.size())); // every string is a distinct, valid document
        QCOMPARE(tokens, expectedTokens);
        const TokenShard shard = readTokenShard(shards.front().path);
        QCOMPARE(shard.vocabSize, 2268);

        // A model folder carries the tokenizer.json unchanged, and reads back the same ids.
        const auto files = projectTokenizerFiles(store);
        QCOMPARE(files.size(), size_t(1));
        QCOMPARE(files[0].first, std::string("tokenizer.json"));
        QCOMPARE(files[0].second, slurp(kData / "llama3.tokenizer.json"));
        const fs::path folder = dir() / "model";
        fs::create_directories(folder);
        std::ofstream(folder / "tokenizer.json", std::ios::binary) << files[0].second;
        auto back = loadFolderTokenizer(folder);
        for (const auto &d : docs)
            QVERIFY(back->encode(d.text) == expected.at(d.text));
    }

    void aFolderBringsItsTokenizerConfig()
    {
        // tokenizer.json with a tokenizer_config.json naming the special tokens: they are kept with the
        // tokenizer (special ids) and travel into model folders.
        const fs::path folder = dir() / "llama3-folder";
        fs::create_directories(folder);
        fs::copy_file(kData / "llama3.tokenizer.json", folder / "tokenizer.json", fs::copy_options::overwrite_existing);
        const std::string config = R"({"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>"},
                                       "tokenizer_class": "PreTrainedTokenizerFast"})";
        std::ofstream(folder / "tokenizer_config.json") << config;
        ProjectStore store = ProjectStore::create(dir() / "folder.polymoe");
        importTokenizer(store, folder);
        const SpecialTokens sp = projectSpecialTokens(store);
        QCOMPARE(sp.bos, 2262);
        QCOMPARE(sp.eos, 2263);
        const auto files = projectTokenizerFiles(store);
        QCOMPARE(files.size(), size_t(2));
        QCOMPARE(files[1].first, std::string("tokenizer_config.json"));
        QCOMPARE(files[1].second, config);
    }

    // Documents are framed as the model was pre-trained: Llama-3 as its post-processor begins a text
    // (<|begin_of_text|>) and ends a document (<|end_of_text|>); a chat model (SmolLM2-Instruct: bos
    // <|im_start|>, eos <|im_end|>, which frame chat turns) with no BOS and <|endoftext|>, its
    // pre-training separator; the ids are those of the files' own added tokens.
    void documentsAreFramedAsInPretraining()
    {
        const auto idOf = [](const std::string &fixture, const std::string &content) {
            const auto file = nlohmann::json::parse(slurp(kData / (fixture + ".tokenizer.json")));
            for (const auto &t : file["added_tokens"])
                if (t["content"] == content)
                    return t["id"].get<int32_t>();
            return -2;
        };
        {
            ProjectStore store = ProjectStore::create(dir() / "frame-llama3.polymoe");
            importTokenizer(store, kData / "llama3.tokenizer.json");
            const SpecialTokens d = projectDocumentTokens(store);
            QCOMPARE(d.bos, idOf("llama3", "<|begin_of_text|>"));
            QCOMPARE(d.eos, idOf("llama3", "<|end_of_text|>"));
        }
        const fs::path folder = dir() / "chat-folder";
        fs::create_directories(folder);
        fs::copy_file(kData / "smollm2.tokenizer.json", folder / "tokenizer.json", fs::copy_options::overwrite_existing);
        std::ofstream(folder / "tokenizer_config.json") << R"({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})";
        ProjectStore store = ProjectStore::create(dir() / "frame-chat.polymoe");
        importDocuments(store, {"en", "English", LanguageGroup::Old, 0},
                        {{{"s", "test", "", "test", "txt"}, {{"Hello world.", "t:1"}, {"A second document here.", "t:2"}}}},
                        {.heldoutFraction = 0.0});
        importTokenizer(store, folder);
        QCOMPARE(projectSpecialTokens(store).bos, idOf("smollm2", "<|im_start|>"));
        QCOMPARE(projectSpecialTokens(store).eos, idOf("smollm2", "<|im_end|>"));
        const SpecialTokens d = projectDocumentTokens(store);
        QCOMPARE(d.bos, -1);
        QCOMPARE(d.eos, idOf("smollm2", "<|endoftext|>"));
        tokenizeProject(store);
        const auto streams = projectStreams(store, "train");
        QCOMPARE(streams.size(), size_t(1));
        const LanguageStream &s = streams[0];
        QCOMPARE(s.bos, -1);
        auto tok = loadProjectTokenizer(store);
        // text EOS text EOS, in document order, with nothing before a text.
        std::vector<int32_t> expected = tok->encode("Hello world.");
        expected.push_back(d.eos);
        for (int32_t id : tok->encode("A second document here."))
            expected.push_back(id);
        expected.push_back(d.eos);
        QCOMPARE(s.tokens, expected);
    }

    void badTokenizerFilesLeaveTheProjectAsItWas_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("message");
        QTest::newRow("not JSON") << "malformed/not_json.json" << "not_json.json";
        QTest::newRow("dropout") << "malformed/dropout.json" << "dropout";
        QTest::newRow("duplicate ids") << "malformed/duplicate_ids.json" << "duplicate_ids.json";
        QTest::newRow("no such file") << "malformed/absent.json" << "absent.json";
        QTest::newRow("a folder without a tokenizer") << "malformed" << "no tokenizer.json";
    }

    void badTokenizerFilesLeaveTheProjectAsItWas()
    {
        QFETCH(QString, file);
        QFETCH(QString, message);
        ProjectStore store = ProjectStore::create(dir() / ("bad-" + std::to_string(qHash(file)) + ".polymoe"));
        const auto first = importTokenizer(store, kData / "gpt2.tokenizer.json");
        try {
            importTokenizer(store, kData / file.toStdString());
            QFAIL("no error");
        } catch (const Error &e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(message), e.what());
        }
        QCOMPARE(currentTokenizerRecord(store)->id, first.id);
    }

    void aFifoIsRefusedWithoutBlocking()
    {
        const fs::path fifo = dir() / "tokenizer.json";
        QCOMPARE(::mkfifo(fifo.c_str(), 0600), 0);
        ProjectStore store = ProjectStore::create(dir() / "fifo.polymoe");
        try {
            importTokenizer(store, fifo);
            QFAIL("no error");
        } catch (const IoError &e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("not a regular file"), e.what());
        }
        fs::remove(fifo);
    }
};

QTEST_GUILESS_MAIN(TestProjectTokenizer)
#include "tst_project_tokenizer.moc"
