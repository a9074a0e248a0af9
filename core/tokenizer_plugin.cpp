// Finds, opens and wraps tokenizer plugins: dlopen with deep binding (PLATFORM.md, trap 2), the C
// table of tokenizer_plugin_api.h behind ITokenizer, plugin status codes turned into exceptions.
// No SentencePiece header here: the plugin is the only code that sees SentencePiece.
#include "polymoe/tokenizer.h"

#include "polymoe/error.h"
#include "polymoe/tokenizer_plugin_api.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#ifndef POLYMOE_PLUGIN_BUILD_DIR
#define POLYMOE_PLUGIN_BUILD_DIR ""
#endif
#ifndef POLYMOE_PLUGIN_INSTALL_DIR
#define POLYMOE_PLUGIN_INSTALL_DIR ""
#endif

#if defined(__SANITIZE_ADDRESS__)
#define POLYMOE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POLYMOE_UNDER_ASAN 1
#endif
#endif

namespace polymoe {
namespace detail {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path &path)
{
    std::string out = "'";
    out += path.string();
    out += '\'';
    return out;
}

// One dlopen'd plugin file. Shared by the TokenizerPlugin and by every tokenizer made from it, so
// the code stays mapped while any of them lives; dlclose runs when the last one goes.
class PluginLibrary {
public:
    PluginLibrary(void *handle, const PolymoeTokenizerPluginApi *api, fs::path path)
        : m_handle(handle)
        , m_api(api)
        , m_path(std::move(path))
    {}
    ~PluginLibrary() { dlclose(m_handle); }
    PluginLibrary(const PluginLibrary &) = delete;
    PluginLibrary &operator=(const PluginLibrary &) = delete;

    const PolymoeTokenizerPluginApi &api() const { return *m_api; }
    const fs::path &path() const { return m_path; }

    // Takes ownership of a plugin-allocated error string and returns it as std::string.
    std::string takeString(char *s) const
    {
        if (!s)
            return {};
        std::string out(s);
        m_api->free_string(s);
        return out;
    }

private:
    void *m_handle;
    const PolymoeTokenizerPluginApi *m_api;
    fs::path m_path;
};

enum class Failure { Plugin, Format };

// Runs one plugin call, `call(&error)` returning its status, and throws the exception of `kind`
// when it failed, freeing the plugin's message.
template <typename Call>
void invoke(const PluginLibrary &lib, Failure kind, Call &&call)
{
    char *error = nullptr;
    const int32_t status = call(&error);
    std::string message = lib.takeString(error);
    if (status == 0)
        return;
    if (message.empty())
        message = "failed with status " + std::to_string(status);
    message += " [" + lib.path().filename().string() + "]";
    if (kind == Failure::Format)
        throw FormatError(message);
    throw PluginError(message);
}

// A model loaded by a plugin, seen through ITokenizer.
class PluginTokenizer final : public ITokenizer {
public:
    PluginTokenizer(std::shared_ptr<const PluginLibrary> library, PolymoeTokenizer *tok)
        : m_library(std::move(library))
        , m_tok(tok)
    {
        const auto &api = m_library->api();
        m_vocabSize = api.vocab_size(m_tok);
        m_special = {.bos = api.bos_id(m_tok),
                     .eos = api.eos_id(m_tok),
                     .unk = api.unk_id(m_tok),
                     .pad = api.pad_id(m_tok)};
    }
    ~PluginTokenizer() override { m_library->api().destroy(m_tok); }
    PluginTokenizer(const PluginTokenizer &) = delete;
    PluginTokenizer &operator=(const PluginTokenizer &) = delete;

    std::vector<int32_t> encode(std::string_view text) const override
    {
        const auto &api = m_library->api();
        int32_t *ids = nullptr;
        size_t count = 0;
        invoke(*m_library, Failure::Plugin, [&](char **error) {
            return api.encode(m_tok, text.data(), text.size(), &ids, &count, error);
        });
        std::vector<int32_t> out(ids, ids + count);
        api.free_ids(ids);
        return out;
    }

    std::string decode(const std::vector<int32_t> &ids) const override
    {
        for (size_t i = 0; i < ids.size(); ++i)
            if (ids[i] < 0 || ids[i] >= m_vocabSize)
                throw ConfigError("decoding: id " + std::to_string(ids[i]) + " at position "
                                  + std::to_string(i) + " is out of range [0, "
                                  + std::to_string(m_vocabSize) + ")");
        const auto &api = m_library->api();
        char *text = nullptr;
        size_t size = 0;
        invoke(*m_library, Failure::Plugin, [&](char **error) {
            return api.decode(m_tok, ids.data(), ids.size(), &text, &size, error);
        });
        std::string out(text, size);
        api.free_string(text);
        return out;
    }

