// The wizard's languages page (see wizard_languages_page.h).
#include "wizard_languages_page.h"

#include "wizard_page_common.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMimeData>
#include <QPushButton>
#include <QRegularExpression>
#include <QSet>
#include <QTableWidget>
#include <QVBoxLayout>

namespace polymoe::ui {

using namespace wizard;

namespace {

enum Column { kCode, kName, kGroup, kFiles, kColumns };

QStringList localFiles(const QMimeData *mime)
{
    QStringList out;
    if (mime)
        for (const QUrl &u : mime->urls())
            if (u.isLocalFile() && QFileInfo(u.toLocalFile()).isFile())
                out << u.toLocalFile();
    return out;
}

} // namespace

LanguagesWizardPage::LanguagesWizardPage(QWidget *parent) : QWizardPage(parent)
{
    setTitle(tr("Languages and corpora"));
    setSubTitle(tr("Old languages are what the base model knows; new ones are what the expansion teaches."));
    setAcceptDrops(true);
    m_table = new QTableWidget(0, kColumns, this);
    m_table->setObjectName("languages");
    m_table->setHorizontalHeaderLabels({tr("Code"), tr("Name"), tr("Group"), tr("Corpus files")});
    m_table->horizontalHeader()->setSectionResizeMode(kFiles, QHeaderView::Stretch);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setToolTip(tr("Drop text files onto a row to add them to that language"));
    auto *add = new QPushButton(tr("&Add language"), this);
    auto *remove = new QPushButton(tr("&Remove"), this);
    auto *files = new QPushButton(tr("Add &files..."), this);
    files->setObjectName("addFiles");
    connect(add, &QPushButton::clicked, this, [this] {
        const int r = addLanguage();
        m_table->setCurrentCell(r, kCode);
        m_table->editItem(m_table->item(r, kCode));
    });
    connect(remove, &QPushButton::clicked, this, [this] {
        if (m_table->currentRow() >= 0)
            m_table->removeRow(m_table->currentRow());
    });
    connect(files, &QPushButton::clicked, this, &LanguagesWizardPage::addFilesWithDialog);
    m_heldout = new QDoubleSpinBox(this);
    m_heldout->setObjectName("heldout");
    m_heldout->setRange(0.0, 0.5);
    m_heldout->setDecimals(3);
    m_heldout->setSingleStep(0.01);
    m_heldout->setValue(0.05);
    m_heldout->setToolTip(tr("Share of each language's documents held out for perplexity and the similarity "
                             "analysis, chosen by a hash of their text"));
    m_error = errorLabel(this);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(add);
    buttons->addWidget(remove);
    buttons->addWidget(files);
    buttons->addStretch(1);
    buttons->addWidget(new QLabel(tr("Held-out &fraction:"), this));
    buttons->addWidget(m_heldout);
    static_cast<QLabel *>(buttons->itemAt(buttons->count() - 2)->widget())->setBuddy(m_heldout);
    auto *hint = new QLabel(tr("Corpus files: .txt (a document per line, or per paragraph when the file has blank "
                               "lines) or .jsonl (a \"text\" field per line). Use Add files, or drop files onto a "
                               "language's row."),
                            this);
    hint->setWordWrap(true);
    auto *v = new QVBoxLayout(this);
    v->addWidget(m_table, 1);
    v->addWidget(hint);
    v->addLayout(buttons);
    v->addWidget(m_error);
}

int LanguagesWizardPage::addLanguage(const QString &code, const QString &name, bool isNew, const QStringList &files)
{
    const int r = m_table->rowCount();
    m_table->insertRow(r);
    m_table->setItem(r, kCode, new QTableWidgetItem(code));
    m_table->setItem(r, kName, new QTableWidgetItem(name));
    auto *group = new QComboBox(m_table);
    group->addItem(tr("old"), false);
    group->addItem(tr("new"), true);
    group->setCurrentIndex(isNew ? 1 : 0);
    m_table->setCellWidget(r, kGroup, group);
    auto *f = new QTableWidgetItem;
    f->setFlags(f->flags() & ~Qt::ItemIsEditable);
    m_table->setItem(r, kFiles, f);
    addFiles(r, files);
    showError(m_error, {});
    return r;
}

void LanguagesWizardPage::addFiles(int row, const QStringList &files)
{
    if (row < 0 || row >= m_table->rowCount())
        return;
    QTableWidgetItem *item = m_table->item(row, kFiles);
    QStringList list = item->data(Qt::UserRole).toStringList();
    for (const QString &f : files) {
        const QString abs = QFileInfo(f).absoluteFilePath();
        if (!list.contains(abs))
            list << abs;
    }
    item->setData(Qt::UserRole, list);
    updateFilesCell(row);
    showError(m_error, {});
}

void LanguagesWizardPage::updateFilesCell(int row)
{
    QTableWidgetItem *item = m_table->item(row, kFiles);
    const QStringList list = item->data(Qt::UserRole).toStringList();
    QStringList names;
    for (const QString &f : list)
        names << QFileInfo(f).fileName();
    item->setText(list.isEmpty() ? tr("(none: drop files here)") : names.join(", "));
    item->setToolTip(list.join('\n'));
}

void LanguagesWizardPage::addFilesWithDialog()
{
    int row = m_table->currentRow();
    if (row < 0) {
        if (m_table->rowCount() == 0)
            row = addLanguage();
        else
            row = m_table->rowCount() - 1;
    }
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Corpus files"), QString(),
                                                            tr("Text (*.txt *.jsonl);;All files (*)"));
    addFiles(row, files);
}

