// Whether a training run's process still lives. A run records in the store the process that runs it
// (id, host name, start time) and a heartbeat (the time of its last logged step, written with its
// metrics); a run left "running" by a process that is gone (killed, crashed, machine rebooted) is
// "interrupted": shown so, never as running, and continued with --resume.
#pragma once

#include "polymoe/project_store.h"

#include <cstdint>
#include <optional>
#include <string>

namespace polymoe {

enum class RunLiveness {
    Ended,  // its status is not "running"
    Alive,  // its process lives on this host
    Remote, // it runs on another host and its heartbeat is recent: taken as alive
    Dead,   // its process is gone, or a remote run's heartbeat is stale: interrupted
};

// A run on another host whose heartbeat is older than this is taken as interrupted. Long enough
// for the quiet parts of a run (loading data, evaluating at the end), in seconds.
constexpr int kStaleHeartbeatSeconds = 600;

struct ProcessIdentity {
    int64_t pid = 0;
    std::string host;       // gethostname()
    int64_t startTicks = 0; // start time in clock ticks since boot (/proc/PID/stat field 22); 0: unknown
};
ProcessIdentity currentProcess();
std::string hostName();
// Start time of a process on this host (0 when unknown, e.g. no /proc).
int64_t processStartTicks(int64_t pid);
// A process on this host is alive (not a zombie) and, when startTicks is known, is the same process
// (its id was not reused since).
bool processAlive(int64_t pid, int64_t startTicks = 0);

// Runs without a host (recorded before schema 4) are taken as local.
bool runIsLocal(const RunRecord &run);
RunLiveness runLiveness(const RunRecord &run, int staleAfterSeconds = kStaleHeartbeatSeconds);
// The status to show: the stored one, or "interrupted" for a running run whose process is gone.
std::string displayStatus(const RunRecord &run);
// Asks a live local run's process to stop at its next step (SIGTERM: the CLI keeps its checkpoint
// and exits with code 3). Returns an empty string when the signal was sent, otherwise why not.
std::string requestRunStop(const RunRecord &run);
// Seconds from a UTC timestamp as the store writes them ("2026-12-01T20:15:05.312Z" or
// "2026-12-01 20:15:05") to now; nullopt when it does not parse.
std::optional<double> secondsSince(const std::string &utc);

} // namespace polymoe
