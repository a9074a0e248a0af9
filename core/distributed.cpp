// The process group of a data-parallel run and its collectives (polymoe/distributed.h,
// distributed_ops.h): c10d's TCPStore for the rendezvous, and ProcessGroupGloo (Debian's LibTorch,
// CPU) or ProcessGroupNCCL (a CUDA LibTorch 2.x, one GPU per process) for the sums. Nothing here is
// home-made communication; this file only finds the ranks, wraps c10d's errors in messages that name
// the rank, packs gradients into buckets, and moves a tensor to the GPU and back where NCCL needs it
// there (the few small CPU sums: losses, flags, run ids).
#include "polymoe/distributed.h"

#include "distributed_ops.h"
#include "polymoe/error.h"
#include "polymoe/run_liveness.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#define POLYMOE_HAVE_C10D (POLYMOE_HAVE_C10D_GLOO || POLYMOE_HAVE_C10D_NCCL)
#if POLYMOE_HAVE_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#endif
#if POLYMOE_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if POLYMOE_HAVE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include <unistd.h>

namespace polymoe {

namespace {

int64_t parseInteger(const std::string &name, const std::string &value, int64_t lo, int64_t hi)
{
    int64_t v = 0;
    const char *end = value.data() + value.size();
    const auto [p, ec] = std::from_chars(value.data(), end, v);
    if (ec != std::errc() || p != end || value.empty())
        throw ConfigError("environment variable " + name + "='" + value + "' is not a whole number");
    if (v < lo || v > hi)
        throw ConfigError("environment variable " + name + "=" + value + " is out of range (" + std::to_string(lo) +
                          "-" + std::to_string(hi) + ")");
    return v;
}

// SLURM writes counts like "2(x3)" (2 tasks on each of 3 nodes): the leading number.
std::string leadingCount(const std::string &v)
{
    size_t n = 0;
    while (n < v.size() && v[n] >= '0' && v[n] <= '9')
        ++n;
    return v.substr(0, n);
}

struct Group {
    int rank = 0, world = 1, restartCount = 0;
    std::string launchId;       // distributedLaunchId()
    double timeout = 60;
    std::string backend;        // "gloo" or "nccl" once joined
    at::Device commDevice = at::kCPU; // where the collectives' tensors must lie (NCCL: this rank's GPU)
#if POLYMOE_HAVE_C10D
    c10::intrusive_ptr<c10d::Store> store;
#endif
#if POLYMOE_HAVE_C10D_GLOO
    c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#if POLYMOE_HAVE_C10D_NCCL
    c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
    bool joined() const { return !backend.empty(); }
#if POLYMOE_HAVE_C10D
    // The two collectives a run uses, on whichever process group it joined. The tensors lie on
    // commDevice.
    c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor> &t)
    {
        return onGroup([&](auto &pg) { return pg.allreduce(t); });
    }
    c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor> &t)
    {
        return onGroup([&](auto &pg) { return pg.broadcast(t); });
    }
    template <typename Call>
    c10::intrusive_ptr<c10d::Work> onGroup(Call call)
    {
#if POLYMOE_HAVE_C10D_NCCL
        if (nccl)
            return call(*nccl);
#endif
#if POLYMOE_HAVE_C10D_GLOO
        if (gloo)
            return call(*gloo);
#endif
        throw Error("no process group is joined");
    }
#endif
};
Group &group()
{
    static Group g;
    return g;
}

// c10d's messages carry a stack trace after the first line.
std::string firstLine(const std::string &text)
{
    return text.substr(0, text.find('\n'));
}

// Seconds as a message shows them: "60", "2.5".
std::string seconds(double s)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", s);
    return text;
}

std::string whoFailed(const std::string &what, const std::string &cause)
{
    const Group &g = group();
    const std::string others = g.world == 2 ? "rank " + std::to_string(1 - g.rank) : "another rank";
    const std::string secs = seconds(g.timeout);
    return "rank " + std::to_string(g.rank) + " of " + std::to_string(g.world) + ": " + what + " failed: " + others +
           " stopped (it died, was killed, or did not answer within " + secs +
           " s, POLYMOE_DIST_TIMEOUT); the last checkpoint stays valid and the run resumes with --resume (c10d: " +
           cause + ")";
}

} // namespace

