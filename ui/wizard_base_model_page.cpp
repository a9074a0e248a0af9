// The wizard's base-model page (see wizard_base_model_page.h).
#include "wizard_base_model_page.h"

#include "new_project_wizard.h"
#include "wizard_page_common.h"

#include <QButtonGroup>
#include <QComboBox>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QThread>
#include <QVBoxLayout>

namespace polymoe::ui {

using namespace wizard;

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

} // namespace polymoe::ui
