// The new-project wizard (Start view, Ctrl+N): the project file, the base model (a Hugging Face
// folder checked with the engine's reader, or a demo recipe), the languages with their old/new group
// and corpus files (file dialog or drag and drop), the held-out fraction. Finish builds the project
// in a worker thread (NewProjectJob); a failed or cancelled wizard leaves no project file behind.
// One file pair per page: wizard_{project_file,base_model,languages,create}_page.*.
#pragma once

#include "new_project_wizard_job.h"
#include "wizard_base_model_page.h"
#include "wizard_create_page.h"
#include "wizard_languages_page.h"
#include "wizard_project_file_page.h"

#include <QWizard>

namespace polymoe::ui {

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
