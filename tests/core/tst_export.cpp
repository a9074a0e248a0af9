// Checkpoint export (polymoe/export.h) on tiny synthetic models: the polymoe folder's files, config
// keys and tensor names, a bit-exact reload with loadModelFolder, the Mixtral folder and its
// applicability rules, dtypes, and the refusal to overwrite. transformers itself: tests/interop.
#include "model_io.h"
#include "module_state.h"
#include "moe_block.h"
#include "polymoe/error.h"
#include "polymoe/export.h"
#include "polymoe/project_store.h"
#include "project_models.h"
#include "safetensors.h"
#include "sqlite_db.h"
#include "upcycle.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>

using namespace polymoe;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(std::string)
Q_DECLARE_METATYPE(std::vector<int>)

namespace {

ModelConfig tinyConfig(const std::string &type)
{
    ModelConfig c;
    c.modelType = type;
    c.attentionBias = type == "qwen2";
    c.vocabSize = 48;
    c.hiddenSize = 16;
    c.intermediateSize = 24;
    c.numLayers = 2;
    c.numHeads = 2;
    c.numKvHeads = 1;
    c.headDim = 8;
    c.maxPositionEmbeddings = 32;
    c.bosTokenId = 1;
    c.eosTokenId = 2;
    return c;
}

// A model as after training: upcycled (when experts is not empty), every weight moved off its copy.
CausalLM tinyModel(const std::string &type, const std::vector<int> &experts, const std::vector<int> &classifierLayers,
                   uint64_t seed)
{
    torch::manual_seed(seed);
    CausalLM m(tinyConfig(type));
    if (!experts.empty())
        upcycleModel(m, experts, 2, seed);
    for (int l : classifierLayers)
        std::dynamic_pointer_cast<MoeBlockImpl>(m->layer(l)->mlp())->setClassifier(true);
    const at::NoGradGuard ng;
    for (auto &p : m->parameters())
        p.add_(at::randn_like(p) * 0.05);
    m->eval();
    return m;
}

nlohmann::json readJson(const fs::path &p)
{
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

std::map<std::string, at::Tensor> paramsOf(const CausalLM &m)
{
    std::map<std::string, at::Tensor> out;
    for (const auto &[name, t] : stateOf(*m))
        out[name] = t.detach().clone();
    return out;
}

at::Tensor someIds()
{
    return at::randint(3, 48, {2, 12}, at::TensorOptions().dtype(at::kLong));
}

bool hasTempSibling(const fs::path &parent)
{
    for (const auto &e : fs::directory_iterator(parent))
        if (e.path().filename().string().find(".export-") != std::string::npos ||
            e.path().filename().string().find(".old-") != std::string::npos)
            return true;
    return false;
}

} // namespace

class TestExport : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::optional<ProjectStore> m_store;
    CausalLM m_uniform{nullptr}, m_layered{nullptr};

    fs::path root() const { return fs::path(m_dir.path().toStdString()); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_store.emplace(ProjectStore::create(root() / "t.polymoe"));
        // A tokenizer row without a plugin: its bytes become tokenizer.model.
        m_store->db().exec("INSERT INTO tokenizers(backend, model_type, vocab_size, settings, model, sha256, source, "
                           "is_current) VALUES ('sentencepiece', 'unigram', 48, '{}', x'0102', '00', 'synthetic', 1)");
        CausalLM base = tinyModel("llama", {}, {}, 1);
        saveProjectModel(*m_store, *base, "base", "base", std::nullopt, std::nullopt, "{}");
        m_uniform = tinyModel("llama", {3, 3}, {}, 2);
        saveProjectModel(*m_store, *m_uniform, "uniform", "expanded", std::nullopt, std::nullopt, "{\"stage\": 1}");
        m_layered = tinyModel("llama", {3, 2}, {1}, 3);
        saveProjectModel(*m_store, *m_layered, "layered", "expanded", std::nullopt, std::nullopt, "{\"stage\": 2}");
    }

