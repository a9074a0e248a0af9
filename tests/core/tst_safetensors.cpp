// Tests of core/safetensors (reader, writer, checkpoint folders) and core/module_state: bit-exact
// round trips, the header bytes checked by hand, malformed files, and Python's safetensors as an
// independent reader when it is installed.
#include "module_state.h"
#include "polymoe/error.h"
#include "safetensors.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>

namespace fs = std::filesystem;
using polymoe::FormatError;

namespace {

const QString kDataDir = QStringLiteral(POLYMOE_TEST_DATA_DIR "/safetensors");

QByteArray bytesOf(const at::Tensor &t)
{
    const at::Tensor c = t.contiguous();
    return QByteArray(static_cast<const char *>(c.data_ptr()), qsizetype(c.numel() * c.element_size()));
}

// Random bit patterns (NaNs, infinities and subnormals included), so "equal" means bit-exact.
at::Tensor randomBits(at::ScalarType type, std::vector<int64_t> shape)
{
    if (type == at::kBool)
        return at::randint(0, 2, shape, at::TensorOptions().dtype(at::kLong)).to(at::kBool);
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(type));
    const int64_t n = out.numel() * out.element_size();
    const at::Tensor bytes = at::randint(0, 256, {n}, at::TensorOptions().dtype(at::kByte));
    if (n > 0)
        std::memcpy(out.data_ptr(), bytes.data_ptr(), size_t(n));
    return out;
}

void compareBitExact(const at::Tensor &actual, const at::Tensor &expected, const char *what)
{
    QVERIFY2(actual.defined(), what);
    QCOMPARE(actual.scalar_type(), expected.scalar_type());
    QCOMPARE(actual.sizes().vec(), expected.sizes().vec());
    QVERIFY2(bytesOf(actual) == bytesOf(expected), what);
}

// Runs `body`, expecting a FormatError; returns its message (empty if none was thrown).
template <typename F> QString formatErrorOf(F body)
{
    try {
        body();
    } catch (const FormatError &e) {
        return QString::fromStdString(e.what());
    } catch (const std::exception &e) {
        return QStringLiteral("<wrong exception type: %1>").arg(QString::fromStdString(e.what()));
    }
    return {};
}

QJsonObject readJson(const QString &path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}

void writeJson(const QString &path, const QJsonObject &o)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(QJsonDocument(o).toJson());
}

const std::vector<std::vector<int64_t>> kShapes = {{}, {0}, {7}, {3, 5}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1, 9}};

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { at::manual_seed(1234); }

    void roundTrip_data();
    void roundTrip();
    void roundTripNonContiguousAndMixed();
    void headerBytesByHand();
    void handMadeValidFile();
    void viewOutlivesFile();
    void writerRejects();
    void malformed_data();
    void malformed();
    void everyTruncationAndByteChange();
    void shardedCheckpoint();
    void shardedCheckpointErrors();
    void pickleRefused();
    void loadStateInto();
    void loadStateIntoErrors();
    void pythonSafetensorsReadsOurFiles();
};

void TestSafetensors::roundTrip_data()
{
    QTest::addColumn<int>("type");
    QTest::newRow("F32") << int(at::kFloat);
    QTest::newRow("F16") << int(at::kHalf);
    QTest::newRow("BF16") << int(at::kBFloat16);
    QTest::newRow("F64") << int(at::kDouble);
    QTest::newRow("I64") << int(at::kLong);
    QTest::newRow("I32") << int(at::kInt);
    QTest::newRow("I16") << int(at::kShort);
    QTest::newRow("I8") << int(at::kChar);
    QTest::newRow("U8") << int(at::kByte);
    QTest::newRow("BOOL") << int(at::kBool);
}

void TestSafetensors::roundTrip()
{
    QFETCH(int, type);
    const auto scalarType = static_cast<at::ScalarType>(type);
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const fs::path path = tmp.filePath("t.safetensors").toStdString();

    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (size_t i = 0; i < kShapes.size(); ++i) {
        std::string name = "t"; // appended, not "t" + ...: GCC 12 warns falsely (-Wrestrict) on that
        name += std::to_string(i);
        tensors.emplace_back(name, randomBits(scalarType, kShapes[i]));
    }
    polymoe::writeSafetensors(path, tensors, {{"note", "round trip"}});

    // No temporary file is left behind.
    QCOMPARE(QDir(tmp.path()).entryList(QDir::Files), QStringList{"t.safetensors"});

    polymoe::SafetensorsFile file(path);
    QCOMPARE(file.names().size(), tensors.size());
    QCOMPARE(file.metadata().at("note"), std::string("round trip"));
    for (const auto &[name, expected] : tensors) {
        QCOMPARE(file.info(name).dtype, polymoe::safetensorsDtypeName(scalarType));
        compareBitExact(file.tensor(name), expected, name.c_str());
        compareBitExact(file.view(name), expected, name.c_str());
    }
    // The scalar stays 0-dimensional.
    QCOMPARE(file.tensor("t0").dim(), int64_t(0));
}

