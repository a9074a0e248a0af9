// The wizard's first page (see wizard_project_file_page.h).
#include "wizard_project_file_page.h"

#include "wizard_page_common.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardPaths>

namespace polymoe::ui {

using namespace wizard;

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

} // namespace polymoe::ui
