// The project store: one SQLite file per project (*.polymoe) holding everything the workflow
// produces. Schema version in the file (PRAGMA user_version), forward migrations on open, foreign
// keys on, WAL so a reader (the GUI) sees a writer's (a training job's) commits. Every write is a
// transaction: a crash leaves the last committed state. Large artifacts (token shards, model
// folders) live in the project's data folder "<file>.d/" and are recorded here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe {

namespace detail {
class Database;
}

enum class LanguageGroup { Old, New };
std::string toString(LanguageGroup g);          // "old" / "new"
LanguageGroup parseLanguageGroup(const std::string &s); // throws ConfigError

struct Language {
    std::string code;  // ISO 639-1 where there is one: "en", "de"
    std::string name;  // "English"
    LanguageGroup group = LanguageGroup::Old;
    int wave = 0;      // 0: the base model's languages; 1, 2...: expansion waves (lifelong)
};

struct RunRecord {
    int64_t id = 0;
    std::string kind;     // "pretrain", "finetune", "stage1", "stage2", ...
    std::string status;   // "running", "completed", "failed", "cancelled" (run_liveness.h: "running" may be interrupted)
    std::string config;   // the full configuration, JSON
    std::string message;
    std::string startedAt;
    std::string finishedAt;
    std::optional<int64_t> modelIn;
    std::optional<int64_t> modelOut;
    std::string checkpoint;
    // The process that runs (or ran) it, and its heartbeat (run_liveness.h).
    std::optional<int64_t> pid;
    std::string host;         // host name; empty for runs recorded before schema 4
    int64_t processStart = 0; // start time in clock ticks since boot; 0 unknown
    std::string heartbeatAt;  // UTC time of the last logged step (or of the start)
};

struct ModelRecord {
    int64_t id = 0;
    std::string name;      // unique in the project: "base", "finetuned", "stage1"...
    std::string kind;      // "base", "imported", "finetuned", "expanded"
    std::string path;      // relative to the data folder, or absolute for imported models
    std::string config;    // config.json text
    std::optional<int64_t> parentId;
    std::optional<int64_t> tokenizerId;
    int64_t parameters = 0;
    std::string createdAt;
};

// The split an evaluation of an out-of-domain probe NAME is recorded under: "probe:NAME".
inline constexpr std::string_view kProbeSplitPrefix = "probe:";
inline std::string probeSplit(const std::string &name) { return std::string(kProbeSplitPrefix) + name; }

struct EvaluationRecord {
    int64_t modelId = 0;
    std::optional<int64_t> runId;
    std::string language;
    std::string split;
    int64_t tokens = 0;
    double loss = 0;
    double perplexity = 0;
    std::string createdAt;
    int64_t documents = 0; // 0: not recorded (evaluations before schema 5)
    double perplexityLow = std::numeric_limits<double>::quiet_NaN(); // 95% document-bootstrap interval
    double perplexityHigh = std::numeric_limits<double>::quiet_NaN();
    // The held-out text its scored tokens cover (0: not recorded, before schema 6).
    double characters = 0, bytes = 0;
};

// A model's greedy continuation of a prompt (the demo's generation samples).
struct SampleRecord {
    int64_t modelId = 0;
    std::string language;
    std::string prompt;
    std::string continuation;
    int64_t maxNewTokens = 0;
};

// The method's analyses (METHOD.md sections 1, 2 and 8).
struct SimilarityAnalysisRecord {
    int64_t id = 0;
    std::optional<int64_t> modelId;
    int64_t tokensPerLanguage = 0;
    std::string settings;  // JSON: languages, groups, split, sequence length...
    std::string createdAt;
};

struct SimilarityValueRecord {
    int layer = 0;
    std::string languageA, languageB;
    double value = 0;      // mean pairwise cosine of the FFN inputs
};

struct LayerScoreRecord {
    int layer = 0;
    double score = 0;                 // S_i
    std::optional<double> newOld;     // mean over the new-old pairs
    std::optional<double> newNew;     // mean over the new-new pairs; none with a single new language
};

struct AllocationRecord {
    int64_t id = 0;
    std::string name;
    std::string strategy;             // "layermoe", "uniform", "manual"
    std::optional<int64_t> budget;    // new experts asked for (layermoe), or experts per layer (uniform)
    std::vector<int> experts;         // N_i per layer, original FFN included
    std::optional<int64_t> analysisId;
    std::optional<int64_t> addedParameters;
    std::string createdAt;
};

// Routing on the probe set, per layer x language x expert (METHOD.md section 8). The share of a
// language's tokens whose top-1 is expert 0 is top1Share of the row with expert 0.
struct RouterStatRecord {
    std::optional<int64_t> runId;
    std::optional<int64_t> modelId;   // set for the statistics of a saved model
    int64_t step = 0;
    int layer = 0;
    std::string language;
    int expert = 0;
    double slotShare = 0;             // share of the routing slots (T * k) that went to this expert
    double top1Share = 0;             // share of the tokens whose first choice is this expert
    double entropy = 0;               // router entropy in nats, mean over the tokens (same for every expert)
};

// Names that become file or folder names inside a project's data folder (model names, run output
// names, export names): 1-64 characters of ASCII letters, digits, '.', '-' and '_', not starting
// with '.', so never a separator, "..", or anything that leads outside. Throws ConfigError naming
// `what` and the name.
void checkSafeName(const std::string &name, const std::string &what);
// A language code: 1-16 ASCII letters, digits, '-' or '_' (it becomes part of shard file names).
bool validLanguageCode(const std::string &code);

