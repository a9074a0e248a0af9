// What the bench commands share: mean and standard deviation, the tensor-memory counter, and a
// Python peer (the same work done by a Python library in the same run, its figures read as JSON).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace polymoe::bench {

using Clock = std::chrono::steady_clock;

// (mean, sample standard deviation; 0 for one value). v must not be empty.
std::pair<double, double> meanSd(const std::vector<double> &v);

// Installs, once per process, a wrapper of c10's CPU allocator that counts the bytes of CPU
// tensors alive and their peak. Call it before the bench's first tensor.
void countTensorMemory();
// The peak of CPU tensor memory while fn runs, above what was alive just before it: what a step
// holds at once beyond the weights, gradients and optimizer state that persist between steps.
int64_t peakTensorBytesAbove(const std::function<void()> &fn);

// Runs `python -c script args...` with the extra environment entries ("NAME=value") and returns its
// standard output (its standard error goes to ours). An empty string and `why` set when it cannot
// start or exits non-zero; `hint` ends that message (which package it needs, how to get it).
std::string runPythonPeer(const std::string &python, const char *script, const std::vector<std::string> &args,
                          const std::string &hint, std::string &why, const std::vector<std::string> &extraEnv = {});

} // namespace polymoe::bench