void TestSafetensors::roundTripNonContiguousAndMixed()
{
    QTemporaryDir tmp;
    const fs::path path = tmp.filePath("mixed.safetensors").toStdString();
    const at::Tensor base = randomBits(at::kFloat, {4, 6});
    const at::Tensor transposed = base.t();                               // non-contiguous
    const at::Tensor slice = base.narrow(1, 1, 3);                        // storage offset + strides
    const at::Tensor odd = randomBits(at::kHalf, {3});                    // 6 bytes: would misalign what follows
    const at::Tensor byte = randomBits(at::kByte, {5});
    const at::Tensor wide = randomBits(at::kDouble, {2});
    std::map<std::string, at::Tensor> tensors{{"transposed", transposed}, {"slice", slice}, {"a.odd", odd},
                                              {"b.byte", byte}, {"z.wide", wide}};
    polymoe::writeSafetensors(path, {tensors.begin(), tensors.end()});

    polymoe::SafetensorsFile file(path);
    QVERIFY(file.metadata().empty());
    for (const auto &[name, expected] : tensors) {
        compareBitExact(file.tensor(name), expected.contiguous(), name.c_str());
        compareBitExact(file.view(name), expected.contiguous(), name.c_str());
        // Larger elements first: every tensor is aligned to its element size in the file.
        const auto &info = file.info(name);
        QCOMPARE((file.dataStart() + info.begin) % uint64_t(expected.element_size()), uint64_t(0));
    }
    QCOMPARE(file.info("z.wide").begin, uint64_t(0));
}

// The bytes our writer produces, decoded here without the reader: 8-byte little-endian length, a
// JSON header (parsed with Qt's JSON, not nlohmann) padded with spaces, and the data bytes.
void TestSafetensors::headerBytesByHand()
{
    QTemporaryDir tmp;
    const QString path = tmp.filePath("h.safetensors");
    const float f32[] = {1.0f, -2.0f};
    std::vector<std::pair<std::string, at::Tensor>> tensors{
        {"w32", at::tensor(at::ArrayRef<float>(f32, 2))},
        {"h", at::ones({}, at::TensorOptions().dtype(at::kHalf))},
        {"b", at::tensor(at::ArrayRef<float>(f32, 2)).reshape({2, 1}).to(at::kBFloat16)},
        {"i", at::full({1}, 7, at::TensorOptions().dtype(at::kLong))},
    };
    polymoe::writeSafetensors(path.toStdString(), tensors, {{"k", "v"}});

    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray all = f.readAll();
    QVERIFY(all.size() >= 8);
    quint64 n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | quint8(all[i]);
    QCOMPARE(n % 8, quint64(0));
    QVERIFY(8 + n <= quint64(all.size()));
    const QByteArray headerText = all.mid(8, qsizetype(n));
    const qsizetype closing = headerText.lastIndexOf('}');
    QVERIFY(closing > 0);
    QVERIFY(headerText.size() - closing - 1 < 8);
    for (qsizetype i = closing + 1; i < headerText.size(); ++i)
        QCOMPARE(headerText[i], ' ');

    QJsonParseError err;
    const QJsonObject header = QJsonDocument::fromJson(headerText.left(closing + 1), &err).object();
    QCOMPARE(err.error, QJsonParseError::NoError);
    QCOMPARE(header.size(), 5);
    QCOMPARE(header["__metadata__"].toObject(), QJsonObject({{"k", "v"}}));
    const QByteArray data = all.mid(qsizetype(8 + n));

    struct Expected {
        const char *name, *dtype;
        QJsonArray shape;
        QByteArray bytes;
    };
    const Expected expected[] = {
        {"w32", "F32", {2}, QByteArray::fromHex("0000803f000000c0")},
        {"h", "F16", {}, QByteArray::fromHex("003c")},
        {"b", "BF16", {2, 1}, QByteArray::fromHex("803f00c0")},
        {"i", "I64", {1}, QByteArray::fromHex("0700000000000000")},
    };
    std::vector<std::pair<qint64, qint64>> ranges;
    for (const Expected &e : expected) {
        const QJsonObject entry = header[e.name].toObject();
        QCOMPARE(entry["dtype"].toString(), QString(e.dtype));
        QCOMPARE(entry["shape"].toArray(), e.shape);
        const QJsonArray offsets = entry["data_offsets"].toArray();
        QCOMPARE(offsets.size(), 2);
        const qint64 begin = offsets[0].toInteger(), end = offsets[1].toInteger();
        QCOMPARE(data.mid(begin, end - begin), e.bytes);
        ranges.emplace_back(begin, end);
    }
    // The tensors tile the data region exactly, I64 (8-byte elements) first.
    std::sort(ranges.begin(), ranges.end());
    qint64 at = 0;
    for (const auto &[begin, end] : ranges) {
        QCOMPARE(begin, at);
        at = end;
    }
    QCOMPARE(at, qint64(data.size()));
    QCOMPARE(header["i"].toObject()["data_offsets"].toArray()[0].toInteger(), qint64(0));
}

