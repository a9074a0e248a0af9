// What the new-project wizard's pages share (see wizard_page_common.h).
#include "wizard_page_common.h"

#include <QLabel>

namespace polymoe::ui::wizard {

QLabel *errorLabel(QWidget *parent)
{
    auto *l = new QLabel(parent);
    l->setObjectName("error");
    l->setWordWrap(true);
    l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    l->setStyleSheet("QLabel { color: #c02020; }"); // readable on light and dark palettes
    l->setVisible(false);
    return l;
}

void showError(QLabel *l, const QString &text)
{
    l->setText(text);
    l->setVisible(!text.isEmpty());
}

QString labelText(const QLabel *l)
{
    return l->isHidden() ? QString() : l->text();
}

} // namespace polymoe::ui::wizard
