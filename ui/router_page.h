// Router monitor (METHOD.md section 8): for a run and a language, the layers x experts share of the
// routing slots at a chosen step, the share of tokens whose top-1 is the frozen expert 0 per layer
// over the steps, and the router entropy. Polls the store once a second while a run writes.
#pragma once

#include "page.h"

#include <QDateTime>

#include <vector>

class QComboBox;
class QCustomPlot;
class QLabel;
class QTimer;

namespace polymoe::ui {

class RouterPage : public Page {
    Q_OBJECT
public:
    explicit RouterPage(QWidget *parent = nullptr);
    void reload() override;

    void selectRun(qint64 runId);
    void selectLanguage(const QString &code);
    void selectStep(qint64 step); // -1: the latest
    qint64 currentStep() const;
    // The shown numbers (for tests and export).
    double slotShare(int layer, int expert) const;          // at the current step and language; NaN if absent
    std::vector<std::pair<qint64, double>> expert0Top1(int layer) const; // over the steps
    QTimer *pollTimer() const { return m_poll; }
    bool pollOnce(); // true when the store changed and the view was reloaded

private:
    void loadRun();
    void draw();

    QComboBox *m_run = nullptr, *m_language = nullptr, *m_step = nullptr;
    QCustomPlot *m_heat = nullptr, *m_top1 = nullptr, *m_entropy = nullptr;
    QLabel *m_info = nullptr;
    QTimer *m_poll = nullptr;
    std::vector<RouterStatRecord> m_rows;
    QDateTime m_stamp;
    bool m_loading = false;
};

} // namespace polymoe::ui
