// The SentencePiece tokenizer plugin: trains, loads, encodes and decodes SentencePiece models
// behind the C ABI of tokenizer_plugin_api.h. Every entry point catches everything; errors come
// back as a status and a malloc'd message that names the file and the problem.
#include "polymoe/tokenizer_plugin_api.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#ifndef POLYMOE_VERSION
#define POLYMOE_VERSION "unknown"
#endif
#ifndef POLYMOE_SPM_VERSION
#define POLYMOE_SPM_VERSION "unknown"
#endif

struct PolymoeTokenizer {
    sentencepiece::SentencePieceProcessor processor;
};

namespace polymoe::detail {
namespace {

// Status values of this plugin; the ABI only fixes 0 = ok, the message says the rest.
constexpr int32_t kOk = 0;
constexpr int32_t kInvalidArgument = 1;
constexpr int32_t kIoFailure = 2;
constexpr int32_t kBadModel = 3;
constexpr int32_t kTrainFailure = 4;
constexpr int32_t kInternal = 5;

// A failure with its status; thrown inside the plugin only, caught at every entry point.
struct PluginFailure : std::runtime_error {
    PluginFailure(int32_t s, const std::string &what) : std::runtime_error(what), status(s) {}
    int32_t status;
};

char *copyToMalloc(const char *data, size_t size)
{
    auto *out = static_cast<char *>(std::malloc(size + 1));
    if (!out)
        throw std::bad_alloc();
    if (size > 0)
        std::memcpy(out, data, size);
    out[size] = '\0';
    return out;
}

void setError(char **error, const std::string &message)
{
    if (!error)
        return;
    *error = static_cast<char *>(std::malloc(message.size() + 1));
    if (*error)
        std::memcpy(*error, message.c_str(), message.size() + 1);
}

// Runs body and turns any exception into a status and an error string.
template <typename Body>
int32_t guarded(char **error, const char *what, Body &&body) noexcept
{
    if (error)
        *error = nullptr;
    try {
        body();
        return kOk;
    } catch (const PluginFailure &e) {
        setError(error, e.what());
        return e.status;
    } catch (const std::bad_alloc &) {
        setError(error, std::string(what) + ": out of memory");
        return kInternal;
    } catch (const std::exception &e) {
        setError(error, std::string(what) + ": " + e.what());
        return kInternal;
    } catch (...) {
        setError(error, std::string(what) + ": unknown exception in the SentencePiece plugin");
        return kInternal;
    }
}

// 'path', for messages (built by append: GCC 12 warns falsely on "'" + std::string(..)).
std::string quoted(const std::string &path)
{
    std::string out;
    out.reserve(path.size() + 2);
    out += '\'';
    out += path;
    out += '\'';
    return out;
}

void require(bool condition, const std::string &message)
{
    if (!condition)
        throw PluginFailure(kInvalidArgument, message);
}

std::string readWholeFile(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw PluginFailure(kIoFailure,
                            "cannot open " + quoted(path) + ": " + std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad())
        throw PluginFailure(kIoFailure,
                            "cannot read " + quoted(path) + ": " + std::strerror(errno));
    return buffer.str();
}

// Parses serialised model bytes; `source` names them in messages (a path or "model bytes").
PolymoeTokenizer *parseModel(const std::string &bytes, const std::string &source)
{
    if (bytes.empty())
        throw PluginFailure(kBadModel, source + ": empty, not a SentencePiece model");
    auto tok = std::make_unique<PolymoeTokenizer>();
    const auto status = tok->processor.LoadFromSerializedProto(bytes);
    if (!status.ok()) {
        const std::string why = status.ToString();
        if (why.find("ParseFromArray") != std::string::npos)
            throw PluginFailure(kBadModel, source + ": not a SentencePiece model (no ModelProto)");
        throw PluginFailure(kBadModel, source + ": not a usable SentencePiece model (" + why + ")");
    }
    if (tok->processor.GetPieceSize() <= 0)
        throw PluginFailure(kBadModel, source + ": SentencePiece model without pieces");
    return tok.release();
}

// Feeds the trainer one line of the input file at a time (no comma splitting of the path, and a
// clear message naming the file when it cannot be read).
class LineIterator : public sentencepiece::SentenceIterator {
public:
    explicit LineIterator(const std::string &path) : m_path(path), m_in(path, std::ios::binary)
    {
        if (!m_in)
            throw PluginFailure(kIoFailure, "cannot open training text " + quoted(path) + ": "
                                                + std::strerror(errno));
        Next();
    }
    bool done() const override { return m_done; }
    void Next() override
    {
        if (!std::getline(m_in, m_line)) {
            m_done = true;
            if (m_in.bad())
                m_status = sentencepiece::util::Status(sentencepiece::util::StatusCode::kDataLoss,
                                                       "read error in " + quoted(m_path));
            return;
        }
        if (!m_line.empty() && m_line.back() == '\r')
            m_line.pop_back();
    }
    const std::string &value() const override { return m_line; }
    sentencepiece::util::Status status() const override { return m_status; }

private:
    std::string m_path;
    std::ifstream m_in;
    std::string m_line;
    bool m_done = false;
    sentencepiece::util::Status m_status;
};

// --- the C table -----------------------------------------------------------------------------

void freeString(char *s) { std::free(s); }
void freeIds(int32_t *ids) { std::free(ids); }

int32_t train(const PolymoeTokenizerTrainOptions *options, char **modelBytes, size_t *modelSize,
              char **error)
{
    return guarded(error, "training a SentencePiece model", [&] {
        require(options && modelBytes && modelSize, "train: null argument");
        *modelBytes = nullptr;
        *modelSize = 0;
        require(options->input_path && *options->input_path, "train: no input file given");
        const std::string input = options->input_path;
        const std::string type = options->model_type ? options->model_type : "unigram";
        const std::string where = "training on " + quoted(input);
        require(type == "unigram" || type == "bpe",
                where + ": model type '" + type + "' is not 'unigram' or 'bpe'");
        require(options->vocab_size > 0, where + ": vocab size must be positive, not "
                                             + std::to_string(options->vocab_size));
        require(options->character_coverage > 0.0f && options->character_coverage <= 1.0f,
                where + ": character coverage must be in (0, 1], not "
                    + std::to_string(options->character_coverage));
        require(options->max_sentence_length > 0, where + ": max sentence length must be positive");
        require(options->input_sentence_size >= 0, where + ": input sentence size must be >= 0");

        // Llama-style lossless settings: no normalisation, whitespace kept, digits split, so that
        // decode(encode(text)) == text for any UTF-8 when byte fallback is on.
        const std::unordered_map<std::string, std::string> args = {
            {"model_type", type},
            {"vocab_size", std::to_string(options->vocab_size)},
            {"character_coverage", std::to_string(options->character_coverage)},
            {"byte_fallback", options->byte_fallback ? "true" : "false"},
            {"max_sentence_length", std::to_string(options->max_sentence_length)},
            {"input_sentence_size", std::to_string(options->input_sentence_size)},
            {"shuffle_input_sentence", "true"},
            {"num_threads", std::to_string(options->num_threads > 0 ? options->num_threads : 1)},
            {"normalization_rule_name", "identity"},
            {"remove_extra_whitespaces", "false"},
            {"split_digits", "true"},
            {"allow_whitespace_only_pieces", "true"},
            {"minloglevel", "2"}, // quiet: errors come back in the status
        };
        // The seed (uint32 in SentencePiece) must avoid ~0u, which means "from random_device".
        auto seed = static_cast<unsigned int>(options->seed);
        if (seed == std::numeric_limits<unsigned int>::max())
            seed -= 1;
        sentencepiece::SetRandomGeneratorSeed(seed);

        LineIterator lines(input);
        std::string model;
        const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
        if (!status.ok())
            throw PluginFailure(kTrainFailure, where + ": " + status.ToString());
        if (model.empty())
            throw PluginFailure(kTrainFailure, where + ": the trainer returned no model");
        *modelBytes = copyToMalloc(model.data(), model.size());
        *modelSize = model.size();
    });
}

int32_t loadFile(const char *path, PolymoeTokenizer **out, char **error)
{
    return guarded(error, "loading a SentencePiece model", [&] {
        require(path && out, "load_file: null argument");
        *out = nullptr;
        *out = parseModel(readWholeFile(path), quoted(path));
    });
}

int32_t loadBytes(const char *bytes, size_t size, PolymoeTokenizer **out, char **error)
{
    return guarded(error, "loading a SentencePiece model", [&] {
        require(out && (bytes || size == 0), "load_bytes: null argument");
        *out = nullptr;
        *out = parseModel(std::string(bytes ? bytes : "", size),
                          "model bytes (" + std::to_string(size) + " bytes)");
    });
}

void destroy(PolymoeTokenizer *tok) { delete tok; }

int32_t serialize(const PolymoeTokenizer *tok, char **bytes, size_t *size, char **error)
{
    return guarded(error, "serialising a SentencePiece model", [&] {
        require(tok && bytes && size, "serialize: null argument");
        const std::string model = tok->processor.serialized_model_proto();
        *bytes = copyToMalloc(model.data(), model.size());
        *size = model.size();
    });
}

int32_t encode(const PolymoeTokenizer *tok, const char *text, size_t size, int32_t **ids,
               size_t *count, char **error)
{
    return guarded(error, "encoding text", [&] {
        require(tok && ids && count && (text || size == 0), "encode: null argument");
        *ids = nullptr;
        *count = 0;
        std::vector<int> result;
        const auto status =
            tok->processor.Encode(std::string_view(text ? text : "", size), &result);
        if (!status.ok())
            throw PluginFailure(kInvalidArgument, "encoding " + std::to_string(size)
                                                      + " bytes of text: " + status.ToString());
        auto *out = static_cast<int32_t *>(
            std::malloc(std::max<size_t>(result.size(), 1) * sizeof(int32_t)));
        if (!out)
            throw std::bad_alloc();
        for (size_t i = 0; i < result.size(); ++i)
            out[i] = static_cast<int32_t>(result[i]);
        *ids = out;
        *count = result.size();
    });
}

int32_t decode(const PolymoeTokenizer *tok, const int32_t *ids, size_t count, char **text,
               size_t *size, char **error)
{
    return guarded(error, "decoding ids", [&] {
        require(tok && text && size && (ids || count == 0), "decode: null argument");
        *text = nullptr;
        *size = 0;
        const int32_t vocab = tok->processor.GetPieceSize();
        std::vector<int> in(count);
        for (size_t i = 0; i < count; ++i) {
            require(ids[i] >= 0 && ids[i] < vocab,
                    "decode: id " + std::to_string(ids[i]) + " at position " + std::to_string(i)
                        + " is out of range [0, " + std::to_string(vocab) + ")");
            in[i] = ids[i];
        }
        std::string result;
        const auto status = tok->processor.Decode(in, &result);
        if (!status.ok())
            throw PluginFailure(kInvalidArgument,
                                "decoding " + std::to_string(count) + " ids: " + status.ToString());
        *text = copyToMalloc(result.data(), result.size());
        *size = result.size();
    });
}

int32_t vocabSize(const PolymoeTokenizer *tok) { return tok ? tok->processor.GetPieceSize() : -1; }

char *idToPiece(const PolymoeTokenizer *tok, int32_t id)
{
    try {
        if (!tok || id < 0 || id >= tok->processor.GetPieceSize())
            return nullptr;
        const std::string &piece = tok->processor.IdToPiece(id);
        return copyToMalloc(piece.data(), piece.size());
    } catch (...) {
        return nullptr;
    }
}

int32_t pieceToId(const PolymoeTokenizer *tok, const char *piece)
{
    try {
        if (!tok)
            return -1;
        return tok->processor.PieceToId(piece ? piece : "");
    } catch (...) {
        return tok ? tok->processor.unk_id() : -1;
    }
}

int32_t bosId(const PolymoeTokenizer *tok) { return tok ? tok->processor.bos_id() : -1; }
int32_t eosId(const PolymoeTokenizer *tok) { return tok ? tok->processor.eos_id() : -1; }
int32_t unkId(const PolymoeTokenizer *tok) { return tok ? tok->processor.unk_id() : -1; }
int32_t padId(const PolymoeTokenizer *tok) { return tok ? tok->processor.pad_id() : -1; }

} // namespace
} // namespace polymoe::detail

extern "C" __attribute__((visibility("default"))) const PolymoeTokenizerPluginApi *
polymoe_tokenizer_plugin(void)
{
    using namespace polymoe::detail;
    static const PolymoeTokenizerPluginApi api = {
        .api_version = POLYMOE_TOKENIZER_API_VERSION,
        .name = "sentencepiece",
        .version =
            "polymoe-sentencepiece " POLYMOE_VERSION " (SentencePiece " POLYMOE_SPM_VERSION ")",
        .free_string = freeString,
        .free_ids = freeIds,
        .train = train,
        .load_file = loadFile,
        .load_bytes = loadBytes,
        .destroy = destroy,
        .serialize = serialize,
        .encode = encode,
        .decode = decode,
        .vocab_size = vocabSize,
        .id_to_piece = idToPiece,
        .piece_to_id = pieceToId,
        .bos_id = bosId,
        .eos_id = eosId,
        .unk_id = unkId,
        .pad_id = padId,
    };
    return &api;
}
