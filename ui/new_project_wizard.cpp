// The new-project wizard's pages.
#include "new_project_wizard.h"

#include <QAbstractButton>
#include <QButtonGroup>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRadioButton>
#include <QRegularExpression>
#include <QSet>
#include <QStandardPaths>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include <memory>

namespace polymoe::ui {

namespace {

enum Column { kCode, kName, kGroup, kFiles, kColumns };

QLabel *errorLabel(QWidget *parent)
{
    auto *l = new QLabel(parent);
    l->setObjectName("error");
    l->setWordWrap(true);
    l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    l->setStyleSheet("QLabel { color: #c02020; }"); // readable on light and dark palettes
    l->setVisible(false);
    return l;
}

void showError(QLabel *l, const QString &text)
{
    l->setText(text);
    l->setVisible(!text.isEmpty());
}

QString labelText(const QLabel *l)
{
    return l->isHidden() ? QString() : l->text();
}

QStringList localFiles(const QMimeData *mime)
{
    QStringList out;
    if (mime)
        for (const QUrl &u : mime->urls())
            if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isFile())
                out << u.toLocalFile();
    return out;
}

} // namespace

// --- project file -------------------------------------------------------------------------------

ProjectFileWizardPage::ProjectFileWizardPage(QWidget *parent) : QWizardPage(parent)
{
    setTitle(tr("Project file"));
    setSubTitle(tr("A project is one SQLite file (*.polymoe) plus a data folder beside it for shards and models."));
    m_path = new QLineEdit(this);
    m_path->setObjectName("projectPath");
    m_path->setPlaceholderText(tr("/path/to/my-project.polymoe"));
    auto *browse = new QPushButton(tr("&Browse..."), this);
    browse->setToolTip(tr("Choose where the project file goes"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString start = m_path->text().isEmpty()
                                  ? QDir(QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation)).filePath("project.polymoe")
                                  : m_path->text();
        const QString f = QFileDialog::getSaveFileName(this, tr("New project file"), start,
                                                       tr("PolyMoE projects (*.polymoe)"));
        if (!f.isEmpty())
            m_path->setText(f);
    });
    m_name = new QLineEdit(this);
    m_name->setObjectName("projectName");
    m_name->setPlaceholderText(tr("shown in reports (optional)"));
    auto *row = new QHBoxLayout;
    row->addWidget(m_path, 1);
    row->addWidget(browse);
    auto *form = new QFormLayout(this);
    form->addRow(tr("&File:"), row);
    form->addRow(tr("&Name:"), m_name);
    m_error = errorLabel(this);
    form->addRow(m_error);
    registerField("path*", m_path);
}

QString ProjectFileWizardPage::path() const
{
    QString p = m_path->text().trimmed();
    if (!p.isEmpty() && !p.endsWith(".polymoe"))
        p += ".polymoe";
    return p.isEmpty() ? p : QFileInfo(p).absoluteFilePath();
}

QString ProjectFileWizardPage::projectName() const
{
    return m_name->text().trimmed().isEmpty() ? QFileInfo(path()).completeBaseName() : m_name->text().trimmed();
}

QString ProjectFileWizardPage::errorText() const
{
    return labelText(m_error);
}

bool ProjectFileWizardPage::validatePage()
{
    const QString p = path();
    const QFileInfo dir(QFileInfo(p).absolutePath());
    QString e;
    if (p.isEmpty())
        e = tr("Choose a project file.");
    else if (QFileInfo::exists(p) || QFileInfo::exists(p + ".d"))
        e = tr("%1 already exists; a new project needs a new name.").arg(p);
    else if (!dir.isDir())
        e = tr("%1: no such folder.").arg(dir.filePath());
    else if (!dir.isWritable())
        e = tr("%1: the folder is not writable.").arg(dir.filePath());
    showError(m_error, e);
    return e.isEmpty();
}

// --- base model ---------------------------------------------------------------------------------