class ProjectStore {
public:
    static constexpr int kSchemaVersion = 6;

    // Creates a new project file; refuses to overwrite an existing one.
    static ProjectStore create(const std::filesystem::path &path);
    // Opens an existing project, applying forward migrations (a read-only open of an older file
    // migrates it through a short writable connection first, when the file is writable). A file from
    // a newer PolyMoE is refused with a ConfigError naming both schema versions; a non-project file
    // with FormatError.
    static ProjectStore open(const std::filesystem::path &path, bool readOnly = false);
    // For migration tests: a new project at an older schema version, returned unmigrated (the next
    // open() migrates it).
    static ProjectStore createAtVersion(const std::filesystem::path &path, int version);

    ProjectStore(ProjectStore &&) noexcept;
    ProjectStore &operator=(ProjectStore &&) noexcept;
    ~ProjectStore();

    const std::filesystem::path &path() const { return m_path; }
    // "<file>.d": token shards, tokenizer files, model folders. Created on demand.
    std::filesystem::path dataDir() const;
    // dataDir() / relative, for a relative path read from the project file (a model's folder, a
    // shard): FormatError when it is absolute or, resolved lexically, leaves the data folder.
    std::filesystem::path insideDataDir(const std::string &relative) const;
    std::filesystem::path ensureDataDir(const std::string &sub = {}) const;
    int schemaVersion() const;
    bool readOnly() const { return m_readOnly; }

    // Runs fn inside one write transaction; rolls back and rethrows if fn throws.
    void transaction(const std::function<void()> &fn);

    // Languages
    void addLanguage(const Language &lang); // same code again: must agree on the group
    std::vector<Language> languages() const;
    std::optional<Language> language(const std::string &code) const;

    // Key/value settings of the project (name, created_at, polymoe_version, ...).
    void setSetting(const std::string &key, const std::string &value);
    std::optional<std::string> setting(const std::string &key) const;

    // Runs and their metric series. beginRun and resumeRun record this process (id, host, start
    // time) and a heartbeat; addMetrics renews the heartbeat in the same transaction.
    int64_t beginRun(const std::string &kind, const std::string &configJson,
                     std::optional<int64_t> modelIn = {});
    void resumeRun(int64_t runId); // the run is "running" again, in this process
    void finishRun(int64_t runId, const std::string &status, const std::string &message = {},
                   std::optional<int64_t> modelOut = {}, const std::string &checkpoint = {});
    void updateRunCheckpoint(int64_t runId, const std::string &checkpoint);
    void addMetrics(int64_t runId, int64_t step,
                    const std::vector<std::pair<std::string, double>> &values);
    std::vector<RunRecord> runs() const;
    std::optional<RunRecord> run(int64_t runId) const;
    // The newest run of `kind` that is not completed and, when outputName is given, whose config
    // names that model as its output ("output_name"): the run a resume must continue.
    std::optional<RunRecord> unfinishedRun(const std::string &kind, const std::string &outputName = {}) const;
    // (step, value) by step; only the steps after afterStep (for polling).
    std::vector<std::pair<int64_t, double>> metricSeries(int64_t runId, const std::string &name,
                                                         int64_t afterStep = -1) const;

    // Models and their evaluations
    int64_t addModel(const ModelRecord &model); // returns the id; the name must be new
    std::vector<ModelRecord> models() const;
    std::optional<ModelRecord> model(const std::string &name) const;
    std::optional<ModelRecord> model(int64_t id) const;
    std::string uniqueModelName(const std::string &base) const; // base, base-2, base-3...
    std::filesystem::path modelPath(const ModelRecord &model) const; // absolute folder
    void addEvaluations(const std::vector<EvaluationRecord> &rows);
    // The latest evaluation of each language for a model.
    std::vector<EvaluationRecord> evaluations(int64_t modelId) const;
    // Generation samples: replaces the model's samples of the same language and prompt.
    void addSamples(const std::vector<SampleRecord> &rows);
    std::vector<SampleRecord> samples(int64_t modelId) const; // in the order they were added

    // Similarity analyses, allocations, router statistics
    int64_t addSimilarityAnalysis(const SimilarityAnalysisRecord &analysis, const std::vector<SimilarityValueRecord> &values,
                                  const std::vector<LayerScoreRecord> &scores); // returns the id
    std::vector<SimilarityAnalysisRecord> similarityAnalyses() const;   // oldest first
    std::vector<SimilarityValueRecord> similarityValues(int64_t analysisId) const;
    std::vector<LayerScoreRecord> layerScores(int64_t analysisId) const; // by layer
    int64_t addAllocation(const AllocationRecord &allocation); // returns the id
    std::optional<AllocationRecord> allocation(int64_t id) const;
    std::vector<AllocationRecord> allocations() const;          // oldest first
    void addRouterStats(const std::vector<RouterStatRecord> &rows);
    // A run's statistics (every step recorded), by step, layer, language, expert.
    std::vector<RouterStatRecord> routerStats(int64_t runId) const;

    // For core's own modules (corpus, tokenizer, models...): the connection.
    detail::Database &db() const { return *m_db; }

private:
    ProjectStore(std::filesystem::path path, std::unique_ptr<detail::Database> db, bool readOnly);
    void migrate(int targetVersion);

    std::filesystem::path m_path;
    std::unique_ptr<detail::Database> m_db;
    bool m_readOnly = false;
};

} // namespace polymoe