void LanguagesWizardPage::dragEnterEvent(QDragEnterEvent *e)
{
    if (!localFiles(e->mimeData()).isEmpty())
        e->acceptProposedAction();
}

void LanguagesWizardPage::dragMoveEvent(QDragMoveEvent *e)
{
    if (!localFiles(e->mimeData()).isEmpty())
        e->acceptProposedAction();
}

void LanguagesWizardPage::dropEvent(QDropEvent *e)
{
    const QStringList files = localFiles(e->mimeData());
    if (files.isEmpty())
        return;
    // The row under the pointer, else the selected one, else a new language.
    const QPoint inViewport = m_table->viewport()->mapFrom(this, e->position().toPoint());
    int row = m_table->viewport()->rect().contains(inViewport) ? m_table->rowAt(inViewport.y()) : -1;
    if (row < 0)
        row = m_table->currentRow();
    if (row < 0)
        row = addLanguage();
    addFiles(row, files);
    m_table->setCurrentCell(row, kFiles);
    e->acceptProposedAction();
}

QList<NewProjectLanguage> LanguagesWizardPage::languages() const
{
    QList<NewProjectLanguage> out;
    for (int r = 0; r < m_table->rowCount(); ++r) {
        NewProjectLanguage l;
        l.code = m_table->item(r, kCode)->text().trimmed();
        l.name = m_table->item(r, kName)->text().trimmed();
        l.isNew = static_cast<QComboBox *>(m_table->cellWidget(r, kGroup))->currentData().toBool();
        l.files = m_table->item(r, kFiles)->data(Qt::UserRole).toStringList();
        out << l;
    }
    return out;
}

double LanguagesWizardPage::heldoutFraction() const
{
    return m_heldout->value();
}

void LanguagesWizardPage::setHeldoutFraction(double f)
{
    m_heldout->setValue(f);
}

QString LanguagesWizardPage::errorText() const
{
    return labelText(m_error);
}

bool LanguagesWizardPage::validatePage()
{
    static const QRegularExpression code("^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$");
    const QList<NewProjectLanguage> langs = languages();
    QString e;
    QSet<QString> seen;
    bool anyOld = false, anyNew = false;
    for (int r = 0; r < langs.size() && e.isEmpty(); ++r) {
        const NewProjectLanguage &l = langs[r];
        if (!code.match(l.code).hasMatch())
            e = tr("Row %1: '%2' is not a language code (two or three lower-case letters, e.g. de, or tr-TR).")
                    .arg(r + 1)
                    .arg(l.code);
        else if (seen.contains(l.code))
            e = tr("Row %1: %2 is listed twice.").arg(r + 1).arg(l.code);
        else if (l.files.isEmpty())
            e = tr("%1 has no corpus files: add some, or remove the language.").arg(l.code);
        for (const QString &f : l.files)
            if (e.isEmpty() && !QFileInfo(f).isReadable())
                e = tr("%1: cannot be read (language %2).").arg(f, l.code);
        seen.insert(l.code);
        (l.isNew ? anyNew : anyOld) = true;
    }
    if (e.isEmpty() && langs.isEmpty())
        e = tr("Add the languages: at least one old and one new.");
    else if (e.isEmpty() && !anyOld)
        e = tr("Mark at least one language as old: the method measures the new languages against the old ones.");
    else if (e.isEmpty() && !anyNew)
        e = tr("Mark at least one language as new: those are what the expansion teaches.");
    showError(m_error, e);
    return e.isEmpty();
}

} // namespace polymoe::ui
