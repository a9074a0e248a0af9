// bench_common.h: statistics, the tensor-memory counter and the Python peer of the bench commands.
#include "bench_common.h"

#include "subprocess.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace polymoe::bench {

std::pair<double, double> meanSd(const std::vector<double> &v)
{
    double m = 0;
    for (double x : v)
        m += x;
    m /= double(v.size());
    double s = 0;
    for (double x : v)
        s += (x - m) * (x - m);
    return {m, v.size() > 1 ? std::sqrt(s / double(v.size() - 1)) : 0.0};
}

namespace {

// Every CPU tensor allocation goes through c10's CPU allocator: this one forwards to the one it
// replaces and counts the bytes alive, and their peak. Exact for tensors, deterministic, and blind to
// what malloc keeps or returns (which makes resident memory a poor measure of a step).
class CountingCpuAllocator final : public at::Allocator {
public:
    explicit CountingCpuAllocator(at::Allocator *base) : m_base(base) {}
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
    at::DataPtr allocate(size_t n) override // non-const from 2.3 on
#else
    at::DataPtr allocate(size_t n) const override
#endif
    {
        at::DataPtr inner = m_base->allocate(n);
        void *data = inner.get();
        const at::Device device = inner.device();
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_blocks.emplace(data, Block{std::move(inner), n});
            m_alive += int64_t(n);
            m_peak = std::max(m_peak, m_alive);
        }
        // data == context, so that raw_allocate (BLAS and oneDNN scratch) works too.
        return {data, data, &release, device};
    }
    at::DeleterFnPtr raw_deleter() const override { return &release; }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
    void copy_data(void *dest, const void *src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif
    int64_t alive() const
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_alive;
    }
    // Resets the peak to what is alive now; returns the peak since the last reset.
    int64_t takePeak() const
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        const int64_t p = m_peak;
        m_peak = m_alive;
        return p;
    }

private:
    struct Block {
        at::DataPtr inner;
        size_t bytes;
    };
    static CountingCpuAllocator *s_instance;
    static void release(void *data)
    {
        CountingCpuAllocator &self = *s_instance;
        at::DataPtr inner;
        {
            std::lock_guard<std::mutex> lock(self.m_mutex);
            auto it = self.m_blocks.find(data);
            if (it == self.m_blocks.end())
                return;
            self.m_alive -= int64_t(it->second.bytes);
            inner = std::move(it->second.inner);
            self.m_blocks.erase(it);
        }
        // `inner` frees the block through the replaced allocator's deleter here, outside the lock.
    }
    friend const CountingCpuAllocator &countingAllocator();
    at::Allocator *m_base;
    mutable std::mutex m_mutex;
    mutable std::unordered_map<void *, Block> m_blocks;
    mutable int64_t m_alive = 0, m_peak = 0;
};
CountingCpuAllocator *CountingCpuAllocator::s_instance = nullptr;

const CountingCpuAllocator &countingAllocator()
{
    // Installed once, for the rest of the process (bench commands only); never destroyed, since
    // tensors may outlive any scope.
    static CountingCpuAllocator *a = [] {
        auto *c = new CountingCpuAllocator(c10::GetCPUAllocator());
        CountingCpuAllocator::s_instance = c;
        c10::SetCPUAllocator(c, /*priority=*/100);
        return c;
    }();
    return *a;
}

} // namespace

void countTensorMemory()
{
    countingAllocator();
}

int64_t peakTensorBytesAbove(const std::function<void()> &fn)
{
    const CountingCpuAllocator &c = countingAllocator();
    const int64_t before = c.alive();
    c.takePeak();
    fn();
    return std::max<int64_t>(0, c.takePeak() - before);
}


std::string runPythonPeer(const std::string &python, const char *script, const std::vector<std::string> &args,
                          const std::string &hint, std::string &why, const std::vector<std::string> &extraEnv)
{
    std::vector<std::string> argv = {python, "-c", script};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessOptions options;
    options.extraEnv = extraEnv;
    ProcessResult r = runProcess(argv, options);
    if (!r.started)
        why = python + ": cannot be started";
    else if (!r.succeeded())
        why = python + " could not run the peer (" + hint + ")";
    return r.succeeded() ? std::move(r.output) : std::string();
}

} // namespace polymoe::bench
