// The wizard's base-model page: a Hugging Face folder, checked with the engine's reader off the GUI thread, or a demo recipe.
#pragma once

#include <QWizardPage>

class QComboBox;
class QLabel;
class QLineEdit;
class QRadioButton;

namespace polymoe::ui {

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

} // namespace polymoe::ui