BaseModelWizardPage::BaseModelWizardPage(QWidget *parent) : QWizardPage(parent)
{
    setTitle(tr("Base model"));
    setSubTitle(tr("The dense model to expand (METHOD.md section 0): an existing Hugging Face checkpoint, or a "
                   "small Llama-style model trained later from a demo recipe."));
    m_recipeChoice = new QRadioButton(tr("Train a &demo base from a recipe:"), this);
    m_recipeChoice->setObjectName("useRecipe");
    m_recipe = new QComboBox(this);
    m_recipe->setObjectName("recipe");
    m_recipe->addItem(tr("demo-base (Llama-style, d_model 256, 4 layers: METHOD.md section 9's base)"), "demo-base");
    m_recipe->addItem(tr("demo-base-tiny (2 layers, for a quick look)"), "demo-base-tiny");
    m_folderChoice = new QRadioButton(tr("Use a Hugging Face &folder (dense Llama, Mistral or Qwen2, safetensors):"), this);
    m_folderChoice->setObjectName("useFolder");
    m_folder = new QLineEdit(this);
    m_folder->setObjectName("modelFolder");
    m_folder->setPlaceholderText(tr("a folder with config.json and *.safetensors"));
    auto *browse = new QPushButton(tr("B&rowse..."), this);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Hugging Face model folder"), m_folder->text());
        if (!d.isEmpty())
            useFolder(d);
    });
    auto *group = new QButtonGroup(this);
    group->addButton(m_recipeChoice);
    group->addButton(m_folderChoice);
    m_recipeChoice->setChecked(true);
    const auto enable = [this, browse] {
        m_recipe->setEnabled(m_recipeChoice->isChecked());
        m_folder->setEnabled(m_folderChoice->isChecked());
        browse->setEnabled(m_folderChoice->isChecked());
    };
    connect(m_folderChoice, &QRadioButton::toggled, this, enable);
    enable();
    connect(m_folder, &QLineEdit::textChanged, this, [this] { showError(m_error, {}); });
    m_error = errorLabel(this);
    auto *v = new QVBoxLayout(this);
    v->addWidget(m_recipeChoice);
    v->addWidget(m_recipe);
    v->addSpacing(8);
    v->addWidget(m_folderChoice);
    auto *row = new QHBoxLayout;
    row->addWidget(m_folder, 1);
    row->addWidget(browse);
    v->addLayout(row);
    v->addWidget(new QLabel(tr("The folder's tokenizer (Hugging Face tokenizer.json, else SentencePiece tokenizer.model), if any, becomes "
                               "the project's tokenizer. "
                               "Pickled pytorch_model.bin checkpoints are refused: convert them to safetensors."), this));
    v->addWidget(m_error);
    v->addStretch(1);
    for (QLabel *l : findChildren<QLabel *>())
        l->setWordWrap(true);
}

void BaseModelWizardPage::useRecipe(const QString &recipe)
{
    m_recipeChoice->setChecked(true);
    const int i = m_recipe->findData(recipe);
    if (i >= 0)
        m_recipe->setCurrentIndex(i);
}

void BaseModelWizardPage::useFolder(const QString &dir)
{
    m_folderChoice->setChecked(true);
    m_folder->setText(dir);
}

QString BaseModelWizardPage::folder() const
{
    return m_folderChoice->isChecked() ? QFileInfo(m_folder->text().trimmed()).absoluteFilePath() : QString();
}

QString BaseModelWizardPage::recipe() const
{
    return m_recipe->currentData().toString();
}

QString BaseModelWizardPage::errorText() const
{
    return labelText(m_error);
}

bool BaseModelWizardPage::validatePage()
{
    if (!m_folderChoice->isChecked())
        return true;
    if (m_checking)
        return false;
    const QString dir = m_folder->text().trimmed();
    if (dir.isEmpty()) {
        showError(m_error, tr("Choose the model folder, or train a demo base."));
        return false;
    }
    if (QFileInfo(dir).absoluteFilePath() == m_checked)
        return true;
    // The engine reads config.json and every safetensors header: seconds for a real checkpoint, so
    // in a thread, with the wizard's event loop running meanwhile.
    m_checking = true;
    showError(m_error, {});
    setSubTitle(tr("Checking %1 ...").arg(dir));
    auto result = std::make_shared<QString>();
    QEventLoop loop;
    QThread *t = QThread::create([dir, result] { *result = checkBaseModelFolder(dir); });
    connect(t, &QThread::finished, &loop, &QEventLoop::quit);
    t->start();
    loop.exec();
    t->wait();
    delete t;
    m_checking = false;
    setSubTitle(tr("The dense model to expand (METHOD.md section 0)."));
    if (!result->isEmpty()) {
        showError(m_error, tr("This folder cannot be the base model:\n%1").arg(*result));
        return false;
    }
    m_checked = QFileInfo(dir).absoluteFilePath();
    return true;
}

// --- languages and corpora ----------------------------------------------------------------------

