// The one error the kernels throw: a failed CUDA call, named (kernels/ depends on nothing of core's;
// core's dispatch translates it into polymoe::CudaError, see core/kernel_call.h).
#pragma once

#include <stdexcept>
#include <string>

namespace polymoe::kernels {

class KernelError : public std::runtime_error {
public:
    explicit KernelError(const std::string &what) : std::runtime_error(what) {}
};

} // namespace polymoe::kernels
