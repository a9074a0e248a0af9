// Temporary file, fsync, rename: see atomic_file.h.
#include "atomic_file.h"

#include "polymoe/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace polymoe {

void writeFileAtomically(const std::filesystem::path &path, std::string_view content)
{
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
        throw IoError(path.string() + ": cannot create a temporary file in " + dir.string() + ": " +
                      std::strerror(errno));
    auto fail = [&](const char *what) {
        const std::string err = std::strerror(errno);
        ::close(fd);
        ::unlink(tmpl.c_str());
        throw IoError(path.string() + ": " + what + ": " + err);
    };
    size_t off = 0;
    while (off < content.size()) {
        const ssize_t w = ::write(fd, content.data() + off, content.size() - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fail("write failed");
        }
        off += size_t(w);
    }
    if (::fsync(fd) != 0)
        fail("fsync failed");
    ::fchmod(fd, 0644);
    if (::close(fd) != 0) {
        ::unlink(tmpl.c_str());
        throw IoError(path.string() + ": close failed: " + std::strerror(errno));
    }
    if (::rename(tmpl.c_str(), path.c_str()) != 0) {
        const std::string err = std::strerror(errno);
        ::unlink(tmpl.c_str());
        throw IoError(path.string() + ": rename failed: " + err);
    }
}

} // namespace polymoe
