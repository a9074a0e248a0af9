// Tests for the Llama-family decoder (core/models/llama), its config.json reader/writer
// (core/model_config) and generation. Forward logits are checked against a deliberately naive
// reference written here with plain loops over batch, positions, heads and key positions.
#include "model_config.h"
#include "model_io.h"
#include "models/generate.h"
#include "models/llama.h"
#include "polymoe/error.h"
#include "safetensors.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

using namespace polymoe;

namespace {

// ---------------------------------------------------------------------------------------------
// The naive reference: std::vector<double>, explicit loops, nothing from LibTorch but the weights.

using Vec = std::vector<double>;

struct Mat {
    int64_t rows = 0, cols = 0; // (out, in), as HF stores Linear weights
    Vec v;
    double at(int64_t r, int64_t c) const { return v[static_cast<size_t>(r * cols + c)]; }
};

using Params = std::map<std::string, at::Tensor>;

Params paramsOf(torch::nn::Module &module)
{
    Params out;
    for (const auto &item : module.named_parameters())
        out[item.key()] = item.value().detach().to(at::kCPU, at::kDouble).contiguous();
    return out;
}

const at::Tensor &param(const Params &p, const std::string &name)
{
    const auto it = p.find(name);
    if (it == p.end())
        throw std::runtime_error("no parameter named " + name);
    return it->second;
}

Mat mat(const Params &p, const std::string &name)
{
    const at::Tensor &t = param(p, name);
    Mat m{t.size(0), t.size(1), {}};
    m.v.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    return m;
}

Vec vec(const Params &p, const std::string &name)
{
    const at::Tensor &t = param(p, name);
    return Vec(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

Vec matvec(const Mat &w, const Vec &x)
{
    Vec y(static_cast<size_t>(w.rows), 0.0);
    for (int64_t o = 0; o < w.rows; ++o)
        for (int64_t i = 0; i < w.cols; ++i)
            y[static_cast<size_t>(o)] += w.at(o, i) * x[static_cast<size_t>(i)];
    return y;
}

void addTo(Vec &y, const Vec &x)
{
    for (size_t i = 0; i < y.size(); ++i)
        y[i] += x[i];
}

Vec rmsNorm(const Vec &x, const Vec &w, double eps)
{
    double sumSq = 0.0;
    for (double a : x)
        sumSq += a * a;
    const double r = 1.0 / std::sqrt(sumSq / static_cast<double>(x.size()) + eps);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i)
        y[i] = x[i] * r * w[i];
    return y;
}

// inv_freq written out here, apart from core/models/llama.cpp, after the published definitions:
// plain theta^(-2i/d); linear: / factor; llama3 (Meta's apply_scaling of Llama 3.1): per wavelength
// band, with L = original_max_position_embeddings.
Vec naiveInvFreq(const ModelConfig &c)
{
    Vec f;
    for (int64_t i = 0; i < c.headDim / 2; ++i) {
        const double plain = std::pow(c.ropeTheta, -2.0 * static_cast<double>(i) / static_cast<double>(c.headDim));
        if (c.ropeType == "linear") {
            f.push_back(plain / c.ropeFactor);
        } else if (c.ropeType == "llama3") {
            const double L = static_cast<double>(c.ropeOriginalMaxPositions);
            const double wavelen = 2.0 * M_PI / plain;
            if (wavelen < L / c.ropeHighFreqFactor) {
                f.push_back(plain);
            } else if (wavelen > L / c.ropeLowFreqFactor) {
                f.push_back(plain / c.ropeFactor);
            } else {
                const double s = (L / wavelen - c.ropeLowFreqFactor) / (c.ropeHighFreqFactor - c.ropeLowFreqFactor);
                f.push_back((1.0 - s) * plain / c.ropeFactor + s * plain);
            }
        } else {
            f.push_back(plain);
        }
    }
    return f;
}

// RoPE on one head's slice [off, off + d): HF rotate-half pairs feature i with i + d/2,
// angle = pos * invFreq[i].
void rope(Vec &x, size_t off, int64_t d, int64_t pos, const Vec &invFreq)
{
    for (int64_t i = 0; i < d / 2; ++i) {
        const double angle = static_cast<double>(pos) * invFreq[static_cast<size_t>(i)];
        const double a = x[off + static_cast<size_t>(i)], b = x[off + static_cast<size_t>(i + d / 2)];
        x[off + static_cast<size_t>(i)] = a * std::cos(angle) - b * std::sin(angle);
        x[off + static_cast<size_t>(i + d / 2)] = b * std::cos(angle) + a * std::sin(angle);
    }
}

struct NaiveResult {
    std::vector<std::vector<std::vector<Vec>>> ffnInputs; // [layer][batch][position] -> (d)
    std::vector<std::vector<Vec>> logits;                 // [batch][position] -> (vocab)
};

// zeroFfnLayers: layers whose FFN contributes nothing (a replaced mlp returning zeros).
NaiveResult naiveForward(const ModelConfig &c, const Params &p, const std::vector<std::vector<int64_t>> &ids,
                         const std::set<int64_t> &zeroFfnLayers = {})
{
    const int64_t H = c.numHeads, Hkv = c.numKvHeads, D = c.headDim, L = c.numLayers;
    const Vec invFreq = naiveInvFreq(c);
    const Mat emb = mat(p, "model.embed_tokens.weight");
    const Mat head = c.tieWordEmbeddings ? emb : mat(p, "lm_head.weight");
    NaiveResult out;
    out.ffnInputs.resize(static_cast<size_t>(L));
    for (const auto &seq : ids) {
        const auto T = static_cast<int64_t>(seq.size());
        std::vector<Vec> x(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < c.hiddenSize; ++i)
                x[static_cast<size_t>(t)].push_back(emb.at(seq[static_cast<size_t>(t)], i));

        for (int64_t l = 0; l < L; ++l) {
            const std::string pre = "model.layers." + std::to_string(l) + ".";
            const Vec inNorm = vec(p, pre + "input_layernorm.weight");
            const Vec postNorm = vec(p, pre + "post_attention_layernorm.weight");
            const Mat wq = mat(p, pre + "self_attn.q_proj.weight"), wk = mat(p, pre + "self_attn.k_proj.weight");
            const Mat wv = mat(p, pre + "self_attn.v_proj.weight"), wo = mat(p, pre + "self_attn.o_proj.weight");

            std::vector<Vec> q(static_cast<size_t>(T)), k(static_cast<size_t>(T)), v(static_cast<size_t>(T));
            for (int64_t t = 0; t < T; ++t) {
                const Vec xn = rmsNorm(x[static_cast<size_t>(t)], inNorm, c.rmsNormEps);
                q[t] = matvec(wq, xn);
                k[t] = matvec(wk, xn);
                v[t] = matvec(wv, xn);
                if (c.attentionBias) {
                    addTo(q[t], vec(p, pre + "self_attn.q_proj.bias"));
                    addTo(k[t], vec(p, pre + "self_attn.k_proj.bias"));
                    addTo(v[t], vec(p, pre + "self_attn.v_proj.bias"));
                }
                for (int64_t h = 0; h < H; ++h)
                    rope(q[t], static_cast<size_t>(h * D), D, t, invFreq);
                for (int64_t h = 0; h < Hkv; ++h)
                    rope(k[t], static_cast<size_t>(h * D), D, t, invFreq);
            }
            for (int64_t t = 0; t < T; ++t) {
                Vec attn(static_cast<size_t>(H * D), 0.0);
                for (int64_t h = 0; h < H; ++h) {
                    const int64_t g = h / (H / Hkv); // the key/value head this query head reads
                    Vec scores;
                    for (int64_t s = 0; s <= t; ++s) { // causal: keys up to the query position
                        double dot = 0.0;
                        for (int64_t i = 0; i < D; ++i)
                            dot += q[t][static_cast<size_t>(h * D + i)] * k[s][static_cast<size_t>(g * D + i)];
                        scores.push_back(dot / std::sqrt(static_cast<double>(D)));
                    }
                    double maxScore = -1e300, total = 0.0;
                    for (double s : scores)
                        maxScore = std::max(maxScore, s);
                    for (double &s : scores) {
                        s = std::exp(s - maxScore);
                        total += s;
                    }
                    for (int64_t s = 0; s <= t; ++s)
                        for (int64_t i = 0; i < D; ++i)
                            attn[static_cast<size_t>(h * D + i)] +=
                                scores[static_cast<size_t>(s)] / total * v[s][static_cast<size_t>(g * D + i)];
                }
                addTo(x[static_cast<size_t>(t)], matvec(wo, attn));
            }
            std::vector<Vec> ffnIn;
            for (int64_t t = 0; t < T; ++t) {
                const Vec h = rmsNorm(x[static_cast<size_t>(t)], postNorm, c.rmsNormEps);
                ffnIn.push_back(h);
                if (zeroFfnLayers.count(l))
                    continue;
                const Vec gate = matvec(mat(p, pre + "mlp.gate_proj.weight"), h);
                const Vec up = matvec(mat(p, pre + "mlp.up_proj.weight"), h);
                Vec act(gate.size());
                for (size_t i = 0; i < gate.size(); ++i)
                    act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i]; // silu(gate) * up
                addTo(x[static_cast<size_t>(t)], matvec(mat(p, pre + "mlp.down_proj.weight"), act));
            }
            out.ffnInputs[static_cast<size_t>(l)].push_back(ffnIn);
        }
        std::vector<Vec> seqLogits;
        for (int64_t t = 0; t < T; ++t)
            seqLogits.push_back(matvec(head, rmsNorm(x[static_cast<size_t>(t)], vec(p, "model.norm.weight"), c.rmsNormEps)));
        out.logits.push_back(seqLogits);
    }
    return out;
}

// max |model - naive| / max |naive| over a (batch, seq, n) tensor.
double relativeError(const at::Tensor &got, const std::vector<std::vector<Vec>> &want)
{
    const at::Tensor g = got.detach().to(at::kCPU, at::kDouble).contiguous();
    double maxDiff = 0.0, maxRef = 0.0;
    for (size_t b = 0; b < want.size(); ++b)
        for (size_t t = 0; t < want[b].size(); ++t)
            for (size_t i = 0; i < want[b][t].size(); ++i) {
                const double ref = want[b][t][i];
                const double val = g[static_cast<int64_t>(b)][static_cast<int64_t>(t)][static_cast<int64_t>(i)].item<double>();
                maxDiff = std::max(maxDiff, std::abs(val - ref));
                maxRef = std::max(maxRef, std::abs(ref));
            }
    return maxDiff / std::max(maxRef, 1e-300);
}

// ---------------------------------------------------------------------------------------------
// Tiny random models.

ModelConfig tinyConfig(const std::string &type, int64_t heads, int64_t kvHeads, bool tied, int64_t layers)
{
    return ModelConfig{
        .modelType = type,
        .vocabSize = 50,
        .hiddenSize = 32,
        .intermediateSize = 64,
        .numLayers = layers,
        .numHeads = heads,
        .numKvHeads = kvHeads,
        .headDim = 32 / heads,
        .rmsNormEps = 1e-5,
        .ropeTheta = type == "qwen2" ? 1e6 : 1e4,
        .maxPositionEmbeddings = 64,
        .tieWordEmbeddings = tied,
        .attentionBias = type == "qwen2",
        .bosTokenId = 1,
        .eosTokenId = 2,
    };
}

// Weights large enough (std 0.3) that every path changes the logits; norms and biases random too,
// so swapping two norms or dropping a bias shows.
CausalLM randomModel(const ModelConfig &c, at::ScalarType dtype, uint64_t seed)
{
    at::manual_seed(seed);
    CausalLM lm(c);
    lm->to(dtype);
    const at::NoGradGuard noGrad;
    for (auto &item : lm->named_parameters()) {
        if (item.key().find("norm") != std::string::npos)
            item.value().uniform_(0.5, 1.5);
        else if (item.key().find(".bias") != std::string::npos)
            item.value().normal_(0.0, 0.5);
        else
            item.value().normal_(0.0, 0.3);
    }
    return lm;
}

const std::vector<std::vector<int64_t>> kIds = {{1, 7, 7, 23, 49, 0, 12}, {2, 30, 5, 5, 18, 41, 3}};

at::Tensor idsTensor(const std::vector<std::vector<int64_t>> &ids)
{
    std::vector<int64_t> flat;
    for (const auto &s : ids)
        flat.insert(flat.end(), s.begin(), s.end());
    return at::tensor(flat, at::kLong).view({static_cast<int64_t>(ids.size()), -1});
}

QStringList sortedNames(torch::nn::Module &m)
{
    QStringList names;
    for (const auto &item : m.named_parameters())
        names << QString::fromStdString(item.key());
    names.sort();
    return names;
}

// A replacement FFN: zeros out, one parameter of its own so the name change shows.
class ZeroFfnImpl : public FeedForwardImpl {
public:
    explicit ZeroFfnImpl(int64_t d) { marker = register_parameter("marker", at::zeros({d})); }
    at::Tensor forward(const at::Tensor &h) override
    {
        ++calls;
        return at::zeros_like(h);
    }
    at::Tensor marker;
    int calls = 0;
};

// ---------------------------------------------------------------------------------------------
// Realistic config.json texts (shaped like the published checkpoints).

const char *kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
})";