LanguagesWizardPage::LanguagesWizardPage(QWidget *parent) : QWizardPage(parent)
{
    setTitle(tr("Languages and corpora"));
    setSubTitle(tr("Old languages are what the base model knows; new ones are what the expansion teaches."));
    setAcceptDrops(true);
    m_table = new QTableWidget(0, kColumns, this);
    m_table->setObjectName("languages");
    m_table->setHorizontalHeaderLabels({tr("Code"), tr("Name"), tr("Group"), tr("Corpus files")});
    m_table->horizontalHeader()->setSectionResizeMode(kFiles, QHeaderView::Stretch);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setToolTip(tr("Drop text files onto a row to add them to that language"));
    auto *add = new QPushButton(tr("&Add language"), this);
    auto *remove = new QPushButton(tr("&Remove"), this);
    auto *files = new QPushButton(tr("Add &files..."), this);
    files->setObjectName("addFiles");
    connect(add, &QPushButton::clicked, this, [this] {
        const int r = addLanguage();
        m_table->setCurrentCell(r, kCode);
        m_table->editItem(m_table->item(r, kCode));
    });
    connect(remove, &QPushButton::clicked, this, [this] {
        if (m_table->currentRow() >= 0)
            m_table->removeRow(m_table->currentRow());
    });
    connect(files, &QPushButton::clicked, this, &LanguagesWizardPage::addFilesWithDialog);
    m_heldout = new QDoubleSpinBox(this);
    m_heldout->setObjectName("heldout");
    m_heldout->setRange(0.0, 0.5);
    m_heldout->setDecimals(3);
    m_heldout->setSingleStep(0.01);
    m_heldout->setValue(0.05);
    m_heldout->setToolTip(tr("Share of each language's documents held out for perplexity and the similarity "
                             "analysis, chosen by a hash of their text"));
    m_error = errorLabel(this);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(add);
    buttons->addWidget(remove);
    buttons->addWidget(files);
    buttons->addStretch(1);
    buttons->addWidget(new QLabel(tr("Held-out &fraction:"), this));
    buttons->addWidget(m_heldout);
    static_cast<QLabel *>(buttons->itemAt(buttons->count() - 2)->widget())->setBuddy(m_heldout);
    auto *hint = new QLabel(tr("Corpus files: .txt (a document per line, or per paragraph when the file has blank "
                               "lines) or .jsonl (a \"text\" field per line). Use Add files, or drop files onto a "
                               "language's row."),
                            this);
    hint->setWordWrap(true);
    auto *v = new QVBoxLayout(this);
    v->addWidget(m_table, 1);
    v->addWidget(hint);
    v->addLayout(buttons);
    v->addWidget(m_error);
}

int LanguagesWizardPage::addLanguage(const QString &code, const QString &name, bool isNew, const QStringList &files)
{
    const int r = m_table->rowCount();
    m_table->insertRow(r);
    m_table->setItem(r, kCode, new QTableWidgetItem(code));
    m_table->setItem(r, kName, new QTableWidgetItem(name));
    auto *group = new QComboBox(m_table);
    group->addItem(tr("old"), false);
    group->addItem(tr("new"), true);
    group->setCurrentIndex(isNew ? 1 : 0);
    m_table->setCellWidget(r, kGroup, group);
    auto *f = new QTableWidgetItem;
    f->setFlags(f->flags() & ~Qt::ItemIsEditable);
    m_table->setItem(r, kFiles, f);
    addFiles(r, files);
    showError(m_error, {});
    return r;
}

void LanguagesWizardPage::addFiles(int row, const QStringList &files)
{
    if (row < 0 || row >= m_table->rowCount())
        return;
    QTableWidgetItem *item = m_table->item(row, kFiles);
    QStringList list = item->data(Qt::UserRole).toStringList();
    for (const QString &f : files) {
        const QString abs = QFileInfo(f).absoluteFilePath();
        if (!list.contains(abs))
            list << abs;
    }
    item->setData(Qt::UserRole, list);
    updateFilesCell(row);
    showError(m_error, {});
}

void LanguagesWizardPage::updateFilesCell(int row)
{
    QTableWidgetItem *item = m_table->item(row, kFiles);
    const QStringList list = item->data(Qt::UserRole).toStringList();
    QStringList names;
    for (const QString &f : list)
        names << QFileInfo(f).fileName();
    item->setText(list.isEmpty() ? tr("(none: drop files here)") : names.join(", "));
    item->setToolTip(list.join('\n'));
}

void LanguagesWizardPage::addFilesWithDialog()
{
    int row = m_table->currentRow();
    if (row < 0) {
        if (m_table->rowCount() == 0)
            row = addLanguage();
        else
            row = m_table->rowCount() - 1;
    }
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Corpus files"), QString(),
                                                            tr("Text (*.txt *.jsonl);;All files (*)"));
    addFiles(row, files);
}