std::string firstSlurmHost(const std::string &nodelist)
{
    // The first item: up to a comma outside brackets.
    size_t end = 0;
    int depth = 0;
    for (; end < nodelist.size(); ++end) {
        if (nodelist[end] == '[')
            ++depth;
        else if (nodelist[end] == ']')
            --depth;
        else if (nodelist[end] == ',' && depth == 0)
            break;
    }
    const std::string item = nodelist.substr(0, end);
    const size_t open = item.find('[');
    if (open == std::string::npos)
        return item;
    // prefix[003-005,010]suffix -> prefix003suffix: the first number of the range, its zeros kept.
    const size_t close = item.find(']', open);
    const std::string inside = item.substr(open + 1, (close == std::string::npos ? item.size() : close) - open - 1);
    size_t n = 0;
    while (n < inside.size() && inside[n] != '-' && inside[n] != ',')
        ++n;
    return item.substr(0, open) + inside.substr(0, n) + (close == std::string::npos ? "" : item.substr(close + 1));
}

DistributedEnv distributedEnvFrom(const EnvLookup &get)
{
    DistributedEnv e;
    auto intVar = [&](const std::string &name, int64_t lo, int64_t hi) -> std::optional<int64_t> {
        const auto v = get(name);
        if (!v)
            return std::nullopt;
        return parseInteger(name, *v, lo, hi);
    };
    constexpr int64_t kMaxWorld = 1 << 20;
    if (const auto world = intVar("WORLD_SIZE", 1, kMaxWorld)) {
        e.worldSize = int(*world);
        const auto rank = intVar("RANK", 0, kMaxWorld - 1);
        if (!rank && e.worldSize > 1)
            throw ConfigError("environment variable WORLD_SIZE=" + std::to_string(e.worldSize) + " is set but RANK is not");
        e.rank = int(rank.value_or(0));
        e.localRank = int(intVar("LOCAL_RANK", 0, kMaxWorld - 1).value_or(e.rank));
        e.localWorldSize = int(intVar("LOCAL_WORLD_SIZE", 1, kMaxWorld).value_or(e.worldSize));
        e.launcher = get("TORCHELASTIC_RUN_ID") ? "torchrun" : "env";
        if (const auto id = get("TORCHELASTIC_RUN_ID"))
            e.torchrunId = *id;
        if (const auto a = get("MASTER_ADDR"))
            e.masterAddr = *a;
        e.masterPort = int(intVar("MASTER_PORT", 1, 65535).value_or(e.masterPort));
    } else if (const auto tasks = get("SLURM_STEP_NUM_TASKS") ? get("SLURM_STEP_NUM_TASKS") : get("SLURM_NTASKS")) {
        const char *worldName = get("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
        e.worldSize = int(parseInteger(worldName, leadingCount(*tasks).empty() ? *tasks : leadingCount(*tasks), 1, kMaxWorld));
        e.rank = int(intVar("SLURM_PROCID", 0, kMaxWorld - 1).value_or(0));
        e.localRank = int(intVar("SLURM_LOCALID", 0, kMaxWorld - 1).value_or(0));
        if (const auto per = get("SLURM_NTASKS_PER_NODE"))
            e.localWorldSize = int(parseInteger("SLURM_NTASKS_PER_NODE", leadingCount(*per).empty() ? *per : leadingCount(*per), 1, kMaxWorld));
        else
            e.localWorldSize = e.worldSize;
        e.launcher = "slurm";
        if (const auto a = get("MASTER_ADDR"))
            e.masterAddr = *a;
        else if (const auto nodes = get("SLURM_STEP_NODELIST") ? get("SLURM_STEP_NODELIST") : get("SLURM_JOB_NODELIST"))
            e.masterAddr = firstSlurmHost(*nodes);
        // One port per job, so that two jobs sharing a node do not meet.
        const int64_t job = intVar("SLURM_JOB_ID", 0, std::numeric_limits<int64_t>::max()).value_or(0);
        e.masterPort = int(intVar("MASTER_PORT", 1, 65535).value_or(29500 + job % 1000));
    }
    if (e.rank >= e.worldSize)
        throw ConfigError("rank " + std::to_string(e.rank) + " is not below the world size " + std::to_string(e.worldSize));
    if (e.localRank >= e.localWorldSize && e.worldSize > 1)
        throw ConfigError("local rank " + std::to_string(e.localRank) + " is not below the local world size " +
                          std::to_string(e.localWorldSize));
    if (e.masterAddr.empty())
        throw ConfigError("environment variable MASTER_ADDR is empty");
    if (const auto v = get("TORCHELASTIC_USE_AGENT_STORE"))
        e.agentStore = *v == "True" || *v == "true" || *v == "1";
    e.restartCount = int(intVar("TORCHELASTIC_RESTART_COUNT", 0, 1 << 30).value_or(0));
    if (const auto b = get("POLYMOE_DIST_BACKEND"))
        e.backend = *b;
    if (const auto t = get("POLYMOE_DIST_TIMEOUT")) {
        char *end = nullptr;
        const double secs = std::strtod(t->c_str(), &end);
        if (t->empty() || *end != '\0' || !std::isfinite(secs) || secs <= 0 || secs > 86400)
            throw ConfigError("environment variable POLYMOE_DIST_TIMEOUT='" + *t + "' must be seconds in (0, 86400]");
        e.timeoutSeconds = secs;
    }
    return e;
}

DistributedEnv distributedEnvFromEnvironment()
{
    return distributedEnvFrom([](const std::string &name) -> std::optional<std::string> {
        if (const char *v = std::getenv(name.c_str()))
            return std::string(v);
        return std::nullopt;
    });
}

bool distributedAvailable()
{
    return POLYMOE_HAVE_C10D != 0;
}

std::string distributedBackends()
{
    std::string b = POLYMOE_HAVE_C10D_GLOO ? "gloo" : "";
    if (POLYMOE_HAVE_C10D_NCCL)
        b += b.empty() ? "nccl" : ", nccl";
    return b;
}

void requireBackendBuilt(const std::string &b)
{
    const std::string has = distributedAvailable() ? distributedBackends() : std::string("none");
    if (b != "gloo" && b != "nccl")
        throw ConfigError("backend must be gloo or nccl, not '" + b + "'");
    if (b == "nccl" && !POLYMOE_HAVE_C10D_NCCL)
        throw ConfigError("backend nccl: this polymoe was built without NCCL, which comes with a CUDA LibTorch 2.x "
                          "(PyPI's torch, README 'CUDA kernels'); Debian's LibTorch is CPU-only. This build has: " + has);
    if (b == "gloo" && !POLYMOE_HAVE_C10D_GLOO)
        throw ConfigError("backend gloo: this polymoe was built without Gloo, which needs Debian's libtorch-dev and "
                          "libgloo-dev's headers (PyPI's torch ships none). This build has: " + has);
}

int distributedRank() { return group().rank; }
int distributedWorldSize() { return group().world; }
int distributedRestartCount() { return group().restartCount; }
std::string distributedLaunchId() { return group().launchId; }
double distributedTimeoutSeconds() { return group().timeout; }
std::string distributedBackend() { return group().backend; }

namespace {

// The backend named (POLYMOE_DIST_BACKEND, launch --backend), or the one that follows the device:
// NCCL where this build has it and a GPU is visible, else Gloo.
std::string chooseBackend(const DistributedEnv &env)
{
    if (!env.backend.empty()) {
        requireBackendBuilt(env.backend);
        return env.backend;
    }
#if POLYMOE_HAVE_C10D_NCCL
    if (c10::cuda::device_count() > 0 || !POLYMOE_HAVE_C10D_GLOO)
        return "nccl";
#endif
    return "gloo";
}

#if POLYMOE_HAVE_C10D_GLOO
void joinGloo(Group &g, const DistributedEnv &env, std::chrono::milliseconds timeout)
{
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char *ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = env.masterAddr == "127.0.0.1" || env.masterAddr == "localhost" || env.masterAddr == "::1";
    if (ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (loopback)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    g.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, env.rank, env.worldSize, opts);
}
#endif

#if POLYMOE_HAVE_C10D_NCCL
// One GPU per process: local rank r takes GPU r, made the current device, so that the model, the
// buckets and NCCL's communicator all lie there.
void joinNccl(Group &g, const DistributedEnv &env, std::chrono::milliseconds timeout)
{
    const int gpus = int(c10::cuda::device_count());
    const std::string who = "backend nccl, rank " + std::to_string(env.rank) + ": ";
    if (gpus == 0)
        throw ConfigError(who + "no CUDA device is visible; NCCL sums CUDA tensors (Gloo sums CPU ones)");
    if (env.localWorldSize > gpus)
        throw ConfigError(who + std::to_string(env.localWorldSize) + " processes on this machine (LOCAL_WORLD_SIZE) "
                          "but " + std::to_string(gpus) + " CUDA device(s): NCCL needs a GPU of its own for each "
                          "process; start fewer per machine");
    c10::cuda::set_device(c10::DeviceIndex(env.localRank));
    g.commDevice = at::Device(at::kCUDA, c10::DeviceIndex(env.localRank));
    // wait() then blocks until a sum is done or the timeout has passed, and throws: a rank that died
    // gives the others this file's message (whoFailed) rather than NCCL's watchdog aborting them.
    if (!std::getenv("TORCH_NCCL_BLOCKING_WAIT"))
        ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 1);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    g.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(g.store, env.rank, env.worldSize, opts);
    g.nccl->setBoundDeviceId(g.commDevice);
    g.nccl->eagerConnectSingleDevice(g.commDevice); // fail here, at the rendezvous, not at the first sum
}
#endif

#if POLYMOE_HAVE_C10D
// What to do when torchrun's agent store cannot be used (probeAgentStore, or a rendezvous through
// it that failed).
std::string agentStoreAdvice()
{
#if TORCH_VERSION_MAJOR < 2
    std::string why = "This polymoe's LibTorch is " TORCH_VERSION ", whose store client does not speak the "
                      "protocol of the store of torchrun from PyTorch 2.x.";
#else
    std::string why = "Its TCPStore protocol may differ from that of this polymoe's LibTorch " TORCH_VERSION ".";
#endif
    return why + " Start torchrun with --rdzv-backend c10d (--standalone on one machine) and "
                 "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, so that rank 0 serves the store itself, or use polymoe "
                 "launch on one machine";
}

// torchrun's agent serves the store that every rank connects to. A client that speaks another
// TCPStore protocol misreads its answers or waits for one that never comes (LibTorch 1.x against
// the store of torchrun 2.x, whose protocol opens with a VALIDATE query and renumbers the others).
// So a key is written and read back, on a thread of its own, with a deadline. A thread left
// waiting holds the store and ends with the process, which is about to exit with the message
// thrown here.
void probeAgentStore(const c10::intrusive_ptr<c10d::Store> &store, const DistributedEnv &env,
                     std::chrono::milliseconds deadline)
{
    auto answered = std::make_shared<std::promise<std::string>>();
    auto answer = answered->get_future();
    const std::string key = "polymoe/probe/" + std::to_string(env.rank);
    std::thread([store, answered, key] {
        try {
            const std::vector<uint8_t> sent = {'o', 'k'};
            store->set(key, sent);
            answered->set_value(store->get(key) == sent ? "" : "it answered a query with another value");
        } catch (const std::exception &e) {
            answered->set_value(firstLine(e.what()));
        }
    }).detach();
    std::string cause;
    if (answer.wait_for(deadline) == std::future_status::timeout)
        cause = "it did not answer a query within " + seconds(double(deadline.count()) / 1000) + " s";
    else
        cause = answer.get();
    if (cause.empty())
        return;
    throw ConfigError("rank " + std::to_string(env.rank) + " of " + std::to_string(env.worldSize) +
                      ": torchrun's store at " + env.masterAddr + ":" + std::to_string(env.masterPort) +
                      " (TORCHELASTIC_USE_AGENT_STORE=True) cannot be used: " + cause + ". " + agentStoreAdvice());
}
#endif

} // namespace