// A file written by make_malformed.py (Python's struct/json, not our writer), with an F32 tensor at
// a data offset that is not a multiple of 4.
void TestSafetensors::handMadeValidFile()
{
    polymoe::SafetensorsFile file((kDataDir + "/valid.safetensors").toStdString());
    QCOMPARE(file.names(), (std::vector<std::string>{"a", "b", "c", "e"}));
    QCOMPARE(file.metadata().at("source"), std::string("make_malformed.py"));
    QCOMPARE(file.info("b").begin, uint64_t(6));
    QCOMPARE(file.info("b").end, uint64_t(14));

    const at::Tensor a = file.tensor("a");
    QCOMPARE(a.scalar_type(), at::kHalf);
    QVERIFY(at::equal(a.to(at::kFloat), at::tensor({1.0f, -2.0f, 0.5f})));
    for (const at::Tensor &b : {file.tensor("b"), file.view("b")}) {
        QCOMPARE(b.scalar_type(), at::kFloat);
        QVERIFY(at::equal(b, at::tensor({3.0f, -1.5f})));
    }
    const at::Tensor c = file.view("c");
    QCOMPARE(c.dim(), int64_t(0));
    QCOMPARE(c.scalar_type(), at::kBFloat16);
    QCOMPARE(c.item<float>(), 1.0f);
    const at::Tensor e = file.tensor("e");
    QCOMPARE(e.sizes().vec(), (std::vector<int64_t>{0, 3}));
    QCOMPARE(e.scalar_type(), at::kLong);

    const QString message = formatErrorOf([&] { file.info("nope"); });
    QVERIFY2(message.contains("tensor 'nope': no tensor of that name"), qPrintable(message));
}

void TestSafetensors::viewOutlivesFile()
{
    QTemporaryDir tmp;
    const fs::path path = tmp.filePath("v.safetensors").toStdString();
    const at::Tensor expected = randomBits(at::kFloat, {16, 16});
    polymoe::writeSafetensors(path, {{"w", expected}});

    at::Tensor view;
    {
        polymoe::SafetensorsFile file(path);
        view = file.view("w");
    }
    compareBitExact(view, expected, "view after the file object is gone");
    // Replacing the file (write + rename) does not disturb the mapping; writing to the view does
    // not change the file.
    polymoe::writeSafetensors(path, {{"w", at::zeros({16, 16})}});
    compareBitExact(view, expected, "view after the file was replaced");
    view.fill_(3.0f);
    QVERIFY(at::equal(polymoe::SafetensorsFile(path).tensor("w"), at::zeros({16, 16})));
}

void TestSafetensors::writerRejects()
{
    QTemporaryDir tmp;
    const fs::path path = tmp.filePath("w.safetensors").toStdString();
    const at::Tensor t = at::ones({2});
    QVERIFY_THROWS_EXCEPTION(polymoe::ConfigError, (polymoe::writeSafetensors(path, {{"x", t}, {"x", t}})));
    QVERIFY_THROWS_EXCEPTION(polymoe::ConfigError, (polymoe::writeSafetensors(path, {{"__metadata__", t}})));
    QVERIFY_THROWS_EXCEPTION(polymoe::ConfigError,
                             (polymoe::writeSafetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}})));
    QVERIFY(!QFile::exists(QString::fromStdString(path.string())));
    QCOMPARE(QDir(tmp.path()).entryList(QDir::Files | QDir::Hidden).size(), 0);
    QVERIFY_THROWS_EXCEPTION(polymoe::IoError,
                             (polymoe::writeSafetensors(tmp.filePath("no/such/dir/x.safetensors").toStdString(),
                                                       {{"x", t}})));
}

