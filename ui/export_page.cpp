// The export view (see export_page.h).
#include "export_page.h"

#include "cli_process.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDesktopServices>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QUrl>

namespace polymoe::ui {

ExportPage::ExportPage(QWidget *parent)
    : Page(tr("Export"),
           tr("Export: the expanded model as a Hugging Face folder for transformers (and lm-evaluation-harness): "
              "config.json with the experts per layer, safetensors, the tokenizer and modeling_polymoe.py, loaded "
              "with trust_remote_code=True. When every layer has the same number of experts and there is no "
              "classifier, also a stock Mixtral folder that loads without custom code."),
           parent)
{
    auto *form = new QFormLayout;
    m_model = new QComboBox(this);
    m_model->setToolTip(tr("The project model to export (expanded models first)"));
    connect(m_model, &QComboBox::currentIndexChanged, this, [this] { suggestOutDir(); });
    m_out = new QLineEdit(this);
    m_out->setToolTip(tr("The folder to create; a folder that exists and is not empty needs 'Replace'"));
    auto *browse = new QPushButton(tr("&Browse..."), this);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Export into"), QFileInfo(m_out->text()).path());
        if (!dir.isEmpty())
            m_out->setText(QDir(dir).filePath(m_model->currentText()));
    });
    auto *outRow = new QHBoxLayout;
    outRow->addWidget(m_out, 1);
    outRow->addWidget(browse);
    m_format = new QComboBox(this);
    m_format->addItem(tr("auto: polymoe, and Mixtral when possible"), "auto");
    m_format->addItem(tr("polymoe (remote code)"), "polymoe");
    m_format->addItem(tr("mixtral (stock MixtralForCausalLM)"), "mixtral");
    m_dtype = new QComboBox(this);
    m_dtype->addItems({"float32", "bfloat16", "float16"});
    m_dtype->setToolTip(tr("Stored weight type"));
    m_force = new QCheckBox(tr("Replace a non-empty folder"), this);
    form->addRow(tr("Model:"), m_model);
    form->addRow(tr("Folder:"), outRow);
    form->addRow(tr("Format:"), m_format);
    form->addRow(tr("Weights:"), m_dtype);
    form->addRow(QString(), m_force);

    auto *buttons = new QHBoxLayout;
    m_go = new QPushButton(tr("&Export"), this);
    m_go->setToolTip(tr("Run 'polymoe export' with these settings"));
    connect(m_go, &QPushButton::clicked, this, &ExportPage::startExport);
    m_openFolder = new QPushButton(tr("Open the folder"), this);
    m_openFolder->setEnabled(false);
    connect(m_openFolder, &QPushButton::clicked, this, [this] {
        if (!m_folders.isEmpty())
            QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(m_folders.first()).path()));
    });
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    buttons->addWidget(m_go);
    buttons->addWidget(m_progress, 1);
    buttons->addWidget(m_openFolder);
    m_result = new QLabel(this);
    m_result->setWordWrap(true);
    m_result->setTextInteractionFlags(Qt::TextSelectableByMouse);

    contentLayout()->addLayout(form);
    contentLayout()->addLayout(buttons);
    contentLayout()->addWidget(m_result);
    contentLayout()->addStretch(1);

    m_cli = new CliProcess(this);
    connect(m_cli, &CliProcess::jsonEvent, this, [this](const QJsonObject &e) {
        if (e.contains("folders")) { // the command's result
            m_folders.clear();
            QStringList lines;
            for (const auto &f : e["folders"].toArray()) {
                const QJsonObject o = f.toObject();
                m_folders << o["dir"].toString();
                lines << tr("%1: %2 (%3 tensors, %4 MB)")
                             .arg(o["format"].toString(), o["dir"].toString())
                             .arg(o["tensors"].toInteger())
                             .arg(double(o["bytes"].toInteger()) / 1e6, 0, 'f', 1);
            }
            if (e.contains("mixtral_reason"))
                lines << tr("No stock Mixtral folder: %1").arg(e["mixtral_reason"].toString());
            m_result->setText(tr("Exported '%1':\n%2").arg(e["model"].toString(), lines.join("\n")));
        } else if (e.contains("total") && e["total"].toInteger() > 0) { // progress
            m_progress->setRange(0, int(e["total"].toInteger()));
            m_progress->setValue(int(e["done"].toInteger()));
        }
    });
    connect(m_cli, &CliProcess::logText, this, [this](const QString &t) { m_log += t; });
    connect(m_cli, &CliProcess::failedToStart, this, [this](const QString &m) {
        m_go->setEnabled(true);
        showError(m);
        Q_EMIT exportFailed(m);
    });
    connect(m_cli, &CliProcess::finished, this, [this](int code, bool crashed) {
        m_go->setEnabled(true);
        m_progress->setRange(0, 1);
        m_progress->setValue(code == 0 ? 1 : 0);
        if (code == 0 && !crashed && !m_folders.isEmpty()) {
            m_openFolder->setEnabled(true);
            Q_EMIT statusMessage(tr("Exported to %1").arg(m_folders.join(", ")));
            Q_EMIT projectModified();
            Q_EMIT exported(m_folders);
            return;
        }
        const QString message = m_log.trimmed().isEmpty() ? tr("polymoe export failed (exit code %1)").arg(code)
                                                           : m_log.trimmed();
        showError(message);
        Q_EMIT exportFailed(message);
    });
}

void ExportPage::reload()
{
    clearError();
    const QString previous = m_model->currentText();
    m_model->clear();
    auto store = openStore();
    if (!store)
        return;
    QStringList expanded, dense;
    for (const auto &m : store->models())
        (m.kind == "expanded" ? expanded : dense).prepend(QString::fromStdString(m.name)); // newest first
    for (const auto &name : expanded + dense)
        m_model->addItem(name);
    if (const int i = m_model->findText(previous); i >= 0)
        m_model->setCurrentIndex(i);
    m_go->setEnabled(m_model->count() > 0 && !busy());
    if (m_model->count() == 0)
        showError(tr("The project has no model to export yet"));
    suggestOutDir();
}

void ExportPage::suggestOutDir()
{
    if (projectPath().isEmpty() || m_model->currentText().isEmpty())
        return;
    m_out->setText(QDir(projectPath() + ".d/exports").filePath(m_model->currentText()));
}

QStringList ExportPage::exportArguments() const
{
    QStringList args{"export", projectPath(), "--out", m_out->text(), "--model", m_model->currentText(), "--format",
                     m_format->currentData().toString(), "--dtype", m_dtype->currentText(), "--json", "--progress",
                     "json"};
    if (m_force->isChecked())
        args << "--force";
    return args;
}

void ExportPage::startExport()
{
    clearError();
    if (m_model->currentText().isEmpty() || m_out->text().trimmed().isEmpty()) {
        showError(tr("Choose a model and a folder first"));
        return;
    }
    m_folders.clear();
    m_log.clear();
    m_result->clear();
    m_openFolder->setEnabled(false);
    m_go->setEnabled(false);
    m_progress->setRange(0, 0); // busy until the first progress line
    m_cli->start(exportArguments());
}

bool ExportPage::busy() const { return m_cli->isRunning(); }

QString ExportPage::resultText() const { return m_result->text(); }

} // namespace polymoe::ui
