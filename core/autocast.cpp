// Autocast across LibTorch versions (see autocast.h).
#include "autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace polymoe {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define POLYMOE_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define POLYMOE_AUTOCAST_BY_DEVICE_TYPE 0
#endif

AutocastState autocastState(c10::DeviceType device)
{
    AutocastState s;
    if (device != c10::kCPU && device != c10::kCUDA)
        return s;
#if POLYMOE_AUTOCAST_BY_DEVICE_TYPE
    s.enabled = at::autocast::is_autocast_enabled(device);
    s.dtype = at::autocast::get_autocast_dtype(device);
#else
    s.enabled = device == c10::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
    s.dtype = device == c10::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
    return s;
}

void setAutocast(c10::DeviceType device, const AutocastState &s)
{
    if (device != c10::kCPU && device != c10::kCUDA)
        return;
#if POLYMOE_AUTOCAST_BY_DEVICE_TYPE
    at::autocast::set_autocast_enabled(device, s.enabled);
    at::autocast::set_autocast_dtype(device, s.dtype);
#else
    if (device == c10::kCPU) {
        at::autocast::set_cpu_enabled(s.enabled);
        at::autocast::set_autocast_cpu_dtype(s.dtype);
    } else {
        at::autocast::set_enabled(s.enabled);
        at::autocast::set_autocast_gpu_dtype(s.dtype);
    }
#endif
}

Bf16Autocast::Bf16Autocast(bool enable, c10::DeviceType device) : m_on(enable), m_device(device)
{
    if (!m_on)
        return;
    m_before = autocastState(device);
    setAutocast(device, {true, c10::kBFloat16});
}

Bf16Autocast::~Bf16Autocast()
{
    if (!m_on)
        return;
    setAutocast(m_device, m_before);
    at::autocast::clear_cache();
}

AutocastStates AutocastStates::current()
{
    return {autocastState(c10::kCPU), autocastState(c10::kCUDA)};
}

void AutocastStates::apply() const
{
    setAutocast(c10::kCPU, cpu);
    setAutocast(c10::kCUDA, cuda);
}

} // namespace polymoe