void LanguagesWizardPage::dragEnterEvent(QDragEnterEvent *e)
{
    if (!localFiles(e->mimeData()).isEmpty())
        e->acceptProposedAction();
}

void LanguagesWizardPage::dragMoveEvent(QDragMoveEvent *e)
{
    if (!localFiles(e->mimeData()).isEmpty())
        e->acceptProposedAction();
}

void LanguagesWizardPage::dropEvent(QDropEvent *e)
{
    const QStringList files = localFiles(e->mimeData());
    if (files.isEmpty())
        return;
    // The row under the pointer, else the selected one, else a new language.
    const QPoint inViewport = m_table->viewport()->mapFrom(this, e->position().toPoint());
    int row = m_table->viewport()->rect().contains(inViewport) ? m_table->rowAt(inViewport.y()) : -1;
    if (row < 0)
        row = m_table->currentRow();
    if (row < 0)
        row = addLanguage();
    addFiles(row, files);
    m_table->setCurrentCell(row, kFiles);
    e->acceptProposedAction();
}

QList<NewProjectLanguage> LanguagesWizardPage::languages() const
{
    QList<NewProjectLanguage> out;
    for (int r = 0; r < m_table->rowCount(); ++r) {
        NewProjectLanguage l;
        l.code = m_table->item(r, kCode)->text().trimmed();
        l.name = m_table->item(r, kName)->text().trimmed();
        l.isNew = static_cast<QComboBox *>(m_table->cellWidget(r, kGroup))->currentData().toBool();
        l.files = m_table->item(r, kFiles)->data(Qt::UserRole).toStringList();
        out << l;
    }
    return out;
}

double LanguagesWizardPage::heldoutFraction() const
{
    return m_heldout->value();
}

void LanguagesWizardPage::setHeldoutFraction(double f)
{
    m_heldout->setValue(f);
}

QString LanguagesWizardPage::errorText() const
{
    return labelText(m_error);
}

bool LanguagesWizardPage::validatePage()
{
    static const QRegularExpression code("^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$");
    const QList<NewProjectLanguage> langs = languages();
    QString e;
    QSet<QString> seen;
    bool anyOld = false, anyNew = false;
    for (int r = 0; r < langs.size() && e.isEmpty(); ++r) {
        const NewProjectLanguage &l = langs[r];
        if (!code.match(l.code).hasMatch())
            e = tr("Row %1: '%2' is not a language code (two or three lower-case letters, e.g. de, or tr-TR).")
                    .arg(r + 1)
                    .arg(l.code);
        else if (seen.contains(l.code))
            e = tr("Row %1: %2 is listed twice.").arg(r + 1).arg(l.code);
        else if (l.files.isEmpty())
            e = tr("%1 has no corpus files: add some, or remove the language.").arg(l.code);
        for (const QString &f : l.files)
            if (e.isEmpty() && !QFileInfo(f).isReadable())
                e = tr("%1: cannot be read (language %2).").arg(f, l.code);
        seen.insert(l.code);
        (l.isNew ? anyNew : anyOld) = true;
    }
    if (e.isEmpty() && langs.isEmpty())
        e = tr("Add the languages: at least one old and one new.");
    else if (e.isEmpty() && !anyOld)
        e = tr("Mark at least one language as old: the method measures the new languages against the old ones.");
    else if (e.isEmpty() && !anyNew)
        e = tr("Mark at least one language as new: those are what the expansion teaches.");
    showError(m_error, e);
    return e.isEmpty();
}

// --- create -------------------------------------------------------------------------------------

