// Autocast (mixed precision) on the CPU and on CUDA, with one set of calls for LibTorch 1.13 (one
// function per device) and 2.4+ (functions of the device type). The trainer's bf16 dtype: matmuls
// and attention in bf16, weights, gradients and optimizer state in fp32 (master weights).
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace polymoe {

struct AutocastState {
    bool enabled = false;
    c10::ScalarType dtype = c10::kBFloat16;
};

// device: kCPU or kCUDA (any other device type has no autocast here: disabled, and set does nothing).
AutocastState autocastState(c10::DeviceType device);
void setAutocast(c10::DeviceType device, const AutocastState &state);

// While alive and enabled: autocast to bf16 on `device`; then the state before it back and the
// autocast cache cleared.
class Bf16Autocast {
public:
    Bf16Autocast(bool enable, c10::DeviceType device);
    ~Bf16Autocast();
    Bf16Autocast(const Bf16Autocast &) = delete;
    Bf16Autocast &operator=(const Bf16Autocast &) = delete;

private:
    bool m_on;
    c10::DeviceType m_device;
    AutocastState m_before;
};

// The autocast states of both devices, kept and restored as one (activation checkpointing repeats
// the forward pass's autocast in its recomputation).
struct AutocastStates {
    AutocastState cpu, cuda;
    static AutocastStates current();
    void apply() const;
};

} // namespace polymoe
