// Tests for config.json's RoPE variants (plain, linear, Llama 3.1's llama3) and explicit head_dim
// (core/model_config, core/models/llama's ropeInverseFrequencies): hand-derived inv_freq, real
// configs as transformers 4 and 5 write them, round trips, and the refusals, each by name. The
// forward pass with these settings is checked against naive loops in tst_llama.
#include "model_config.h"
#include "model_io.h"
#include "models/llama.h"
#include "polymoe/corpus.h"
#include "polymoe/error.h"
#include "safetensors.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <functional>
#include <sys/stat.h>
#include <fstream>

using namespace polymoe;

namespace
{

// Llama-3.2-1B's config.json as transformers 4.45 wrote it (trimmed of unused keys).
const char *kLlama32V4 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// The same model as transformers 5 writes it: rope_theta inside rope_parameters, "dtype".
const char *kLlama32V5 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rope_type": "llama3"
  },
  "tie_word_embeddings": true,
  "transformers_version": "5.25.0",
  "use_cache": true,
  "vocab_size": 128256
})";

// SmolLM2-135M-Instruct as installer/fetch-smollm2.sh saves it (transformers 5.25 from the GGUF file).
const char *kSmolLM2 = R"({
  "_model_name_or_path": "Smollm2 135M 8k Lc100K Mix1 Ep2",
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "dtype": "float32",
  "eos_token_id": 2,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 576,
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "max_position_embeddings": 8192,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 9,
  "num_hidden_layers": 30,
  "num_key_value_heads": 3,
  "pad_token_id": 2,
  "pretraining_tp": 1,
  "rms_norm_eps": 9.999999747378752e-06,
  "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
  "tie_word_embeddings": true,
  "transformers_version": "5.25.0",
  "unk_token_id": 0,
  "use_cache": true,
  "vocab_size": 49152
})";

// Mistral-NeMo-shaped: head_dim 128 although hidden_size / heads = 160.
const char *kNemo = R"({
  "architectures": ["MistralForCausalLM"],
  "head_dim": 128,
  "hidden_size": 5120,
  "intermediate_size": 14336,
  "max_position_embeddings": 1024000,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 2,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "vocab_size": 131072
})";

const std::string kWhere = "/models/m/config.json";

QString edited(const char *base, const QJsonObject &changes, const QStringList &removed = {})
{
    QJsonObject o = QJsonDocument::fromJson(QByteArray(base)).object();
    for (auto it = changes.begin(); it != changes.end(); ++it)
        o[it.key()] = it.value();
    for (const QString &k : removed)
        o.remove(k);
    return QString::fromUtf8(QJsonDocument(o).toJson());
}

const QJsonObject kLlama3{{"rope_type", "llama3"},
                          {"factor", 8.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 1024}};

ModelConfig tiny()
{
    return ModelConfig{.vocabSize = 64,
                       .hiddenSize = 32,
                       .intermediateSize = 48,
                       .numLayers = 1,
                       .numHeads = 4,
                       .numKvHeads = 4,
                       .headDim = 8,
                       .ropeTheta = 1e4,
                       .maxPositionEmbeddings = 4096};
}

} // namespace

