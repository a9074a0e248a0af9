// What the new-project wizard's pages share: their inline error label.
#pragma once

#include <QString>

class QLabel;
class QWidget;

namespace polymoe::ui::wizard {

// A hidden, selectable, word-wrapped label in the error colour (readable on light and dark palettes).
QLabel *errorLabel(QWidget *parent);
// Shows `text` (hides the label when it is empty).
void showError(QLabel *label, const QString &text);
// The text shown, empty when hidden.
QString labelText(const QLabel *label);

} // namespace polymoe::ui::wizard
