// Layer similarity (METHOD.md section 1): a heatmap of sim_i per language pair and layer from the
// latest stored analysis, the S_i curve with its new-old and new-new parts, the classifier layers,
// and "Recompute" running analyzeSimilarity off the GUI thread.
#pragma once

#include "page.h"

#include <vector>

class QCustomPlot;
class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace polymoe::ui {

class SimilarityJob;

// LayerMoE's classifier layers (METHOD.md section 6): round(share * MoE layers), at least 1, of the
// MoE layers (N_i >= 2; every layer when `experts` is empty) with the highest S_i, sorted by layer.
std::vector<int> classifierLayersFor(const std::vector<double> &scores, const std::vector<int> &experts, double share = 0.3);

class SimilarityPage : public Page {
    Q_OBJECT
public:
    explicit SimilarityPage(QWidget *parent = nullptr);
    void reload() override;

    // What is shown (for tests and export).
    qint64 analysisId() const { return m_analysisId; }
    const std::vector<double> &scores() const { return m_scores; }
    const std::vector<double> &newOld() const { return m_newOld; }
    const std::vector<double> &newNew() const { return m_newNew; }
    const QStringList &pairLabels() const { return m_pairLabels; }
    double heatValue(int layer, int pair) const; // NaN if absent
    const std::vector<int> &classifierLayers() const { return m_classifier; }
    QCustomPlot *heatmap() const { return m_heat; }
    QCustomPlot *curve() const { return m_curve; }
    SimilarityJob *job() const { return m_job; }

    void recompute(); // with the model and token count of the controls
    void cancel();

private:
    void draw();
    void setRunning(bool running);

    QCustomPlot *m_heat = nullptr;
    QCustomPlot *m_curve = nullptr;
    QComboBox *m_model = nullptr;
    QSpinBox *m_tokens = nullptr;
    QPushButton *m_recompute = nullptr;
    QPushButton *m_cancel = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_info = nullptr;
    SimilarityJob *m_job = nullptr;

    qint64 m_analysisId = 0;
    std::vector<double> m_scores, m_newOld, m_newNew;
    QStringList m_pairLabels;
    std::vector<std::vector<double>> m_heatValues; // [layer][pair]
    std::vector<int> m_classifier;
};

} // namespace polymoe::ui
