// Tests for token shards: round trip with document boundaries, and malformed files rejected with
// the file and the problem.
#include "polymoe/error.h"
#include "token_shard.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace polymoe;
namespace fs = std::filesystem;

class TestTokenShard : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path tmp(const std::string &name) const { return fs::path(m_dir.path().toStdString()) / name; }

    static std::string readAll(const fs::path &p)
    {
        std::ifstream in(p, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    static void writeAll(const fs::path &p, const std::string &s) { std::ofstream(p, std::ios::binary) << s; }

private Q_SLOTS:
    void roundTrip()
    {
        TokenShard s;
        s.language = "ru";
        s.vocabSize = 8000;
        s.addDocument({5, 6, 7});
        s.addDocument({});
        s.addDocument({7999, 0});
        const auto p = tmp("a.bin");
        writeTokenShard(p, s);
        // Layout checked independently: 48-byte header, 4 offsets, 5 tokens.
        const std::string raw = readAll(p);
        QCOMPARE(int(raw.size()), 48 + 4 * 8 + 5 * 4);
        QCOMPARE(raw.substr(0, 8), std::string("PMTOKSH1"));
        QCOMPARE(raw.substr(32, 2), std::string("ru"));
        auto r = readTokenShard(p);
        QCOMPARE(r.language, std::string("ru"));
        QCOMPARE(r.vocabSize, 8000);
        QCOMPARE(int(r.documents()), 3);
        QCOMPARE(r.offsets, (std::vector<uint64_t>{0, 3, 3, 5}));
        QCOMPARE(r.tokens, (std::vector<int32_t>{5, 6, 7, 7999, 0}));
        // No temporary file left behind.
        int files = 0;
        for (const auto &e : fs::directory_iterator(m_dir.path().toStdString()))
            files += e.path().filename().string().find(".tmp-") != std::string::npos;
        QCOMPARE(files, 0);
    }

    void malformed_data()
    {
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("phrase");
        QTest::newRow("bad magic") << 0 << "not a PolyMoE token shard";
        QTest::newRow("truncated header") << 1 << "not a PolyMoE token shard";
        QTest::newRow("truncated tokens") << 2 << "bytes after its header";
        QTest::newRow("id past vocabulary") << 3 << "outside the vocabulary";
        QTest::newRow("offsets decrease") << 4 << "offsets decrease";
        QTest::newRow("huge count") << 5 << "bytes after its header";
        QTest::newRow("version") << 6 << "version 9";
    }
    void malformed()
    {
        QFETCH(int, kind);
        QFETCH(QString, phrase);
        TokenShard s;
        s.language = "de";
        s.vocabSize = 100;
        s.addDocument({1, 2, 3});
        s.addDocument({4, 5});
        const auto p = tmp("m" + std::to_string(kind) + ".bin");
        writeTokenShard(p, s);
        std::string raw = readAll(p);
        switch (kind) {
        case 0: raw[0] = 'X'; break;
        case 1: raw.resize(20); break;
        case 2: raw.resize(raw.size() - 2); break;
        case 3: { int32_t bad = 100; std::memcpy(&raw[raw.size() - 4], &bad, 4); break; }
        case 4: { uint64_t o1 = 6; std::memcpy(&raw[48 + 8], &o1, 8); break; } // offsets 0, 6, 5
        case 5: { uint64_t huge = ~uint64_t(0) / 2; std::memcpy(&raw[24], &huge, 8); break; }
        case 6: raw[8] = 9; break;
        }
        writeAll(p, raw);
        try {
            readTokenShard(p);
            QFAIL("accepted a malformed shard");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains(phrase) && QString(e.what()).contains(QString::fromStdString(p.filename().string())),
                     e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestTokenShard)
#include "tst_token_shard.moc"
