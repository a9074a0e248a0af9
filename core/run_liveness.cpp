// Run liveness: process identity on Linux (/proc), heartbeat age, stopping a run by its process id.
#include "polymoe/run_liveness.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <sys/types.h>
#include <unistd.h>

namespace polymoe {

namespace {
// Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses):
// state (field 3) first, so start time (field 22) is at index 19.
bool readStat(int64_t pid, char *state, int64_t *startTicks)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!in || !std::getline(in, line))
        return false;
    const auto close = line.rfind(')');
    if (close == std::string::npos)
        return false;
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    for (int i = 0; rest >> field; ++i) {
        if (i == 0)
            *state = field.empty() ? '?' : field[0];
        if (i == 19) {
            *startTicks = std::stoll(field);
            return true;
        }
    }
    return false;
}
} // namespace

std::string hostName()
{
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0)
        return "localhost";
    return buf;
}

int64_t processStartTicks(int64_t pid)
{
    char state = 0;
    int64_t ticks = 0;
    return readStat(pid, &state, &ticks) ? ticks : 0;
}

ProcessIdentity currentProcess()
{
    const int64_t pid = ::getpid();
    return {pid, hostName(), processStartTicks(pid)};
}

bool processAlive(int64_t pid, int64_t startTicks)
{
    if (pid <= 0)
        return false;
    if (::kill(pid_t(pid), 0) != 0 && errno != EPERM)
        return false;
    char state = 0;
    int64_t ticks = 0;
    if (!readStat(pid, &state, &ticks))
        return true; // it exists; no /proc to say more
    if (state == 'Z' || state == 'X')
        return false; // exited, not yet reaped
    return startTicks <= 0 || ticks == startTicks;
}

bool runIsLocal(const RunRecord &run)
{
    return run.host.empty() || run.host == hostName();
}

std::optional<double> secondsSince(const std::string &utc)
{
    std::tm tm = {};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0;
    double s = 0;
    char sep = 0;
    if (std::sscanf(utc.c_str(), "%d-%d-%d%c%d:%d:%lf", &y, &mo, &d, &sep, &h, &mi, &s) != 7 || (sep != 'T' && sep != ' '))
        return std::nullopt;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = int(s);
    const std::time_t t = ::timegm(&tm);
    if (t == std::time_t(-1))
        return std::nullopt;
    const double then = double(t) + (s - double(int(s)));
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    return now - then;
}

RunLiveness runLiveness(const RunRecord &run, int staleAfterSeconds)
{
    if (run.status != "running")
        return RunLiveness::Ended;
    if (runIsLocal(run))
        return run.pid && processAlive(*run.pid, run.processStart) ? RunLiveness::Alive : RunLiveness::Dead;
    const auto age = secondsSince(run.heartbeatAt.empty() ? run.startedAt : run.heartbeatAt);
    return age && *age <= staleAfterSeconds ? RunLiveness::Remote : RunLiveness::Dead;
}

std::string displayStatus(const RunRecord &run)
{
    return runLiveness(run) == RunLiveness::Dead ? "interrupted" : run.status;
}

std::string requestRunStop(const RunRecord &run)
{
    const std::string what = "run " + std::to_string(run.id);
    switch (runLiveness(run)) {
    case RunLiveness::Ended:
        return what + " is not running (" + run.status + ")";
    case RunLiveness::Dead:
        return what + " is not running: its process " + (run.pid ? std::to_string(*run.pid) : std::string("?")) +
               " is gone (interrupted; Resume continues it)";
    case RunLiveness::Remote:
        return what + " runs on host " + run.host + " (process " + std::to_string(run.pid.value_or(0)) +
               "); a process there can only be stopped there (Ctrl-C, or kill -TERM " +
               std::to_string(run.pid.value_or(0)) + ")";
    case RunLiveness::Alive:
        break;
    }
    if (::kill(pid_t(*run.pid), SIGTERM) != 0)
        return what + ": cannot signal process " + std::to_string(*run.pid) + ": " + std::strerror(errno);
    return {};
}

} // namespace polymoe
