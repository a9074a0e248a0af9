// The wizard's last page (see wizard_create_page.h).
#include "wizard_create_page.h"

#include "new_project_wizard.h"
#include "wizard_page_common.h"

#include <QAbstractButton>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QVBoxLayout>

namespace polymoe::ui {

using namespace wizard;

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

} // namespace polymoe::ui
