// The Training view's settings form: every setting of a stage run (TrainingSettings) with the
// engine's defaults, the stage-only ones enabled for their stage, and the project's models and
// allocations to choose from. Read-only while the view follows a run it did not start.
#pragma once

#include "training_job.h"

#include <QGroupBox>
#include <QList>

#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSpinBox;

namespace polymoe::ui {

class TrainingSettingsForm : public QGroupBox {
    Q_OBJECT
public:
    explicit TrainingSettingsForm(QWidget *parent = nullptr);

    TrainingSettings settings() const;
    void applySettings(const TrainingSettings &s);
    // The input models and allocations to offer; the current choices stay where they still exist.
    void setChoices(const std::vector<ModelRecord> &models, const std::vector<AllocationRecord> &allocations);
    bool editable() const { return isEnabled(); }
    void setEditable(bool on);

Q_SIGNALS:
    void changed(); // any setting

private:
    void updateStageWidgets();

    QComboBox *m_stage = nullptr, *m_model = nullptr, *m_allocation = nullptr, *m_dtype = nullptr,
              *m_device = nullptr;
    QSpinBox *m_steps = nullptr, *m_batch = nullptr, *m_seqLen = nullptr, *m_topK = nullptr, *m_statsEvery = nullptr,
             *m_checkpointEvery = nullptr, *m_threads = nullptr, *m_processes = nullptr;
    QDoubleSpinBox *m_lr = nullptr, *m_balance = nullptr, *m_lpr = nullptr, *m_classifierShare = nullptr,
                   *m_oldShare = nullptr, *m_replay = nullptr;
    QCheckBox *m_classifier = nullptr;
    QLineEdit *m_name = nullptr;
    QList<QWidget *> m_stage1Only, m_stage2Only;
};

} // namespace polymoe::ui
