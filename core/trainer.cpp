// The shared training loop (see trainer.h).
#include "trainer.h"

#include "distributed_ops.h"
#include "module_state.h"
#include "polymoe/distributed.h"
#include "polymoe/error.h"
#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "safetensors.h"
#include "atomic_file.h"
#include "content_hash.h"
#include "file_read.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>

#include <limits>
#include <malloc.h>
#include <mutex>
#include <torch/optim/adamw.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <cmath>
#include <fstream>
#include <type_traits>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

constexpr const char *kCheckpoint = "checkpoint";

at::Tensor toTensor(const std::vector<int64_t> &v, int64_t rows, int64_t cols)
{
    return torch::from_blob(const_cast<int64_t *>(v.data()), {rows, cols}, at::kLong).clone();
}

// AdamW's state lives in a map keyed by the parameter's TensorImpl: a string of its address in
// LibTorch 1.x, the address itself in 2.x.
template <class Optimizer> // a template, so that only the branch of this LibTorch is compiled
auto optimizerStateKey(Optimizer &opt, const at::Tensor &p)
{
    using Key = typename std::decay_t<decltype(opt.state())>::key_type;
    if constexpr (std::is_same_v<Key, std::string>) {
        std::ostringstream address; // as 1.x's c10::guts::to_string (gone in 2.x) writes the pointer
        address << p.unsafeGetTensorImpl();
        return Key(address.str());
    } else
        return static_cast<Key>(p.unsafeGetTensorImpl());
}

// The optimizer state as plain tensors, no pickle: "<name>.exp_avg", "<name>.exp_avg_sq" (and
// "<name>.max_exp_avg_sq" with amsgrad) in a safetensors file; returns each tensor's step count, for
// state.json. A parameter that never had a gradient has no state and is left out.
nlohmann::json writeOptimizerState(torch::optim::AdamW &opt, const TrainLoopSpec &job, const fs::path &file)
{
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    nlohmann::json steps = nlohmann::json::object();
    for (const auto &[name, p] : job.trainable) {
        const auto it = opt.state().find(optimizerStateKey(opt, p));
        if (it == opt.state().end())
            continue;
        const auto &st = static_cast<const torch::optim::AdamWParamState &>(*it->second);
        steps[name] = st.step();
        tensors.emplace_back(name + ".exp_avg", st.exp_avg().detach());
        tensors.emplace_back(name + ".exp_avg_sq", st.exp_avg_sq().detach());
        if (st.max_exp_avg_sq().defined())
            tensors.emplace_back(name + ".max_exp_avg_sq", st.max_exp_avg_sq().detach());
    }
    writeSafetensors(file, tensors);
    return steps;
}

void readOptimizerState(torch::optim::AdamW &opt, const TrainLoopSpec &job, const fs::path &file, const nlohmann::json &steps)
{
    SafetensorsFile saved(file);
    const auto tensor = [&](const std::string &name, const at::Tensor &p) {
        if (!saved.contains(name))
            throw FormatError(file.string() + ": tensor '" + name + "' is missing");
        at::Tensor t = saved.tensor(name);
        if (t.sizes() != p.sizes() || t.scalar_type() != p.scalar_type())
            throw FormatError(file.string() + ": tensor '" + name + "' does not match its parameter");
        return t.to(p.device()).clone();
    };
    for (const auto &[name, p] : job.trainable) {
        if (!steps.contains(name))
            continue;
        if (!steps[name].is_number_integer() || steps[name].get<int64_t>() < 1)
            throw FormatError(file.string() + ": the step count of '" + name + "' is not a positive integer");
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(steps[name].get<int64_t>());
        st->exp_avg(tensor(name + ".exp_avg", p));
        st->exp_avg_sq(tensor(name + ".exp_avg_sq", p));
        if (saved.contains(name + ".max_exp_avg_sq"))
            st->max_exp_avg_sq(tensor(name + ".max_exp_avg_sq", p));
        opt.state()[optimizerStateKey(opt, p)] = std::move(st);
    }
}

// The files of a checkpoint whose SHA-256 state.json records and resume checks.
constexpr const char *kCheckpointFiles[] = {"trainable.safetensors", "optimizer.safetensors"};

