// bench tokenize: encoding speed of PolyMoE's tokenizer.json reader beside the Python `tokenizers`
// library (its Rust core, one thread) on the same text units, in the same run.
#include "polymoe/bench.h"

#include "bench_common.h"

#include "file_read.h"
#include "hf_tokenizer.h"
#include "polymoe/error.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <unistd.h>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

// The peer: the same units, read from a file (one per line), encoded by tokenizers with one thread.
constexpr const char *kPythonPeer = R"PY(
import json, os, sys, time
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
units = open(sys.argv[2], encoding="utf-8", newline="\n").read().split("\n")
seconds, tokens = [], 0
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    tokens = sum(len(tok.encode(u, add_special_tokens=False).ids) for u in units)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": seconds, "tokens": tokens, "version": tokenizers.__version__}))
)PY";

} // namespace

BenchReport benchTokenize(const fs::path &tokenizerJson, const std::vector<fs::path> &texts, int repetitions,
                          const std::string &python)
{
    if (repetitions < 1 || repetitions > 1000)
        throw ConfigError("bench tokenize: repetitions must be 1 to 1000");
    auto tok = loadHfTokenizer(readRegularFile(tokenizerJson), tokenizerJson.string());
    // Units: the non-empty lines of every text file, each encoded on its own (as corpus documents are).
    std::vector<std::string> units;
    std::string joined;
    size_t bytes = 0;
    for (const auto &file : texts) {
        const std::string t = readRegularFile(file, int64_t(1) << 30);
        size_t start = 0;
        while (start < t.size()) {
            size_t end = t.find('\n', start);
            if (end == std::string::npos)
                end = t.size();
            std::string line = t.substr(start, end - start);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (!line.empty()) {
                bytes += line.size();
                joined += (joined.empty() ? "" : "\n") + line;
                units.push_back(std::move(line));
            }
            start = end + 1;
        }
    }
    if (units.empty())
        throw ConfigError("bench tokenize: the text files hold no line to encode");

    BenchReport rep;
    rep.title = "tokenize: " + tokenizerJson.filename().string() + ", " + std::to_string(units.size()) + " lines, " +
                std::to_string(bytes) + " bytes";
    rep.machine = machineDescription(1);
    rep.build = std::string("PolyMoE ") + POLYMOE_VERSION;
    std::vector<double> rates;
    int64_t tokens = 0;
    for (int r = 0; r < repetitions + 1; ++r) { // the first pass warms caches and is not counted
        const auto start = std::chrono::steady_clock::now();
        int64_t n = 0;
        for (const auto &u : units)
            n += int64_t(tok->encode(u).size());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        tokens = n;
        if (r > 0)
            rates.push_back(double(bytes) / 1e6 / s);
    }
    auto [m, sd] = bench::meanSd(rates);
    rep.rows.push_back({"PolyMoE HfTokenizer (C++, 1 thread)", "MB/s", m, sd, repetitions,
                        {{"tokens", double(tokens)}, {"bytes per token", double(bytes) / double(std::max<int64_t>(1, tokens))}}});

    if (python.empty()) {
        rep.notes.push_back("no Python peer (--python PY, or .venv from installer/interop-venv.sh)");
        return rep;
    }
    const fs::path unitsFile = fs::temp_directory_path() / ("polymoe-bench-tokenize-" + std::to_string(::getpid()) + ".txt");
    {
        std::FILE *f = std::fopen(unitsFile.c_str(), "wb");
        if (!f)
            throw IoError(unitsFile.string() + ": cannot write");
        std::fwrite(joined.data(), 1, joined.size(), f);
        std::fclose(f);
    }
    std::string why;
    const std::string out = bench::runPythonPeer(python, kPythonPeer, {tokenizerJson.string(), unitsFile.string(), std::to_string(repetitions + 1)},
                                                 "is the tokenizers package installed? installer/interop-venv.sh makes .venv with it", why);
    std::error_code ec;
    fs::remove(unitsFile, ec);
    if (out.empty()) {
        rep.notes.push_back(why);
        return rep;
    }
    const auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_object() || !j.contains("seconds")) {
        rep.notes.push_back("the Python peer's output could not be read");
        return rep;
    }
    std::vector<double> peer;
    const auto secs = j["seconds"].get<std::vector<double>>();
    for (size_t i = 1; i < secs.size(); ++i)
        peer.push_back(double(bytes) / 1e6 / secs[i]);
    auto [pm, psd] = bench::meanSd(peer);
    const int64_t peerTokens = j.value("tokens", int64_t(0));
    rep.rows.push_back({"Hugging Face tokenizers " + j.value("version", std::string("?")) + " (Python binding, 1 thread)",
                        "MB/s", pm, psd, repetitions, {{"tokens", double(peerTokens)}}});
    rep.notes.push_back("speed ratio PolyMoE / tokenizers: " + std::to_string(m / pm));
    if (peerTokens != tokens)
        rep.notes.push_back("token counts differ (" + std::to_string(tokens) + " vs " + std::to_string(peerTokens) +
                            "): the two do not tokenize alike");
    return rep;
}

} // namespace polymoe