const char *kQwen2_05B = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 131072,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 131072,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

const char *kMistral7B03 = R"({
  "architectures": ["MistralForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.42.0.dev0",
  "use_cache": true,
  "vocab_size": 32768
})";

// Llama-3.2-1B-shaped, written by transformers 5: "dtype", "rope_parameters", an eos list.
const char *kLlama32V5 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "dtype": "float32",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 8192,
  "layer_types": ["full_attention", "full_attention"],
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 2,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
  "tie_word_embeddings": true,
  "vocab_size": 128256
})";

const std::string kWhere = "/models/tiny/config.json";

// Parses `base`, sets (or with a null QJsonValue::Undefined removes) `key`, writes it back.
QString edited(const char *base, const QString &key, const QJsonValue &value)
{
    QJsonObject o = QJsonDocument::fromJson(QByteArray(base)).object();
    if (value.isUndefined())
        o.remove(key);
    else
        o[key] = value;
    return QString::fromUtf8(QJsonDocument(o).toJson());
}

QString edited(const char *base, const QJsonObject &changes)
{
    QJsonObject o = QJsonDocument::fromJson(QByteArray(base)).object();
    for (auto it = changes.begin(); it != changes.end(); ++it)
        o[it.key()] = it.value();
    return QString::fromUtf8(QJsonDocument(o).toJson());
}

} // namespace

