// SHA-256 against the FIPS 180-4 example vectors, and the document key's stability.
#include "content_hash.h"

#include <QCryptographicHash>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace polymoe;

class TestContentHash : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void knownVectors_data()
    {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QString>("digest");
        QTest::newRow("empty") << QByteArray("") << "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        QTest::newRow("abc") << QByteArray("abc") << "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        QTest::newRow("448 bits")
            << QByteArray("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            << "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
        QTest::newRow("million a") << QByteArray(1000000, 'a')
                                   << "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    }
    void knownVectors()
    {
        QFETCH(QByteArray, input);
        QFETCH(QString, digest);
        QCOMPARE(QString::fromStdString(sha256Hex(std::string_view(input.constData(), size_t(input.size())))), digest);
        // Fed in uneven pieces it must give the same digest.
        Sha256 h;
        for (qsizetype i = 0; i < input.size(); i += 37)
            h.update(input.constData() + i, size_t(std::min<qsizetype>(37, input.size() - i)));
        QCOMPARE(QString::fromStdString(h.hexDigest()), digest);
    }

    void fileHashAgreesWithQt()
    {
        QTemporaryDir dir;
        const auto p = std::filesystem::path(dir.path().toStdString()) / "f.bin";
        QByteArray data;
        for (int i = 0; i < 200000; ++i)
            data.append(char(i * 7 + (i >> 8)));
        std::ofstream(p, std::ios::binary).write(data.constData(), data.size());
        const QString qt = QCryptographicHash::hash(data, QCryptographicHash::Sha256).toHex();
        QCOMPARE(QString::fromStdString(sha256File(p)), qt);
    }

    void fnvKnownValues()
    {
        // FNV-1a 64 reference values.
        QCOMPARE(fnv1a64(""), 0xcbf29ce484222325ull);
        QCOMPARE(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
        QCOMPARE(fnv1a64("foobar"), 0x85944171f73967e8ull);
        QVERIFY(documentKey("x", 0) != documentKey("x", 1));
        QCOMPARE(documentKey("x", 3), documentKey("x", 3));
    }
};

QTEST_GUILESS_MAIN(TestContentHash)
#include "tst_content_hash.moc"