void initDistributed(const DistributedEnv &env)
{
    Group &g = group();
    // One process joins a group of one only when a launcher started it with a backend named
    // (polymoe launch --nproc 1 --backend nccl: NCCL checked on a machine with one GPU).
    if (env.worldSize <= 1 && (env.launcher.empty() || env.backend.empty()))
        return;
    if (g.joined())
        throw ConfigError("the process group is already joined");
    const std::string backend = chooseBackend(env);
#if POLYMOE_HAVE_C10D
    const auto timeout = std::chrono::milliseconds(int64_t(env.timeoutSeconds * 1000));
    const std::string where = env.masterAddr + ":" + std::to_string(env.masterPort);
    g.rank = env.rank;
    g.world = env.worldSize;
    g.timeout = env.timeoutSeconds;
    g.restartCount = env.restartCount;
    if (env.launcher == "torchrun")
        g.launchId = !env.torchrunId.empty() && env.torchrunId != "none"
                         ? "torchrun " + env.torchrunId
                         : "torchrun agent " + hostName() + ":" + std::to_string(::getppid());
    try {
        c10d::TCPStoreOptions so;
        so.port = uint16_t(env.masterPort);
        so.isServer = env.rank == 0 && !env.agentStore;
        if (!env.agentStore)
            so.numWorkers = size_t(env.worldSize);
        so.waitWorkers = !env.agentStore;
        so.timeout = timeout;
        auto tcp = c10::make_intrusive<c10d::TCPStore>(env.masterAddr, so);
        if (env.agentStore)
            probeAgentStore(tcp, env, std::min(timeout, std::chrono::milliseconds(10000)));
        g.store = c10::make_intrusive<c10d::PrefixStore>("polymoe/" + std::to_string(env.restartCount), tcp);
#if POLYMOE_HAVE_C10D_NCCL
        if (backend == "nccl")
            joinNccl(g, env, timeout);
#endif
#if POLYMOE_HAVE_C10D_GLOO
        if (backend == "gloo")
            joinGloo(g, env, timeout);
#endif
    } catch (const ConfigError &) {
        g = Group{};
        throw;
    } catch (const std::exception &e) {
        g = Group{};
        const std::string cause = firstLine(e.what());
        throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.worldSize) + ": the " + backend +
                    " rendezvous at " + where + " failed (" + cause + "); every rank must start within " +
                    seconds(env.timeoutSeconds) + " s (POLYMOE_DIST_TIMEOUT) with the same MASTER_ADDR, "
                    "MASTER_PORT and WORLD_SIZE" + (env.agentStore ? ". " + agentStoreAdvice() : std::string()));
    }
    g.backend = backend;