void writeCheckpoint(const fs::path &dir, TrainLoopSpec &job, torch::optim::AdamW &opt, int64_t step,
                     int64_t tokens, double seconds)
{
    if (!isPrimaryRank())
        return; // every rank holds the same weights and optimizer state; rank 0 writes them
    const fs::path final = dir / kCheckpoint;
    const fs::path tmp = dir / (std::string(kCheckpoint) + ".tmp");
    const fs::path old = dir / (std::string(kCheckpoint) + ".old");
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    // The trainable tensors are enough: the frozen rest is reloaded from where it came from.
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto &[name, p] : job.trainable)
        tensors.emplace_back(name, p.detach());
    writeSafetensors(tmp / "trainable.safetensors", tensors); // fsynced, as every file here
    const nlohmann::json optimizerSteps = writeOptimizerState(opt, job, tmp / "optimizer.safetensors");
    nlohmann::json state = {{"step", step}, {"tokens", tokens}, {"seconds", seconds},
                            {"world_size", distributedWorldSize()},
                            {"config", nlohmann::json::parse(trainConfigToJson(job.config))},
                            {"optimizer_steps", optimizerSteps}, {"format", 2}};
    for (const char *f : kCheckpointFiles)
        state["sha256"][f] = sha256File(tmp / f);
    writeFileAtomically(tmp / "state.json", state.dump(2));
    // Swap in: the newest complete checkpoint becomes checkpoint.old and stays, so that a resume
    // that finds the newest damaged (or a crash between the two renames) has the one before it.
    fs::remove_all(old, ec);
    if (fs::exists(final))
        fs::rename(final, old);
    fs::rename(tmp, final);
}

} // namespace

bool takesWeightDecay(const std::string &name, const at::Tensor &p)
{
    auto endsWith = [&](std::string_view tail) {
        return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (p.dim() < 2)
        return false; // norms and biases
    if (name.find("embed_tokens") != std::string::npos)
        return false; // a lookup table: rows of rare tokens would shrink between their few updates
    // The routers (MoeBlock's "gate") and the old/new classifiers: their logits' scale is what they
    // learn (a shrunken router routes more uniformly), so they are not decayed (METHOD.md 3, 6).
    if (endsWith(".mlp.gate.weight") || name.find(".mlp.classifier.") != std::string::npos)
        return false;
    return true;
}

namespace {

// Gradient hooks that keep only some rows of a matrix training (TrainLoopSpec::trainableRows),
// removed when the run ends so that the model's tensors leave it as they came.
class RowMaskHooks {
public:
    void add(at::Tensor p, const at::Tensor &rows)
    {
        const at::Tensor mask = rows.to(p.device(), at::kFloat).unsqueeze(1);
        const unsigned index = p.register_hook([mask](const at::Tensor &g) { return g * mask.to(g.scalar_type()); });
        m_hooks.emplace_back(std::move(p), index);
    }
    ~RowMaskHooks()
    {
        for (auto &[p, index] : m_hooks)
            p.remove_hook(index);
    }

private:
    std::vector<std::pair<at::Tensor, unsigned>> m_hooks;
};

} // namespace

std::unique_ptr<torch::optim::AdamW> makeOptimizer(const std::vector<std::pair<std::string, at::Tensor>> &trainable,
                                                   const TrainConfig &c, const std::set<std::string> &withoutDecay)
{
    std::vector<at::Tensor> decay, noDecay;
    for (const auto &[name, p] : trainable)
        (takesWeightDecay(name, p) && !withoutDecay.count(name) ? decay : noDecay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto opts = [&](double wd) {
        auto o = std::make_unique<torch::optim::AdamWOptions>(c.lr);
        o->betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(wd);
        return o;
    };
    // Group 0 decays, group 1 does not; an empty group is left out.
    if (!decay.empty())
        groups.emplace_back(decay, opts(c.weightDecay));
    if (!noDecay.empty())
        groups.emplace_back(noDecay, opts(0.0));
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(c.lr));
}

bool hasCheckpoint(const fs::path &checkpointDir)
{
    return fs::exists(checkpointDir / kCheckpoint / "state.json") ||
           fs::exists(checkpointDir / (std::string(kCheckpoint) + ".old") / "state.json");
}

at::Tensor languageModelLoss(CausalLMImpl &model, const at::Tensor &inputs, const at::Tensor &targets)
{
    const at::Tensor logits = model.forward(inputs);
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(at::kFloat),
                                                targets.reshape({-1}));
}