class TestLlama : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { at::set_num_threads(1); }

    // ---- forward against the naive reference ----
    void forwardMatchesNaive_data()
    {
        QTest::addColumn<QString>("type");
        QTest::addColumn<qint64>("heads");
        QTest::addColumn<qint64>("kvHeads");
        QTest::addColumn<bool>("tied");
        QTest::addColumn<qint64>("layers");
        QTest::addColumn<bool>("fp32");
        QTest::addColumn<double>("tolerance"); // max |diff| / max |logit|
        // double: only summation order differs from the naive loops, 1e-10 leaves ~1e5 ulps of room
        QTest::newRow("llama MHA untied f64") << "llama" << 4ll << 4ll << false << 2ll << false << 1e-10;
        QTest::newRow("llama GQA untied f64") << "llama" << 4ll << 2ll << false << 3ll << false << 1e-10;
        QTest::newRow("llama GQA tied f64") << "llama" << 4ll << 2ll << true << 2ll << false << 1e-10;
        QTest::newRow("qwen2 biases untied f64") << "qwen2" << 4ll << 2ll << false << 2ll << false << 1e-10;
        QTest::newRow("qwen2 biases tied MQA f64") << "qwen2" << 4ll << 1ll << true << 3ll << false << 1e-10;
        QTest::newRow("mistral GQA untied f64") << "mistral" << 8ll << 2ll << false << 2ll << false << 1e-10;
        // fp32: float rounding (6e-8 per op) through ~10 ops per layer and sums of 32-64 terms
        QTest::newRow("llama GQA untied f32") << "llama" << 4ll << 2ll << false << 3ll << true << 1e-5;
        QTest::newRow("qwen2 biases tied f32") << "qwen2" << 4ll << 2ll << true << 2ll << true << 1e-5;
    }
    void forwardMatchesNaive()
    {
        QFETCH(QString, type);
        QFETCH(qint64, heads);
        QFETCH(qint64, kvHeads);
        QFETCH(bool, tied);
        QFETCH(qint64, layers);
        QFETCH(bool, fp32);
        QFETCH(double, tolerance);
        const ModelConfig c = tinyConfig(type.toStdString(), heads, kvHeads, tied, layers);
        CausalLM lm = randomModel(c, fp32 ? at::kFloat : at::kDouble, 42);
        if (c.attentionBias)
            QVERIFY(lm->named_parameters()["model.layers.0.self_attn.k_proj.bias"].abs().sum().item<double>() > 1.0);

        const at::Tensor logits = lm->forward(idsTensor(kIds));
        QCOMPARE(logits.sizes().vec(), (std::vector<int64_t>{2, 7, c.vocabSize}));
        QVERIFY(logits.scalar_type() == (fp32 ? at::kFloat : at::kDouble));
        const NaiveResult ref = naiveForward(c, paramsOf(*lm), kIds);
        const double err = relativeError(logits, ref.logits);
        qInfo("relative error %.3g", err);
        QVERIFY2(err <= tolerance, qPrintable(QString("relative error %1 > %2").arg(err).arg(tolerance)));
        // the logits are not degenerate: positions and sequences differ clearly
        QVERIFY(logits.abs().max().item<double>() > 0.5);
        QVERIFY((logits[0][2] - logits[0][1]).abs().max().item<double>() > 1e-2); // same token 7, other position
    }

    // RoPE scaling and an explicit head_dim against the same naive loops (in double, as above).
    // Tiny case: headDim 8, theta 1e4, so inv_freq = 1, 0.1, 0.01, 0.001 (wavelengths 2 pi times 1..1000);
    // llama3 with L = 64, low 1, high 4 keeps i = 0 (6.3 < 16), interpolates i = 1 (16 <= 62.8 <= 64)
    // and divides i = 2, 3 (> 64) by the factor 8.
    void forwardScaledRopeAndHeadDim_data()
    {
        QTest::addColumn<QString>("variant");
        QTest::newRow("llama3 rope") << "llama3";
        QTest::newRow("linear rope") << "linear";
        QTest::newRow("head_dim 12 != 32 / 4") << "head_dim";
        QTest::newRow("llama3 rope, head_dim 12, mistral") << "llama3 head_dim mistral";
    }
    void forwardScaledRopeAndHeadDim()
    {
        QFETCH(QString, variant);
        ModelConfig c = tinyConfig(variant.contains("mistral") ? "mistral" : "llama", 4, 2, true, 2);
        if (variant.contains("llama3")) {
            c.ropeType = "llama3";
            c.ropeFactor = 8.0;
            c.ropeLowFreqFactor = 1.0;
            c.ropeHighFreqFactor = 4.0;
            c.ropeOriginalMaxPositions = 64;
        } else if (variant == "linear") {
            c.ropeType = "linear";
            c.ropeFactor = 4.0;
        }
        if (variant.contains("head_dim"))
            c.headDim = 12;
        CausalLM lm = randomModel(c, at::kDouble, 44);
        QCOMPARE(lm->named_parameters()["model.layers.0.self_attn.q_proj.weight"].sizes().vec(),
                 (std::vector<int64_t>{4 * c.headDim, 32}));
        const at::Tensor logits = lm->forward(idsTensor(kIds));
        const double err = relativeError(logits, naiveForward(c, paramsOf(*lm), kIds).logits);
        qInfo("relative error %.3g", err);
        QVERIFY2(err <= 1e-10, qPrintable(QString("relative error %1 > 1e-10").arg(err)));
        if (c.ropeType != "default") {
            // the scaling matters: plain RoPE on the same weights gives clearly other logits
            ModelConfig plain = c;
            plain.ropeType = "default";
            plain.ropeFactor = 1.0;
            CausalLM other = randomModel(plain, at::kDouble, 44);
            const double diff = (other->forward(idsTensor(kIds)) - logits).abs().max().item<double>();
            QVERIFY2(diff > 1e-2, qPrintable(QString("plain RoPE differs by only %1").arg(diff)));
        }
    }

    void forwardHiddenThenHeadEqualsForward()
    {
        const ModelConfig c = tinyConfig("llama", 4, 2, true, 2);
        CausalLM lm = randomModel(c, at::kDouble, 3);
        const at::Tensor ids = idsTensor(kIds);
        const at::Tensor hidden = lm->forwardHidden(ids);
        QCOMPARE(hidden.sizes().vec(), (std::vector<int64_t>{2, 7, c.hiddenSize}));
        const double diff = (lm->logitsFromHidden(hidden) - lm->forward(ids)).abs().max().item<double>();
        QCOMPARE(diff, 0.0); // same operations on the same values
    }

    // ---- names ----
    void parameterNamesAreHuggingFace_data()
    {
        QTest::addColumn<QString>("type");
        QTest::addColumn<bool>("tied");
        QTest::newRow("llama untied") << "llama" << false;
        QTest::newRow("qwen2 tied") << "qwen2" << true;
        QTest::newRow("mistral tied") << "mistral" << true;
    }
    void parameterNamesAreHuggingFace()
    {
        QFETCH(QString, type);
        QFETCH(bool, tied);
        const ModelConfig c = tinyConfig(type.toStdString(), 4, 2, tied, 2);
        CausalLM lm(c);
        QStringList want{"model.embed_tokens.weight", "model.norm.weight"};
        if (!tied)
            want << "lm_head.weight";
        for (int l = 0; l < 2; ++l) {
            const QString p = QString("model.layers.%1.").arg(l);
            for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
                want << p + "self_attn." + proj + ".weight";
            if (type == "qwen2") {
                for (const char *proj : {"q_proj", "k_proj", "v_proj"})
                    want << p + "self_attn." + proj + ".bias";
            }
            for (const char *proj : {"gate_proj", "up_proj", "down_proj"})
                want << p + "mlp." + proj + ".weight";
            want << p + "input_layernorm.weight" << p + "post_attention_layernorm.weight";
        }
        want.sort();
        QCOMPARE(sortedNames(*lm), want);

        // shapes as HF stores them: (out, in); k/v carry only the kv heads
        auto params = lm->named_parameters();
        QCOMPARE(params["model.layers.1.self_attn.q_proj.weight"].sizes().vec(), (std::vector<int64_t>{32, 32}));
        QCOMPARE(params["model.layers.1.self_attn.k_proj.weight"].sizes().vec(), (std::vector<int64_t>{16, 32}));
        QCOMPARE(params["model.layers.1.self_attn.o_proj.weight"].sizes().vec(), (std::vector<int64_t>{32, 32}));
        QCOMPARE(params["model.layers.0.mlp.gate_proj.weight"].sizes().vec(), (std::vector<int64_t>{64, 32}));
        QCOMPARE(params["model.layers.0.mlp.down_proj.weight"].sizes().vec(), (std::vector<int64_t>{32, 64}));
        QCOMPARE(params["model.embed_tokens.weight"].sizes().vec(), (std::vector<int64_t>{50, 32}));
    }

    void initialisationIsHuggingFace()
    {
        ModelConfig c = tinyConfig("qwen2", 4, 2, false, 2);
        c.vocabSize = 2000; // 64,000 embedding samples: the std estimate is within 1%
        at::manual_seed(5);
        CausalLM lm(c);
        auto params = lm->named_parameters();
        const double embStd = params["model.embed_tokens.weight"].std().item<double>();
        const double headStd = params["lm_head.weight"].std().item<double>();
        QVERIFY2(std::abs(embStd - 0.02) < 0.02 * 0.03, qPrintable(QString::number(embStd))); // 3% margin
        QVERIFY2(std::abs(headStd - 0.02) < 0.02 * 0.03, qPrintable(QString::number(headStd)));
        QVERIFY(std::abs(params["model.embed_tokens.weight"].mean().item<double>()) < 1e-3);
        QCOMPARE(params["model.layers.1.post_attention_layernorm.weight"].min().item<double>(), 1.0);
        QCOMPARE(params["model.norm.weight"].max().item<double>(), 1.0);
        QCOMPARE(params["model.layers.0.self_attn.q_proj.bias"].abs().max().item<double>(), 0.0);
    }

    // ---- the FFN-input hook ----
    void hookSeesEachFfnInputOnce()
    {
        const ModelConfig c = tinyConfig("qwen2", 4, 2, false, 3);
        CausalLM lm = randomModel(c, at::kDouble, 9);
        std::vector<std::pair<int, at::Tensor>> seen;
        lm->setFfnInputHook([&](int layer, const at::Tensor &h) { seen.emplace_back(layer, h.clone()); });
        lm->forward(idsTensor(kIds));
        QCOMPARE(seen.size(), size_t(3));
        const NaiveResult ref = naiveForward(c, paramsOf(*lm), kIds);
        for (int l = 0; l < 3; ++l) {
            QCOMPARE(seen[static_cast<size_t>(l)].first, l);
            QCOMPARE(seen[static_cast<size_t>(l)].second.sizes().vec(), (std::vector<int64_t>{2, 7, 32}));
            const double err = relativeError(seen[static_cast<size_t>(l)].second, ref.ffnInputs[static_cast<size_t>(l)]);
            QVERIFY2(err < 1e-10, qPrintable(QString("layer %1: relative error %2").arg(l).arg(err))); // f64
        }
        // an empty function clears it
        lm->setFfnInputHook({});
        lm->forward(idsTensor(kIds));
        QCOMPARE(seen.size(), size_t(3));
    }

    // ---- replacing a layer's FFN ----
    void replaceMlpChangesOutputAndNames()
    {
        const ModelConfig c = tinyConfig("llama", 4, 2, false, 2);
        CausalLM lm = randomModel(c, at::kDouble, 11);
        const Params before = paramsOf(*lm);
        const at::Tensor ids = idsTensor(kIds);
        const at::Tensor original = lm->forward(ids);

        auto zero = std::make_shared<ZeroFfnImpl>(c.hiddenSize);
        lm->layer(1)->replaceMlp(zero);
        QCOMPARE(lm->layer(1)->mlp().get(), static_cast<FeedForwardImpl *>(zero.get()));

        const at::Tensor replaced = lm->forward(ids);
        QCOMPARE(zero->calls, 1);
        QVERIFY((replaced - original).abs().max().item<double>() > 1e-2);
        const NaiveResult ref = naiveForward(c, before, kIds, {1});
        const double err = relativeError(replaced, ref.logits);
        QVERIFY2(err < 1e-10, qPrintable(QString("relative error %1").arg(err))); // f64

        const QStringList names = sortedNames(*lm);
        QVERIFY(names.contains("model.layers.1.mlp.marker"));
        QVERIFY(!names.contains("model.layers.1.mlp.gate_proj.weight"));
        QVERIFY(!names.contains("model.layers.1.mlp.up_proj.weight"));
        QVERIFY(!names.contains("model.layers.1.mlp.down_proj.weight"));
        QVERIFY(names.contains("model.layers.0.mlp.gate_proj.weight"));
        QCOMPARE(names.size(), qsizetype(before.size()) - 3 + 1);

        QVERIFY_THROWS_EXCEPTION(ConfigError, lm->layer(1)->replaceMlp(nullptr));
        QVERIFY_THROWS_EXCEPTION(ConfigError, lm->layer(2));
    }

    // ---- config.json ----
    void parseValidConfigs_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("type");
        QTest::addColumn<qint64>("vocab");
        QTest::addColumn<qint64>("hidden");
        QTest::addColumn<qint64>("ffn");
        QTest::addColumn<qint64>("layers");
        QTest::addColumn<qint64>("heads");
        QTest::addColumn<qint64>("kvHeads");
        QTest::addColumn<qint64>("headDim");
        QTest::addColumn<double>("eps");
        QTest::addColumn<double>("theta");
        QTest::addColumn<qint64>("maxPos");
        QTest::addColumn<bool>("tied");
        QTest::addColumn<bool>("bias");
        QTest::addColumn<qint64>("bos");
        QTest::addColumn<qint64>("eos");
        QTest::addColumn<QString>("dtype");
        QTest::newRow("TinyLlama") << kTinyLlama << "llama" << 32000ll << 2048ll << 5632ll << 22ll << 32ll << 4ll
                                   << 64ll << 1e-5 << 1e4 << 2048ll << false << false << 1ll << 2ll << "bfloat16";
        QTest::newRow("Qwen2-0.5B") << kQwen2_05B << "qwen2" << 151936ll << 896ll << 4864ll << 24ll << 14ll << 2ll
                                    << 64ll << 1e-6 << 1e6 << 131072ll << true << true << 151643ll << 151643ll
                                    << "bfloat16";
        QTest::newRow("Mistral-7B-v0.3") << kMistral7B03 << "mistral" << 32768ll << 4096ll << 14336ll << 32ll << 32ll
                                         << 8ll << 128ll << 1e-5 << 1e6 << 32768ll << false << false << 1ll << 2ll
                                         << "bfloat16";
        QTest::newRow("Llama-3.2 transformers 5") << kLlama32V5 << "llama" << 128256ll << 2048ll << 8192ll << 2ll
                                                  << 32ll << 8ll << 64ll << 1e-5 << 5e5 << 131072ll << true << false
                                                  << 128000ll << 128001ll << "float32";
    }
    void parseValidConfigs()
    {
        QFETCH(QString, text);
        const ModelConfig c = parseModelConfig(text.toStdString(), kWhere);
        QTEST(QString::fromStdString(c.modelType), "type");
        QTEST(qint64(c.vocabSize), "vocab");
        QTEST(qint64(c.hiddenSize), "hidden");
        QTEST(qint64(c.intermediateSize), "ffn");
        QTEST(qint64(c.numLayers), "layers");
        QTEST(qint64(c.numHeads), "heads");
        QTEST(qint64(c.numKvHeads), "kvHeads");
        QTEST(qint64(c.headDim), "headDim");
        QTEST(c.rmsNormEps, "eps");
        QTEST(c.ropeTheta, "theta");
        QTEST(qint64(c.maxPositionEmbeddings), "maxPos");
        QTEST(c.tieWordEmbeddings, "tied");
        QTEST(c.attentionBias, "bias");
        QTEST(qint64(c.bosTokenId), "bos");
        QTEST(qint64(c.eosTokenId), "eos");
        QTEST(QString::fromStdString(c.torchDtype), "dtype");
        QCOMPARE(c.hiddenAct, std::string("silu"));
    }

    void rejectConfigs_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("formatError"); // else ConfigError
        QTest::addColumn<QString>("phrase");
        QTest::newRow("rope_scaling llama3 without low_freq_factor")
            << edited(kTinyLlama, "rope_scaling", QJsonObject{{"factor", 32.0}, {"high_freq_factor", 4.0}, {"rope_type", "llama3"}})
            << false << "rope_scaling of type 'llama3' needs 'low_freq_factor'";
        QTest::newRow("rope_scaling dynamic (old key)")
            << edited(kTinyLlama, "rope_scaling", QJsonObject{{"type", "dynamic"}, {"factor", 2.0}}) << false
            << "rope_scaling of type 'dynamic' is not implemented";
        QTest::newRow("rope_parameters yarn (transformers 5)")
            << edited(kLlama32V5, "rope_parameters", QJsonObject{{"rope_type", "yarn"}, {"rope_theta", 1e4}}) << false
            << "rope_parameters of type 'yarn' is not implemented";
        QTest::newRow("hidden_act gelu") << edited(kTinyLlama, "hidden_act", "gelu") << false
                                         << "hidden_act 'gelu' is not implemented";
        QTest::newRow("unknown model_type") << edited(kTinyLlama, "model_type", "gemma") << false
                                            << "model_type 'gemma' is not implemented";
        QTest::newRow("missing hidden_size") << edited(kTinyLlama, "hidden_size", QJsonValue::Undefined) << false
                                             << "missing required key 'hidden_size'";
        QTest::newRow("missing model_type") << edited(kQwen2_05B, "model_type", QJsonValue::Undefined) << false
                                            << "missing required key 'model_type'";
        QTest::newRow("mistral sliding window (v0.1)") << edited(kMistral7B03, "sliding_window", 4096) << false
                                                       << "sliding_window 4096 is smaller than max_position_embeddings 32768";
        QTest::newRow("qwen2 use_sliding_window")
            << edited(kQwen2_05B, QJsonObject{{"use_sliding_window", true}, {"sliding_window", 4096}, {"max_window_layers", 0}})
            << false << "sliding_window 4096 is smaller than max_position_embeddings 131072";
        QTest::newRow("layer_types sliding")
            << edited(kLlama32V5, QJsonObject{{"layer_types", QJsonArray{"full_attention", "sliding_attention"}},
                                              {"sliding_window", 4096}})
            << false << "layer_types[1] is \"sliding_attention\"";
        QTest::newRow("llama attention_bias") << edited(kTinyLlama, "attention_bias", true) << false
                                              << "attention_bias true is not implemented for model_type 'llama'";
        QTest::newRow("mlp_bias") << edited(kTinyLlama, "mlp_bias", true) << false << "mlp_bias true is not implemented";
        QTest::newRow("head_dim odd") << edited(kTinyLlama, "head_dim", 63) << false << "head_dim 63 must be even";
        QTest::newRow("hidden not divisible by heads") << edited(kTinyLlama, "hidden_size", 2050) << false
                                                       << "hidden_size 2050 is not divisible by num_attention_heads 32";
        QTest::newRow("heads not divisible by kv heads") << edited(kTinyLlama, "num_key_value_heads", 5) << false
                                                         << "num_attention_heads 32 is not divisible by num_key_value_heads 5";
        QTest::newRow("vocab_size a string") << edited(kTinyLlama, "vocab_size", "32000") << false
                                             << "key 'vocab_size' must be an integer";
        QTest::newRow("zero layers") << edited(kTinyLlama, "num_hidden_layers", 0) << false
                                     << "key 'num_hidden_layers' must be positive";
        QTest::newRow("truncated JSON") << QString(kTinyLlama).left(100) << true << "not valid JSON at byte";
        QTest::newRow("not an object") << "[1, 2]" << true << "must hold a JSON object";
    }
    void rejectConfigs()
    {
        QFETCH(QString, text);
        QFETCH(bool, formatError);
        QFETCH(QString, phrase);
        QString message;
        bool gotFormat = false, gotConfig = false;
        try {
            parseModelConfig(text.toStdString(), kWhere);
        } catch (const FormatError &e) {
            gotFormat = true;
            message = e.what();
        } catch (const ConfigError &e) {
            gotConfig = true;
            message = e.what();
        }
        QVERIFY2(gotFormat || gotConfig, "accepted");
        QCOMPARE(gotFormat, formatError);
        QVERIFY2(message.startsWith(formatError ? "format: " : "config: "), qPrintable(message));
        QVERIFY2(message.contains(QString::fromStdString(kWhere)), qPrintable(message)); // says where
        QVERIFY2(message.contains(phrase), qPrintable(message));
    }

    void readFromFileAndFolder()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string folder = dir.path().toStdString();
        const std::string file = folder + "/config.json";
        std::ofstream(file) << kQwen2_05B;
        const ModelConfig want = parseModelConfig(kQwen2_05B, "x");
        QVERIFY(readModelConfig(file) == want);
        QVERIFY(readModelConfig(folder) == want);

        std::ofstream(file) << edited(kQwen2_05B, "hidden_act", "gelu").toStdString();
        try {
            readModelConfig(folder);
            QFAIL("accepted gelu");
        } catch (const ConfigError &e) {
            QVERIFY2(QString(e.what()).contains(QString::fromStdString(file)), e.what());
        }
        try {
            readModelConfig(folder + "/missing.json");
            QFAIL("read a missing file");
        } catch (const IoError &e) {
            QVERIFY2(QString(e.what()).contains("missing.json"), e.what());
        }
    }

    void jsonRoundTrip_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("architecture");
        QTest::newRow("TinyLlama") << kTinyLlama << "LlamaForCausalLM";
        QTest::newRow("Qwen2-0.5B") << kQwen2_05B << "Qwen2ForCausalLM";
        QTest::newRow("Mistral-7B-v0.3") << kMistral7B03 << "MistralForCausalLM";
        QTest::newRow("Llama-3.2 transformers 5") << kLlama32V5 << "LlamaForCausalLM";
    }
    void jsonRoundTrip()
    {
        QFETCH(QString, text);
        QFETCH(QString, architecture);
        const ModelConfig c = parseModelConfig(text.toStdString(), kWhere);
        const std::string json = modelConfigToJson(c);
        QVERIFY(parseModelConfig(json, "round trip") == c);

        // read back with another JSON parser: the keys transformers needs
        QJsonParseError error;
        const QJsonObject o = QJsonDocument::fromJson(QByteArray::fromStdString(json), &error).object();
        QCOMPARE(error.error, QJsonParseError::NoError);
        QCOMPARE(o["architectures"].toArray().at(0).toString(), architecture);
        QCOMPARE(o["model_type"].toString(), QString::fromStdString(c.modelType));
        for (const char *key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                                "rms_norm_eps", "rope_theta", "initializer_range"})
            QVERIFY2(o[key].isDouble(), key);
        QCOMPARE(o["hidden_act"].toString(), QString("silu"));
        QVERIFY(o.contains("rope_scaling") && o["rope_scaling"].isNull());
        QCOMPARE(o["tie_word_embeddings"].toBool(), c.tieWordEmbeddings);
        QCOMPARE(o["num_key_value_heads"].toInteger(), qint64(c.numKvHeads));
        QCOMPARE(o["rope_theta"].toDouble(), c.ropeTheta);
        QCOMPARE(o["torch_dtype"].toString(), QString::fromStdString(c.torchDtype));
        if (c.modelType == "qwen2")
            QCOMPARE(o["use_sliding_window"].toBool(true), false);
    }

    void tinyConfigRoundTrip()
    {
        ModelConfig c = tinyConfig("qwen2", 4, 1, true, 3);
        c.bosTokenId = -1; // null in JSON
        QVERIFY(parseModelConfig(modelConfigToJson(c), "round trip") == c);
        c.modelType = "mistral";
        c.attentionBias = false;
        QVERIFY(parseModelConfig(modelConfigToJson(c), "round trip") == c);
        c.hiddenAct = "relu";
        QVERIFY_THROWS_EXCEPTION(ConfigError, modelConfigToJson(c));
    }

    // ---- model folders (core/model_io) ----
    // A tied model loads from a folder without lm_head.weight (what saveModelFolder and transformers 5
    // write) and from one that stores it equal to the embedding; a different one is refused.
    void tiedModelLoadsWithAndWithoutLmHead()
    {
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString() + "/tied";
        ModelConfig c = tinyConfig("llama", 4, 2, true, 2);
        c.ropeType = "llama3";
        c.ropeFactor = 8.0;
        c.ropeOriginalMaxPositions = 64;
        CausalLM lm = randomModel(c, at::kFloat, 51);
        lm->eval();
        const at::NoGradGuard noGrad;
        const at::Tensor want = lm->forward(idsTensor(kIds));
        saveModelFolder(*lm, dir, "");
        QVERIFY(!SafetensorsFile(dir / "model.safetensors").contains("lm_head.weight"));
        CausalLM back = loadModelFolder(dir);
        QVERIFY(back->config() == c);
        QCOMPARE((back->forward(idsTensor(kIds)) - want).abs().max().item<double>(), 0.0);

        auto tensors = loadCheckpointFolder(dir);
        tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight").clone();
        writeSafetensors(dir / "model.safetensors", {tensors.begin(), tensors.end()});
        back = loadModelFolder(dir);
        QCOMPARE((back->forward(idsTensor(kIds)) - want).abs().max().item<double>(), 0.0);

        tensors["lm_head.weight"][3][5] += 1.0f;
        writeSafetensors(dir / "model.safetensors", {tensors.begin(), tensors.end()});
        try {
            loadModelFolder(dir);
            QFAIL("accepted an lm_head.weight that differs from the tied embedding");
        } catch (const FormatError &e) {
            const QString m = e.what();
            QVERIFY2(m.contains("model.safetensors: tensor 'lm_head.weight'") && m.contains("tie_word_embeddings true"),
                     e.what());
        }

        // untied, the same file lacking lm_head.weight is missing a tensor
        tensors.erase("lm_head.weight");
        writeSafetensors(dir / "model.safetensors", {tensors.begin(), tensors.end()});
        c.tieWordEmbeddings = false;
        std::ofstream(dir / "config.json") << modelConfigToJson(c);
        try {
            loadModelFolder(dir);
            QFAIL("loaded an untied model without lm_head.weight");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("missing") && QString(e.what()).contains("lm_head.weight"), e.what());
        }

        // A config.json of a model far larger than its weights is refused before that model is built.
        c.numLayers = 40; // 0.5 billion parameters (2 GB): within the memory check, far beyond the file
        c.hiddenSize = 1024;
        c.intermediateSize = 4096;
        std::ofstream(dir / "config.json") << modelConfigToJson(c);
        try {
            loadModelFolder(dir);
            QFAIL("built a model its weights cannot fill");
        } catch (const FormatError &e) {
            QVERIFY2(QString(e.what()).contains("config.json does not belong to these weights"), e.what());
        }
    }

    // BF16 and F16 files load into float32 master weights holding exactly the stored values, so the
    // logits equal those of the fp32 model with its weights rounded to that dtype (same fp32
    // arithmetic on the same values: bit-equal), and differ from the unrounded model's by rounding
    // only. With u the relative rounding of one weight (2^-9 for bf16's 8-bit significand, 2^-12 for
    // f16's 11 bits), this random model (std 0.3, two layers) moves its logits by about 8 u of their
    // range (measured 7.5 u bf16, 8.7 u f16): 16 u leaves 2x. bf16's error must be about 2^3 times
    // f16's (more than 4x), which a file not rounded to its dtype would not give.
    void halfPrecisionCheckpointsLoad()
    {
        QTemporaryDir tmp;
        const ModelConfig c = tinyConfig("qwen2", 4, 2, true, 2);
        CausalLM lm = randomModel(c, at::kFloat, 52);
        lm->eval();
        const at::NoGradGuard noGrad;
        const at::Tensor ids = idsTensor(kIds);
        const at::Tensor exact = lm->forward(ids);
        const double range = exact.abs().max().item<double>();
        std::map<std::string, double> relErr;
        for (const auto &[dtype, type, tag, bound] : {std::tuple{"bfloat16", at::kBFloat16, "BF16", 16.0 / 512},
                                                      std::tuple{"float16", at::kHalf, "F16", 16.0 / 4096}}) {
            const std::filesystem::path dir = tmp.path().toStdString() + "/" + dtype;
            saveModelFolder(*lm, dir, "", "{}", dtype);
            QCOMPARE(SafetensorsFile(dir / "model.safetensors").info("model.norm.weight").dtype, std::string(tag));
            CausalLM back = loadModelFolder(dir);
            CausalLM rounded = randomModel(c, at::kFloat, 52);
            rounded->eval();
            for (auto &p : rounded->parameters())
                p.copy_(p.to(type).to(at::kFloat));
            for (const auto &item : back->named_parameters()) {
                QVERIFY2(item.value().scalar_type() == at::kFloat, item.key().c_str());
                QVERIFY2(item.value().equal(rounded->named_parameters()[item.key()]), item.key().c_str());
            }
            const at::Tensor got = back->forward(ids);
            QCOMPARE((got - rounded->forward(ids)).abs().max().item<double>(), 0.0);
            relErr[dtype] = (got - exact).abs().max().item<double>() / range;
            qInfo("%s: max |logits - fp32 logits| / max |logit| = %.3g (bound %g)", dtype, relErr[dtype], bound);
            QVERIFY2(relErr[dtype] > 0.0 && relErr[dtype] <= bound, dtype);
        }
        QVERIFY2(relErr["bfloat16"] > 4.0 * relErr["float16"], "bf16 error is not ~8x the f16 error");
    }

    // Every stored tensor is checked against the config before anything is copied; the message
    // names the file and the tensor. Integer weights are refused, not converted.
    void checkpointTensorsAreChecked_data()
    {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<QString>("change"); // "int32" | "shape"
        QTest::addColumn<QString>("phrase");
        QTest::newRow("I32 norm") << "model.norm.weight" << "int32"
                                  << "tensor 'model.norm.weight' is Int, not floating point";
        QTest::newRow("I32 embedding") << "model.embed_tokens.weight" << "int32"
                                       << "tensor 'model.embed_tokens.weight' is Int, not floating point";
        QTest::newRow("q_proj one row short") << "model.layers.1.self_attn.q_proj.weight" << "shape"
                                              << "tensor 'model.layers.1.self_attn.q_proj.weight': shape [31, 32] "
                                                 "does not match the [32, 32] that config.json implies";
    }
    void checkpointTensorsAreChecked()
    {
        QFETCH(QString, tensor);
        QFETCH(QString, change);
        QFETCH(QString, phrase);
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString() + "/m";
        CausalLM lm = randomModel(tinyConfig("llama", 4, 2, false, 2), at::kFloat, 53);
        saveModelFolder(*lm, dir, "");
        auto tensors = loadCheckpointFolder(dir);
        at::Tensor &t = tensors.at(tensor.toStdString());
        t = change == "int32" ? t.mul(100).to(at::kInt) : t.narrow(0, 0, t.size(0) - 1).contiguous();
        writeSafetensors(dir / "model.safetensors", {tensors.begin(), tensors.end()});
        try {
            loadModelFolder(dir);
            QFAIL("loaded a broken checkpoint");
        } catch (const FormatError &e) {
            const QString m = e.what();
            QVERIFY2(m.contains(QString::fromStdString((dir / "model.safetensors").string()) + ": " + phrase),
                     e.what());
        }
    }

    // ---- generation ----
    void greedyIsDeterministicAndArgmax()
    {
        const ModelConfig c = tinyConfig("llama", 4, 2, false, 2);
        CausalLM lm = randomModel(c, at::kFloat, 21);
        const std::vector<int64_t> prompt{1, 7, 23};
        const std::vector<int64_t> a = generate(lm, prompt, 12, 0.0, 0, 1);
        const std::vector<int64_t> b = generate(lm, prompt, 12, 0.0, 0, 99); // seed unused when greedy
        QCOMPARE(a.size(), size_t(12));
        QCOMPARE(a, b);
        std::vector<int64_t> context = prompt;
        const at::NoGradGuard noGrad;
        for (int64_t token : a) {
            QVERIFY(token >= 0 && token < c.vocabSize);
            const at::Tensor logits = lm->forward(idsTensor({context}));
            QCOMPARE(token, logits[0][static_cast<int64_t>(context.size()) - 1].argmax().item<int64_t>());
            context.push_back(token);
        }
        QVERIFY(lm->is_training()); // the flag is restored
    }

    void samplingFollowsSeed()
    {
        const ModelConfig c = tinyConfig("qwen2", 4, 2, true, 2);
        CausalLM lm = randomModel(c, at::kFloat, 22);
        const std::vector<int64_t> prompt{3, 4};
        const auto s1 = generate(lm, prompt, 20, 1.0, 0, 7);
        QCOMPARE(s1.size(), size_t(20));
        QCOMPARE(generate(lm, prompt, 20, 1.0, 0, 7), s1);
        QVERIFY(generate(lm, prompt, 20, 1.0, 0, 8) != s1); // 20 draws over 50 tokens: a clash is ~impossible
        QCOMPARE(generate(lm, prompt, 20, 1.5, 1, 7), generate(lm, prompt, 20, 0.0, 0, 0)); // top-1 = greedy
        // top-5: every token is among the 5 most likely at its step
        const auto s5 = generate(lm, prompt, 10, 1.0, 5, 3);
        std::vector<int64_t> context = prompt;
        const at::NoGradGuard noGrad;
        for (int64_t token : s5) {
            const at::Tensor logits = lm->forward(idsTensor({context}))[0][static_cast<int64_t>(context.size()) - 1];
            const at::Tensor top = std::get<1>(logits.topk(5));
            QVERIFY((top == token).any().item<bool>());
            context.push_back(token);
        }
    }

    void generateStopsAndCrops()
    {
        const ModelConfig c = tinyConfig("llama", 4, 4, false, 2);
        CausalLM lm = randomModel(c, at::kFloat, 23);
        const std::vector<int64_t> prompt{5, 6, 7};
        const auto full = generate(lm, prompt, 10, 0.0);
        const int64_t stop = full[4];
        const auto stopped = generate(lm, prompt, 10, 0.0, 0, 0, stop);
        const auto firstStop = std::find(full.begin(), full.end(), stop) - full.begin();
        QCOMPARE(stopped, std::vector<int64_t>(full.begin(), full.begin() + firstStop + 1));

        // a prompt longer than max_position_embeddings (64) runs on its last 64 tokens
        std::vector<int64_t> longPrompt;
        for (int i = 0; i < 70; ++i)
            longPrompt.push_back((i * 7) % c.vocabSize);
        const auto fromLong = generate(lm, longPrompt, 1, 0.0);
        const auto fromTail = generate(lm, std::vector<int64_t>(longPrompt.end() - 64, longPrompt.end()), 1, 0.0);
        QCOMPARE(fromLong, fromTail);

        QVERIFY_THROWS_EXCEPTION(ConfigError, generate(lm, {}, 3));
        QVERIFY_THROWS_EXCEPTION(ConfigError, generate(lm, {50}, 3));
        QVERIFY_THROWS_EXCEPTION(ConfigError, generate(lm, {1}, 3, -1.0));
        QCOMPARE(generate(lm, prompt, 0).size(), size_t(0));
        // A request of 10^12 tokens is refused up front (it used to reserve them); a stop request
        // ends a long generation.
        QVERIFY_THROWS_EXCEPTION(ConfigError, generate(lm, prompt, int64_t(1000000000000)));
        std::stop_source stopper;
        stopper.request_stop();
        QVERIFY_THROWS_EXCEPTION(Cancelled, generate(lm, prompt, kMaxNewTokens, 0.0, 0, 0, -1, stopper.get_token()));
    }
};

QTEST_APPLESS_MAIN(TestLlama)
#include "tst_llama.moc"
