// Running another program (groff for manual pages, Python for a bench's peer): its standard input
// written from memory, its standard output read back, with a deadline after which it is killed.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe {

struct ProcessResult {
    bool started = false;   // false: the program was not found or could not be run
    bool timedOut = false;  // killed at the deadline
    int exitCode = -1;      // the exit status when it exited; -1 when a signal ended it
    std::string output;     // its standard output
    bool succeeded() const { return started && !timedOut && exitCode == 0; }
};

struct ProcessOptions {
    std::string_view input;                       // written to its standard input, then closed
    std::optional<std::chrono::milliseconds> timeout; // none: wait as long as it runs
    bool discardStderr = false;                   // otherwise its standard error goes to ours
    std::vector<std::string> extraEnv;            // "NAME=value", replacing our entries of that name
    size_t maxOutputBytes = size_t(1) << 30;      // killed (timedOut stays false) past this much output
};

// Runs argv[0] (searched on PATH) with argv. Never throws for the program's own failures: look at
// the result. Throws IoError only when this process cannot make pipes.
ProcessResult runProcess(const std::vector<std::string> &argv, const ProcessOptions &options = {});

} // namespace polymoe