class TestModelConfig : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    // headDim 8, theta 1e4: plain inv_freq_i = 1e4^(-i/4) = 1, 0.1, 0.01, 0.001, wavelengths 2 pi x
    // (1, 10, 100, 1000) = 6.28, 62.8, 628, 6283. llama3 with L = 1024, low 1, high 4, factor 8:
    // i = 0, 1 are below L/4 = 256 (kept), i = 3 above L/1 = 1024 (divided by 8: 1.25e-4), i = 2 in
    // between: s = (1024 / 628.3 - 1) / 3 = 0.2099, (1 - s) 0.01 / 8 + s 0.01 = 0.0030868.
    void inverseFrequencies_data()
    {
        QTest::addColumn<QString>("type");
        QTest::addColumn<bool>("fp64");
        QTest::addColumn<std::vector<double>>("want");
        QTest::addColumn<double>("tolerance"); // relative, per entry
        const double s = (1024.0 / (2.0 * M_PI * 100.0) - 1.0) / (4.0 - 1.0);
        const std::vector<double> llama3{1.0, 0.1, (1.0 - s) * 0.01 / 8.0 + s * 0.01, 0.001 / 8.0};
        QVERIFY(std::abs(llama3[2] - 0.0030868) < 1e-7); // the hand value of the comment above
        // fp32: a pow, a reciprocal and a few products, each within 1 ulp (6e-8): 1e-6 is 16 ulps
        QTest::newRow("default f32") << "default" << false << std::vector<double>{1.0, 0.1, 0.01, 0.001} << 1e-6;
        QTest::newRow("linear f32") << "linear" << false << std::vector<double>{0.25, 0.025, 0.0025, 0.00025} << 1e-6;
        QTest::newRow("llama3 f32") << "llama3" << false << llama3 << 1e-6;
        QTest::newRow("llama3 f64") << "llama3" << true << llama3 << 1e-14;
    }
    void inverseFrequencies()
    {
        QFETCH(QString, type);
        QFETCH(bool, fp64);
        QFETCH(std::vector<double>, want);
        QFETCH(double, tolerance);
        ModelConfig c = tiny();
        c.ropeType = type.toStdString();
        if (type == "linear")
            c.ropeFactor = 4.0;
        if (type == "llama3") {
            c.ropeFactor = 8.0;
            c.ropeOriginalMaxPositions = 1024;
        }
        validateModelConfig(c, "test");
        const at::Tensor got = ropeInverseFrequencies(c, at::kCPU, fp64 ? at::kDouble : at::kFloat);
        QVERIFY(got.scalar_type() == (fp64 ? at::kDouble : at::kFloat));
        QCOMPARE(got.numel(), int64_t(want.size()));
        for (size_t i = 0; i < want.size(); ++i) {
            const double g = got[int64_t(i)].item<double>();
            QVERIFY2(
                std::abs(g - want[i]) <= tolerance * want[i],
                qPrintable(QString("inv_freq[%1] = %2, want %3").arg(i).arg(g, 0, 'g', 17).arg(want[i], 0, 'g', 17)));
        }
        // the tables use them: angle at position 5 of pair i is 5 * inv_freq_i
        const RopeTables t = ropeTables(6, got, at::kDouble);
        QCOMPARE(t.cos.sizes().vec(), (std::vector<int64_t>{6, 8}));
        for (int64_t i = 0; i < 4; ++i) {
            QVERIFY(std::abs(t.cos[5][i].item<double>() - std::cos(5.0 * got[i].item<double>())) < 1e-6);
            QVERIFY(std::abs(t.sin[5][i + 4].item<double>() - std::sin(5.0 * got[i].item<double>())) < 1e-6);
        }
    }

    void parseRopeAndHeadDim_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("ropeType");
        QTest::addColumn<double>("theta");
        QTest::addColumn<double>("factor");
        QTest::addColumn<double>("low");
        QTest::addColumn<double>("high");
        QTest::addColumn<qint64>("original");
        QTest::addColumn<qint64>("headDim");
        QTest::newRow("Llama-3.2 transformers 4")
            << kLlama32V4 << "llama3" << 5e5 << 32.0 << 1.0 << 4.0 << 8192ll << 64ll;
        QTest::newRow("Llama-3.2 transformers 5")
            << kLlama32V5 << "llama3" << 5e5 << 32.0 << 1.0 << 4.0 << 8192ll << 64ll;
        // transformers 5 falls back to max_position_embeddings for a missing original length
        QTest::newRow("llama3 without original_max_position_embeddings")
            << edited(kLlama32V5, {{"rope_parameters", QJsonObject{{"rope_type", "llama3"},
                                                                   {"factor", 8.0},
                                                                   {"low_freq_factor", 2.0},
                                                                   {"high_freq_factor", 8.0},
                                                                   {"rope_theta", 1e4}}}})
            << "llama3" << 1e4 << 8.0 << 2.0 << 8.0 << 131072ll << 64ll;
        // a non-empty rope_scaling wins over rope_parameters (transformers 5); theta from the top level
        QTest::newRow("rope_scaling beside rope_parameters")
            << edited(kSmolLM2, {{"rope_scaling", kLlama3}, {"rope_theta", 2e4}}) << "llama3" << 2e4 << 8.0 << 1.0
            << 4.0 << 1024ll << 64ll;
        QTest::newRow("empty rope_scaling, rope_parameters llama3")
            << edited(kLlama32V5, {{"rope_scaling", QJsonObject{}}}) << "llama3" << 5e5 << 32.0 << 1.0 << 4.0 << 8192ll
            << 64ll;
        QTest::newRow("linear, old 'type' key")
            << edited(kSmolLM2, {{"rope_scaling", QJsonObject{{"type", "linear"}, {"factor", 2.0}}}},
                      {"rope_parameters"})
            << "linear" << 1e4 << 2.0 << 1.0 << 4.0 << 8192ll << 64ll;
        QTest::newRow("rope_scaling type default")
            << edited(kSmolLM2, {{"rope_scaling", QJsonObject{{"rope_type", "default"}, {"factor", 3.0}}}}) << "default"
            << 1e4 << 1.0 << 1.0 << 4.0 << 8192ll << 64ll; // rope_parameters (theta) replaced
        QTest::newRow("SmolLM2 transformers 5") << kSmolLM2 << "default" << 1e5 << 1.0 << 1.0 << 4.0 << 8192ll << 64ll;
        QTest::newRow("explicit head_dim (Mistral-NeMo)")
            << kNemo << "default" << 1e6 << 1.0 << 1.0 << 4.0 << 8192ll << 128ll;
    }
    void parseRopeAndHeadDim()
    {
        QFETCH(QString, text);
        const ModelConfig c = parseModelConfig(text.toStdString(), kWhere);
        QTEST(QString::fromStdString(c.ropeType), "ropeType");
        QTEST(c.ropeTheta, "theta");
        QTEST(c.ropeFactor, "factor");
        QTEST(c.ropeLowFreqFactor, "low");
        QTEST(c.ropeHighFreqFactor, "high");
        QTEST(qint64(c.ropeOriginalMaxPositions), "original");
        QTEST(qint64(c.headDim), "headDim");

        // round trip, and the keys transformers reads
        const std::string json = modelConfigToJson(c);
        QVERIFY(parseModelConfig(json, "round trip") == c);
        const QJsonObject o = QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
        QCOMPARE(o["rope_theta"].toDouble(), c.ropeTheta);
        QCOMPARE(o["head_dim"].toInteger(), qint64(c.headDim));
        const QJsonValue rs = o["rope_scaling"];
        if (c.ropeType == "default") {
            QVERIFY(rs.isNull());
        } else {
            QCOMPARE(rs["rope_type"].toString(), QString::fromStdString(c.ropeType));
            QCOMPARE(rs["factor"].toDouble(), c.ropeFactor);
            const QStringList keys = rs.toObject().keys();
            if (c.ropeType == "llama3") {
                QCOMPARE(keys, (QStringList{"factor", "high_freq_factor", "low_freq_factor",
                                            "original_max_position_embeddings", "rope_type"}));
                QCOMPARE(rs["low_freq_factor"].toDouble(), c.ropeLowFreqFactor);
                QCOMPARE(rs["high_freq_factor"].toDouble(), c.ropeHighFreqFactor);
                QCOMPARE(rs["original_max_position_embeddings"].toInteger(), qint64(c.ropeOriginalMaxPositions));
            } else {
                QCOMPARE(keys, (QStringList{"factor", "rope_type"}));
            }
        }
    }

    void deeplyNestedJsonIsRefusedBeforeParsing()
    {
        // A few hundred thousand levels once overflowed the stack (the JSON library recurses). Both
        // readers of untrusted JSON refuse it with a message naming the file, and echo none of it.
        const std::string deep = "{\"vocab_size\": " + std::string(300000, '[') + std::string(300000, ']') + "}";
        try {
            parseModelConfig(deep, "deep/config.json");
            QFAIL("accepted");
        } catch (const FormatError &e) {
            const QString msg = e.what();
            QVERIFY2(msg.contains("deep/config.json") && msg.contains("nested deeper than 64"), e.what());
            QVERIFY(msg.size() < 200);
        }
        // 64 levels are fine as far as nesting goes (then refused for what they are).
        const std::string ok = "{\"x\": " + std::string(63, '[') + std::string(63, ']') + "}";
        try {
            parseModelConfig(ok, "ok/config.json");
        } catch (const Error &e) {
            QVERIFY2(!QString(e.what()).contains("nested deeper"), e.what());
        }
        // A safetensors header nested as deep.
        QTemporaryDir dir;
        const std::string path = dir.filePath("deep.safetensors").toStdString();
        std::string header = std::string(200000, '[') + std::string(200000, ']');
        header.resize((header.size() + 7) / 8 * 8, ' ');
        std::string file(8, '\0');
        uint64_t n = header.size();
        for (int i = 0; i < 8; ++i)
            file[size_t(i)] = char((n >> (8 * i)) & 0xff);
        file += header;
        std::ofstream(path, std::ios::binary) << file;
        try {
            SafetensorsFile f(path);
            QFAIL("accepted");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("deep.safetensors") && QString(e.what()).contains("nested deeper"), e.what());
        }
    }

    void fifosAreRefusedWithoutBlocking()
    {
        // A FIFO given as config.json, model.safetensors or a corpus file once blocked for ever.
        QTemporaryDir dir;
        const std::string fifo = dir.filePath("pipe").toStdString();
        QCOMPARE(::mkfifo(fifo.c_str(), 0600), 0);
        auto refused = [&](const std::function<void()> &read) {
            try {
                read();
            } catch (const IoError &e) {
                return QString(e.what()).contains("not a regular file") && QString(e.what()).contains("pipe");
            }
            return false;
        };
        QVERIFY(refused([&] { readModelConfig(fifo); }));
        QVERIFY(refused([&] { SafetensorsFile f(fifo); }));
        std::vector<ImportIssue> issues;
        int64_t empty = 0;
        QVERIFY(refused([&] { readDocuments(fifo, TextFormat::Auto, issues, empty); }));
    }

    void smolLM2Shape()
    {
        const ModelConfig c = parseModelConfig(kSmolLM2, kWhere);
        QCOMPARE(c.numLayers, int64_t(30));
        QCOMPARE(c.hiddenSize, int64_t(576));
        QCOMPARE(c.numHeads, int64_t(9));
        QCOMPARE(c.numKvHeads, int64_t(3));
        QCOMPARE(c.rmsNormEps, 9.999999747378752e-06);
        QVERIFY(c.tieWordEmbeddings);
        QCOMPARE(c.torchDtype, std::string("float32"));
        QCOMPARE(c.bosTokenId, int64_t(1));
        QCOMPARE(c.eosTokenId, int64_t(2));
        // keys that do not change the maths are accepted in any value transformers allows
        const ModelConfig same = parseModelConfig(edited(kSmolLM2, {{"use_cache", false},
                                                                    {"pretraining_tp", 2},
                                                                    {"pad_token_id", QJsonValue()},
                                                                    {"attention_dropout", 0},
                                                                    {"mlp_bias", false},
                                                                    {"attention_bias", false}})
                                                      .toStdString(),
                                                  kWhere);
        QVERIFY(same == c);
    }

    void refusals_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("phrase");
        QTest::newRow("rope_parameters yarn")
            << edited(kSmolLM2,
                      {{"rope_parameters", QJsonObject{{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 1e4}}}})
            << "rope_parameters of type 'yarn' is not implemented (default, linear and llama3 are)";
        QTest::newRow("rope_scaling dynamic")
            << edited(kLlama32V4, {{"rope_scaling", QJsonObject{{"type", "dynamic"}, {"factor", 2.0}}}})
            << "rope_scaling of type 'dynamic' is not implemented";
        QTest::newRow("rope_scaling longrope")
            << edited(kLlama32V4, {{"rope_scaling", QJsonObject{{"rope_type", "longrope"}, {"factor", 2.0}}}})
            << "rope_scaling of type 'longrope' is not implemented";
        QTest::newRow("llama3 without factor")
            << edited(kLlama32V4,
                      {{"rope_scaling",
                        QJsonObject{{"rope_type", "llama3"}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}}}})
            << "rope_scaling of type 'llama3' needs 'factor'";
        QTest::newRow("llama3 high <= low")
            << edited(kLlama32V4, {{"rope_scaling", QJsonObject{{"rope_type", "llama3"},
                                                                {"factor", 8.0},
                                                                {"low_freq_factor", 4.0},
                                                                {"high_freq_factor", 4.0},
                                                                {"original_max_position_embeddings", 8192}}}})
            << "llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor, found 4.0 and 4.0";
        QTest::newRow("linear factor 0") << edited(kLlama32V4, {{"rope_scaling",
                                                                 QJsonObject{{"rope_type", "linear"}, {"factor", 0}}}})
                                         << "rope_scaling factor must be positive";
        QTest::newRow("llama3 factor a string")
            << edited(kLlama32V4, {{"rope_scaling", QJsonObject{{"rope_type", "llama3"},
                                                                {"factor", "8"},
                                                                {"low_freq_factor", 1.0},
                                                                {"high_freq_factor", 4.0}}}})
            << "rope_scaling: key 'factor' must be a number";
        QTest::newRow("rope_scaling a number")
            << edited(kLlama32V4, {{"rope_scaling", 2.0}}) << "key 'rope_scaling' must be an object or null, found 2";
        QTest::newRow("per-layer rope_parameters")
            << edited(kSmolLM2,
                      {{"rope_parameters",
                        QJsonObject{{"full_attention", QJsonObject{{"rope_type", "default"}, {"rope_theta", 1e4}}}}}})
            << "key 'rope_parameters' holds per-layer-type RoPE ('full_attention')";
        QTest::newRow("partial_rotary_factor")
            << edited(kSmolLM2, {{"partial_rotary_factor", 0.5}}) << "partial_rotary_factor 0.5 is not implemented";
        QTest::newRow("partial_rotary_factor in rope_parameters")
            << edited(kSmolLM2,
                      {{"rope_parameters",
                        QJsonObject{{"rope_type", "default"}, {"rope_theta", 1e4}, {"partial_rotary_factor", 0.25}}}})
            << "partial_rotary_factor 0.25 is not implemented";
        QTest::newRow("mlp_bias true") << edited(kSmolLM2, {{"mlp_bias", true}}) << "mlp_bias true is not implemented";
        QTest::newRow("attention_bias true, llama") << edited(kSmolLM2, {{"attention_bias", true}})
                                                    << "attention_bias true is not implemented for model_type 'llama'";
        QTest::newRow("attention_bias true, mistral")
            << edited(kNemo, {{"attention_bias", true}})
            << "attention_bias true is not implemented for model_type 'mistral'";
        QTest::newRow("attention_dropout 0.1")
            << edited(kSmolLM2, {{"attention_dropout", 0.1}}) << "attention_dropout 0.1 is not implemented";
        QTest::newRow("head_dim odd") << edited(kNemo, {{"head_dim", 127}}) << "head_dim 127 must be even for RoPE";
        QTest::newRow("head_dim zero") << edited(kNemo, {{"head_dim", 0}}) << "key 'head_dim' must be positive";
        QTest::newRow("1e8 layers") << edited(kSmolLM2, {{"num_hidden_layers", 100000000}})
                                    << "key 'num_hidden_layers' is 100000000, more than this build allows (at most 1024)";
        QTest::newRow("vocabulary of 2^40")
            << edited(kSmolLM2, {{"vocab_size", double(int64_t(1) << 40)}})
            << "key 'vocab_size' is 1099511627776, more than this build allows (at most 16777216)";
    }

    // The parameters a config implies, against SmolLM2-135M's published count (134,515,008, tied
    // embeddings) and a count by hand for an MoE layout; a model larger than the machine's memory is
    // refused by loadModelFolder before anything is built, naming config.json.
    void impliedParametersAndMemory()
    {
        const ModelConfig c = parseModelConfig(kSmolLM2, kWhere);
        QCOMPARE(impliedParameters(c), 134515008.0);
        // One more expert in layers 0 and 1: 2 x (3 x 576 x 1536 FFN + 2 x 576 router rows).
        QCOMPARE(impliedParameters(c, std::vector<int>{2, 2}) - impliedParameters(c), 2.0 * (3 * 576 * 1536 + 2 * 576));
        const ModelConfig huge = parseModelConfig(
            edited(kSmolLM2, {{"num_hidden_layers", 1024}, {"hidden_size", 65536}, {"intermediate_size", 262144},
                              {"num_attention_heads", 512}, {"num_key_value_heads", 512}, {"head_dim", 128}})
                .toStdString(),
            kWhere);
        QVERIFY_THROWS_EXCEPTION(ConfigError, checkModelFitsMemory(huge, {}, "x"));
        checkModelFitsMemory(c, {}, "x"); // SmolLM2 fits

        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        std::ofstream(dir + "/config.json")
            << edited(kSmolLM2, {{"num_hidden_layers", 1024}, {"hidden_size", 65536}, {"intermediate_size", 262144},
                                 {"num_attention_heads", 512}, {"num_key_value_heads", 512}, {"head_dim", 128}})
                   .toStdString();
        try {
            loadModelFolder(dir);
            QFAIL("a model larger than memory was built");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("config.json") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("more than this machine's") != std::string::npos, e.what());
        }
        // An MoE layout of 100,000 experts a layer is refused by name, before building.
        QJsonObject moe = QJsonDocument::fromJson(QByteArray(kSmolLM2)).object();
        moe["polymoe"] = QJsonObject{{"experts_per_layer", QJsonArray{100000}}, {"top_k", 2}};
        std::ofstream(dir + "/config.json", std::ios::trunc) << QJsonDocument(moe).toJson().toStdString();
        try {
            loadModelFolder(dir);
            QFAIL("100,000 experts accepted");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("experts_per_layer holds 100000") != std::string::npos, e.what());
        }
    }
    void refusals()
    {
        QFETCH(QString, text);
        QFETCH(QString, phrase);
        try {
            parseModelConfig(text.toStdString(), kWhere);
            QFAIL("accepted");
        } catch (const ConfigError &e) {
            const QString m = e.what();
            QVERIFY2(m.startsWith("config: " + QString::fromStdString(kWhere)), e.what());
            QVERIFY2(m.contains(phrase), e.what());
        }
    }

    // Configs built in code go through the same checks.
    void validateRefusesCodeBuiltRope()
    {
        ModelConfig c = tiny();
        c.ropeType = "yarn";
        QVERIFY_THROWS_EXCEPTION(ConfigError, validateModelConfig(c, "code"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, modelConfigToJson(c));
        c.ropeType = "llama3";
        c.ropeOriginalMaxPositions = 0;
        QVERIFY_THROWS_EXCEPTION(ConfigError, validateModelConfig(c, "code"));
        c.ropeOriginalMaxPositions = 64;
        validateModelConfig(c, "code");
        c.ropeFactor = -1.0;
        QVERIFY_THROWS_EXCEPTION(ConfigError, (void)CausalLM(c));
    }
};

QTEST_APPLESS_MAIN(TestModelConfig)
#include "tst_model_config.moc"
