// The new-project wizard's engine calls (the same ones `polymoe project init`, `corpus add`,
// `tokenizer import` and `model import` make), run in a worker thread.
#include "new_project_wizard_job.h"

#include "polymoe/corpus.h"
#include "polymoe/dense_jobs.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"
#include "polymoe/project_tokenizer.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>

#include <filesystem>
#include <system_error>

#include <unistd.h>

namespace polymoe::ui {

namespace fs = std::filesystem;

QString checkBaseModelFolder(const QString &dir)
{
    const QFileInfo info(dir);
    if (dir.isEmpty())
        return QCoreApplication::translate("NewProjectWizard", "no base model folder chosen");
    if (!info.isDir())
        return QCoreApplication::translate("NewProjectWizard", "%1: no such folder").arg(dir);
    const QString configPath = QDir(dir).filePath("config.json");
    QFile config(configPath);
    if (!config.open(QIODevice::ReadOnly))
        return QCoreApplication::translate("NewProjectWizard",
                                           "%1: not found; a Hugging Face model folder holds config.json and "
                                           "*.safetensors")
            .arg(configPath);
    // The engine ignores keys it does not need; an expanded (MoE) model is not a base, say so here.
    const QJsonObject cfg = QJsonDocument::fromJson(config.readAll()).object();
    for (const char *key : {"polymoe", "num_local_experts", "num_experts"})
        if (cfg.contains(key))
            return QCoreApplication::translate("NewProjectWizard",
                                               "%1: has '%2', so it is a Mixture-of-Experts model; the base must be "
                                               "a dense Llama, Mistral or Qwen2 checkpoint")
                .arg(configPath, key);
    try {
        describeModelFolder(dir.toStdString()); // config.json and every safetensors file
    } catch (const std::exception &e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

QString nextStepsText(const NewProjectSpec &spec)
{
    const QString p = spec.path;
    if (!spec.baseModelDir.isEmpty()) {
        if (QFileInfo::exists(QDir(spec.baseModelDir).filePath("tokenizer.json")) ||
            QFileInfo::exists(QDir(spec.baseModelDir).filePath("tokenizer.model")))
            return QString("polymoe analyze %1\n").arg(p); // tokenizer imported, corpora tokenized
        return QString("polymoe tokenizer import %1 TOKENIZER   (the base model's tokenizer.json or tokenizer.model)\npolymoe analyze %1\n").arg(p);
    }
    const int vocab = spec.baseRecipe == "demo-base-tiny" ? 2000 : 8000; // the recipes' vocab_size
    return QString("polymoe tokenizer train %1 --vocab-size %3\npolymoe pretrain %1 --recipe %2\npolymoe analyze %1\n")
        .arg(p, spec.baseRecipe)
        .arg(vocab);
}

namespace {

// The project's files under a name: the SQLite file, its WAL side files and its data folder.
void removeProjectFiles(const fs::path &file)
{
    std::error_code ec;
    for (const char *suffix : {"", "-wal", "-shm", "-journal"})
        fs::remove(fs::path(file.string() + suffix), ec);
    fs::remove_all(fs::path(file.string() + ".d"), ec);
}

} // namespace

QStringList createProject(const NewProjectSpec &spec, const ProgressFn &progress, std::stop_token stop)
{
    const fs::path target = fs::absolute(spec.path.toStdString());
    if (spec.path.isEmpty())
        throw ConfigError("no project file chosen");
    if (spec.languages.isEmpty())
        throw ConfigError("the project needs at least one language");
    std::error_code ec;
    if (fs::exists(target, ec) || fs::exists(target.string() + ".d", ec))
        throw ConfigError(target.string() + ": already exists; choose another name");
    if (!fs::is_directory(target.parent_path(), ec))
        throw IoError(target.parent_path().string() + ": no such folder");
    // Built beside the target under a hidden name, renamed into place at the end (same file system).
    const fs::path temp = target.parent_path() /
                          ("." + target.filename().string() + ".creating-" + std::to_string(::getpid()));
    removeProjectFiles(temp);
    QStringList log;
    try {
        {
            auto store = ProjectStore::create(temp);
            if (!spec.name.isEmpty())
                store.setSetting("name", spec.name.toStdString());
            log << QString("created %1").arg(QString::fromStdString(target.string()));
            const int n = int(spec.languages.size());
            for (int i = 0; i < n; ++i) {
                throwIfStopped(stop);
                const NewProjectLanguage &l = spec.languages[i];
                Language lang;
                lang.code = l.code.toStdString();
                lang.name = (l.name.isEmpty() ? l.code : l.name).toStdString();
                lang.group = l.isNew ? LanguageGroup::New : LanguageGroup::Old;
                lang.wave = l.isNew ? 1 : 0; // as `polymoe corpus add` does
                CorpusImportOptions o;
                o.heldoutFraction = spec.heldoutFraction;
                o.provenance = "user file (new-project wizard)";
                std::vector<fs::path> files;
                for (const QString &f : l.files)
                    files.emplace_back(f.toStdString());
                const std::string stage = "import " + lang.code + " (" + std::to_string(i + 1) + " of " + std::to_string(n) + ")";
                const ImportReport r = importCorpusFiles(
                    store, lang, files, o,
                    [&](const Progress &p) {
                        if (progress) {
                            Progress q = p;
                            q.stage = stage;
                            progress(q);
                        }
                    },
                    stop);
                log << QString("%1 (%2): %3 documents, %4 held out; skipped %5 duplicate, %6 empty, %7 invalid")
                           .arg(l.code, l.isNew ? "new" : "old")
                           .arg(r.documents)
                           .arg(r.heldout)
                           .arg(r.duplicates)
                           .arg(r.empty)
                           .arg(r.invalid);
                for (size_t k = 0; k < r.issues.size() && k < 5; ++k)
                    log << QString("    %1: %2").arg(QString::fromStdString(r.issues[k].origin),
                                                      QString::fromStdString(r.issues[k].problem));
            }
            throwIfStopped(stop);
            if (!spec.baseModelDir.isEmpty()) {
                const fs::path dir = spec.baseModelDir.toStdString();
                if (progress)
                    progress({.stage = "import the base model", .done = 0, .total = 0, .unit = {}, .message = dir.string()});
                if (fs::exists(dir / "tokenizer.json") || fs::exists(dir / "tokenizer.model")) {
                    // As `polymoe model import`: the model's tokenizer (tokenizer.json first), then the
                    // corpora tokenized with it.
                    const auto t = importTokenizer(store, dir);
                    log << QString("tokenizer: %1 pieces from %2").arg(t.vocabSize).arg(QString::fromStdString(t.source));
                    int64_t tokens = 0;
                    const auto shards = tokenizeProject(store, false, progress, stop);
                    for (const auto &sh : shards)
                        tokens += sh.tokens;
                    log << QString("token shards: %1 (%2 tokens)").arg(shards.size()).arg(tokens);
                }
                const ModelRecord m = importModelFolder(store, dir, "base");
                log << QString("base model 'base': %1 parameters from %2").arg(m.parameters).arg(spec.baseModelDir);
            } else {
                store.setSetting("base_recipe", spec.baseRecipe.toStdString());
                log << QString("base model: recipe %1 (trained with polymoe pretrain)").arg(spec.baseRecipe);
            }
            throwIfStopped(stop);
        } // the store is closed here: SQLite folds its WAL back into the file
        if (fs::exists(target, ec))
            throw ConfigError(target.string() + ": appeared while the project was being created; nothing was written there");
        fs::rename(temp, target);
        if (fs::exists(temp.string() + ".d"))
            fs::rename(temp.string() + ".d", target.string() + ".d");
    } catch (...) {
        removeProjectFiles(temp);
        throw;
    }
    return log;
}

void NewProjectJob::start(const NewProjectSpec &spec)
{
    run([this, spec](std::stop_token stop, const ProgressFn &progress) -> Done {
        QStringList log = createProject(spec, progress, stop);
        return [this, path = QFileInfo(spec.path).absoluteFilePath(), log = std::move(log)] { Q_EMIT finished(path, log); };
    });
}

} // namespace polymoe::ui
