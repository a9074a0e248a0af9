// The command table of the polymoe tool: every command declares its arguments and help once, and
// main.cpp parses, prints help, and dispatches. Commands receive parsed arguments and a context.
#pragma once

#include "polymoe/cli_contract.h"
#include "polymoe/progress.h"
#include "polymoe/training.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <concepts>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <limits>
#include <string>
#include <vector>

namespace polymoe {
struct ForgettingReport;
}

namespace polymoe::cli {

struct OptionSpec {
    std::string name;       // "--vocab-size"
    std::string valueName;  // "N"; empty for a flag
    std::string help;
    std::string defaultValue; // shown in help; applied when absent
};

class Args {
public:
    std::vector<std::string> positionals;
    std::map<std::string, std::string> values;

    bool has(const std::string &name) const { return values.count(name) > 0; }
    std::string get(const std::string &name, const std::string &fallback = {}) const;
    // An integer that must fit an int and lie in [lo, hi]; UsageError naming the option otherwise.
    int getInt32(const std::string &name, int fallback, int lo = std::numeric_limits<int>::min(),
                 int hi = std::numeric_limits<int>::max()) const;
    int64_t getInt(const std::string &name, int64_t fallback) const;
    double getDouble(const std::string &name, double fallback) const;
    std::vector<std::string> getList(const std::string &name, const std::vector<std::string> &fallback = {}) const;
};

struct Context {
    bool json = false;      // --json: one JSON document on stdout
    std::string progress;   // "bar", "plain", "json", "none"
    std::stop_token stop;   // Ctrl-C requests a stop
    ProgressFn progressFn;  // prints according to `progress`
    bool quiet = false;     // a data-parallel rank other than 0: rank 0 prints the results
    void print(const nlohmann::json &j, const std::string &text) const; // JSON or text
    // A benchmark's table: print(j, markdown), and the Markdown also written to --out FILE when given.
    int printTable(const Args &a, const nlohmann::json &j, const std::string &markdown) const;
};

struct Command {
    std::string name;                    // "corpus add"
    std::string summary;                 // one line for the command list
    std::string usage;                   // "PROJECT --lang CODE --group old|new FILE..."
    std::string description;             // paragraphs for --help
    std::vector<OptionSpec> options;
    int minPositionals = 0;
    int maxPositionals = 0;              // -1: any number
    bool reportsJson = true;             // accepts --json
    std::function<int(const Args &, Context &)> run;
    // Runs data-parallel when a launcher (polymoe launch, torchrun, srun) starts it as one of
    // several ranks; every other command refuses to start as a rank.
    bool dataParallel = false;
};

// An option's default as shown in --help and applied when the option is absent, from the core
// spec that owns it (ExpansionStageSpec{}, TrainConfig{}...), so the CLI keeps no copy of its own.
// Doubles in their shortest text that reads back as the same value (1/3: "0.3333333333333333").
std::string fmtDefault(double v);
template <std::integral T>
std::string fmtDefault(T v)
{
    return std::to_string(v);
}

std::vector<Command> &registry();
// The command whose name is the longest run of leading words of args ("corpus add" before "corpus");
// null when none. *words: how many words its name has.
const Command *findCommand(const std::vector<std::string> &args, size_t *words = nullptr);
struct Register {
    explicit Register(Command c) { registry().push_back(std::move(c)); }
};

// Exit codes shared by all commands (kExitOk...) and the --progress json events: polymoe/cli_contract.h.

// Thrown for wrong arguments: printed with the command's usage, exit code 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Starts o.nproc ranks of this polymoe running `command` ("train PROJECT ...") on 127.0.0.1 with the
// variables torchrun sets, watches them, names a rank that fails on stderr and ends the others (a
// grace of 10 s to leave on their own, then SIGTERM, then SIGKILL); Ctrl-C is passed on. Returns
// the first failed rank's exit status, 3 when they were cancelled, else 0. With rank0Output, rank
// 0's stdout is collected there instead of printed (cli_launch.cpp).
struct RankOptions {
    int nproc = 2;
    std::string backend;        // empty: gloo
    double timeoutSeconds = 60; // POLYMOE_DIST_TIMEOUT of the ranks
    int port = 0;               // 0: a free one
};
int runRanks(const std::vector<std::string> &command, const RankOptions &o, const Context &ctx,
             std::string *rank0Output = nullptr);

// Shared printers (cli_dense.cpp): training status as a bar, plain lines or JSON lines; held-out
// perplexity as a table or JSON.
TrainStatusFn makeTrainStatus(const Context &ctx);
std::string perplexityTable(const std::vector<PerplexityRow> &rows);
nlohmann::json perplexityJson(const std::vector<PerplexityRow> &rows);

// The forgetting report's PNG charts (cli_report.cpp), for `report --plots` and the demo: false in a
// build without Qt, where writeReportPlotFiles throws kNoPlotsMessage. Returns the files written and
// appends one line per file to *text.
inline constexpr const char *kNoPlotsMessage =
    "this polymoe was built without Qt; the plots need the workbench build";
bool reportPlotsAvailable();
nlohmann::json writeReportPlotFiles(const ForgettingReport &report, const std::filesystem::path &dir, int width,
                                    int height, std::string *text);

} // namespace polymoe::cli
