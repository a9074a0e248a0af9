// The wizard's last page: the summary, then Finish builds the project in a worker (NewProjectJob) with its progress and log.
#pragma once

#include "new_project_wizard_job.h"

#include <QWizardPage>

class QLabel;
class QPlainTextEdit;
class QProgressBar;

namespace polymoe::ui {

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

} // namespace polymoe::ui