CreateProjectWizardPage::CreateProjectWizardPage(QWidget *parent) : QWizardPage(parent), m_job(new NewProjectJob(this))
{
    setTitle(tr("Create the project"));
    setSubTitle(tr("Finish imports the corpora (and the base model) into a new project, then opens it."));
    setButtonText(QWizard::FinishButton, tr("&Create"));
    m_summary = new QLabel(this);
    m_summary->setObjectName("summary");
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_stage = new QLabel(this);
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_log = new QPlainTextEdit(this);
    m_log->setObjectName("log");
    m_log->setReadOnly(true);
    m_error = errorLabel(this);
    auto *v = new QVBoxLayout(this);
    v->addWidget(m_summary);
    v->addWidget(m_stage);
    v->addWidget(m_progress);
    v->addWidget(m_log, 1);
    v->addWidget(m_error);

    connect(m_job, &NewProjectJob::progress, this, [this](const QString &stage, qint64 done, qint64 total) {
        m_stage->setText(stage);
        const double scale = total > 1000000 ? double(total) / 1000000.0 : 1.0; // QProgressBar is int-based
        m_progress->setRange(0, total > 0 ? int(double(total) / scale) : 0);
        m_progress->setValue(int(double(done) / scale));
    });
    const auto ended = [this] {
        m_progress->setRange(0, 1);
        if (wizard())
            wizard()->button(QWizard::BackButton)->setEnabled(true);
        Q_EMIT completeChanged();
    };
    connect(m_job, &NewProjectJob::finished, this, [this, ended](const QString &path, const QStringList &log) {
        m_created = path;
        m_progress->setValue(1);
        m_stage->setText(tr("created %1").arg(path));
        m_log->appendPlainText(log.join('\n'));
        ended();
        Q_EMIT created(path);
        if (wizard())
            wizard()->accept();
    });
    connect(m_job, &NewProjectJob::failed, this, [this, ended](const QString &m) {
        m_progress->setValue(0);
        m_stage->setText(tr("failed; nothing was written"));
        showError(m_error, tr("The project was not created:\n%1").arg(m));
        ended();
    });
    connect(m_job, &NewProjectJob::cancelled, this, [this, ended] {
        m_progress->setValue(0);
        m_stage->setText(tr("cancelled; nothing was written"));
        ended();
    });
}

void CreateProjectWizardPage::initializePage()
{
    const NewProjectSpec s = static_cast<NewProjectWizard *>(wizard())->spec();
    QString text = tr("<b>%1</b><br>Base model: %2<br>Held-out fraction: %3<br>Languages:")
                       .arg(s.path.toHtmlEscaped(),
                            s.baseModelDir.isEmpty() ? tr("recipe %1 (trained afterwards)").arg(s.baseRecipe)
                                                     : s.baseModelDir.toHtmlEscaped())
                       .arg(s.heldoutFraction);
    for (const NewProjectLanguage &l : s.languages)
        text += tr("<br>&nbsp;&nbsp;%1 %2 (%3): %n file(s)", nullptr, int(l.files.size()))
                    .arg(l.code.toHtmlEscaped(), l.name.toHtmlEscaped(), l.isNew ? tr("new") : tr("old"));
    m_summary->setText(text);
    m_log->clear();
    m_stage->clear();
    showError(m_error, {});
}

bool CreateProjectWizardPage::isComplete() const
{
    return !m_job->isRunning();
}

bool CreateProjectWizardPage::validatePage()
{
    if (!m_created.isEmpty())
        return true;
    if (m_job->isRunning())
        return false;
    showError(m_error, {});
    m_log->clear();
    m_stage->setText(tr("starting"));
    m_progress->setRange(0, 0);
    m_job->start(static_cast<NewProjectWizard *>(wizard())->spec());
    wizard()->button(QWizard::BackButton)->setEnabled(false);
    Q_EMIT completeChanged(); // Create is disabled while the job runs; Cancel stays
    return false;
}

QString CreateProjectWizardPage::errorText() const
{
    return labelText(m_error);
}

QString CreateProjectWizardPage::logText() const
{
    return m_log->toPlainText();
}

// --- the wizard ---------------------------------------------------------------------------------

NewProjectWizard::NewProjectWizard(QWidget *parent) : QWizard(parent)
{
    setWindowTitle(tr("New PolyMoE project"));
    setObjectName("newProjectWizard");
    setPage(kFilePage, m_file = new ProjectFileWizardPage(this));
    setPage(kBasePage, m_base = new BaseModelWizardPage(this));
    setPage(kLanguagesPage, m_languages = new LanguagesWizardPage(this));
    setPage(kCreatePage, m_create = new CreateProjectWizardPage(this));
    setOption(QWizard::NoBackButtonOnStartPage);
    resize(760, 560);
    connect(m_create->job(), &NewProjectJob::cancelled, this, [this] {
        if (m_closing)
            QWizard::reject();
    });
    connect(m_create->job(), &NewProjectJob::failed, this, [this] {
        if (m_closing)
            QWizard::reject();
    });
}

NewProjectSpec NewProjectWizard::spec() const
{
    NewProjectSpec s;
    s.path = m_file->path();
    s.name = m_file->projectName();
    s.baseModelDir = m_base->folder();
    s.baseRecipe = m_base->recipe();
    s.languages = m_languages->languages();
    s.heldoutFraction = m_languages->heldoutFraction();
    return s;
}

void NewProjectWizard::reject()
{
    if (m_create->job()->isRunning()) {
        m_closing = true; // closes when the worker has removed what it wrote
        m_create->job()->cancel();
        return;
    }
    QWizard::reject();
}

} // namespace polymoe::ui
