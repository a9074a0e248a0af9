// polymoe: the headless front end over core. Parses the command line against the command table
// (cli_*.cpp), prints help, runs the command, and holds the one top-level catch: messages go to
// stderr, failures exit 1, wrong usage 2, cancellation (Ctrl-C) 3.
#include "cli.h"

#include "polymoe/distributed.h"
#include "polymoe/error.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>
#include <unistd.h>

using namespace polymoe;
using namespace polymoe::cli;

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void onSignal(int) { g_interrupted = 1; }

const std::vector<OptionSpec> kGlobalOptions = {
    {"--json", "", "print the result as one JSON document on stdout", ""},
    {"--progress", "MODE", "progress on stderr: bar, plain, none; or json: one JSON line per update on stdout", ""},
    {"--help", "", "show this help", ""},
};

void printOptions(const std::vector<OptionSpec> &opts)
{
    for (const auto &o : opts) {
        std::string left = "  " + o.name + (o.valueName.empty() ? "" : " " + o.valueName);
        if (left.size() < 28)
            left.resize(28, ' ');
        else
            left += "\n" + std::string(28, ' ');
        std::cout << left << o.help;
        if (!o.defaultValue.empty())
            std::cout << " (default: " << o.defaultValue << ")";
        std::cout << "\n";
    }
}

void printMainHelp()
{
    std::cout << "polymoe " << POLYMOE_VERSION
              << ": teach a language model new languages with Mixture-of-Experts (MoE-LPR, LayerMoE)\n\n"
                 "usage: polymoe COMMAND [ARGS...] [--json] [--progress MODE]\n"
                 "       polymoe COMMAND --help\n       polymoe --version\n\ncommands:\n";
    for (const auto &c : registry()) {
        std::string left = "  " + c.name;
        left.resize(std::max<size_t>(left.size() + 2, 24), ' ');
        std::cout << left << c.summary << "\n";
    }
    std::cout << "\nexit status: 0 success, 1 failure, 2 wrong usage, 3 cancelled (Ctrl-C)\n";
}

void printCommandHelp(const Command &c)
{
    std::cout << "usage: polymoe " << c.name << (c.usage.empty() ? "" : " " + c.usage) << "\n\n" << c.summary << "\n";
    if (!c.description.empty())
        std::cout << "\n" << c.description << "\n";
    if (!c.options.empty()) {
        std::cout << "\noptions:\n";
        printOptions(c.options);
    }
    std::cout << "\ncommon options:\n";
    std::vector<OptionSpec> common;
    for (const auto &o : kGlobalOptions)
        if (o.name != "--json" || c.reportsJson)
            common.push_back(o);
    printOptions(common);
}

// Progress printers. Throttled to about 10 updates a second (bar) or one every 2 s (plain).
ProgressFn makeProgress(const std::string &mode)
{
    if (mode == "none")
        return {};
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    auto lastStage = std::make_shared<std::string>();
    return [mode, last, lastStage](const Progress &p) {
        const auto now = std::chrono::steady_clock::now();
        const bool finished = p.total > 0 && p.done >= p.total;
        const auto gap = mode == "plain" ? std::chrono::milliseconds(2000) : std::chrono::milliseconds(100);
        if (!finished && p.stage == *lastStage && now - *last < gap)
            return;
        *last = now;
        const bool newStage = p.stage != *lastStage;
        *lastStage = p.stage;
        if (mode == "json") {
            namespace ev = cli::event;
            nlohmann::json j = {{ev::kEvent, ev::kProgress}, {ev::kStage, p.stage}, {ev::kDone, p.done},
                                {ev::kTotal, p.total}, {ev::kUnit, p.unit}};
            if (!p.message.empty())
                j[ev::kMessage] = p.message;
            std::cout << j.dump() << std::endl;
            return;
        }
        std::string line = p.stage;
        if (p.total > 0) {
            const double frac = double(p.done) / double(p.total);
            if (mode == "bar") {
                const int width = 24, fill = int(frac * width + 0.5);
                line += " [" + std::string(size_t(fill), '#') + std::string(size_t(width - fill), '.') + "]";
            }
            char buf[96];
            std::snprintf(buf, sizeof buf, " %lld/%lld %s (%.0f%%)", (long long)p.done, (long long)p.total,
                          p.unit.c_str(), 100 * frac);
            line += buf;
        } else if (p.done > 0) {
            line += " " + std::to_string(p.done) + " " + p.unit;
        }
        if (!p.message.empty())
            line += "  " + p.message;
        if (mode == "bar") {
            if (newStage)
                std::cerr << "\n";
            std::cerr << "\r\033[K" << line << std::flush;
            if (finished)
                std::cerr << "\n";
        } else {
            std::cerr << line << "\n";
        }
    };
}

