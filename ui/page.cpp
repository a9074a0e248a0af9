// The common frame of the workbench views.
#include "page.h"

#include <QApplication>
#include <QLabel>
#include <QVBoxLayout>

namespace polymoe::ui {

Page::Page(const QString &title, const QString &explanation, QWidget *parent) : QWidget(parent), m_title(title)
{
    auto *outer = new QVBoxLayout(this);
    m_explanation = new QLabel(explanation, this);
    m_explanation->setObjectName("explanation");
    m_explanation->setWordWrap(true);
    m_explanation->setStyleSheet("QLabel { background: #eef3fb; border: 1px solid #b8c8e6; padding: 6px; }");
    m_explanation->setVisible(false);
    m_error = new QLabel(this);
    m_error->setObjectName("error");
    m_error->setWordWrap(true);
    m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_error->setStyleSheet("QLabel { color: #8a1010; background: #fdecec; padding: 4px; }");
    m_error->setVisible(false);
    m_content = new QVBoxLayout;
    outer->addWidget(m_explanation);
    outer->addWidget(m_error);
    outer->addLayout(m_content, 1);
    setToolTip(explanation);
}

void Page::setProjectPath(const QString &path)
{
    m_projectPath = path;
    clearError();
    reload();
}

void Page::setPresentationMode(bool on)
{
    m_explanation->setVisible(on);
    m_explanation->setFont(QApplication::font()); // a style sheet keeps it from following the application font
}

QString Page::errorText() const
{
    return m_error->isHidden() ? QString() : m_error->text();
}

void Page::showError(const QString &text)
{
    m_error->setText(text);
    m_error->setVisible(true);
    Q_EMIT statusMessage(text);
}

void Page::clearError()
{
    m_error->clear();
    m_error->setVisible(false);
}

std::optional<ProjectStore> Page::openStore(bool readOnly)
{
    if (m_projectPath.isEmpty())
        return std::nullopt;
    try {
        return ProjectStore::open(m_projectPath.toStdString(), readOnly);
    } catch (const std::exception &e) {
        showError(tr("Cannot open the project: %1").arg(QString::fromStdString(e.what())));
        return std::nullopt;
    }
}

} // namespace polymoe::ui