double scheduledLearningRate(const TrainConfig &c, int64_t step)
{
    if (c.warmupSteps > 0 && step <= c.warmupSteps)
        return c.lr * double(step) / double(c.warmupSteps);
    const double span = double(std::max<int64_t>(1, c.steps - c.warmupSteps));
    const double progress = std::min(1.0, double(step - c.warmupSteps) / span);
    const double minLr = c.lr * c.minLrRatio;
    return minLr + 0.5 * (c.lr - minLr) * (1 + std::cos(M_PI * progress));
}

bool checkTrainingDevice(const TrainConfig &c)
{
    validateTrainConfig(c);
    const bool have = torch::cuda::is_available();
    if (c.device != "cpu" && c.device != "cuda" && c.device != "auto")
        throw ConfigError("training device must be cpu, cuda or auto, not '" + c.device + "'");
    if (c.device == "cuda" && !have)
        throw ConfigError("training device cuda: no CUDA device is visible to this LibTorch (Debian's is CPU-only; "
                          "build against a CUDA LibTorch 2.x, see README 'CUDA kernels')");
    const bool cuda = c.device == "cuda" || (c.device == "auto" && have);
    resolveDtype(c.dtype, cuda); // throws for an unknown dtype
    return cuda;
}

namespace {

// Where a resumed run goes on from: the step, tokens and seconds its checkpoint recorded.
struct ResumePoint {
    int64_t step = 0, tokens = 0;
    double seconds = 0;
    std::string note; // set when the newest checkpoint was damaged and the one before it was used
};

// One checkpoint folder: its files checked against state.json, then the trainable tensors and the
// optimizer state loaded. A damaged file is a FormatError; settings (or a world size) that differ
// from the run's a ConfigError.
ResumePoint restoreCheckpoint(const fs::path &ck, TrainLoopSpec &job, torch::optim::AdamW &optimizer)
{
    const TrainConfig &c = job.config;
    const fs::path stateFile = ck / "state.json";
    const auto state = nlohmann::json::parse(readRegularFile(stateFile, int64_t(1) << 24), nullptr, false);
    if (state.is_discarded() || !state.is_object())
        throw FormatError(stateFile.string() + ": not valid JSON");
    if (state.value("format", 1) < 2 || fs::exists(ck / "optimizer.pt"))
        throw ConfigError(ck.string() + ": an older PolyMoE's checkpoint (its optimizer state is a pickle "
                          "archive, which is never loaded); start the run again");
    for (const char *f : kCheckpointFiles)
        if (!state.contains("sha256") || state["sha256"].value(f, std::string()) != sha256File(ck / f))
            throw FormatError((ck / f).string() + ": its SHA-256 differs from the one state.json recorded: the "
                              "checkpoint is damaged");
    const auto savedConfig = trainConfigFromJson(state["config"].dump(), stateFile.string());
    if (trainConfigToJson(savedConfig) != trainConfigToJson(c))
        throw ConfigError(stateFile.string() + ": the checkpoint was made with different settings; "
                          "resume with the same settings or start a new run");
    SafetensorsFile saved(ck / "trainable.safetensors");
    {
        at::NoGradGuard ng;
        for (auto &[name, p] : job.trainable) {
            if (!saved.contains(name))
                throw FormatError((ck / "trainable.safetensors").string() + ": tensor '" + name + "' is missing");
            p.copy_(saved.tensor(name));
        }
    }
    readOptimizerState(optimizer, job, ck / "optimizer.safetensors", state.value("optimizer_steps", nlohmann::json::object()));
    const int savedWorld = state.value("world_size", 1);
    if (savedWorld != distributedWorldSize())
        throw ConfigError(stateFile.string() + ": the checkpoint was made by " + std::to_string(savedWorld) +
                          " process(es); resume it with as many (this run has " +
                          std::to_string(distributedWorldSize()) + ")");
    const auto integer = [&](const char *key) {
        if (!state.contains(key) || !state[key].is_number_integer() || state[key].get<int64_t>() < 0)
            throw FormatError(stateFile.string() + ": '" + key + "' is not a non-negative integer");
        return state[key].get<int64_t>();
    };
    ResumePoint r;
    r.step = integer("step");
    r.tokens = integer("tokens");
    if (r.step > c.steps)
        throw FormatError(stateFile.string() + ": step " + std::to_string(r.step) + " is past the run's " +
                          std::to_string(c.steps) + " steps");
    r.seconds = state.value("seconds", 0.0);
    if (!std::isfinite(r.seconds) || r.seconds < 0)
        r.seconds = 0;
    return r;
}

// The newest checkpoint, or the one before it (checkpoint.old) when the newest is missing (a crash
// between writeCheckpoint's two renames) or damaged; a damaged newest one is removed, so that the
// next checkpoint does not keep it as checkpoint.old.
ResumePoint resumeFromCheckpoints(TrainLoopSpec &job, torch::optim::AdamW &optimizer)
{
    if (!hasCheckpoint(job.checkpointDir))
        throw ConfigError(job.checkpointDir.string() + ": no checkpoint to resume from");
    const fs::path newest = job.checkpointDir / kCheckpoint, older = job.checkpointDir / (std::string(kCheckpoint) + ".old");
    if (!fs::exists(newest / "state.json"))
        return restoreCheckpoint(older, job, optimizer);
    try {
        return restoreCheckpoint(newest, job, optimizer);
    } catch (const FormatError &e) {
        if (!fs::exists(older / "state.json"))
            throw;
        ResumePoint r = restoreCheckpoint(older, job, optimizer);
        std::error_code ec;
        fs::remove_all(newest, ec);
        r.note = std::string(e.what()) + "; resumed from the checkpoint before it (" + older.string() + ", step " +
                 std::to_string(r.step) + ") and removed the damaged one";
        return r;
    }
}

// TrainLoopSpec::trainableRows as gradient masks; the names of the masked matrices (which take no
// weight decay: their frozen rows must not shrink).
std::set<std::string> maskTrainableRows(const TrainLoopSpec &job, RowMaskHooks &hooks)
{
    std::set<std::string> masked;
    for (const auto &[name, rows] : job.trainableRows) {
        const auto it = std::find_if(job.trainable.begin(), job.trainable.end(), [&](const auto &t) { return t.first == name; });
        if (it == job.trainable.end() || it->second.dim() != 2 || rows.dim() != 1 || rows.size(0) != it->second.size(0))
            throw ConfigError("trainable rows of '" + name + "': not a trainable matrix with " + std::to_string(rows.numel()) + " rows");
        hooks.add(it->second, rows);
        masked.insert(name);
    }
    return masked;
}

// Rows [first, first + rows) of a batch.
SequenceBatch batchRows(const SequenceBatch &batch, int64_t first, int64_t rows)
{
    SequenceBatch part;
    part.rows = rows;
    part.seqLen = batch.seqLen;
    const int64_t w = batch.seqLen + 1;
    part.tokens.assign(batch.tokens.begin() + first * w, batch.tokens.begin() + (first + rows) * w);
    part.language.assign(batch.language.begin() + first, batch.language.begin() + first + rows);
    part.isNew.assign(batch.isNew.begin() + first, batch.isNew.begin() + first + rows);
    return part;
}

// The forward and backward passes of one step on this rank: its gradAccum micro-batches of the global
// batch, each loss divided by gradAccum, so the gradients are those of the mean over the rank's rows.
// Returns the sum of the micro-batches' losses; `metrics` sums the loss function's metrics.
double forwardBackward(TrainLoopSpec &job, const SequenceBatch &batch, const at::Device &device, bool bf16,
                       dist::GradientSync &sync, std::map<std::string, double> &metrics)
{
    const TrainConfig &c = job.config;
    const int64_t micro = c.batchSize, local = c.batchSize * c.gradAccum;
    double lossSum = 0;
    for (int64_t m = 0; m < c.gradAccum; ++m) {
        const SequenceBatch part = batchRows(batch, distributedRank() * local + m * micro, micro);
        const at::Tensor all = toTensor(part.tokens, micro, batch.seqLen + 1).to(device);
        const at::Tensor inputs = all.slice(1, 0, batch.seqLen);
        const at::Tensor targets = all.slice(1, 1, batch.seqLen + 1);
        at::Tensor loss;
        {
            Bf16Autocast ac(bf16, device.type()); // bf16 compute, fp32 master weights (CPU and CUDA)
            loss = job.loss ? job.loss(part, inputs, targets, metrics) : languageModelLoss(*job.model, inputs, targets);
        }
        if (m == c.gradAccum - 1)
            sync.armForLastBackward(); // the gradient sums start while this backward runs
        (loss / double(c.gradAccum)).backward();
        lossSum += loss.item<double>();
    }
    return lossSum;
}

// Data-parallel: the gradients (their sums started during the last backward), the loss sum, the
// metrics and the ranks' stop requests summed over the ranks and divided by the world size (one
// process: nothing to do). Returns whether any rank was asked to stop.
bool averageOverRanks(dist::GradientSync &sync, double &lossSum, std::map<std::string, double> &metrics,
                      bool stopRequested, int64_t step)
{
    const double world = double(distributedWorldSize());
    std::vector<double> sums = {lossSum, stopRequested ? 1.0 : 0.0};
    for (auto &[k, v] : metrics)
        sums.push_back(v);
    sync.finish(sums, "gradients at step " + std::to_string(step));
    lossSum = sums[0] / world;
    size_t i = 2;
    for (auto &[k, v] : metrics)
        v = sums[i++] / world;
    return sums[1] > 0;
}

} // namespace

