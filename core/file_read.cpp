// Bounded, non-blocking reads of regular files (see file_read.h).
#include "file_read.h"

#include "polymoe/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace polymoe {

std::string readRegularFile(const std::filesystem::path &path, int64_t maxBytes)
{
    // O_NONBLOCK: opening a FIFO with no writer would otherwise wait for ever.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        throw IoError(path.string() + ": cannot open: " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw IoError(path.string() + ": cannot stat: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw IoError(path.string() + ": not a regular file (a folder, FIFO or device is not read)");
    if (int64_t(st.st_size) > maxBytes)
        throw IoError(path.string() + ": " + std::to_string(int64_t(st.st_size)) + " bytes, more than the limit of " +
                      std::to_string(maxBytes));
    std::string out;
    out.resize(size_t(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw IoError(path.string() + ": reading failed: " + std::strerror(errno));
        }
        if (n == 0)
            break; // shrank while reading: what was there
        done += size_t(n);
    }
    out.resize(done);
    return out;
}

} // namespace polymoe