void TestSafetensors::malformed_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("phrase");
    // The JSON error points at the second comma of `[4],,` in the header (file byte 8 + index).
    const int badComma = 8 + int(QByteArray(R"({"w": {"dtype": "F32", "shape": [4],, )").indexOf(",,")) + 1;

    QTest::newRow("shorter than the length") << "too_short" << "3 bytes, shorter than the 8-byte header length";
    QTest::newRow("header length past EOF") << "header_past_eof" << "header length 1000 (bytes 0..8) runs past the end of the file (28 bytes)";
    QTest::newRow("header length huge") << "header_huge" << "exceeds the 100 MB limit";
    QTest::newRow("bad JSON") << "bad_json" << QStringLiteral("invalid JSON in the header at file byte %1").arg(badComma);
    QTest::newRow("header not an object") << "not_object" << "the header must be a JSON object";
    QTest::newRow("duplicate tensor name") << "duplicate_name" << "duplicate key 'w' in the header";
    QTest::newRow("unknown dtype") << "unknown_dtype" << "tensor 'w': unknown dtype 'Q7'";
    QTest::newRow("unsupported dtype") << "unsupported_dtype" << "tensor 'w': dtype 'F8_E4M3' is valid safetensors but not supported";
    QTest::newRow("metadata not strings") << "bad_metadata" << "\"__metadata__\" entry 'epochs' is not a string";
    QTest::newRow("offsets out of range") << "offsets_out_of_range" << "tensor 'b': data_offsets [1000, 1016] are out of range: the data region holds 16 bytes";
    QTest::newRow("overlapping offsets") << "overlapping" << "tensor 'b': data_offsets [8, 24]";
    QTest::newRow("overlapping offsets, other") << "overlapping" << "overlap tensor 'a' at [0, 16]";
    QTest::newRow("size/shape mismatch") << "size_mismatch" << "span 16 bytes but shape [2, 3] of F32 needs 24 bytes";
    QTest::newRow("negative shape") << "negative_shape" << "tensor 'w': negative dimension -1 in shape [-1,4]";
    QTest::newRow("fractional shape") << "fractional_shape" << "must be an array of non-negative integers";
    QTest::newRow("reversed offsets") << "reversed_offsets" << "tensor 'w': data_offsets [16, 0] are reversed";
    QTest::newRow("missing offsets") << "missing_offsets" << "tensor 'w': \"data_offsets\" must be two non-negative integers";
    QTest::newRow("truncated data") << "truncated_data" << "tensor 'w': file is truncated: the header describes 32 bytes of tensor data but only 20 follow the header";
    QTest::newRow("hole between tensors") << "hole" << "tensor 'b': hole of 8 bytes before data_offsets [24, 40]";
    QTest::newRow("hole, says why") << "hole" << "the format requires tensors packed without holes";
    QTest::newRow("trailing bytes") << "trailing_bytes" << "4 trailing bytes after the last tensor";
}

void TestSafetensors::malformed()
{
    QFETCH(QString, file);
    QFETCH(QString, phrase);
    const QString path = kDataDir + "/" + file + ".safetensors";
    QVERIFY2(QFile::exists(path), qPrintable(path));
    const QString message = formatErrorOf([&] { polymoe::SafetensorsFile f(path.toStdString()); });
    QVERIFY2(!message.isEmpty(), "no FormatError");
    QVERIFY2(message.startsWith("format: "), qPrintable(message));
    QVERIFY2(message.contains(file + ".safetensors"), qPrintable(message));
    QVERIFY2(message.contains(phrase), qPrintable(message));
    // The folder loader reports the same thing.
    const QString viaFolder = formatErrorOf([&] { polymoe::loadCheckpointFolder(path.toStdString()); });
    QCOMPARE(viaFolder, message);
}