    int32_t vocabSize() const override { return m_vocabSize; }

    std::string idToPiece(int32_t id) const override
    {
        char *piece =
            (id >= 0 && id < m_vocabSize) ? m_library->api().id_to_piece(m_tok, id) : nullptr;
        if (!piece)
            throw ConfigError("token id " + std::to_string(id) + " is out of range [0, "
                              + std::to_string(m_vocabSize) + ")");
        return m_library->takeString(piece);
    }

    int32_t pieceToId(std::string_view piece) const override
    {
        const std::string s(piece); // the C API takes a NUL-terminated piece
        return m_library->api().piece_to_id(m_tok, s.c_str());
    }

    SpecialTokens specialTokens() const override { return m_special; }

    std::string serialize() const override
    {
        const auto &api = m_library->api();
        char *bytes = nullptr;
        size_t size = 0;
        invoke(*m_library, Failure::Plugin,
               [&](char **error) { return api.serialize(m_tok, &bytes, &size, error); });
        std::string out(bytes, size);
        api.free_string(bytes);
        return out;
    }

    std::string backend() const override { return m_library->api().name; }

private:
    std::shared_ptr<const PluginLibrary> m_library;
    PolymoeTokenizer *m_tok;
    int32_t m_vocabSize = 0;
    SpecialTokens m_special;
};

class LoadedTokenizerPlugin final : public TokenizerPlugin {
public:
    explicit LoadedTokenizerPlugin(std::shared_ptr<const PluginLibrary> library)
        : m_library(std::move(library))
    {}

    std::string name() const override { return m_library->api().name; }
    std::string version() const override { return m_library->api().version; }
    fs::path libraryPath() const override { return m_library->path(); }

    std::string train(const fs::path &input, const TokenizerTrainOptions &options, std::stop_token stop) const override
    {
        const std::string where = "training a tokenizer on " + quoted(input);
        std::error_code ec;
        if (!fs::is_regular_file(input, ec))
            throw IoError(where + ": no such file");
        if (options.modelType != "unigram" && options.modelType != "bpe")
            throw ConfigError(where + ": model type '" + options.modelType
                              + "' is not 'unigram' or 'bpe'");
        if (options.vocabSize <= 0)
            throw ConfigError(where + ": vocabulary size must be positive, not "
                              + std::to_string(options.vocabSize));

        const std::string path = input.string();
        const PolymoeTokenizerTrainOptions c = {
            .input_path = path.c_str(),
            .model_type = options.modelType.c_str(),
            .vocab_size = options.vocabSize,
            .character_coverage = options.characterCoverage,
            .byte_fallback = options.byteFallback ? 1 : 0,
            .max_sentence_length = options.maxSentenceLength,
            .input_sentence_size = options.inputSentenceSize,
            .num_threads = options.numThreads,
            .seed = options.seed,
        };
        const auto &api = m_library->api();
        if (stop.stop_possible())
            return trainInChildProcess(c, stop);
        char *bytes = nullptr;
        size_t size = 0;
        invoke(*m_library, Failure::Plugin,
               [&](char **error) { return api.train(&c, &bytes, &size, error); });
        std::string out(bytes, size);
        api.free_string(bytes);
        return out;
    }

