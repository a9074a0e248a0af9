// polymoe tokenizer train|import, polymoe tokenize
#include "cli.h"

#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include "polymoe/error.h"

#include <fstream>
#include <iostream>
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
    o.vocabSize = a.getInt32("--vocab-size", o.vocabSize, 1, 16777216);
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
    const auto rec = importTokenizer(store, a.positionals[1]);
    std::string text = "imported tokenizer " + std::to_string(rec.id) + ": " + std::to_string(rec.vocabSize) +
                       " pieces from " + rec.source + "\n";
    return reportTokenizer(a, ctx, store, rec, text);
}

// --file F: one line of ids per input line (a JSON array each with --json), for scripts and checks.
int tokenizeLines(const Args &a, const Context &ctx, const ITokenizer &tok)
{
    const std::string path = a.get("--file");
    std::ifstream file;
    std::istream *in = &std::cin;
    if (path != "-") {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            throw IoError(path + ": not a regular file (--file takes a text file, or - for standard input)");
        file.open(path, std::ios::binary);
        if (!file)
            throw IoError(path + ": cannot be read");
        in = &file;
    }
    const bool json = ctx.json;
    std::string line;
    while (std::getline(*in, line)) {
        const auto ids = tok.encode(line);
        std::string out = json ? "[" : "";
        for (size_t i = 0; i < ids.size(); ++i)
            out += (i ? (json ? "," : " ") : "") + std::to_string(ids[i]);
        out += json ? "]\n" : "\n";
        std::cout << out;
    }
    std::cout.flush();
    return kExitOk;
}

int tokenize(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0], true);
    auto tok = loadProjectTokenizer(store);
    if (a.has("--file")) {
        if (a.positionals.size() > 1)
            throw UsageError("give either TEXT or --file, not both");
        return tokenizeLines(a, ctx, *tok);
    }
    if (a.positionals.size() < 2)
        throw UsageError("give a TEXT to tokenize, or --file F");
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
Register importCmd({"tokenizer import", "use an existing tokenizer: Hugging Face tokenizer.json or SentencePiece tokenizer.model",
                    "PROJECT FILE_OR_FOLDER",
                    "FILE_OR_FOLDER: a tokenizer.json (byte-level or SentencePiece-style BPE: Qwen2, Llama-3, SmolLM2,\n"
                    "Mistral...; its tokenizer_config.json and special_tokens_map.json are read from beside it), a\n"
                    "SentencePiece tokenizer.model (Llama-2, Gemma...), or a model folder holding either (tokenizer.json\n"
                    "first). The tokenizer is checked by loading it: a component it does not implement is an error\n"
                    "naming the file and the type, never a different tokenization. It becomes the project's current\n"
                    "tokenizer and the corpora are tokenized with it (unless --no-tokenize).", {{"--no-tokenize", "", "do not write token shards", ""}}, 2, 2, true,
                    tokenizerImport});
Register tokenizeCmd({"tokenize", "show how the project's tokenizer splits a text", "PROJECT TEXT... | PROJECT --file F",
                      "TEXT: the pieces and ids of one text (as the project encodes documents: under the tokenizer's\n"
                      "whitespace policy, without BOS/EOS). --file F (- for standard input): one line of ids per input\n"
                      "line, a JSON array each with --json: the ids Hugging Face's tokenizer.encode(line,\n"
                      "add_special_tokens=False) gives for an imported tokenizer.json.",
                      {{"--file", "F", "tokenize each line of F (- reads standard input)", ""}}, 1, -1, true, tokenize});

} // namespace
} // namespace polymoe::cli
