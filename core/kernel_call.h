// Calls into kernels/ from core: a kernels::KernelError (a failed CUDA call) becomes core's CudaError,
// so the callers' one catch of polymoe::Error sees it. Only for files built with POLYMOE_HAVE_KERNELS.
#pragma once

#include "kernel_error.h"
#include "polymoe/error.h"

#include <utility>

namespace polymoe::detail {

template <typename Call> decltype(auto) kernelCall(Call &&call)
{
    try {
        return std::forward<Call>(call)();
    } catch (const kernels::KernelError &e) {
        throw CudaError(e.what());
    }
}

} // namespace polymoe::detail
