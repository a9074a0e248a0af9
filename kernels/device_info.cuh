// What the benchmark prints beside achieved rates: the device's name, multiprocessor count and peak
// memory bandwidth, read off the device (cudaDeviceGetAttribute). Host entry only.
#pragma once

#include <string>

namespace polymoe::kernels {

struct DeviceInfo {
    std::string name;          // "NVIDIA H200"
    int multiprocessors = 0;
    int computeMajor = 0, computeMinor = 0;
    double peakBandwidthGBs = 0; // 2 (DDR) * memory clock * bus width / 8, GB/s (1e9 bytes)
    double memoryGiB = 0;
};

// Throws kernels::KernelError when the device cannot be queried.
DeviceInfo deviceInfo(int device);

} // namespace polymoe::kernels