    // A trainer cannot be interrupted, so when the caller may stop, it runs in a child process (fork:
    // the plugin is loaded there too) that sends back the model or the failure over a pipe; a stop
    // request kills the child and throws Cancelled at once. Messages: 'M' or 'E', 8 bytes of length,
    // the model bytes or the plugin's message.
    std::string trainInChildProcess(const PolymoeTokenizerTrainOptions &c, std::stop_token stop) const
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw IoError(std::string("training a tokenizer: cannot create a pipe: ") + std::strerror(errno));
        const pid_t pid = ::fork();
        if (pid < 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            throw IoError(std::string("training a tokenizer: cannot start a process: ") + std::strerror(errno));
        }
        if (pid == 0) {
            ::close(fds[0]);
            const auto &api = m_library->api();
            char *bytes = nullptr, *error = nullptr;
            size_t size = 0;
            const int32_t status = api.train(&c, &bytes, &size, &error);
            std::string payload = status == 0 ? std::string(bytes, size)
                                              : (error ? std::string(error) : "failed with status " + std::to_string(status));
            const char kind = status == 0 ? 'M' : 'E';
            const uint64_t n = payload.size();
            std::string msg(1, kind);
            msg.append(reinterpret_cast<const char *>(&n), sizeof n);
            msg += payload;
            size_t off = 0;
            while (off < msg.size()) {
                const ssize_t w = ::write(fds[1], msg.data() + off, msg.size() - off);
                if (w <= 0 && errno != EINTR)
                    ::_exit(2);
                if (w > 0)
                    off += size_t(w);
            }
            ::_exit(0); // no destructors, no atexit handlers of the parent's objects
        }
        ::close(fds[1]);
        std::string msg;
        bool cancelled = false;
        char buf[1 << 16];
        for (;;) {
            if (stop.stop_requested()) {
                cancelled = true;
                break;
            }
            pollfd pfd{fds[0], POLLIN, 0};
            const int n = ::poll(&pfd, 1, 100);
            if (n < 0 && errno != EINTR)
                break;
            if (n <= 0)
                continue;
            const ssize_t r = ::read(fds[0], buf, sizeof buf);
            if (r > 0)
                msg.append(buf, size_t(r));
            else if (r == 0 || errno != EINTR)
                break;
        }
        ::close(fds[0]);
        if (cancelled)
            ::kill(pid, SIGKILL);
        int wstatus = 0;
        while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        }
        if (cancelled)
            throw Cancelled();
        const std::string lib = " [" + m_library->path().filename().string() + "]";
        uint64_t n = 0;
        if (msg.size() < 1 + sizeof n)
            throw PluginError("the tokenizer trainer's process ended without a result (" +
                              (WIFSIGNALED(wstatus) ? "signal " + std::to_string(WTERMSIG(wstatus))
                                                    : "exit status " + std::to_string(WEXITSTATUS(wstatus))) +
                              ")" + lib);
        std::memcpy(&n, msg.data() + 1, sizeof n);
        if (msg.size() != 1 + sizeof n + n)
            throw PluginError("the tokenizer trainer's process sent a truncated result" + lib);
        std::string payload = msg.substr(1 + sizeof n);
        if (msg[0] != 'M')
            throw PluginError(payload + lib);
        return payload;
    }

    std::unique_ptr<ITokenizer> loadFile(const fs::path &model) const override
    {
        std::error_code ec;
        if (!fs::exists(model, ec))
            throw IoError("loading tokenizer model " + quoted(model) + ": no such file");
        if (fs::is_directory(model, ec))
            throw IoError("loading tokenizer model " + quoted(model) + ": is a folder, not a file");
        if (!std::ifstream(model, std::ios::binary))
            throw IoError("loading tokenizer model " + quoted(model) + ": " + std::strerror(errno));
        const std::string path = model.string();
        PolymoeTokenizer *tok = nullptr;
        invoke(*m_library, Failure::Format,
               [&](char **error) { return m_library->api().load_file(path.c_str(), &tok, error); });
        return wrap(tok);
    }

    std::unique_ptr<ITokenizer> loadBytes(const std::string &modelBytes) const override
    {
        PolymoeTokenizer *tok = nullptr;
        invoke(*m_library, Failure::Format, [&](char **error) {
            return m_library->api().load_bytes(modelBytes.data(), modelBytes.size(), &tok, error);
        });
        return wrap(tok);
    }

private:
    std::unique_ptr<ITokenizer> wrap(PolymoeTokenizer *tok) const
    {
        try {
            return std::make_unique<PluginTokenizer>(m_library, tok);
        } catch (...) {
            m_library->api().destroy(tok);
            throw;
        }
    }

    std::shared_ptr<const PluginLibrary> m_library;
};

