// The SQLite project store: schema, migrations, and the typed accessors shared by all jobs.
#include "polymoe/project_store.h"

#include "polymoe/error.h"
#include "polymoe/run_liveness.h"
#include "sqlite_db.h"

#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <cmath>

namespace polymoe {

using detail::Database;
using detail::Statement;
using detail::Transaction;

namespace {

// kMigrations[i] takes a file from schema version i to i + 1. Never edit a released entry: add one.
const char *const kMigrations[] = {
    // 0 -> 1: languages and their text.
    R"sql(
CREATE TABLE project(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE languages(
  code TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  grp TEXT NOT NULL CHECK (grp IN ('old', 'new')),
  wave INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE corpora(
  id INTEGER PRIMARY KEY,
  language TEXT NOT NULL REFERENCES languages(code) ON DELETE CASCADE,
  name TEXT NOT NULL,
  source TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  provenance TEXT NOT NULL,
  format TEXT NOT NULL,
  n_documents INTEGER NOT NULL DEFAULT 0,
  n_characters INTEGER NOT NULL DEFAULT 0,
  n_rejected INTEGER NOT NULL DEFAULT 0,
  n_duplicates INTEGER NOT NULL DEFAULT 0,
  n_empty INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE documents(
  id INTEGER PRIMARY KEY,
  corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
  language TEXT NOT NULL REFERENCES languages(code) ON DELETE CASCADE,
  split TEXT NOT NULL CHECK (split IN ('train', 'heldout')),
  origin TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  n_characters INTEGER NOT NULL,
  n_words INTEGER NOT NULL,
  text TEXT NOT NULL,
  UNIQUE (language, sha256));
CREATE INDEX documents_by_language ON documents(language, split);
CREATE TABLE tokenizers(
  id INTEGER PRIMARY KEY,
  backend TEXT NOT NULL,
  model_type TEXT,
  vocab_size INTEGER NOT NULL,
  settings TEXT NOT NULL,
  model BLOB NOT NULL,
  sha256 TEXT NOT NULL,
  source TEXT NOT NULL,
  is_current INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE token_shards(
  id INTEGER PRIMARY KEY,
  tokenizer_id INTEGER NOT NULL REFERENCES tokenizers(id) ON DELETE CASCADE,
  language TEXT NOT NULL REFERENCES languages(code) ON DELETE CASCADE,
  split TEXT NOT NULL CHECK (split IN ('train', 'heldout')),
  path TEXT NOT NULL,
  n_documents INTEGER NOT NULL,
  n_tokens INTEGER NOT NULL,
  n_words INTEGER NOT NULL,
  n_characters INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now')),
  UNIQUE (tokenizer_id, language, split));
)sql",
    // 1 -> 2: models, runs, metric series, evaluations, exports.
    R"sql(
CREATE TABLE models(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('base', 'imported', 'finetuned', 'expanded')),
  path TEXT NOT NULL,
  config TEXT NOT NULL,
  parent_id INTEGER REFERENCES models(id),
  tokenizer_id INTEGER REFERENCES tokenizers(id),
  n_parameters INTEGER,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE runs(
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
  model_in INTEGER REFERENCES models(id),
  model_out INTEGER REFERENCES models(id),
  checkpoint TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  pid INTEGER,
  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  finished_at TEXT NOT NULL DEFAULT '');
CREATE TABLE metrics(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (run_id, name, step)) WITHOUT ROWID;
CREATE TABLE evaluations(
  id INTEGER PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  language TEXT NOT NULL REFERENCES languages(code) ON DELETE CASCADE,
  split TEXT NOT NULL,
  n_tokens INTEGER NOT NULL,
  loss REAL NOT NULL,
  perplexity REAL NOT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE exports(
  id INTEGER PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  format TEXT NOT NULL,
  path TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
)sql",
    // 2 -> 3: the method's analyses: layer similarity, expert allocations, router statistics.
    R"sql(
CREATE TABLE similarity_analyses(
  id INTEGER PRIMARY KEY,
  model_id INTEGER REFERENCES models(id) ON DELETE CASCADE,
  tokens_per_language INTEGER NOT NULL,
  settings TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE similarity_values(
  analysis_id INTEGER NOT NULL REFERENCES similarity_analyses(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  language_a TEXT NOT NULL,
  language_b TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (analysis_id, layer, language_a, language_b)) WITHOUT ROWID;
CREATE TABLE layer_scores(
  analysis_id INTEGER NOT NULL REFERENCES similarity_analyses(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  score REAL NOT NULL,
  new_old REAL,
  new_new REAL,
  PRIMARY KEY (analysis_id, layer)) WITHOUT ROWID;
CREATE TABLE allocations(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  strategy TEXT NOT NULL CHECK (strategy IN ('layermoe', 'uniform', 'manual')),
  budget INTEGER,
  experts TEXT NOT NULL,
  analysis_id INTEGER REFERENCES similarity_analyses(id) ON DELETE SET NULL,
  added_parameters INTEGER,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE router_stats(
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  model_id INTEGER REFERENCES models(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  layer INTEGER NOT NULL,
  language TEXT NOT NULL,
  expert INTEGER NOT NULL,
  slot_share REAL NOT NULL,
  top1_share REAL NOT NULL,
  entropy REAL);
CREATE INDEX router_stats_by_run ON router_stats(run_id, step);
)sql",
    // 3 -> 4: a run's liveness: the host and start time of its process (pid is there since 2), and
    // a heartbeat renewed with every logged step.
    R"sql(
ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN process_start INTEGER;
ALTER TABLE runs ADD COLUMN heartbeat_at TEXT NOT NULL DEFAULT '';
)sql",
    // 4 -> 5: an evaluation's 95% perplexity interval over its held-out documents (a document
    // bootstrap) and how many documents it covered; NULL in evaluations made before.
    R"sql(
ALTER TABLE evaluations ADD COLUMN n_documents INTEGER;
ALTER TABLE evaluations ADD COLUMN perplexity_low REAL;
ALTER TABLE evaluations ADD COLUMN perplexity_high REAL;
)sql",
    // 5 -> 6: the text an evaluation's scored tokens cover, in characters and UTF-8 bytes (for bits
    // per character and per byte, comparable across languages and tokenizers; NULL before), and
    // generation samples: a model's greedy continuation of a prompt in one language.
    R"sql(
ALTER TABLE evaluations ADD COLUMN n_characters REAL;
ALTER TABLE evaluations ADD COLUMN n_bytes REAL;
CREATE TABLE samples(
  id INTEGER PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  language TEXT NOT NULL,
  prompt TEXT NOT NULL,
  continuation TEXT NOT NULL,
  max_new_tokens INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
)sql",
};

constexpr const char *kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
static_assert(std::size(kMigrations) == ProjectStore::kSchemaVersion);

constexpr const char *kApplicationTag = "polymoe-project";

void configureConnection(Database &db, bool readOnly)
{
    db.exec("PRAGMA foreign_keys = ON");
    if (!readOnly)
        db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
}

} // namespace

std::string toString(LanguageGroup g) { return g == LanguageGroup::Old ? "old" : "new"; }

LanguageGroup parseLanguageGroup(const std::string &s)
{
    if (s == "old")
        return LanguageGroup::Old;
    if (s == "new")
        return LanguageGroup::New;
    throw ConfigError("language group must be 'old' or 'new', not '" + s + "'");
}

ProjectStore::ProjectStore(std::filesystem::path path, std::unique_ptr<Database> db, bool readOnly)
    : m_path(std::move(path)), m_db(std::move(db)), m_readOnly(readOnly)
{
}

ProjectStore::ProjectStore(ProjectStore &&) noexcept = default;
ProjectStore &ProjectStore::operator=(ProjectStore &&) noexcept = default;
ProjectStore::~ProjectStore() = default;

ProjectStore ProjectStore::create(const std::filesystem::path &path)
{
    return createAtVersion(path, kSchemaVersion);
}

ProjectStore ProjectStore::createAtVersion(const std::filesystem::path &path, int version)
{
    if (version < 1 || version > kSchemaVersion)
        throw ConfigError("schema version " + std::to_string(version) + " does not exist");
    std::error_code ec;
    if (std::filesystem::exists(path, ec))
        throw IoError(path.string() + ": already exists; open it or choose another name");
    if (path.has_parent_path() && !std::filesystem::is_directory(path.parent_path(), ec))
        throw IoError(path.string() + ": folder " + path.parent_path().string() + " does not exist");
    // Build the file under a temporary name, then rename: a crash never leaves a half project.
    const auto tmp = std::filesystem::path(path.string() + ".creating");
    std::filesystem::remove(tmp, ec);
    {
        auto db = std::make_unique<Database>(tmp, Database::Mode::Create);
        db->exec("PRAGMA journal_mode = DELETE");
        db->exec("PRAGMA foreign_keys = ON");
        ProjectStore store(tmp, std::move(db), false);
        store.migrate(version);
        Statement st(*store.m_db, "INSERT OR REPLACE INTO project(key, value) VALUES (?, ?)");
        st.bind(1, "application").bind(2, kApplicationTag).run();
        st.reset();
        st.bind(1, "created_with").bind(2, POLYMOE_VERSION).run();
        st.reset();
        st.bind(1, "name").bind(2, path.stem().string()).run();
        st.reset();
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec)
        throw IoError(path.string() + ": cannot create: " + ec.message());
    if (version == kSchemaVersion)
        return open(path);
    // An older version is left as it is, for the migration tests: open() migrates it.
    auto db = std::make_unique<Database>(path, Database::Mode::ReadWrite);
    configureConnection(*db, false);
    return ProjectStore(path, std::move(db), false);
}

ProjectStore ProjectStore::open(const std::filesystem::path &path, bool readOnly)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw IoError(path.string() + ": no such project file");
    auto db = std::make_unique<Database>(path, readOnly ? Database::Mode::ReadOnly : Database::Mode::ReadWrite);
    int version = 0;
    try {
        version = int(db->queryInt("PRAGMA user_version"));
        db->queryInt("SELECT count(*) FROM sqlite_master");
    } catch (const IoError &) {
        throw FormatError(path.string() + ": not a PolyMoE project (not an SQLite database)");
    }
    if (version > kSchemaVersion)
        throw ConfigError(path.string() + ": written by a newer PolyMoE (schema version " +
                          std::to_string(version) + "; this build reads up to " +
                          std::to_string(kSchemaVersion) + "); update PolyMoE to open it");
    if (version < 0)
        throw FormatError(path.string() + ": schema version " + std::to_string(version) +
                          " is not a PolyMoE schema version (PRAGMA user_version must be 1 to " +
                          std::to_string(kSchemaVersion) + ")");
    if (version == 0 || db->queryInt("SELECT count(*) FROM sqlite_master WHERE name = 'project'") == 0)
        throw FormatError(path.string() + ": not a PolyMoE project (no project table)");
    configureConnection(*db, readOnly);
    ProjectStore store(path, std::move(db), readOnly);
    if (version < kSchemaVersion) {
        if (readOnly) {
            // Migrate through a writable connection, then read as asked.
            store.m_db.reset();
            try {
                open(path, false);
            } catch (const Error &e) {
                throw ConfigError(path.string() + ": schema version " + std::to_string(version) +
                                  " needs migrating and cannot be: " + e.what());
            }
            return open(path, true);
        }
        store.migrate(kSchemaVersion);
    }
    return store;
}

void ProjectStore::migrate(int targetVersion)
{
    // All steps in one transaction: a failure leaves the file at its old version. The version is
    // read inside it, so two processes opening an old file migrate it once.
    Transaction tx(*m_db);
    int version = int(m_db->queryInt("PRAGMA user_version"));
    for (; version < targetVersion; ++version) {
        try {
            m_db->exec(kMigrations[version]);
        } catch (const Error &) {
            rethrowWithContext(m_path.string() + ": migrating schema " + std::to_string(version) +
                               " -> " + std::to_string(version + 1));
        }
    }
    m_db->exec("PRAGMA user_version = " + std::to_string(targetVersion));
    tx.commit();
}

int ProjectStore::schemaVersion() const { return int(m_db->queryInt("PRAGMA user_version")); }

std::filesystem::path ProjectStore::dataDir() const { return std::filesystem::path(m_path.string() + ".d"); }

std::filesystem::path ProjectStore::insideDataDir(const std::string &relative) const
{
    const std::filesystem::path rel = std::filesystem::path(relative).lexically_normal();
    if (relative.empty() || rel.is_absolute() || rel.empty() || *rel.begin() == ".." || rel.string().find('\0') != std::string::npos)
        throw FormatError(m_path.string() + ": the stored path '" + relative + "' leads outside the project's data folder");
    return dataDir() / rel;
}

bool validLanguageCode(const std::string &code)
{
    return !code.empty() && code.size() <= 16 &&
           code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == std::string::npos;
}

void checkSafeName(const std::string &name, const std::string &what)
{
    const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                    name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                        std::string::npos;
    if (!ok)
        throw ConfigError(what + " '" + name + "' must be 1-64 letters, digits, '.', '-' or '_', not starting with '.' "
                          "(it becomes a folder name inside the project)");
}

std::filesystem::path ProjectStore::ensureDataDir(const std::string &sub) const
{
    auto dir = sub.empty() ? dataDir() : dataDir() / sub;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        throw IoError(dir.string() + ": cannot create folder: " + ec.message());
    return dir;
}

void ProjectStore::transaction(const std::function<void()> &fn)
{
    Transaction tx(*m_db);
    fn();
    tx.commit();
}

void ProjectStore::addLanguage(const Language &lang)
{
    if (!validLanguageCode(lang.code))
        throw ConfigError("language code '" + lang.code + "' must be 1-16 letters, digits, '-' or '_'");
    if (auto existing = language(lang.code)) {
        if (existing->group != lang.group)
            throw ConfigError("language '" + lang.code + "' is already in the project as " +
                              toString(existing->group) + ", not " + toString(lang.group));
        return;
    }
    Statement st(*m_db, "INSERT INTO languages(code, name, grp, wave) VALUES (?, ?, ?, ?)");
    st.bind(1, lang.code).bind(2, lang.name.empty() ? lang.code : lang.name)
        .bind(3, toString(lang.group)).bind(4, lang.wave).run();
}

std::vector<Language> ProjectStore::languages() const
{
    std::vector<Language> out;
    Statement st(*m_db, "SELECT code, name, grp, wave FROM languages ORDER BY grp DESC, code");
    while (st.step()) {
        // A code becomes part of file names (shards): one stored by another program is checked again.
        if (!validLanguageCode(st.text(0)))
            throw FormatError(m_path.string() + ": the stored language code '" + st.text(0) +
                              "' is not 1-16 letters, digits, '-' or '_'");
        out.push_back({st.text(0), st.text(1), parseLanguageGroup(st.text(2)), int(st.int64(3))});
    }
    return out;
}

std::optional<Language> ProjectStore::language(const std::string &code) const
{
    Statement st(*m_db, "SELECT code, name, grp, wave FROM languages WHERE code = ?");
    st.bind(1, code);
    if (!st.step())
        return std::nullopt;
    return Language{st.text(0), st.text(1), parseLanguageGroup(st.text(2)), int(st.int64(3))};
}

void ProjectStore::setSetting(const std::string &key, const std::string &value)
{
    Statement st(*m_db, "INSERT OR REPLACE INTO project(key, value) VALUES (?, ?)");
    st.bind(1, key).bind(2, value).run();
}

std::optional<std::string> ProjectStore::setting(const std::string &key) const
{
    Statement st(*m_db, "SELECT value FROM project WHERE key = ?");
    st.bind(1, key);
    if (!st.step())
        return std::nullopt;
    return st.text(0);
}

int64_t ProjectStore::beginRun(const std::string &kind, const std::string &configJson,
                               std::optional<int64_t> modelIn)
{
    const ProcessIdentity self = currentProcess();
    Statement st(*m_db, std::string("INSERT INTO runs(kind, config, status, model_in, pid, host, process_start, "
                                    "heartbeat_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ") + kNow + ")");
    st.bind(1, kind).bind(2, configJson).bind(3, modelIn).bind(4, self.pid).bind(5, self.host)
        .bind(6, self.startTicks).run();
    return m_db->lastInsertId();
}

void ProjectStore::resumeRun(int64_t runId)
{
    const ProcessIdentity self = currentProcess();
    Statement st(*m_db, std::string("UPDATE runs SET status = 'running', message = 'resumed', finished_at = '', "
                                    "pid = ?, host = ?, process_start = ?, heartbeat_at = ") + kNow + " WHERE id = ?");
    st.bind(1, self.pid).bind(2, self.host).bind(3, self.startTicks).bind(4, runId).run();
    if (m_db->changes() != 1)
        throw ConfigError("run " + std::to_string(runId) + " does not exist in " + m_path.string());
}

void ProjectStore::finishRun(int64_t runId, const std::string &status, const std::string &message,
                             std::optional<int64_t> modelOut, const std::string &checkpoint)
{
    Statement st(*m_db, "UPDATE runs SET status = ?, message = ?, model_out = coalesce(?, model_out), "
                        "checkpoint = CASE WHEN ? = '' THEN checkpoint ELSE ? END, "
                        "finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?");
    st.bind(1, status).bind(2, message).bind(3, modelOut).bind(4, checkpoint).bind(5, checkpoint)
        .bind(6, runId).run();
    if (m_db->changes() != 1)
        throw ConfigError("run " + std::to_string(runId) + " does not exist in " + m_path.string());
}

void ProjectStore::updateRunCheckpoint(int64_t runId, const std::string &checkpoint)
{
    Statement st(*m_db, "UPDATE runs SET checkpoint = ? WHERE id = ?");
    st.bind(1, checkpoint).bind(2, runId).run();
}

void ProjectStore::addMetrics(int64_t runId, int64_t step,
                              const std::vector<std::pair<std::string, double>> &values)
{
    Transaction tx(*m_db);
    Statement st(*m_db, "INSERT OR REPLACE INTO metrics(run_id, name, step, value) VALUES (?, ?, ?, ?)");
    for (const auto &[name, value] : values) {
        st.bind(1, runId).bind(2, name).bind(3, step).bind(4, value).run();
        st.reset();
    }
    Statement hb(*m_db, std::string("UPDATE runs SET heartbeat_at = ") + kNow + " WHERE id = ?");
    hb.bind(1, runId).run();
    tx.commit();
}

namespace {
constexpr const char *kRunColumns = "SELECT id, kind, status, config, message, started_at, finished_at, model_in, "
                                    "model_out, checkpoint, pid, host, coalesce(process_start, 0), heartbeat_at FROM runs";

RunRecord readRun(const Statement &st)
{
    RunRecord r;
    r.id = st.int64(0);
    r.kind = st.text(1);
    r.status = st.text(2);
    r.config = st.text(3);
    r.message = st.text(4);
    r.startedAt = st.text(5);
    r.finishedAt = st.text(6);
    if (!st.isNull(7))
        r.modelIn = st.int64(7);
    if (!st.isNull(8))
        r.modelOut = st.int64(8);
    r.checkpoint = st.text(9);
    if (!st.isNull(10))
        r.pid = st.int64(10);
    r.host = st.text(11);
    r.processStart = st.int64(12);
    r.heartbeatAt = st.text(13);
    return r;
}
} // namespace

std::optional<RunRecord> ProjectStore::run(int64_t runId) const
{
    Statement st(*m_db, std::string(kRunColumns) + " WHERE id = ?");
    st.bind(1, runId);
    if (!st.step())
        return std::nullopt;
    return readRun(st);
}

std::vector<RunRecord> ProjectStore::runs() const
{
    std::vector<RunRecord> out;
    Statement st(*m_db, std::string(kRunColumns) + " ORDER BY id");
    while (st.step())
        out.push_back(readRun(st));
    return out;
}

std::optional<RunRecord> ProjectStore::unfinishedRun(const std::string &kind, const std::string &outputName) const
{
    std::optional<RunRecord> found;
    for (auto &r : runs()) {
        if (r.kind != kind || r.status == "completed")
            continue;
        if (!outputName.empty()) {
            const auto c = nlohmann::json::parse(r.config, nullptr, false);
            if (!c.is_object() || c.value("output_name", std::string()) != outputName)
                continue;
        }
        found = std::move(r);
    }
    return found;
}

std::vector<std::pair<int64_t, double>> ProjectStore::metricSeries(int64_t runId, const std::string &name,
                                                                   int64_t afterStep) const
{
    std::vector<std::pair<int64_t, double>> out;
    Statement st(*m_db, "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? AND step > ? ORDER BY step");
    st.bind(1, runId).bind(2, name).bind(3, afterStep);
    while (st.step())
        out.emplace_back(st.int64(0), st.real(1));
    return out;
}

namespace {
constexpr const char *kModelColumns =
    "SELECT id, name, kind, path, config, parent_id, tokenizer_id, coalesce(n_parameters, 0), created_at FROM models";

ModelRecord modelFrom(Statement &st)
{
    ModelRecord m;
    m.id = st.int64(0);
    m.name = st.text(1);
    m.kind = st.text(2);
    m.path = st.text(3);
    m.config = st.text(4);
    if (!st.isNull(5))
        m.parentId = st.int64(5);
    if (!st.isNull(6))
        m.tokenizerId = st.int64(6);
    m.parameters = st.int64(7);
    m.createdAt = st.text(8);
    return m;
}
} // namespace

int64_t ProjectStore::addModel(const ModelRecord &m)
{
    if (model(m.name))
        throw ConfigError("a model named '" + m.name + "' is already in " + m_path.string());
    Statement st(*m_db, "INSERT INTO models(name, kind, path, config, parent_id, tokenizer_id, n_parameters) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    st.bind(1, m.name).bind(2, m.kind).bind(3, m.path).bind(4, m.config).bind(5, m.parentId).bind(6, m.tokenizerId)
        .bind(7, m.parameters).run();
    return m_db->lastInsertId();
}

std::vector<ModelRecord> ProjectStore::models() const
{
    std::vector<ModelRecord> out;
    Statement st(*m_db, std::string(kModelColumns) + " ORDER BY id");
    while (st.step())
        out.push_back(modelFrom(st));
    return out;
}

std::optional<ModelRecord> ProjectStore::model(const std::string &name) const
{
    Statement st(*m_db, std::string(kModelColumns) + " WHERE name = ?");
    st.bind(1, name);
    if (!st.step())
        return std::nullopt;
    return modelFrom(st);
}

std::optional<ModelRecord> ProjectStore::model(int64_t id) const
{
    Statement st(*m_db, std::string(kModelColumns) + " WHERE id = ?");
    st.bind(1, id);
    if (!st.step())
        return std::nullopt;
    return modelFrom(st);
}

std::string ProjectStore::uniqueModelName(const std::string &base) const
{
    if (!model(base))
        return base;
    for (int i = 2;; ++i)
        if (!model(base + "-" + std::to_string(i)))
            return base + "-" + std::to_string(i);
}

std::filesystem::path ProjectStore::modelPath(const ModelRecord &m) const
{
    const std::filesystem::path p(m.path);
    // Imported models are referenced where they are; the project's own live in its data folder.
    return p.is_absolute() ? p : insideDataDir(m.path);
}

void ProjectStore::addEvaluations(const std::vector<EvaluationRecord> &rows)
{
    Transaction tx(*m_db);
    Statement st(*m_db, "INSERT INTO evaluations(model_id, run_id, language, split, n_tokens, loss, perplexity, "
                        "n_documents, perplexity_low, perplexity_high, n_characters, n_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const auto finite = [](double x) { return std::isfinite(x) ? std::optional<double>(x) : std::nullopt; };
    for (const auto &r : rows) {
        st.bind(1, r.modelId).bind(2, r.runId).bind(3, r.language).bind(4, r.split).bind(5, r.tokens)
            .bind(6, r.loss).bind(7, r.perplexity)
            .bind(8, r.documents > 0 ? std::optional<int64_t>(r.documents) : std::nullopt)
            .bind(9, finite(r.perplexityLow)).bind(10, finite(r.perplexityHigh))
            .bind(11, r.characters > 0 ? finite(r.characters) : std::nullopt)
            .bind(12, r.bytes > 0 ? finite(r.bytes) : std::nullopt).run();
        st.reset();
    }
    tx.commit();
}

std::vector<EvaluationRecord> ProjectStore::evaluations(int64_t modelId) const
{
    std::vector<EvaluationRecord> out;
    Statement st(*m_db, "SELECT model_id, run_id, language, split, n_tokens, loss, perplexity, created_at, "
                        "n_documents, perplexity_low, perplexity_high, n_characters, n_bytes FROM evaluations e WHERE model_id = ? AND id = (SELECT max(id) FROM evaluations "
                        "WHERE model_id = e.model_id AND language = e.language AND split = e.split) ORDER BY language");
    st.bind(1, modelId);
    while (st.step()) {
        EvaluationRecord r;
        r.modelId = st.int64(0);
        if (!st.isNull(1))
            r.runId = st.int64(1);
        r.language = st.text(2);
        r.split = st.text(3);
        r.tokens = st.int64(4);
        r.loss = st.real(5);
        r.perplexity = st.real(6);
        r.createdAt = st.text(7);
        r.documents = st.isNull(8) ? 0 : st.int64(8);
        if (!st.isNull(9) && !st.isNull(10)) {
            r.perplexityLow = st.real(9);
            r.perplexityHigh = st.real(10);
        }
        r.characters = st.isNull(11) ? 0 : st.real(11);
        r.bytes = st.isNull(12) ? 0 : st.real(12);
        out.push_back(r);
    }
    return out;
}

void ProjectStore::addSamples(const std::vector<SampleRecord> &rows)
{
    Transaction tx(*m_db);
    Statement del(*m_db, "DELETE FROM samples WHERE model_id = ? AND language = ? AND prompt = ?");
    Statement ins(*m_db, "INSERT INTO samples(model_id, language, prompt, continuation, max_new_tokens) VALUES (?, ?, ?, ?, ?)");
    for (const auto &r : rows) {
        del.bind(1, r.modelId).bind(2, r.language).bind(3, r.prompt).run();
        del.reset();
        ins.bind(1, r.modelId).bind(2, r.language).bind(3, r.prompt).bind(4, r.continuation).bind(5, r.maxNewTokens).run();
        ins.reset();
    }
    tx.commit();
}

std::vector<SampleRecord> ProjectStore::samples(int64_t modelId) const
{
    std::vector<SampleRecord> out;
    Statement st(*m_db, "SELECT model_id, language, prompt, continuation, max_new_tokens FROM samples WHERE model_id = ? ORDER BY id");
    st.bind(1, modelId);
    while (st.step())
        out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.int64(4)});
    return out;
}

int64_t ProjectStore::addSimilarityAnalysis(const SimilarityAnalysisRecord &a, const std::vector<SimilarityValueRecord> &values,
                                            const std::vector<LayerScoreRecord> &scores)
{
    Transaction tx(*m_db);
    Statement st(*m_db, "INSERT INTO similarity_analyses(model_id, tokens_per_language, settings) VALUES (?, ?, ?)");
    st.bind(1, a.modelId).bind(2, a.tokensPerLanguage).bind(3, a.settings).run();
    const int64_t id = m_db->lastInsertId();
    Statement sv(*m_db, "INSERT INTO similarity_values(analysis_id, layer, language_a, language_b, value) VALUES (?, ?, ?, ?, ?)");
    for (const auto &v : values) {
        sv.bind(1, id).bind(2, v.layer).bind(3, v.languageA).bind(4, v.languageB).bind(5, v.value).run();
        sv.reset();
    }
    Statement ss(*m_db, "INSERT INTO layer_scores(analysis_id, layer, score, new_old, new_new) VALUES (?, ?, ?, ?, ?)");
    for (const auto &r : scores) {
        ss.bind(1, id).bind(2, r.layer).bind(3, r.score).bind(4, r.newOld).bind(5, r.newNew).run();
        ss.reset();
    }
    tx.commit();
    return id;
}

std::vector<SimilarityAnalysisRecord> ProjectStore::similarityAnalyses() const
{
    std::vector<SimilarityAnalysisRecord> out;
    Statement st(*m_db, "SELECT id, model_id, tokens_per_language, settings, created_at FROM similarity_analyses ORDER BY id");
    while (st.step()) {
        SimilarityAnalysisRecord r;
        r.id = st.int64(0);
        if (!st.isNull(1))
            r.modelId = st.int64(1);
        r.tokensPerLanguage = st.int64(2);
        r.settings = st.text(3);
        r.createdAt = st.text(4);
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<SimilarityValueRecord> ProjectStore::similarityValues(int64_t analysisId) const
{
    std::vector<SimilarityValueRecord> out;
    Statement st(*m_db, "SELECT layer, language_a, language_b, value FROM similarity_values WHERE analysis_id = ? "
                        "ORDER BY layer, language_a, language_b");
    st.bind(1, analysisId);
    while (st.step())
        out.push_back({int(st.int64(0)), st.text(1), st.text(2), st.real(3)});
    return out;
}

std::vector<LayerScoreRecord> ProjectStore::layerScores(int64_t analysisId) const
{
    std::vector<LayerScoreRecord> out;
    Statement st(*m_db, "SELECT layer, score, new_old, new_new FROM layer_scores WHERE analysis_id = ? ORDER BY layer");
    st.bind(1, analysisId);
    while (st.step()) {
        LayerScoreRecord r;
        r.layer = int(st.int64(0));
        r.score = st.real(1);
        if (!st.isNull(2))
            r.newOld = st.real(2);
        if (!st.isNull(3))
            r.newNew = st.real(3);
        out.push_back(r);
    }
    return out;
}

namespace {
std::string joinExperts(const std::vector<int> &experts)
{
    std::string s;
    for (size_t i = 0; i < experts.size(); ++i)
        s += (i ? "," : "") + std::to_string(experts[i]);
    return s;
}

std::vector<int> splitExperts(const std::string &text)
{
    std::vector<int> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find(',', pos);
        if (end == std::string::npos)
            end = text.size();
        out.push_back(std::stoi(text.substr(pos, end - pos)));
        pos = end + 1;
    }
    return out;
}

constexpr const char *kAllocationColumns =
    "SELECT id, name, strategy, budget, experts, analysis_id, added_parameters, created_at FROM allocations";

AllocationRecord allocationFrom(Statement &st)
{
    AllocationRecord r;
    r.id = st.int64(0);
    r.name = st.text(1);
    r.strategy = st.text(2);
    if (!st.isNull(3))
        r.budget = st.int64(3);
    r.experts = splitExperts(st.text(4));
    if (!st.isNull(5))
        r.analysisId = st.int64(5);
    if (!st.isNull(6))
        r.addedParameters = st.int64(6);
    r.createdAt = st.text(7);
    return r;
}
} // namespace

int64_t ProjectStore::addAllocation(const AllocationRecord &a)
{
    Statement st(*m_db, "INSERT INTO allocations(name, strategy, budget, experts, analysis_id, added_parameters) "
                        "VALUES (?, ?, ?, ?, ?, ?)");
    st.bind(1, a.name).bind(2, a.strategy).bind(3, a.budget).bind(4, joinExperts(a.experts)).bind(5, a.analysisId)
        .bind(6, a.addedParameters).run();
    return m_db->lastInsertId();
}

std::optional<AllocationRecord> ProjectStore::allocation(int64_t id) const
{
    Statement st(*m_db, std::string(kAllocationColumns) + " WHERE id = ?");
    st.bind(1, id);
    if (!st.step())
        return std::nullopt;
    return allocationFrom(st);
}

std::vector<AllocationRecord> ProjectStore::allocations() const
{
    std::vector<AllocationRecord> out;
    Statement st(*m_db, std::string(kAllocationColumns) + " ORDER BY id");
    while (st.step())
        out.push_back(allocationFrom(st));
    return out;
}

void ProjectStore::addRouterStats(const std::vector<RouterStatRecord> &rows)
{
    Transaction tx(*m_db);
    Statement st(*m_db, "INSERT INTO router_stats(run_id, model_id, step, layer, language, expert, slot_share, "
                        "top1_share, entropy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto &r : rows) {
        st.bind(1, r.runId).bind(2, r.modelId).bind(3, r.step).bind(4, r.layer).bind(5, r.language).bind(6, r.expert)
            .bind(7, r.slotShare).bind(8, r.top1Share).bind(9, r.entropy).run();
        st.reset();
    }
    tx.commit();
}

std::vector<RouterStatRecord> ProjectStore::routerStats(int64_t runId) const
{
    std::vector<RouterStatRecord> out;
    Statement st(*m_db, "SELECT run_id, model_id, step, layer, language, expert, slot_share, top1_share, "
                        "coalesce(entropy, 0) FROM router_stats WHERE run_id = ? ORDER BY step, layer, language, expert");
    st.bind(1, runId);
    while (st.step()) {
        RouterStatRecord r;
        if (!st.isNull(0))
            r.runId = st.int64(0);
        if (!st.isNull(1))
            r.modelId = st.int64(1);
        r.step = st.int64(2);
        r.layer = int(st.int64(3));
        r.language = st.text(4);
        r.expert = int(st.int64(5));
        r.slotShare = st.real(6);
        r.top1Share = st.real(7);
        r.entropy = st.real(8);
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace polymoe