    void polymoeFolder()
    {
        // Default model: the newest expanded one ("layered"); not Mixtral-shaped, so polymoe only.
        const fs::path out = root() / "out-layered";
        const ExportOutcome o = exportModel(*m_store, {.outDir = out});
        QCOMPARE(o.modelName, std::string("layered"));
        QCOMPARE(o.folders.size(), size_t(1));
        QVERIFY(!o.mixtralReason.empty());
        const fs::path dir = out / "polymoe";
        QCOMPARE(o.folders[0].dir, dir);
        for (const char *f : {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json",
                              "generation_config.json", "configuration_polymoe.py", "modeling_polymoe.py",
                              "polymoe.json"})
            QVERIFY2(fs::is_regular_file(dir / f), f);
        QVERIFY(!fs::exists(out / "mixtral"));
        QVERIFY(!hasTempSibling(root()));

        const auto cj = readJson(dir / "config.json");
        QCOMPARE(cj["model_type"].get<std::string>(), std::string("polymoe"));
        QCOMPARE(cj["base_model_type"].get<std::string>(), std::string("llama"));
        QCOMPARE(cj["architectures"][0].get<std::string>(), std::string("PolyMoEForCausalLM"));
        QCOMPARE(cj["auto_map"]["AutoConfig"].get<std::string>(), std::string("configuration_polymoe.PolyMoEConfig"));
        QCOMPARE(cj["auto_map"]["AutoModelForCausalLM"].get<std::string>(),
                 std::string("modeling_polymoe.PolyMoEForCausalLM"));
        QCOMPARE(cj["hidden_size"].get<int>(), 16);
        QCOMPARE(cj["num_key_value_heads"].get<int>(), 1);
        QCOMPARE(cj["experts_per_layer"].get<std::vector<int>>(), (std::vector<int>{3, 2}));
        QCOMPARE(cj["num_experts_per_tok"].get<int>(), 2);
        QCOMPARE(cj["classifier_layers"].get<std::vector<int>>(), (std::vector<int>{1}));
        QCOMPARE(cj["polymoe"]["experts_per_layer"].get<std::vector<int>>(), (std::vector<int>{3, 2}));
        const auto prov = readJson(dir / "polymoe.json");
        QCOMPARE(prov["source"]["stage"].get<int>(), 2);

        // Tensor names are PolyMoE's, one to one.
        const auto tensors = loadCheckpointFolder(dir);
        const auto params = paramsOf(m_layered);
        QCOMPARE(tensors.size(), params.size());
        for (const auto &[name, t] : params)
            QVERIFY2(tensors.count(name), name.c_str());
        QVERIFY(tensors.count("model.layers.1.mlp.classifier.weight"));
        QVERIFY(tensors.count("model.layers.0.mlp.experts.2.up_proj.weight"));

        // Bit-exact reload, forward included.
        CausalLM back = loadModelFolder(dir);
        const auto b = paramsOf(back);
        for (const auto &[name, t] : params)
            QVERIFY2(at::equal(t, b.at(name)), name.c_str());
        const at::NoGradGuard ng;
        const at::Tensor ids = someIds();
        QVERIFY(at::equal(m_layered->forward(ids), back->forward(ids)));
        // An export of an export is the same model again.
        const ExportOutcome again = exportModelFolder(dir, {.outDir = root() / "again", .format = "polymoe"});
        QCOMPARE(again.experts, (std::vector<int>{3, 2}));
        QVERIFY(at::equal(loadModelFolder(root() / "again")->forward(ids), back->forward(ids)));
    }