// Every prefix of the hand-made valid file, and the file with each byte replaced by a few values,
// either loads completely or throws FormatError: nothing else, and (under ASan) no stray reads.
void TestSafetensors::everyTruncationAndByteChange()
{
    QFile source(kDataDir + "/valid.safetensors");
    QVERIFY(source.open(QIODevice::ReadOnly));
    const QByteArray original = source.readAll();
    QTemporaryDir tmp;
    const QString path = tmp.filePath("mutant.safetensors");
    int loaded = 0, rejected = 0;
    auto attempt = [&](const QByteArray &bytes) {
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(bytes) != bytes.size())
            return false;
        f.close();
        try {
            polymoe::SafetensorsFile file(path.toStdString());
            for (const std::string &name : file.names()) {
                file.tensor(name);
                file.view(name);
            }
            ++loaded;
        } catch (const FormatError &) {
            ++rejected;
        } catch (const std::exception &e) {
            qWarning("unexpected exception: %s", e.what());
            return false;
        }
        return true;
    };
    for (qsizetype n = 0; n < original.size(); ++n)
        QVERIFY2(attempt(original.left(n)), qPrintable(QString::number(n)));
    QCOMPARE(loaded, 0); // every strict prefix is malformed
    for (qsizetype i = 0; i < original.size(); ++i) {
        for (const char value : {'\0', '9', '\xff', '"', '-'}) {
            QByteArray mutant = original;
            mutant[i] = value;
            QVERIFY2(attempt(mutant), qPrintable(QString::number(i)));
        }
    }
    QVERIFY(rejected > original.size());
    QVERIFY(loaded > 0); // changes inside the data region still load
}

void TestSafetensors::shardedCheckpoint()
{
    QTemporaryDir tmp;
    const QString dir = tmp.path();
    std::map<std::string, at::Tensor> tensors;
    for (int i = 0; i < 5; ++i)
        tensors["layers." + std::to_string(i) + ".weight"] = randomBits(at::kFloat, {4, 4}); // 64 bytes each
    tensors["embed.weight"] = randomBits(at::kBFloat16, {16, 16});                           // 512 bytes
    tensors["norm.weight"] = randomBits(at::kHalf, {8});
    tensors["scalar"] = randomBits(at::kFloat, {});
    uint64_t total = 0;
    for (const auto &[name, t] : tensors)
        total += uint64_t(t.numel() * t.element_size());

    polymoe::saveCheckpointFolder(dir.toStdString(), tensors, 150);
    const QStringList files = QDir(dir).entryList(QDir::Files, QDir::Name);
    QVERIFY2(files.contains("model.safetensors.index.json"), qPrintable(files.join(' ')));
    QVERIFY(!files.contains("model.safetensors"));
    const QStringList shards = files.filter(QRegularExpression("^model-\\d{5}-of-\\d{5}\\.safetensors$"));
    QCOMPARE(shards.size(), files.size() - 1); // no temp files left
    QVERIFY(shards.size() >= 3);
    const QString count = QStringLiteral("%1").arg(shards.size(), 5, 10, QChar('0'));
    for (int i = 0; i < shards.size(); ++i)
        QCOMPARE(shards[i], QStringLiteral("model-%1-of-%2.safetensors").arg(i + 1, 5, 10, QChar('0')).arg(count));

    const QJsonObject index = readJson(dir + "/model.safetensors.index.json");
    QCOMPARE(index["metadata"].toObject()["total_size"].toInteger(), qint64(total));
    const QJsonObject weightMap = index["weight_map"].toObject();
    QCOMPARE(weightMap.size(), int(tensors.size()));
    for (const auto &[name, t] : tensors) {
        const QString shard = weightMap[QString::fromStdString(name)].toString();
        QVERIFY2(shards.contains(shard), qPrintable(shard));
        polymoe::SafetensorsFile f((dir + "/" + shard).toStdString());
        QVERIFY(f.contains(name));
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
    }
    // The big tensor exceeds the limit and sits alone.
    const QString bigShard = weightMap["embed.weight"].toString();
    QCOMPARE(polymoe::SafetensorsFile((dir + "/" + bigShard).toStdString()).names().size(), size_t(1));

    std::map<std::string, std::string> sources;
    auto loaded = polymoe::loadCheckpointFolder(dir.toStdString(), &sources);
    QCOMPARE(loaded.size(), tensors.size());
    QCOMPARE(sources.size(), tensors.size());
    for (const auto &[name, t] : tensors) {
        compareBitExact(loaded.at(name), t, name.c_str());
        // each tensor's source is the shard the index names (error messages quote it)
        QCOMPARE(QString::fromStdString(sources.at(name)), dir + "/" + weightMap[QString::fromStdString(name)].toString());
    }

    // Saving again unsharded replaces the index and the shards with one file...
    polymoe::saveCheckpointFolder(dir.toStdString(), tensors);
    QCOMPARE(QDir(dir).entryList(QDir::Files), QStringList{"model.safetensors"});
    loaded = polymoe::loadCheckpointFolder(dir.toStdString());
    for (const auto &[name, t] : tensors)
        compareBitExact(loaded.at(name), t, name.c_str());
    // ...and sharded again removes the single file.
    polymoe::saveCheckpointFolder(dir.toStdString(), tensors, 600);
    const QStringList again = QDir(dir).entryList(QDir::Files);
    QVERIFY(!again.contains("model.safetensors"));
    QCOMPARE(again.size(), 3); // two shards and the index
    QCOMPARE(polymoe::loadCheckpointFolder(dir.toStdString()).size(), tensors.size());
}