// The folders searched, in order (see tokenizer.h). POLYMOE_PLUGIN_DIR may hold several absolute
// folders separated by ':'; a relative entry would depend on the working directory and is ignored
// (named in `ignored`). The build tree is searched only by a binary that runs from it.
std::vector<fs::path> searchFolders(std::vector<std::string> *ignored = nullptr)
{
    std::vector<fs::path> folders;
    if (const char *env = std::getenv("POLYMOE_PLUGIN_DIR"); env && *env) {
        std::string list = env;
        size_t start = 0;
        while (start <= list.size()) {
            const size_t end = std::min(list.find(':', start), list.size());
            if (end > start) {
                const fs::path entry = list.substr(start, end - start);
                if (entry.is_absolute())
                    folders.push_back(entry);
                else if (ignored)
                    ignored->push_back(entry.string());
            }
            start = end + 1;
        }
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && exe.has_parent_path())
        folders.push_back(
            (exe.parent_path() / ".." / "lib" / "polymoe" / "plugins").lexically_normal());
    if (*POLYMOE_PLUGIN_BUILD_DIR && !ec) {
        const fs::path buildRoot = fs::path(POLYMOE_PLUGIN_BUILD_DIR).parent_path();
        const auto rel = exe.lexically_relative(buildRoot);
        if (!rel.empty() && *rel.begin() != "..")
            folders.emplace_back(POLYMOE_PLUGIN_BUILD_DIR);
    }
    if (*POLYMOE_PLUGIN_INSTALL_DIR)
        folders.emplace_back(POLYMOE_PLUGIN_INSTALL_DIR);
    return folders;
}

std::shared_ptr<const PluginLibrary> openLibrary(const fs::path &path)
{
#ifdef POLYMOE_UNDER_ASAN
    throw PluginError("cannot load " + quoted(path)
                      + ": tokenizer plugins need dlopen(RTLD_DEEPBIND), which AddressSanitizer "
                        "refuses; use a build without sanitizers");
#else
    dlerror();
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
        const char *why = dlerror();
        throw PluginError("cannot load " + quoted(path) + ": " + (why ? why : "dlopen failed"));
    }
    auto entry =
        reinterpret_cast<PolymoeTokenizerPluginEntry>(dlsym(handle, POLYMOE_TOKENIZER_ENTRY));
    if (!entry) {
        dlclose(handle);
        throw PluginError(quoted(path) + " is not a tokenizer plugin: it has no entry "
                          + POLYMOE_TOKENIZER_ENTRY + "()");
    }
    const PolymoeTokenizerPluginApi *api = entry();
    if (!api) {
        dlclose(handle);
        throw PluginError(quoted(path) + ": " + POLYMOE_TOKENIZER_ENTRY + "() returned no table");
    }
    if (api->api_version != POLYMOE_TOKENIZER_API_VERSION) {
        const int32_t version = api->api_version;
        dlclose(handle);
        throw PluginError(quoted(path) + " implements tokenizer API version "
                          + std::to_string(version) + ", but this PolyMoE needs version "
                          + std::to_string(POLYMOE_TOKENIZER_API_VERSION));
    }
    return std::make_shared<const PluginLibrary>(handle, api, path);
#endif
}

} // namespace
} // namespace detail

std::shared_ptr<TokenizerPlugin> TokenizerPlugin::load(const std::string &backend)
{
    namespace fs = std::filesystem;
    const bool validName =
        !backend.empty()
        && backend.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
    if (!validName)
        throw PluginError("invalid tokenizer backend name '" + backend
                          + "' (lower-case letters, digits, '_' and '-' only)");

    const std::string file = "libpolymoe_tokenizer_" + backend + ".so";
    const auto folders = detail::searchFolders();
    for (const auto &folder : folders) {
        const fs::path candidate = folder / file;
        std::error_code ec;
        if (!fs::is_regular_file(candidate, ec))
            continue;
        // Plugins stay open while anything made from them lives; a second load() of the same
        // file shares the open library.
        static std::mutex mutex;
        static std::map<fs::path, std::weak_ptr<const detail::PluginLibrary>> open;
        fs::path key = fs::weakly_canonical(candidate, ec);
        if (ec)
            key = candidate;
        const std::scoped_lock lock(mutex);
        auto library = open[key].lock();
        if (!library) {
            library = detail::openLibrary(key);
            open[key] = library;
        }
        return std::make_shared<detail::LoadedTokenizerPlugin>(std::move(library));
    }

    std::string searched;
    for (const auto &folder : folders)
        searched += "\n  " + folder.string();
    std::vector<std::string> ignored;
    detail::searchFolders(&ignored);
    for (const auto &entry : ignored)
        searched += "\n  (ignored: POLYMOE_PLUGIN_DIR entry '" + entry + "' is not an absolute path)";
    throw PluginError("no tokenizer plugin '" + backend + "': " + file + " was not found in"
                      + (folders.empty() ? std::string(" any folder") : searched)
                      + "\n(set POLYMOE_PLUGIN_DIR to the absolute path of the folder holding it)");
}

} // namespace polymoe
