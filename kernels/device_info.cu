// Device properties for the benchmark (see device_info.cuh).
#include "device_info.cuh"

#include "common.cuh"

namespace polymoe::kernels {

DeviceInfo deviceInfo(int device)
{
    DeviceInfo info;
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    info.name = prop.name;
    info.multiprocessors = prop.multiProcessorCount;
    info.computeMajor = prop.major;
    info.computeMinor = prop.minor;
    info.memoryGiB = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
    int clockKHz = 0, busBits = 0; // the cudaDeviceProp fields for these went away in CUDA 13
    CUDA_CHECK(cudaDeviceGetAttribute(&clockKHz, cudaDevAttrMemoryClockRate, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, device));
    info.peakBandwidthGBs = 2.0 * clockKHz * 1e3 * (busBits / 8.0) / 1e9;
    return info;
}

} // namespace polymoe::kernels
