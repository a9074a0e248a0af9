// polymoe tokenizer train|import, polymoe tokenize
#include "cli.h"

#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include <sstream>
#include <thread>

namespace polymoe::cli {
namespace {

nlohmann::json recordJson(const TokenizerRecord &r)
{
    return {{"id", r.id}, {"backend", r.backend}, {"model_type", r.modelType}, {"vocab_size", r.vocabSize},
            {"sha256", r.sha256}, {"source", r.source}};
}

std::string shardsText(const std::vector<ShardRecord> &shards)
{
    std::ostringstream os;
    for (const auto &s : shards)
        os << "  " << s.language << " " << s.split << ": " << s.tokens << " tokens in " << s.documents
           << " documents\n";
    return os.str();
}

nlohmann::json shardsJson(const std::vector<ShardRecord> &shards)
{
    nlohmann::json j = nlohmann::json::array();
    for (const auto &s : shards)
        j.push_back({{"language", s.language}, {"split", s.split}, {"tokens", s.tokens}, {"documents", s.documents},
                     {"path", s.path.string()}});
    return j;
}

// Prints the new current tokenizer and, unless --no-tokenize, tokenizes the corpora with it.
int reportTokenizer(const Args &a, Context &ctx, ProjectStore &store, const TokenizerRecord &rec, std::string text)
{
    nlohmann::json j = {{"tokenizer", recordJson(rec)}};
    if (!a.has("--no-tokenize")) {
        const auto shards = tokenizeProject(store, false, ctx.progressFn, ctx.stop);
        j["shards"] = shardsJson(shards);
        text += "token shards:\n" + shardsText(shards);
    }
    ctx.print(j, text);
    return kExitOk;
}

int tokenizerTrain(const Args &a, Context &ctx)
{
    if (!a.has("--vocab-size"))
        throw UsageError("--vocab-size is required");
    auto store = ProjectStore::open(a.positionals[0]);
    TokenizerTrainOptions o;
    o.vocabSize = int(a.getInt("--vocab-size", o.vocabSize));
    o.modelType = a.get("--model-type", o.modelType);
    if (o.modelType != "unigram" && o.modelType != "bpe")
        throw UsageError("--model-type must be unigram or bpe");
    o.characterCoverage = float(a.getDouble("--character-coverage", o.characterCoverage));
    o.byteFallback = !a.has("--no-byte-fallback");
    o.inputSentenceSize = a.getInt("--sample", 0);
    o.numThreads = int(std::max(1u, std::thread::hardware_concurrency()));
    o.seed = uint64_t(a.getInt("--seed", 1));
    const auto rec = trainProjectTokenizer(store, o, ctx.progressFn, ctx.stop);
    std::string text = "trained " + rec.modelType + " tokenizer " + std::to_string(rec.id) + ": " +
                       std::to_string(rec.vocabSize) + " pieces, " + rec.source + "\n";
    return reportTokenizer(a, ctx, store, rec, text);
}

int tokenizerImport(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    const auto rec = importTokenizerModel(store, a.positionals[1]);
    std::string text = "imported tokenizer " + std::to_string(rec.id) + ": " + std::to_string(rec.vocabSize) +
                       " pieces from " + rec.source + "\n";
    return reportTokenizer(a, ctx, store, rec, text);
}

int tokenize(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0], true);
    auto tok = loadProjectTokenizer(store);
    std::string text;
    for (size_t i = 1; i < a.positionals.size(); ++i)
        text += (i > 1 ? " " : "") + a.positionals[i];
    const auto ids = tok->encode(text);
    nlohmann::json pieces = nlohmann::json::array();
    std::ostringstream os;
    for (size_t i = 0; i < ids.size(); ++i) {
        const auto piece = tok->idToPiece(ids[i]);
        pieces.push_back({{"id", ids[i]}, {"piece", piece}});
        os << (i ? " " : "") << piece << "/" << ids[i];
    }
    os << "\n" << ids.size() << " tokens for " << text.size() << " bytes\n";
    ctx.print({{"text", text}, {"tokens", pieces}, {"count", ids.size()}}, os.str());
    return kExitOk;
}

Register trainCmd({"tokenizer train", "train the project's SentencePiece tokenizer and tokenize its corpora",
                   "PROJECT --vocab-size N [--model-type unigram|bpe]",
                   "Trains on the train split of every language, stores the model in the project and makes it\n"
                   "current, then writes token shards for every language and split (unless --no-tokenize).",
                   {{"--vocab-size", "N", "pieces in the vocabulary, special tokens included", ""},
                    {"--model-type", "TYPE", "unigram or bpe", "unigram"},
                    {"--character-coverage", "F", "share of characters the vocabulary covers", "0.9995"},
                    {"--no-byte-fallback", "", "map unknown characters to <unk> instead of byte pieces", ""},
                    {"--sample", "N", "sentences sampled for training (0: all)", "0"},
                    {"--seed", "N", "sampling seed", "1"},
                    {"--no-tokenize", "", "do not write token shards", ""}},
                   1, 1, true, tokenizerTrain});
Register importCmd({"tokenizer import", "use an existing SentencePiece tokenizer.model (Llama-2, Mistral, Gemma...)",
                    "PROJECT MODEL_FILE", "", {{"--no-tokenize", "", "do not write token shards", ""}}, 2, 2, true,
                    tokenizerImport});
Register tokenizeCmd({"tokenize", "show how the project's tokenizer splits a text", "PROJECT TEXT...", "", {}, 2, -1,
                      true, tokenize});

} // namespace
} // namespace polymoe::cli
