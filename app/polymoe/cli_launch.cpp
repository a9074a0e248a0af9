// polymoe launch: a data-parallel run on this machine, started the way torchrun starts one. It runs
// N copies of this polymoe with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT set (polymoe/distributed.h reads them), watches them, and when one fails names it and
// ends the others: they leave on their own when c10d loses the rank, and are stopped otherwise.
#include "cli.h"

#include "polymoe/distributed.h"
#include "polymoe/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

namespace polymoe::cli {

namespace {

// A TCP port nobody listens on now (the kernel picks it); rank 0 binds it a moment later.
int freePort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        throw IoError(std::string("launch: cannot open a socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw IoError("launch: cannot find a free port on 127.0.0.1: " + why);
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string describeExit(int status)
{
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char *name = sigabbrev_np(sig);
        return "was killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
    }
    return "ended (status " + std::to_string(status) + ")";
}

int launch(const Args &a, Context &ctx)
{
    const int nproc = a.getInt32("--nproc", 2, 1, 1024);
    const std::string backend = a.get("--backend");
    if (!backend.empty() && backend != "gloo" && backend != "nccl")
        throw UsageError("--backend expects gloo or nccl");
    const double timeout = a.getDouble("--timeout", 60);
    if (!(timeout > 0) || timeout > 86400)
        throw UsageError("--timeout expects seconds in (0, 86400]");
    const std::vector<std::string> &command = a.positionals;
    // The command must be one that runs data-parallel.
    const Command *target = findCommand(command);
    if (!target || !target->dataParallel)
        throw UsageError("'" + command[0] + "' does not run data-parallel; launch runs 'pretrain' or 'train' "
                         "(polymoe launch --nproc N -- train PROJECT --stage 1 ...)");
    if (!distributedAvailable())
        throw ConfigError("this polymoe was built without LibTorch's c10d (Gloo or NCCL); it runs in one process only");
    if (!backend.empty())
        requireBackendBuilt(backend); // before any rank starts: one message, not one per rank

    RankOptions o;
    o.nproc = nproc;
    o.backend = backend;
    o.timeoutSeconds = timeout;
    o.port = a.has("--port") ? a.getInt32("--port", 0, 1, 65535) : 0;
    return runRanks(command, o, ctx);
}

} // namespace

namespace {

// Starts rank r of the command as a child process: the launcher's variables set, this program
// exec'd. `out`: the fd its stdout goes to (-1: this process's); `closeFds` are closed in it.
pid_t startRank(int r, const std::filesystem::path &self, const std::vector<std::string> &command,
                const RankOptions &o, int port, int out, const std::vector<int> &closeFds)
{
    const pid_t pid = ::fork();
    if (pid != 0)
        return pid; // the launcher (or -1: fork failed)
    if (out >= 0)
        ::dup2(out, 1);
    for (int fd : closeFds)
        ::close(fd);
    ::setenv("RANK", std::to_string(r).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    ::setenv("POLYMOE_DIST_TIMEOUT", fmtDefault(o.timeoutSeconds).c_str(), 1);
    if (!o.backend.empty())
        ::setenv("POLYMOE_DIST_BACKEND", o.backend.c_str(), 1);
    ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
    std::vector<std::string> args{self.string()};
    args.insert(args.end(), command.begin(), command.end());
    std::vector<char *> argv;
    for (auto &s : args)
        argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(self.c_str(), argv.data());
    std::fprintf(stderr, "polymoe launch: cannot start rank %d: %s\n", r, std::strerror(errno));
    ::_exit(127);
}

void signalRunning(const std::vector<pid_t> &pids, const std::vector<int> &status, int sig)
{
    for (size_t r = 0; r < pids.size(); ++r)
        if (status[r] == -1)
            ::kill(pids[r], sig);
}

// Waits for every rank. A failed rank is named at once; the others get a grace period to leave on
// their own (c10d tells them the rank is gone), then SIGTERM, then SIGKILL. A stop request (Ctrl-C,
// SIGTERM) goes to every rank, so that all stop after the same step. Returns the exit code: the
// first failed rank's, else cancelled if a rank was, else success.
int watchRanks(const std::vector<pid_t> &pids, const Context &ctx)
{
    using clock = std::chrono::steady_clock;
    std::vector<int> status(pids.size(), -1);
    size_t running = pids.size();
    int firstFailure = -1;
    clock::time_point failedAt{};
    bool forwardedStop = false, sentTerm = false, sentKill = false;
    while (running > 0) {
        for (size_t r = 0; r < pids.size(); ++r) {
            int st = 0;
            if (status[r] != -1 || ::waitpid(pids[r], &st, WNOHANG) != pids[r])
                continue;
            status[r] = st;
            --running;
            const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            const bool cancelled = WIFEXITED(st) && WEXITSTATUS(st) == kExitCancelled;
            if (!ok && !cancelled && firstFailure < 0) {
                firstFailure = int(r);
                failedAt = clock::now();
                std::cerr << "polymoe launch: rank " << r << " (pid " << pids[r] << ") " << describeExit(st)
                          << "; ending the other ranks" << std::endl;
            }
        }
        if (ctx.stop.stop_requested() && !forwardedStop) {
            forwardedStop = true;
            signalRunning(pids, status, SIGTERM);
        }
        if (firstFailure >= 0 && running > 0) {
            const auto waited = clock::now() - failedAt;
            if (!sentTerm && waited > std::chrono::seconds(10)) {
                sentTerm = true;
                signalRunning(pids, status, SIGTERM);
            }
            if (!sentKill && waited > std::chrono::seconds(15)) {
                sentKill = true;
                signalRunning(pids, status, SIGKILL);
            }
        }
        if (running > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (firstFailure >= 0) {
        const int st = status[size_t(firstFailure)];
        return WIFEXITED(st) ? WEXITSTATUS(st) : kExitError;
    }
    for (int st : status)
        if (WIFEXITED(st) && WEXITSTATUS(st) == kExitCancelled)
            return kExitCancelled;
    return kExitOk;
}

} // namespace

int runRanks(const std::vector<std::string> &command, const RankOptions &o, const Context &ctx, std::string *rank0Output)
{
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
        throw IoError("launch: cannot find this program (/proc/self/exe): " + ec.message());
    const int port = o.port > 0 ? o.port : freePort();
    // Rank 0's output through a pipe when the caller reads it (bench train --nproc).
    int pipeFds[2] = {-1, -1};
    if (rank0Output && ::pipe(pipeFds) != 0)
        throw IoError(std::string("launch: pipe failed: ") + std::strerror(errno));
    const std::vector<int> pipeEnds = rank0Output ? std::vector<int>{pipeFds[0], pipeFds[1]} : std::vector<int>{};

    std::vector<pid_t> pids;
    for (int r = 0; r < o.nproc; ++r) {
        const pid_t pid = startRank(r, self, command, o, port, r == 0 && rank0Output ? pipeFds[1] : -1, pipeEnds);
        if (pid < 0) {
            const std::string why = std::strerror(errno);
            for (pid_t started : pids) { // no rank waits for one that never comes
                ::kill(started, SIGKILL);
                ::waitpid(started, nullptr, 0);
            }
            for (int fd : pipeEnds)
                ::close(fd);
            throw IoError("launch: cannot start rank " + std::to_string(r) + ": fork failed: " + why);
        }
        pids.push_back(pid);
    }
    std::thread reader;
    if (rank0Output) {
        ::close(pipeFds[1]);
        reader = std::thread([fd = pipeFds[0], rank0Output] {
            char buf[4096];
            ssize_t n;
            while ((n = ::read(fd, buf, sizeof buf)) > 0)
                rank0Output->append(buf, size_t(n));
            ::close(fd);
        });
    }
    if (!ctx.quiet && ctx.progress != "none") {
        std::cerr << "polymoe launch: " << o.nproc << (o.nproc == 1 ? " rank" : " ranks") << " of '" << command[0]
                  << "' on 127.0.0.1:" << port << " (pids";
        for (size_t r = 0; r < pids.size(); ++r)
            std::cerr << (r ? ", " : " ") << pids[r];
        std::cerr << ")" << std::endl;
    }
    const int code = watchRanks(pids, ctx);
    if (reader.joinable())
        reader.join();
    return code;
}

namespace {

Register launchCmd({"launch", "run 'pretrain' or 'train' data-parallel in N processes on this machine",
                    "--nproc N [--backend gloo|nccl] -- pretrain|train PROJECT ...",
                    "Starts N ranks of the command, as 'torchrun --nproc-per-node N --no-python polymoe ...' would,\n"
                    "over LibTorch's c10d (Gloo, or NCCL on GPUs) on 127.0.0.1. Each step's global batch is\n"
                    "N x --grad-accum x --batch-size sequences; each rank reads its own share; rank 0 alone writes\n"
                    "the project, the checkpoints and the model. A rank that fails is named, and the others end\n"
                    "within the timeout; the last checkpoint stays valid and the same launch with --resume\n"
                    "continues it.\n"
                    "Several machines: torchrun or srun (README, 'Data-parallel training'). --nproc 1 with a\n"
                    "--backend joins a group of one: that backend checked on a machine with one GPU.",
                    {{"--nproc", "N", "processes (ranks)", "2"},
                     {"--backend", "NAME", "gloo (CPU) or nccl (CUDA, a GPU per rank); default: nccl where built and a GPU is seen, else gloo", ""},
                     {"--port", "P", "rendezvous port on 127.0.0.1 (default: a free one)", ""},
                     {"--timeout", "S", "seconds a rendezvous or a collective may wait for a rank", "60"}},
                    1, -1, false, launch});

} // namespace

} // namespace polymoe::cli
