// The wizard's first page: the project file (a .polymoe path, refused when it exists) and its name.
#pragma once

#include <QWizardPage>

class QLabel;
class QLineEdit;

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

} // namespace polymoe::ui