void TestSafetensors::shardedCheckpointErrors()
{
    QTemporaryDir tmp;
    const QString dir = tmp.path();
    const std::string d = dir.toStdString();
    std::map<std::string, at::Tensor> tensors{
        {"a", at::ones({8})}, {"b", at::ones({8})}, {"c", at::ones({8})}}; // 32 bytes each
    polymoe::saveCheckpointFolder(d, tensors, 40);
    const QString indexPath = dir + "/model.safetensors.index.json";
    const QJsonObject index = readJson(indexPath);
    QCOMPARE(index["weight_map"].toObject()["b"].toString(), QString("model-00002-of-00003.safetensors"));

    // A tensor the index places in a shard that does not hold it.
    QJsonObject wrong = index;
    QJsonObject map = wrong["weight_map"].toObject();
    map["b"] = "model-00001-of-00003.safetensors";
    wrong["weight_map"] = map;
    writeJson(indexPath, wrong);
    QString message = formatErrorOf([&] { polymoe::loadCheckpointFolder(d); });
    QVERIFY2(message.contains("model.safetensors.index.json") &&
                 message.contains("tensor 'b' is mapped to") && message.contains("model-00001-of-00003.safetensors") &&
                 message.contains("which has no tensor of that name"),
             qPrintable(message));

    // A tensor found in two shards.
    map["b"] = "model-00002-of-00003.safetensors";
    wrong["weight_map"] = map;
    writeJson(indexPath, wrong);
    polymoe::writeSafetensors((dir + "/model-00003-of-00003.safetensors").toStdString(),
                              {{"c", at::ones({8})}, {"b", at::ones({8})}});
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(d); });
    QVERIFY2(message.contains("tensor 'b' appears in two shards, model-00002-of-00003.safetensors and "
                              "model-00003-of-00003.safetensors"),
             qPrintable(message));

    // A missing shard.
    QVERIFY(QFile::remove(dir + "/model-00003-of-00003.safetensors"));
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(d); });
    QVERIFY2(message.contains("shard 'model-00003-of-00003.safetensors' (listed for tensor 'c') does not exist"),
             qPrintable(message));

    // A shard name that leaves the folder.
    map["c"] = "../elsewhere.safetensors";
    wrong["weight_map"] = map;
    writeJson(indexPath, wrong);
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(d); });
    QVERIFY2(message.contains("tensor 'c' maps to '../elsewhere.safetensors', which is not a file name inside"),
             qPrintable(message));

    // A broken index.
    QFile f(indexPath);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("{\"weight_map\": {\"a\": }");
    f.close();
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(d); });
    QVERIFY2(message.contains("model.safetensors.index.json: invalid JSON at byte 21"), qPrintable(message));

    // Empty and missing folders.
    QTemporaryDir empty;
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(empty.path().toStdString()); });
    QVERIFY2(message.contains("no model.safetensors or model.safetensors.index.json"), qPrintable(message));
    QVERIFY_THROWS_EXCEPTION(polymoe::IoError, (polymoe::loadCheckpointFolder((dir + "/absent").toStdString())));
}

