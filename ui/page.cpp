// The common frame of the workbench views.
#include "page.h"

#include <QApplication>
#include <QEvent>
#include <QLabel>
#include <QVBoxLayout>

namespace polymoe::ui {

Page::Page(const QString &title, const QString &explanation, QWidget *parent) : QWidget(parent), m_title(title)
{
    auto *outer = new QVBoxLayout(this);
    m_explanation = new QLabel(explanation, this);
    m_explanation->setObjectName("explanation");
    m_explanation->setWordWrap(true);
    m_explanation->setVisible(false);
    m_error = new QLabel(this);
    m_error->setObjectName("error");
    m_error->setWordWrap(true);
    m_error->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_error->setVisible(false);
    m_content = new QVBoxLayout;
    outer->addWidget(m_explanation);
    outer->addWidget(m_error);
    outer->addLayout(m_content, 1);
    setToolTip(explanation);
    updateLabelStyles();
}

namespace {
// a * (1 - t) + b * t, per channel.
QColor mix(const QColor &a, const QColor &b, double t)
{
    return QColor::fromRgbF(float(a.redF() * (1 - t) + b.redF() * t), float(a.greenF() * (1 - t) + b.greenF() * t),
                            float(a.blueF() * (1 - t) + b.blueF() * t));
}
} // namespace

void Page::updateLabelStyles()
{
    // Tints of the palette's own colours, so that the labels read on light and dark palettes alike.
    const QPalette p = palette();
    const QColor base = p.color(QPalette::Base), text = p.color(QPalette::Text), accent = p.color(QPalette::Highlight);
    const bool dark = base.lightnessF() < 0.5;
    m_explanation->setStyleSheet(QString("QLabel { background: %1; color: %2; border: 1px solid %3; padding: 6px; }")
                                     .arg(mix(base, accent, 0.12).name(), text.name(), mix(base, accent, 0.45).name()));
    const QColor red(dark ? "#ff8080" : "#8a1010");
    m_error->setStyleSheet(QString("QLabel { color: %1; background: %2; padding: 4px; }")
                               .arg(red.name(), mix(base, QColor("#e03030"), dark ? 0.22 : 0.10).name()));
}

void Page::changeEvent(QEvent *e)
{
    if (e->type() == QEvent::PaletteChange)
        updateLabelStyles();
    QWidget::changeEvent(e);
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

bool Page::readProject(const QString &what, const std::function<void(ProjectStore &)> &read)
{
    auto store = openStore();
    if (!store)
        return false;
    try {
        read(*store);
        return true;
    } catch (const std::exception &e) {
        showError(tr("Cannot read %1: %2").arg(what, QString::fromStdString(e.what())));
        return false;
    }
}

} // namespace polymoe::ui
