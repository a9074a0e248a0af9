// The wizard's languages page: each language's code, name, old/new group and corpus files (file dialog or drag and drop), and the held-out fraction.
#pragma once

#include "new_project_wizard_job.h"

#include <QWizardPage>

class QDoubleSpinBox;
class QLabel;
class QTableWidget;

namespace polymoe::ui {

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

} // namespace polymoe::ui
