// The collectives a data-parallel run uses (see polymoe/distributed.h), over the one process group.
// With a world size of 1 every call returns at once and changes nothing. A collective that fails (a
// rank died, or did not answer within the timeout) throws Error naming this rank, the operation and
// c10d's cause.
#pragma once

#include <ATen/Tensor.h>

#include <functional>
#include <memory>
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
// takes zeros from them. `extra` (losses, flags) is summed in the same call. After backward, in one
// go: GradientSync below does the same while backward runs.
void averageGradients(const std::vector<at::Tensor> &params, std::vector<double> &extra, const std::string &what);

// The same averages with the sums overlapped with the step's last backward pass, as PyTorch's DDP
// does: the parameters are cut once into fixed buckets (reverse order, about 25 MB, one dtype and
// device each, the same on every rank); a hook on each parameter copies its gradient (plus what the
// step's earlier micro-batches accumulated) into its bucket as backward produces it, and a bucket
// whose parameters are all in starts its sum at once, without waiting, in bucket order on every
// rank. finish() adds the parameters backward did not reach, waits for the sums and writes the
// averages back into the gradients. One process: no hooks, and every call returns at once.
class GradientSync {
public:
    explicit GradientSync(std::vector<at::Tensor> params);
    ~GradientSync(); // removes the hooks: the parameters leave as they came
    GradientSync(const GradientSync &) = delete;
    GradientSync &operator=(const GradientSync &) = delete;

    // The next backward pass completes the step's gradients: its hooks fill the buckets.
    void armForLastBackward();
    // After that backward (or without one: every bucket filled here): as averageGradients.
    void finish(std::vector<double> &extra, const std::string &what);
    // Seconds finish() spent waiting for sums still running when backward ended (summed over calls).
    double waitSeconds() const { return m_waitSeconds; }

private:
    struct Bucket;
    void onGradient(size_t i, const at::Tensor &grad);
    void markReady(size_t i);
    void launchReadyBuckets();

    std::vector<at::Tensor> m_params;
    std::vector<unsigned> m_hookIds;
    std::vector<Bucket> m_buckets;
    std::vector<size_t> m_bucketOf;   // parameter -> bucket
    std::vector<int64_t> m_offsetOf;  // parameter -> offset in its bucket
    std::vector<char> m_ready, m_had; // this step: copied into its bucket; had a gradient here
    size_t m_nextLaunch = 0;
    bool m_armed = false;
    double m_waitSeconds = 0;
};

} // namespace polymoe::dist
