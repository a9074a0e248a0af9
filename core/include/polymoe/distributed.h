// Data-parallel training over PyTorch's c10d: which process this is (rank) among how many (world
// size), found from the variables torchrun or SLURM's srun set, and the one process group of the
// run: Gloo (Debian's LibTorch: CPU tensors) or NCCL (a CUDA LibTorch 2.x: one GPU per process).
// Plain data and functions: the CLI uses it without LibTorch headers; the collectives themselves are
// in core/distributed_ops.h.
//
// How a data-parallel run goes (trainer.cpp, dense_jobs.cpp, expansion_stage_run.cpp):
//   every rank builds the same model and reads its own share of every global batch; gradients of
//   the trainable tensors are summed over the ranks and divided by the world size; rank 0 alone
//   writes the project store, the checkpoints and the model folder; the others stop after the last
//   step. A rank that dies or stops answering ends the others within the timeout.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace polymoe {

struct DistributedEnv {
    int rank = 0, worldSize = 1;          // RANK, WORLD_SIZE (or SLURM_PROCID, SLURM_STEP_NUM_TASKS)
    int localRank = 0, localWorldSize = 1; // LOCAL_RANK, LOCAL_WORLD_SIZE (or SLURM_LOCALID...)
    std::string masterAddr = "127.0.0.1"; // MASTER_ADDR (SLURM: the first host of the node list)
    int masterPort = 29500;               // MASTER_PORT
    bool agentStore = false;              // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent serves the store
    int restartCount = 0;                 // TORCHELASTIC_RESTART_COUNT: each restart gets fresh store keys
    std::string torchrunId;               // TORCHELASTIC_RUN_ID (torchrun's --rdzv-id; "none" when not given)
    std::string launcher;                 // "torchrun", "env", "slurm"; empty: one process
    std::string backend;                  // POLYMOE_DIST_BACKEND: "gloo" or "nccl"; empty: follows the device
    double timeoutSeconds = 60;           // POLYMOE_DIST_TIMEOUT: rendezvous and each collective
};

// A variable's value, or nothing when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string &name)>;

// Reads the launcher's variables: WORLD_SIZE/RANK first (torchrun, or set by hand), else SLURM's.
// Throws ConfigError naming the variable for a value that is not a number or is out of range (a rank
// outside [0, world), a port outside 1-65535, a timeout not in (0, 86400]).
DistributedEnv distributedEnvFrom(const EnvLookup &lookup);
DistributedEnv distributedEnvFromEnvironment();

// The first host of a SLURM node list: "gpu[003-005,010],cpu1" -> "gpu003", "a,b" -> "a".
std::string firstSlurmHost(const std::string &nodelist);

// Joins the run's process group (world size 1: does nothing, unless a launcher named a backend:
// then a group of one, which checks that backend on one machine). Rank 0 serves the TCP store at
// masterAddr:masterPort unless torchrun's agent already does. The backend: the one named, else NCCL
// where this build has it and a GPU is visible, else Gloo. With NCCL, local rank r works on GPU r
// (made the current CUDA device) and the collectives' wait blocks (TORCH_NCCL_BLOCKING_WAIT=1
// unless set), so a rank that died ends the others with this rank's message. Throws Error naming
// the rank and the cause when the rendezvous fails or times out, ConfigError for an unknown backend,
// one this build lacks, NCCL with fewer GPUs than processes on the machine, or a torchrun agent
// store that does not answer this LibTorch's client within 10 s (its protocol: torchrun 2.x, 1.13).
void initDistributed(const DistributedEnv &env);
// Leaves the process group (at exit; safe to call when none was joined).
void shutdownDistributed();

// Whether this build can run data-parallel (LibTorch's c10d with Gloo or NCCL), and with which
// ("gloo", "nccl", "gloo, nccl"; empty: none).
bool distributedAvailable();
std::string distributedBackends();
// Throws ConfigError unless `backend` ("gloo" or "nccl") is one this build has, naming what it has.
void requireBackendBuilt(const std::string &backend);
// The joined group's backend ("gloo", "nccl"); empty when none was joined.
std::string distributedBackend();
int distributedRank();       // 0 when not distributed
int distributedWorldSize();  // 1 when not distributed
// How many times torchrun has restarted the joined group's ranks (TORCHELASTIC_RESTART_COUNT,
// --max-restarts); 0 when not distributed.
int distributedRestartCount();
// Names the torchrun job this rank belongs to, the same before and after its restarts: its
// --rdzv-id where one was given, else the agent that started rank 0 (host and process id: the
// agent restarts its ranks on the same node in a static rendezvous). Empty unless torchrun started
// this rank.
std::string distributedLaunchId();
// Rank 0: the process that writes the project, the checkpoints and the models.
inline bool isPrimaryRank() { return distributedRank() == 0; }
double distributedTimeoutSeconds();

} // namespace polymoe
