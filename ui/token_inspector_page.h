// Token inspector: a tokens x MoE-layers grid of the experts an expanded model chooses for a text,
// coloured by the top-1 expert (expert 0 = the frozen original), with the weights and the
// classifier's old/new decision. The forward pass runs off the GUI thread.
#pragma once

#include "page.h"

#include "polymoe/token_inspector.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

namespace polymoe::ui {

class WorkerJob;

class TokenInspectorPage : public Page {
    Q_OBJECT
public:
    explicit TokenInspectorPage(QWidget *parent = nullptr);
    void reload() override;

    void inspect(const QString &model, const QString &text);
    void inspectCurrent(); // the chosen model and the text in the box
    bool busy() const;
    const TokenInspection &result() const { return m_result; }
    QTableWidget *grid() const { return m_grid; }
    // Shows a result (also used by tests with inspectTokenIds).
    void showInspection(const TokenInspection &r);

Q_SIGNALS:
    void inspected();
    void inspectionFailed(const QString &message);

private:
    QComboBox *m_model = nullptr;
    QLineEdit *m_text = nullptr;
    QPushButton *m_go = nullptr;
    QLabel *m_info = nullptr;
    QTableWidget *m_grid = nullptr;
    TokenInspection m_result;
    WorkerJob *m_job = nullptr; // the forward pass, off the GUI thread
};

// The colour of expert e in the grid (expert 0: grey, the new experts: distinct hues).
QColor expertColor(int expert);

} // namespace polymoe::ui
