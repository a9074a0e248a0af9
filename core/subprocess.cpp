// subprocess.h: posix_spawn with a poll loop, so that input, output and the deadline are served
// together (a program that stops reading, or writes more than a pipe holds, cannot block us).
#include "subprocess.h"

#include "polymoe/error.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace polymoe {

namespace {

struct Fd {
    int fd = -1;
    ~Fd() { reset(); }
    void reset()
    {
        if (fd >= 0)
            ::close(fd);
        fd = -1;
    }
};

void setNonBlocking(int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

} // namespace

ProcessResult runProcess(const std::vector<std::string> &argv, const ProcessOptions &options)
{
    ProcessResult result;
    if (argv.empty())
        return result;
    // Standard input is a socket so that writing to a program that has exited fails with EPIPE
    // (MSG_NOSIGNAL) instead of raising SIGPIPE in this process.
    int in[2], out[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
        throw IoError(std::string("cannot create a socket pair: ") + std::strerror(errno));
    Fd inParent{in[0]}, inChild{in[1]};
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw IoError(std::string("cannot create a pipe: ") + std::strerror(errno));
    Fd outParent{out[0]}, outChild{out[1]};

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, inChild.fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, outChild.fd, STDOUT_FILENO);
    if (options.discardStderr)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);

    std::vector<std::string> args(argv);
    std::vector<char *> cargv;
    for (auto &a : args)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<std::string> env(options.extraEnv);
    for (char **e = environ; *e; ++e) {
        const std::string entry(*e), name = entry.substr(0, entry.find('=') + 1);
        if (std::none_of(options.extraEnv.begin(), options.extraEnv.end(),
                         [&](const std::string &x) { return x.rfind(name, 0) == 0; }))
            env.push_back(entry);
    }
    std::vector<char *> envp;
    for (auto &e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    inChild.reset();
    outChild.reset();
    if (rc != 0)
        return result;
    result.started = true;

    setNonBlocking(inParent.fd);
    setNonBlocking(outParent.fd);
    size_t written = 0;
    if (options.input.empty())
        inParent.reset();
    using Clock = std::chrono::steady_clock;
    const auto deadline = options.timeout ? Clock::now() + *options.timeout : Clock::time_point::max();
    bool kill = false;
    char buf[1 << 16];
    while (outParent.fd >= 0) {
        int waitMs = -1;
        if (options.timeout) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) {
                result.timedOut = kill = true;
                break;
            }
            waitMs = int(std::min<long long>(left, 1 << 30));
        }
        pollfd fds[2] = {{outParent.fd, POLLIN, 0}, {inParent.fd, POLLOUT, 0}};
        const int n = ::poll(fds, inParent.fd >= 0 ? 2 : 1, waitMs);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (inParent.fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t w = ::send(inParent.fd, options.input.data() + written, options.input.size() - written,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                written += size_t(w);
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == options.input.size())
                inParent.reset(); // done, or the program stopped reading: it sees end of input
        }
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            const ssize_t r = ::read(outParent.fd, buf, sizeof buf);
            if (r > 0) {
                result.output.append(buf, size_t(r));
                if (result.output.size() > options.maxOutputBytes) {
                    kill = true;
                    break;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                outParent.reset();
            }
        }
    }
    inParent.reset();
    outParent.reset();
    int status = 0;
    // A program may close its output and go on running: the deadline holds for its exit too.
    while (!kill) {
        const pid_t w = ::waitpid(pid, &status, options.timeout ? WNOHANG : 0);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (w == 0) {
            if (Clock::now() >= deadline) {
                result.timedOut = kill = true;
                break;
            }
            ::usleep(2000);
        }
    }
    if (kill) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

} // namespace polymoe
