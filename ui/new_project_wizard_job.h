// What the new-project wizard makes, and the job that makes it off the GUI thread: a project file
// with the languages, their corpora and the base model, built under a temporary name and renamed
// into place only when every step succeeded, so a failed or cancelled wizard leaves nothing behind.
#pragma once

#include "polymoe/progress.h"
#include "worker_job.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <stop_token>

namespace polymoe::ui {

struct NewProjectLanguage {
    QString code;          // "de"
    QString name;          // "German"
    bool isNew = false;    // group: new (to be taught) or old (the base model knows it)
    QStringList files;     // corpus files (.txt, .jsonl), imported with the CLI's `corpus add` rules
};

struct NewProjectSpec {
    QString path;                 // the project file to create; must not exist
    QString name;                 // display name (project setting "name")
    QString baseModelDir;         // a Hugging Face folder (dense Llama/Mistral/Qwen2); empty: baseRecipe
    QString baseRecipe = "demo-base"; // built-in recipe for `polymoe pretrain` when there is no folder
    QList<NewProjectLanguage> languages;
    double heldoutFraction = 0.05; // share of documents held out, by a hash of their text
};

// Checks a Hugging Face folder with the engine's reader (config.json and the safetensors headers)
// and that it is a dense model. Returns an empty string when it is usable, else a message naming
// the file and the problem. Reads every tensor: call it off the GUI thread for real checkpoints.
QString checkBaseModelFolder(const QString &dir);

// Builds the project (throws polymoe::Error; Cancelled when stop is requested): languages and corpora
// (`corpus add`), then from a model folder its tokenizer.model with the corpora tokenized (`tokenizer
// import`) and the model (`model import`, named "base"), or the recipe's name as setting
// "base_recipe". Returns what was done, one line per step, for the wizard's log.
QStringList createProject(const NewProjectSpec &spec, const ProgressFn &progress = {}, std::stop_token stop = {});

// The commands that make the base model of a project created with a recipe (shown after creation).
QString nextStepsText(const NewProjectSpec &spec);

// The controller (GUI thread): start() builds the project in the worker thread (WorkerJob).
class NewProjectJob : public WorkerJob {
    Q_OBJECT
public:
    explicit NewProjectJob(QObject *parent = nullptr) : WorkerJob(QStringLiteral("new-project"), parent) {}

    // Ignored while a project is being built. Destroying the job cancels it; the worker removes
    // its temporary files before the destructor returns.
    void start(const NewProjectSpec &spec);

Q_SIGNALS:
    void finished(const QString &path, const QStringList &log);
};

} // namespace polymoe::ui