void TestSafetensors::pickleRefused()
{
    QTemporaryDir tmp;
    QFile bin(tmp.filePath("pytorch_model.bin"));
    QVERIFY(bin.open(QIODevice::WriteOnly));
    bin.write("\x80\x02}q\x00.", 6); // a pickle opcode stream; must never be looked at
    bin.close();
    QString message = formatErrorOf([&] { polymoe::loadCheckpointFolder(tmp.path().toStdString()); });
    QVERIFY2(message.startsWith("format: "), qPrintable(message));
    QVERIFY2(message.contains("pytorch_model.bin") && message.contains("arbitrary code") &&
                 message.contains("never loads pickle files") && message.contains("Convert the checkpoint to safetensors"),
             qPrintable(message));

    QFile pt(tmp.filePath("weights.pt"));
    QVERIFY(pt.open(QIODevice::WriteOnly));
    pt.close();
    message = formatErrorOf([&] { polymoe::loadCheckpointFolder(tmp.filePath("weights.pt").toStdString()); });
    QVERIFY2(message.contains("weights.pt") && message.contains("arbitrary code"), qPrintable(message));

    // Beside a model.safetensors the pickle is simply ignored.
    polymoe::saveCheckpointFolder(tmp.path().toStdString(), {{"w", at::ones({2})}});
    QCOMPARE(polymoe::loadCheckpointFolder(tmp.path().toStdString()).size(), size_t(1));
}

void TestSafetensors::loadStateInto()
{
    torch::nn::Sequential source(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4), torch::nn::Linear(4, 2));
    torch::nn::Sequential target(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4), torch::nn::Linear(4, 2));
    {
        at::NoGradGuard noGrad;
        source->named_buffers()["1.running_mean"].uniform_();
    }
    const auto state = polymoe::stateOf(*source);
    std::vector<std::string> names;
    for (const auto &entry : state)
        names.push_back(entry.first);
    QCOMPARE(names, (std::vector<std::string>{"0.bias", "0.weight", "1.bias", "1.num_batches_tracked",
                                              "1.running_mean", "1.running_var", "1.weight", "2.bias", "2.weight"}));

    // Through a checkpoint folder, then into the other model.
    QTemporaryDir tmp;
    polymoe::saveCheckpointFolder(tmp.path().toStdString(), state);
    polymoe::loadStateInto(*target, polymoe::loadCheckpointFolder(tmp.path().toStdString()));
    const auto loaded = polymoe::stateOf(*target);
    for (const auto &[name, t] : state)
        compareBitExact(loaded.at(name), t, name.c_str());
    QVERIFY(target->named_parameters()["0.weight"].requires_grad());

    // Dtypes are converted to the model's.
    std::map<std::string, at::Tensor> half;
    for (const auto &[name, t] : state)
        half[name] = t.is_floating_point() ? t.to(at::kBFloat16) : t;
    polymoe::loadStateInto(*target, half);
    const at::Tensor w = target->named_parameters()["2.weight"];
    QCOMPARE(w.scalar_type(), at::kFloat);
    QVERIFY(at::equal(w, state.at("2.weight").to(at::kBFloat16).to(at::kFloat)));
}

void TestSafetensors::loadStateIntoErrors()
{
    torch::nn::Sequential model(torch::nn::Linear(3, 4), torch::nn::Linear(4, 2));
    const auto good = polymoe::stateOf(*model);
    std::map<std::string, at::Tensor> before;
    for (const auto &[name, t] : good)
        before[name] = t.clone();
    auto unchanged = [&] {
        for (const auto &[name, t] : polymoe::stateOf(*model))
            if (!at::equal(t, before.at(name)))
                return false;
        return true;
    };

    // Shape mismatch: reported even when not strict, and nothing is copied.
    auto state = before;
    for (auto &[name, t] : state)
        t = t + 1;
    state["0.weight"] = at::zeros({5, 3});
    QString message = formatErrorOf([&] { polymoe::loadStateInto(*model, state, false); });
    QVERIFY2(message.contains("tensor '0.weight': shape [5, 3] does not match the model's [4, 3]"),
             qPrintable(message));
    QVERIFY(unchanged());

    // Missing and unexpected names in strict mode.
    state = before;
    state.erase("1.bias");
    state["3.weight"] = at::zeros({1});
    message = formatErrorOf([&] { polymoe::loadStateInto(*model, state, true); });
    QVERIFY2(message.contains("1 missing (in the model, not in the state): '1.bias'") &&
                 message.contains("1 unexpected (in the state, not in the model): '3.weight'"),
             qPrintable(message));
    QVERIFY(unchanged());

    // Not strict: both skipped; what matches is copied, the missing one keeps its value.
    state["0.bias"] = at::full({4}, 5.0f);
    polymoe::loadStateInto(*model, state, false);
    QVERIFY(at::equal(model->named_parameters()["0.bias"], at::full({4}, 5.0f)));
    QVERIFY(at::equal(model->named_parameters()["1.bias"], before.at("1.bias")));

    // Long lists stop at 10 names.
    torch::nn::Sequential wide;
    for (int i = 0; i < 6; ++i)
        wide->push_back(torch::nn::Linear(2, 2));
    message = formatErrorOf([&] { polymoe::loadStateInto(*wide, {}, true); });
    QVERIFY2(message.contains("12 missing") && message.contains("and 2 more"), qPrintable(message));
    QCOMPARE(message.count("'"), 20);
}

