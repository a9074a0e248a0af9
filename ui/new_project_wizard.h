// The new-project wizard (Start view, Ctrl+N): the project file, the base model (a Hugging Face
// folder checked with the engine's reader, or a demo recipe), the languages with their old/new group
// and corpus files (file dialog or drag and drop), the held-out fraction. Finish builds the project
// in a worker thread (NewProjectJob); a failed or cancelled wizard leaves no project file behind.
#pragma once

#include "new_project_wizard_job.h"

#include <QWizard>
#include <QWizardPage>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QRadioButton;
class QTableWidget;

namespace polymoe::ui {

class ProjectFileWizardPage : public QWizardPage {
    Q_OBJECT
public:
    explicit ProjectFileWizardPage(QWidget *parent = nullptr);
    bool validatePage() override;
    QString path() const; // with the .polymoe suffix
    QString projectName() const;
    QLineEdit *pathEdit() const { return m_path; }
    QLineEdit *nameEdit() const { return m_name; }
    QString errorText() const;

private:
    QLineEdit *m_path = nullptr;
    QLineEdit *m_name = nullptr;
    QLabel *m_error = nullptr;
};

class BaseModelWizardPage : public QWizardPage {
    Q_OBJECT
public:
    explicit BaseModelWizardPage(QWidget *parent = nullptr);
    bool validatePage() override; // checks the folder off the GUI thread
    void useRecipe(const QString &recipe);       // "demo-base" or "demo-base-tiny"
    void useFolder(const QString &dir);
    QString folder() const;  // empty when a recipe is used
    QString recipe() const;
    QString errorText() const;

private:
    QRadioButton *m_recipeChoice = nullptr;
    QRadioButton *m_folderChoice = nullptr;
    QComboBox *m_recipe = nullptr;
    QLineEdit *m_folder = nullptr;
    QLabel *m_error = nullptr;
    QString m_checked; // the folder last found usable
    bool m_checking = false;
};

class LanguagesWizardPage : public QWizardPage {
    Q_OBJECT
public:
    explicit LanguagesWizardPage(QWidget *parent = nullptr);
    bool validatePage() override;
    // Adds a row (as the "Add language" button does); returns its index.
    int addLanguage(const QString &code = {}, const QString &name = {}, bool isNew = false, const QStringList &files = {});
    void addFiles(int row, const QStringList &files); // as the file dialog and drag and drop do
    QList<NewProjectLanguage> languages() const;
    double heldoutFraction() const;
    void setHeldoutFraction(double f);
    QTableWidget *table() const { return m_table; }
    QString errorText() const;

protected:
    void dragEnterEvent(QDragEnterEvent *e) override;
    void dragMoveEvent(QDragMoveEvent *e) override;
    void dropEvent(QDropEvent *e) override;

private:
    void addFilesWithDialog();
    void updateFilesCell(int row);

    QTableWidget *m_table = nullptr;
    QDoubleSpinBox *m_heldout = nullptr;
    QLabel *m_error = nullptr;
};

class CreateProjectWizardPage : public QWizardPage {
    Q_OBJECT
public:
    explicit CreateProjectWizardPage(QWidget *parent = nullptr);
    void initializePage() override;
    bool validatePage() override; // Finish: starts the job; true once it has succeeded
    bool isComplete() const override;
    NewProjectJob *job() const { return m_job; }
    QString errorText() const;
    QString logText() const;
    QString createdPath() const { return m_created; }

Q_SIGNALS:
    void created(const QString &path);

private:
    QLabel *m_summary = nullptr;
    QLabel *m_stage = nullptr;
    QProgressBar *m_progress = nullptr;
    QPlainTextEdit *m_log = nullptr;
    QLabel *m_error = nullptr;
    NewProjectJob *m_job = nullptr;
    QString m_created;
};

class NewProjectWizard : public QWizard {
    Q_OBJECT
public:
    enum { kFilePage, kBasePage, kLanguagesPage, kCreatePage };
    explicit NewProjectWizard(QWidget *parent = nullptr);

    NewProjectSpec spec() const;
    QString createdPath() const { return m_create->createdPath(); }
    ProjectFileWizardPage *filePage() const { return m_file; }
    BaseModelWizardPage *basePage() const { return m_base; }
    LanguagesWizardPage *languagesPage() const { return m_languages; }
    CreateProjectWizardPage *createPage() const { return m_create; }

public Q_SLOTS:
    void reject() override; // while the job runs: cancel it, close once its files are removed

private:
    ProjectFileWizardPage *m_file = nullptr;
    BaseModelWizardPage *m_base = nullptr;
    LanguagesWizardPage *m_languages = nullptr;
    CreateProjectWizardPage *m_create = nullptr;
    bool m_closing = false;
};

} // namespace polymoe::ui