TrainResult runTraining(TrainLoopSpec &job, const TrainStatusFn &status, std::stop_token stop)
{
    const TrainConfig &c = job.config;
    if (!job.batcher)
        throw ConfigError("training job has no data");
    if (c.steps < 1 || c.batchSize < 1 || c.gradAccum < 1)
        throw ConfigError("steps, batch size and accumulation must be positive");
    if (job.trainable.empty())
        throw ConfigError("nothing to train: no trainable parameters");

    TrainResult result;
    result.runId = job.runId;
    result.threads = setTrainingThreads(c.threads);
    keepFreedMemoryForReuse();
    // The training device: the model moves there in place (parameter handles stay valid, so the
    // trainable list and the loss closures still point at the same tensors).
    job.model->to(checkTrainingDevice(c) ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU));
    const bool cuda = job.model->parameters().front().is_cuda();
    result.dtype = resolveDtype(c.dtype, cuda);
    const auto device = job.model->parameters().front().device();
    result.device = device.str();

    std::vector<at::Tensor> params = trainOnly(*job.model, job.trainable);
    RowMaskHooks rowHooks;
    auto optimizerOwner = makeOptimizer(job.trainable, c, maskTrainableRows(job, rowHooks));
    dist::GradientSync sync(params); // after the row masks: its hooks see the masked gradients
    torch::optim::AdamW &optimizer = *optimizerOwner;
    const ResumePoint from = job.resume ? resumeFromCheckpoints(job, optimizer) : ResumePoint{};
    int64_t step = from.step, tokens = from.tokens;
    // Every rank starts from rank 0's weights (the same seed and files give them anyway; this
    // makes it certain).
    {
        at::NoGradGuard ng;
        dist::broadcastFromPrimary(params, "starting weights");
    }

    job.model->train();
    job.model->setActivationCheckpointing(c.checkpointActivations);
    // One step: the global batch of world x accumulation x batch sequences, drawn by step and seed
    // alone; this rank reads its accumulation x batch rows of it, one micro-batch at a time.
    const int world = distributedWorldSize();
    const int64_t global = c.batchSize * c.gradAccum * world;
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return from.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const int64_t firstStep = step;
    double lastLoss = 0;
    const bool bf16 = result.dtype == "bf16";
    bool stopAgreed = false; // data-parallel: every rank stops after the same step

    try {
        while (step < c.steps) {
            if (world == 1)
                throwIfStopped(stop);
            else if (stopAgreed)
                throw Cancelled();
            const int64_t next = step + 1;
            const double lr = scheduledLearningRate(c, next);
            for (auto &g : optimizer.param_groups())
                static_cast<torch::optim::AdamWOptions &>(g.options()).lr(lr);
            dropGradients(optimizer);
            const SequenceBatch batch = job.batcher->batch(step, global);
            std::map<std::string, double> metrics;
            double lossSum = forwardBackward(job, batch, device, bf16, sync, metrics);
            stopAgreed = averageOverRanks(sync, lossSum, metrics, stop.stop_requested(), next);
            if (!std::isfinite(lossSum))
                throw Error("training diverged at step " + std::to_string(next) +
                            ": the loss is not finite; lower the learning rate");
            if (c.gradClip > 0)
                torch::nn::utils::clip_grad_norm_(params, c.gradClip);
            optimizer.step();
            step = next;
            tokens += global * batch.seqLen;
            lastLoss = lossSum / double(c.gradAccum);
            for (auto &[k, v] : metrics)
                v /= double(c.gradAccum);

            const double secs = elapsed();
            if (job.store && isPrimaryRank() && (step % std::max<int64_t>(1, c.logEvery) == 0 || step == c.steps || step == firstStep + 1)) {
                std::vector<std::pair<std::string, double>> row = {
                    {"loss", lastLoss}, {"lr", lr}, {"tokens", double(tokens)}, {"seconds", secs}};
                for (auto &[k, v] : metrics)
                    row.emplace_back(k, v);
                job.store->addMetrics(job.runId, step, row);
            }
            if (c.checkpointEvery > 0 && step % c.checkpointEvery == 0 && step < c.steps)
                writeCheckpoint(job.checkpointDir, job, optimizer, step, tokens, secs);
            if (status) {
                TrainStatus s;
                s.kind = c.kind;
                s.step = step;
                s.totalSteps = c.steps;
                s.loss = lastLoss;
                s.lr = lr;
                const double runSecs = secs - from.seconds;
                s.tokensPerSecond = runSecs > 0 ? double((step - firstStep) * global * batch.seqLen) / runSecs : 0;
                s.elapsedSeconds = secs;
                s.etaSeconds = step > firstStep ? runSecs / double(step - firstStep) * double(c.steps - step) : 0;
                s.metrics = metrics;
                status(s);
            }
        }
    } catch (const Cancelled &) {
        if (step > firstStep)
            writeCheckpoint(job.checkpointDir, job, optimizer, step, tokens, elapsed());
        throw;
    }
    writeCheckpoint(job.checkpointDir, job, optimizer, step, tokens, elapsed());
    job.model->eval();
    job.model->setActivationCheckpointing(false);
    for (auto &p : job.model->parameters())
        p.set_requires_grad(false);
    result.steps = step;
    result.tokens = tokens;
    result.seconds = elapsed();
    result.finalLoss = lastLoss;
    result.worldSize = world;
    result.checkpoint = (job.checkpointDir / kCheckpoint).string();
    result.resumeNote = from.note;
    return result;
}

std::vector<at::Tensor> trainOnly(torch::nn::Module &model, const std::vector<std::pair<std::string, at::Tensor>> &trainable)
{
    for (auto &p : model.parameters())
        p.set_requires_grad(false);
    std::vector<at::Tensor> params;
    for (const auto &[name, p] : trainable) {
        p.set_requires_grad(true);
        params.push_back(p);
    }
    return params;
}

void keepFreedMemoryForReuse()
{
    static std::once_flag once;
    std::call_once(once, [] {
#ifdef __GLIBC__
        mallopt(M_MMAP_MAX, 0);                                   // large blocks from the heap too
        mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()); // and the heap not trimmed
#endif
    });
}

void dropGradients(torch::optim::Optimizer &optimizer)
{
    for (auto &group : optimizer.param_groups())
        for (auto &p : group.params())
            p.mutable_grad() = at::Tensor();
}



} // namespace polymoe