    void mixtralFolder()
    {
        const fs::path out = root() / "out-uniform";
        const ExportOutcome o = exportModel(*m_store, {.model = "uniform", .outDir = out});
        QVERIFY2(o.mixtralReason.empty(), o.mixtralReason.c_str());
        QCOMPARE(o.folders.size(), size_t(2));
        QCOMPARE(o.folders[1].format, std::string("mixtral"));
        const fs::path dir = out / "mixtral";
        QCOMPARE(o.folders[1].dir, dir);
        QVERIFY(!fs::exists(dir / "modeling_polymoe.py"));
        QVERIFY(fs::is_regular_file(dir / "tokenizer.model"));
        const auto cj = readJson(dir / "config.json");
        QCOMPARE(cj["model_type"].get<std::string>(), std::string("mixtral"));
        QCOMPARE(cj["architectures"][0].get<std::string>(), std::string("MixtralForCausalLM"));
        QCOMPARE(cj["num_local_experts"].get<int>(), 3);
        QCOMPARE(cj["num_experts_per_tok"].get<int>(), 2);
        QCOMPARE(cj["router_jitter_noise"].get<double>(), 0.0);
        QCOMPARE(cj["output_router_logits"].get<bool>(), false);
        QVERIFY(cj["sliding_window"].is_null());

        const auto tensors = loadCheckpointFolder(dir);
        const auto params = paramsOf(m_uniform);
        QCOMPARE(tensors.size(), params.size());
        const std::pair<const char *, const char *> renamed[] = {
            {"model.layers.1.block_sparse_moe.gate.weight", "model.layers.1.mlp.gate.weight"},
            {"model.layers.0.block_sparse_moe.experts.2.w1.weight", "model.layers.0.mlp.experts.2.gate_proj.weight"},
            {"model.layers.0.block_sparse_moe.experts.2.w2.weight", "model.layers.0.mlp.experts.2.down_proj.weight"},
            {"model.layers.0.block_sparse_moe.experts.2.w3.weight", "model.layers.0.mlp.experts.2.up_proj.weight"},
            {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"},
            {"lm_head.weight", "lm_head.weight"}};
        for (const auto &[mix, ours] : renamed) {
            QVERIFY2(tensors.count(mix), mix);
            QVERIFY2(at::equal(tensors.at(mix), params.at(ours)), mix);
        }
        for (const auto &[name, t] : tensors)
            QVERIFY2(name.find(".mlp.") == std::string::npos, name.c_str());
        // --format mixtral writes the Mixtral folder at DIR itself.
        const ExportOutcome only = exportModel(*m_store, {.model = "uniform", .outDir = root() / "mix-only",
                                                          .format = "mixtral"});
        QCOMPARE(only.folders.size(), size_t(1));
        QVERIFY(fs::is_regular_file(root() / "mix-only" / "config.json"));
        QCOMPARE(readJson(root() / "mix-only" / "config.json")["model_type"].get<std::string>(), std::string("mixtral"));
    }

    void mixtralRules_data()
    {
        QTest::addColumn<std::string>("type");
        QTest::addColumn<std::vector<int>>("experts");
        QTest::addColumn<std::vector<int>>("classifiers");
        QTest::addColumn<bool>("applicable");
        QTest::newRow("llama uniform") << std::string("llama") << std::vector<int>{4, 4, 4} << std::vector<int>{} << true;
        QTest::newRow("mistral uniform 2") << std::string("mistral") << std::vector<int>{2, 2} << std::vector<int>{} << true;
        QTest::newRow("qwen2 biases") << std::string("qwen2") << std::vector<int>{3, 3} << std::vector<int>{} << false;
        QTest::newRow("layered") << std::string("llama") << std::vector<int>{3, 2} << std::vector<int>{} << false;
        QTest::newRow("one dense layer") << std::string("llama") << std::vector<int>{3, 1} << std::vector<int>{} << false;
        QTest::newRow("dense model") << std::string("llama") << std::vector<int>{} << std::vector<int>{} << false;
        QTest::newRow("all single") << std::string("llama") << std::vector<int>{1, 1} << std::vector<int>{} << false;
        QTest::newRow("classifier") << std::string("llama") << std::vector<int>{3, 3} << std::vector<int>{1} << false;
    }

    void mixtralRules()
    {
        QFETCH(std::string, type);
        QFETCH(std::vector<int>, experts);
        QFETCH(std::vector<int>, classifiers);
        QFETCH(bool, applicable);
        const std::string reason = mixtralNotApplicableReason(type, experts, classifiers);
        QCOMPARE(reason.empty(), applicable);
    }

    void mixtralRefusedWhenNotApplicable()
    {
        const fs::path out = root() / "refused-mixtral";
        try {
            exportModel(*m_store, {.model = "layered", .outDir = out, .format = "mixtral"});
            QFAIL("expected a ConfigError");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("not uniform") != std::string::npos, e.what());
        }
        QVERIFY(!fs::exists(out));
        QVERIFY(!hasTempSibling(root()));
    }