#else
    throw ConfigError("this polymoe was built without LibTorch's c10d (Gloo: Debian's libtorch-dev with "
                      "libgloo-dev; NCCL: a CUDA LibTorch 2.x); it runs in one process only");
#endif
}

void shutdownDistributed()
{
#if POLYMOE_HAVE_C10D_NCCL
    if (group().nccl) {
        try {
            // NCCL's communicators go before the group (its destructor warns otherwise). abort, not
            // shutdown: a graceful destroy waits for the peers, and after a rank died it would hang.
            // Every sum has been waited for by now, so nothing is in flight.
            group().nccl->abort();
        } catch (...) {
        }
    }
#endif
    group() = Group{};
}

namespace dist {

namespace {

// Where the group's collectives need a tensor of `t`'s device: NCCL's on this rank's GPU, Gloo's
// where they are.
at::Device collectiveDevice(const at::Tensor &t)
{
    return group().backend == "nccl" ? group().commDevice : t.device();
}

#if POLYMOE_HAVE_C10D
template <typename Start>
void waitFor(const std::string &what, Start start)
{
    try {
        auto work = start();
        work->wait();
    } catch (const Error &) {
        throw;
    } catch (const std::exception &e) {
        throw Error(whoFailed(what, firstLine(e.what())));
    }
}

// `t` where the group's collectives need it: itself, or (NCCL, a CPU value) a contiguous copy on this
// rank's GPU.
at::Tensor onCommDevice(const at::Tensor &t)
{
    const at::Device d = collectiveDevice(t);
    if (t.device() == d && t.is_contiguous())
        return t;
    return t.to(d).contiguous();
}

// Runs a collective on each tensor in turn, in place: moved where the group needs it and back.
template <typename Run>
void eachInPlace(std::vector<at::Tensor> &tensors, const std::string &what, Run run)
{
    for (auto &t : tensors) {
        at::Tensor c = onCommDevice(t);
        std::vector<at::Tensor> one{c};
        waitFor(what, [&] { return run(one); });
        if (!c.is_same(t)) {
            const at::NoGradGuard noGrad; // the starting weights are leaves that require gradients
            t.copy_(c);
        }
    }
}
#endif

} // namespace

void allReduceSum(std::vector<at::Tensor> &tensors, const std::string &what)
{
    if (!group().joined() || tensors.empty())
        return;
#if POLYMOE_HAVE_C10D
    eachInPlace(tensors, "the sum of " + what, [](std::vector<at::Tensor> &one) { return group().allreduce(one); });
#endif
}

void broadcastFromPrimary(std::vector<at::Tensor> &tensors, const std::string &what)
{
    if (!group().joined() || tensors.empty())
        return;
#if POLYMOE_HAVE_C10D
    eachInPlace(tensors, "rank 0's " + what, [](std::vector<at::Tensor> &one) { return group().broadcast(one); });
#endif
}

int64_t decideOnPrimary(const std::function<int64_t()> &decide, const std::string &what)
{
    if (!group().joined())
        return decide();
    at::Tensor message = at::zeros({2}, at::kLong); // value, ok
    if (group().rank == 0) {
        try {
            message[0] = decide();
            message[1] = 1;
        } catch (...) {
            std::vector<at::Tensor> t{message};
            try {
                broadcastFromPrimary(t, what);
            } catch (...) {
            }
            throw;
        }
    }
    std::vector<at::Tensor> t{message};
    broadcastFromPrimary(t, what);
    if (message[1].item<int64_t>() == 0)
        throw Error("rank " + std::to_string(group().rank) + ": rank 0 stopped while deciding " + what +
                    "; see its message");
    return message[0].item<int64_t>();
}

void averageGradients(const std::vector<at::Tensor> &params, std::vector<double> &extra, const std::string &what)
{
    GradientSync sync(params); // not armed: finish() fills every bucket after backward
    sync.finish(extra, what);
}

struct GradientSync::Bucket {
    std::vector<size_t> members; // parameter indices, in the order they lie in `flat`
    at::Tensor flat;             // the members' gradients, one after the other
    size_t pending = 0;          // members not yet copied in this step
#if POLYMOE_HAVE_C10D
    c10::intrusive_ptr<c10d::Work> work;
#endif
};

GradientSync::GradientSync(std::vector<at::Tensor> params) : m_params(std::move(params))
{
    if (!group().joined() || m_params.empty())
        return;
    // Buckets of about 25 MB in reverse order (the order backward produces the gradients), one
    // dtype and device each. Every rank has the same parameters, so the same buckets.
    constexpr int64_t kBucketBytes = 25 << 20;
    const size_t n = m_params.size();
    m_bucketOf.assign(n, 0);
    m_offsetOf.assign(n, 0);
    m_ready.assign(n, 0);
    m_had.assign(n, 0);
    int64_t bytes = 0;
    for (size_t k = n; k-- > 0;) {
        const at::Tensor &p = m_params[k];
        if (m_buckets.empty() || bytes >= kBucketBytes ||
            m_params[m_buckets.back().members.front()].scalar_type() != p.scalar_type() ||
            m_params[m_buckets.back().members.front()].device() != p.device()) {
            m_buckets.emplace_back();
            bytes = 0;
        }
        Bucket &b = m_buckets.back();
        m_bucketOf[k] = m_buckets.size() - 1;
        m_offsetOf[k] = bytes / int64_t(p.element_size());
        b.members.push_back(k);
        bytes += p.numel() * int64_t(p.element_size());
    }
    for (Bucket &b : m_buckets) {
        int64_t numel = 0;
        for (size_t k : b.members)
            numel += m_params[k].numel();
        // NCCL sums on this rank's GPU: a bucket of CPU parameters lies there (their gradients go over).
        const at::Tensor &first = m_params[b.members.front()];
        b.flat = at::zeros({numel}, first.options().device(collectiveDevice(first)));
        b.pending = b.members.size();
    }
    // After any hook registered before (a row mask), so each sees the gradient as training uses it.
    for (size_t k = 0; k < n; ++k)
        m_hookIds.push_back(m_params[k].register_hook([this, k](const at::Tensor &g) { onGradient(k, g); }));
}

GradientSync::~GradientSync()
{
    for (size_t k = 0; k < m_hookIds.size(); ++k)
        m_params[k].remove_hook(m_hookIds[k]);
}

void GradientSync::armForLastBackward()
{
    if (m_buckets.empty())
        return;
    m_armed = true;
}

void GradientSync::onGradient(size_t k, const at::Tensor &grad)
{
    if (!m_armed || !grad.defined())
        return;
    if (m_ready[k]) // its bucket may be summing already: a second gradient cannot join it
        throw Error("data-parallel gradient sums: parameter " + std::to_string(k) + " received two gradients in one "
                    "backward pass (used inside and outside a checkpointed layer?)");
    // The hook runs before the gradient is added to .grad: what earlier micro-batches summed, plus this.
    const at::NoGradGuard noGrad;
    const at::Tensor &p = m_params[k];
    at::Tensor slot = m_buckets[m_bucketOf[k]].flat.slice(0, m_offsetOf[k], m_offsetOf[k] + p.numel()).view_as(p);
    if (p.grad().defined())
        at::add_out(slot, p.grad().to(slot.device()), grad.to(slot.device()));
    else
        slot.copy_(grad);
    m_had[k] = 1;
    markReady(k);
    launchReadyBuckets();
}

void GradientSync::markReady(size_t k)
{
    m_ready[k] = 1;
    --m_buckets[m_bucketOf[k]].pending;
}

// Buckets start in order, so that every rank issues the same sums in the same order.
void GradientSync::launchReadyBuckets()
{
    while (m_nextLaunch < m_buckets.size() && m_buckets[m_nextLaunch].pending == 0) {
#if POLYMOE_HAVE_C10D
        Bucket &b = m_buckets[m_nextLaunch];
        std::vector<at::Tensor> one{b.flat};
        b.work = group().allreduce(one);
#endif
        ++m_nextLaunch;
    }
}

void GradientSync::finish(std::vector<double> &extra, const std::string &what)
{
    const int world = group().world;
    if (m_buckets.empty())
        return;
    struct Reset { // whatever happens, the next step starts with empty buckets and disarmed hooks
        GradientSync &s;
        ~Reset()
        {
            s.m_armed = false;
            s.m_nextLaunch = 0;
            std::fill(s.m_ready.begin(), s.m_ready.end(), 0);
            std::fill(s.m_had.begin(), s.m_had.end(), 0);
            for (Bucket &b : s.m_buckets) {
                b.pending = b.members.size();
#if POLYMOE_HAVE_C10D
                b.work.reset();
#endif
            }
        }
    } reset{*this};
    m_armed = false;
    {
        // What backward did not reach: the earlier micro-batches' sum, or zeros.
        const at::NoGradGuard noGrad;
        for (size_t k = 0; k < m_params.size(); ++k) {
            if (m_ready[k])
                continue;
            const at::Tensor &p = m_params[k];
            at::Tensor slot = m_buckets[m_bucketOf[k]].flat.slice(0, m_offsetOf[k], m_offsetOf[k] + p.numel());
            if (p.grad().defined()) {
                slot.copy_(p.grad().reshape({-1}));
                m_had[k] = 1;
            } else {
                slot.zero_();
            }
            markReady(k);
        }
    }
    launchReadyBuckets();
    // The small sums: the extra values, then one "had a gradient" flag per parameter.
    at::Tensor small = at::zeros({int64_t(extra.size() + m_params.size())}, at::kDouble);
    auto acc = small.accessor<double, 1>();
    for (size_t i = 0; i < extra.size(); ++i)
        acc[int64_t(i)] = extra[i];
    for (size_t k = 0; k < m_params.size(); ++k)
        acc[int64_t(extra.size() + k)] = m_had[k];
#if POLYMOE_HAVE_C10D
    const auto t0 = std::chrono::steady_clock::now();
    for (Bucket &b : m_buckets)
        waitFor("the sum of " + what, [&] { return b.work; });
    m_waitSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#endif
    std::vector<at::Tensor> s{small};
    allReduceSum(s, what);
    for (size_t i = 0; i < extra.size(); ++i)
        extra[i] = acc[int64_t(i)];
    const at::NoGradGuard noGrad;
    for (size_t k = 0; k < m_params.size(); ++k) {
        at::Tensor p = m_params[k];
        if (acc[int64_t(extra.size() + k)] == 0) {
            p.mutable_grad() = at::Tensor(); // no rank reached it: no gradient, as in one process
            continue;
        }
        const at::Tensor avg =
            m_buckets[m_bucketOf[k]].flat.slice(0, m_offsetOf[k], m_offsetOf[k] + p.numel()).view_as(p).div(double(world));
        if (p.grad().defined())
            p.mutable_grad().copy_(avg);
        else
            p.mutable_grad() = avg.to(p.device());
    }
}

} // namespace dist

} // namespace polymoe