// Our writer's output read by the reference implementation (Python's safetensors), which also
// must agree with us on every file of tests/data/safetensors. POLYMOE_PYTHON picks the interpreter.
void TestSafetensors::pythonSafetensorsReadsOurFiles()
{
    const QString python = qEnvironmentVariable("POLYMOE_PYTHON", QStringLiteral("python3"));
    QProcess probe;
    probe.start(python, {"-c", "from safetensors import deserialize"});
    if (!probe.waitForFinished(60000) || probe.exitStatus() != QProcess::NormalExit || probe.exitCode() != 0)
        QSKIP(qPrintable(QStringLiteral("Python's safetensors package (0.4 or later) is not importable with '%1'; "
                                        "the independent check is skipped (install it, or set POLYMOE_PYTHON to an "
                                        "interpreter that has it)")
                             .arg(python)));

    QTemporaryDir tmp;
    const QString path = tmp.filePath("ours.safetensors");
    std::map<std::string, at::Tensor> tensors{
        {"f32", randomBits(at::kFloat, {3, 5})}, {"f16", randomBits(at::kHalf, {7})},
        {"bf16", randomBits(at::kBFloat16, {2, 2, 3})}, {"scalar", randomBits(at::kFloat, {})},
        {"empty", randomBits(at::kHalf, {0, 4})}, {"i64", randomBits(at::kLong, {2})},
        {"i32", randomBits(at::kInt, {3})}};
    polymoe::writeSafetensors(path.toStdString(), {tensors.begin(), tensors.end()}, {{"format", "pt"}});

    const char *script = R"(
import hashlib, json, sys
from safetensors import deserialize
out = {}
for name, t in deserialize(open(sys.argv[1], "rb").read()):
    out[name] = {"dtype": str(t["dtype"]).upper(), "shape": list(t["shape"]),
                 "sha256": hashlib.sha256(bytes(t["data"])).hexdigest()}
print(json.dumps(out))
wrong = []
for arg in sys.argv[2:]:
    expect, f = arg.split(":", 1)
    try:
        deserialize(open(f, "rb").read())
        if expect == "bad":
            wrong.append("accepted " + f)
    except Exception as e:
        if expect == "ok":
            wrong.append("rejected %s: %s" % (f, e))
print("\n".join(wrong), file=sys.stderr)
sys.exit(3 if wrong else 0)
)";
    QStringList args{"-c", script, path};
    const QStringList malformed = QDir(kDataDir).entryList({"*.safetensors"}, QDir::Files, QDir::Name);
    // Valid for the reference: our valid file, and F8_E4M3, which is valid but unsupported here.
    const QStringList validThere{"valid.safetensors", "unsupported_dtype.safetensors"};
    for (const QString &f : malformed)
        args << (validThere.contains(f) ? "ok:" : "bad:") + kDataDir + "/" + f;
    QProcess py;
    py.start(python, args);
    QVERIFY(py.waitForFinished(60000));
    const QByteArray err = py.readAllStandardError();
    QVERIFY2(py.exitCode() == 0, err.constData());

    const QJsonObject seen = QJsonDocument::fromJson(py.readAllStandardOutput()).object();
    QCOMPARE(seen.size(), int(tensors.size()));
    for (const auto &[name, t] : tensors) {
        const QJsonObject entry = seen[QString::fromStdString(name)].toObject();
        QCOMPARE(entry["dtype"].toString().toStdString(), polymoe::safetensorsDtypeName(t.scalar_type()));
        QJsonArray shape;
        for (int64_t d : t.sizes())
            shape.append(qint64(d));
        QCOMPARE(entry["shape"].toArray(), shape);
        QCOMPARE(entry["sha256"].toString().toLatin1(),
                 QCryptographicHash::hash(bytesOf(t), QCryptographicHash::Sha256).toHex());
    }
}

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
