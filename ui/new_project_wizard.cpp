// The new-project wizard (see new_project_wizard.h); its pages are in wizard_*_page.*.
#include "new_project_wizard.h"



namespace polymoe::ui {

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
