// The collectives a data-parallel run uses (see polymoe/distributed.h), over the one process group.
// With a world size of 1 every call returns at once and changes nothing. A collective that fails (a
// rank died, or did not answer within the timeout) throws Error naming this rank, the operation and
// c10d's cause.
#pragma once

#include <ATen/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace polymoe::dist {

// Sums the tensors over all ranks, in place (every rank gets the sum). `what` names the step in a
// failure message ("gradients at step 12").
void allReduceSum(std::vector<at::Tensor> &tensors, const std::string &what);
// Copies rank 0's tensors to every rank, in place.
void broadcastFromPrimary(std::vector<at::Tensor> &tensors, const std::string &what);

// Rank 0 runs `decide` and every rank returns its result (a run id). When `decide` throws on rank 0,
// the others learn it and throw Error("rank 0 stopped: ... see its message"); rank 0 rethrows.
int64_t decideOnPrimary(const std::function<int64_t()> &decide, const std::string &what);

// The gradients of `params` summed over the ranks in buckets of about 25 MB, then divided by the
// world size: the gradient of the global batch's mean loss. A parameter no rank gave a gradient
// (an expert no token reached) keeps none, as in one process; one that some ranks did not reach
// takes zeros from them. `extra` (losses, flags) is summed in the same call.
void averageGradients(const std::vector<at::Tensor> &params, std::vector<double> &extra, const std::string &what);

} // namespace polymoe::dist
