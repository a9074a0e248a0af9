// Progress reporting and cancellation shared by every long job in core. The CLI prints it as a
// progress bar (or JSON lines); the GUI turns it into queued signals.
#pragma once

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>

#include "polymoe/error.h"

namespace polymoe {

struct Progress {
    std::string stage;   // what is running, e.g. "import de", "tokenize", "train"
    int64_t done = 0;    // units done so far
    int64_t total = 0;   // units in all; 0 when unknown
    std::string unit;    // "documents", "steps", "bytes"...
    std::string message; // optional detail for the log
};

using ProgressFn = std::function<void(const Progress &)>;

// Throws Cancelled when the token asks to stop. Call between steps, never inside a write.
inline void throwIfStopped(const std::stop_token &stop)
{
    if (stop.stop_requested())
        throw Cancelled();
}

} // namespace polymoe