int runCommand(const Command &cmd, const std::vector<std::string> &argv)
{
    Args args;
    bool json = false;
    std::string progress = ::isatty(2) ? "bar" : "plain";
    for (size_t i = 0; i < argv.size(); ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            printCommandHelp(cmd);
            return kExitOk;
        }
        if (a == "--") {
            args.positionals.insert(args.positionals.end(), argv.begin() + long(i) + 1, argv.end());
            break;
        }
        if (a.rfind("--", 0) != 0 || a.size() == 2) {
            args.positionals.push_back(a);
            continue;
        }
        std::string value;
        bool hasValue = false;
        if (auto eq = a.find('='); eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            hasValue = true;
        }
        if (a == "--json" && cmd.reportsJson) {
            json = true;
            continue;
        }
        if (a == "--progress") {
            if (!hasValue && i + 1 < argv.size())
                value = argv[++i];
            if (value != "bar" && value != "plain" && value != "json" && value != "none")
                throw UsageError("--progress expects bar, plain, json or none");
            progress = value;
            continue;
        }
        const OptionSpec *spec = nullptr;
        for (const auto &o : cmd.options)
            if (o.name == a)
                spec = &o;
        if (!spec)
            throw UsageError("unknown option '" + a + "' for 'polymoe " + cmd.name + "'");
        if (spec->valueName.empty()) {
            if (hasValue)
                throw UsageError(a + " takes no value");
            args.values[a] = "1";
        } else {
            if (!hasValue) {
                if (i + 1 >= argv.size())
                    throw UsageError(a + " needs a value (" + spec->valueName + ")");
                value = argv[++i];
            }
            args.values[a] = value;
        }
    }
    const int n = int(args.positionals.size());
    if (n < cmd.minPositionals || (cmd.maxPositionals >= 0 && n > cmd.maxPositionals))
        throw UsageError("wrong number of arguments");
    for (const auto &o : cmd.options)
        if (!o.defaultValue.empty() && !o.valueName.empty() && !args.has(o.name))
            args.values[o.name] = o.defaultValue;

    // A rank of a data-parallel run (polymoe launch, torchrun, srun set WORLD_SIZE or SLURM's
    // variables): join the process group; only rank 0 prints.
    const DistributedEnv denv = distributedEnvFromEnvironment();
    if (denv.worldSize > 1 && !cmd.dataParallel)
        throw UsageError("started as rank " + std::to_string(denv.rank) + " of " + std::to_string(denv.worldSize) +
                         " (" + (denv.launcher == "slurm" ? "SLURM's variables" : "WORLD_SIZE is set") +
                         "), but 'polymoe " + cmd.name + "' does not run data-parallel ('pretrain', 'train' and 'bench train' do); "
                         "start it once");
    if (cmd.dataParallel) {
        // A peer that died leaves sockets that fail on write: Gloo writes with writev, which raises
        // SIGPIPE and would end this rank silently, before it can name the lost rank. As Python (and
        // so torchrun's usual ranks) does, ignore it: the write fails with EPIPE and c10d throws.
        std::signal(SIGPIPE, SIG_IGN);
        initDistributed(denv);
    }
    struct Leave {
        ~Leave() { shutdownDistributed(); }
    } leave;
    // Ctrl-C asks the job to stop at its next step; a watcher turns the signal flag into a request.
    std::stop_source stopSource;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::atomic<bool> done{false};
    std::thread watcher([&] {
        while (!done.load()) {
            if (g_interrupted) {
                stopSource.request_stop();
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    Context ctx;
    ctx.quiet = distributedRank() > 0;
    if (ctx.quiet)
        progress = "none";
    ctx.json = json;
    ctx.progress = json && progress != "json" ? (progress == "bar" ? "none" : progress) : progress;
    if (json && progress == "bar")
        ctx.progress = "none";
    ctx.stop = stopSource.get_token();
    ctx.progressFn = makeProgress(ctx.progress);
    struct Join {
        std::atomic<bool> &done;
        std::thread &t;
        ~Join() { done = true; t.join(); }
    } join{done, watcher};
    return cmd.run(args, ctx);
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        printMainHelp();
        return args.empty() ? kExitUsage : kExitOk;
    }
    if (args[0] == "--version") {
        std::cout << "polymoe " << POLYMOE_VERSION << "\n";
        return kExitOk;
    }
    size_t words = 0;
    const Command *cmd = findCommand(args, &words);
    if (!cmd) {
        std::string group;
        for (const auto &c : registry())
            if (c.name.rfind(args[0] + " ", 0) == 0)
                group += "\n  polymoe " + c.name + "  " + c.summary;
        if (!group.empty())
            std::cerr << "polymoe: '" << args[0] << "' needs a subcommand:" << group << "\n";
        else
            std::cerr << "polymoe: unknown command '" << args[0] << "' (see polymoe --help)\n";
        return kExitUsage;
    }
    try {
        return runCommand(*cmd, std::vector<std::string>(args.begin() + long(words), args.end()));
    } catch (const UsageError &e) {
        std::cerr << "polymoe " << cmd->name << ": " << e.what() << "\nusage: polymoe " << cmd->name << " "
                  << cmd->usage << "  (see --help)\n";
        return kExitUsage;
    } catch (const Cancelled &) {
        std::cerr << "\npolymoe " << cmd->name << ": cancelled; nothing half-written was kept\n";
        return kExitCancelled;
    } catch (const std::exception &e) {
        std::cerr << "\npolymoe " << cmd->name << ": error: " << e.what() << "\n";
        return kExitError;
    }
}