    void refusesToOverwrite()
    {
        const fs::path out = root() / "busy";
        fs::create_directories(out);
        { std::ofstream(out / "keep.txt") << "mine"; }
        try {
            exportModel(*m_store, {.model = "base", .outDir = out});
            QFAIL("expected an IoError");
        } catch (const IoError &e) {
            const std::string msg = e.what();
            QVERIFY2(msg.find(out.string()) != std::string::npos && msg.find("--force") != std::string::npos, e.what());
        }
        QVERIFY(fs::is_regular_file(out / "keep.txt"));
        QVERIFY(!hasTempSibling(root()));
        // An empty folder is fine; --force replaces a full one.
        const fs::path empty = root() / "empty";
        fs::create_directories(empty);
        exportModel(*m_store, {.model = "base", .outDir = empty, .format = "polymoe"});
        QVERIFY(fs::is_regular_file(empty / "config.json"));
        exportModel(*m_store, {.model = "base", .outDir = out, .format = "polymoe", .force = true});
        QVERIFY(!fs::exists(out / "keep.txt"));
        QVERIFY(fs::is_regular_file(out / "model.safetensors"));
        QVERIFY(!hasTempSibling(root()));

        // --force never replaces a project: not the folder that holds one (here the test's root, with
        // t.polymoe and its data folder), nor one holding a project deeper down, nor anything inside a
        // project's data folder. Nothing there changes.
        const fs::path holder = root() / "holder" / "deep";
        fs::create_directories(holder);
        { std::ofstream(holder / "other.polymoe") << "a project"; }
        const fs::path data = m_store->path().string() + ".d";
        fs::create_directories(data / "scratch");
        { std::ofstream(data / "scratch" / "x") << "x"; }
        for (const fs::path &target : {root(), root() / "holder", data / "scratch"}) {
            try {
                exportModel(*m_store, {.model = "base", .outDir = target, .format = "polymoe", .force = true});
                QFAIL(qPrintable(QString::fromStdString(target.string()) + " replaced"));
            } catch (const IoError &e) {
                QVERIFY2(std::string(e.what()).find("--force never replaces") != std::string::npos, e.what());
            }
        }
        QVERIFY(fs::is_regular_file(m_store->path()));
        QVERIFY(fs::is_regular_file(holder / "other.polymoe"));
        QVERIFY(fs::is_regular_file(data / "scratch" / "x"));
        QVERIFY(!hasTempSibling(root()));
    }

    void denseAndQwen2RoundTrip()
    {
        // A dense export loads back too; a qwen2 base keeps its q/k/v biases.
        for (const char *type : {"llama", "qwen2"}) {
            CausalLM m = tinyModel(type, {}, {}, 7);
            const fs::path src = root() / (std::string("src-") + type);
            saveModelFolder(*m, src, "");
            const fs::path out = root() / (std::string("dense-") + type);
            const ExportOutcome o = exportModelFolder(src, {.outDir = out});
            QVERIFY(o.experts.empty());
            QVERIFY(!o.mixtralReason.empty());
            const auto cj = readJson(out / "polymoe" / "config.json");
            QCOMPARE(cj["experts_per_layer"].get<std::vector<int>>(), (std::vector<int>{1, 1}));
            QCOMPARE(cj["attention_bias"].get<bool>(), std::string(type) == "qwen2");
            QVERIFY(!cj.contains("polymoe"));
            CausalLM back = loadModelFolder(out / "polymoe");
            QCOMPARE(back->config().modelType, std::string(type));
            const at::NoGradGuard ng;
            const at::Tensor ids = someIds();
            QVERIFY(at::equal(m->forward(ids), back->forward(ids)));
        }
    }

    void dtypes()
    {
        const fs::path out = root() / "bf16";
        exportModel(*m_store, {.model = "uniform", .outDir = out, .dtype = "bfloat16"});
        for (const char *f : {"polymoe", "mixtral"}) {
            const auto tensors = loadCheckpointFolder(out / f);
            for (const auto &[name, t] : tensors)
                QVERIFY2(t.scalar_type() == at::kBFloat16, name.c_str());
            QCOMPARE(readJson(out / f / "config.json")["torch_dtype"].get<std::string>(), std::string("bfloat16"));
        }
        CausalLM back = loadModelFolder(out / "polymoe");
        const auto params = paramsOf(m_uniform);
        for (const auto &[name, t] : paramsOf(back))
            QVERIFY2(at::equal(t.to(at::kFloat), params.at(name).to(at::kBFloat16).to(at::kFloat)), name.c_str());
        try {
            exportModel(*m_store, {.model = "uniform", .outDir = root() / "f8", .dtype = "float8"});
            QFAIL("expected a ConfigError");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("float8") != std::string::npos, e.what());
        }
        try {
            exportModel(*m_store, {.model = "nope", .outDir = root() / "nope"});
            QFAIL("expected a ConfigError");
        } catch (const ConfigError &e) {
            QVERIFY2(std::string(e.what()).find("'nope'") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestExport)
#include "tst_export.moc"
