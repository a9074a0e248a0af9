// The layer-similarity view.
#include "similarity_page.h"

#include "chart_export.h"
#include "similarity_job.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

namespace polymoe::ui {

std::vector<int> classifierLayersFor(const std::vector<double> &scores, const std::vector<int> &experts, double share)
{
    std::vector<int> moe;
    for (size_t i = 0; i < scores.size(); ++i)
        if ((experts.empty() || (i < experts.size() && experts[i] >= 2)) && std::isfinite(scores[i]))
            moe.push_back(int(i));
    if (moe.empty() || share <= 0)
        return {};
    size_t k = size_t(std::max(1L, std::lround(share * double(moe.size()))));
    k = std::min(k, moe.size());
    std::stable_sort(moe.begin(), moe.end(), [&](int a, int b) { return scores[size_t(a)] > scores[size_t(b)]; });
    moe.resize(k);
    std::sort(moe.begin(), moe.end());
    return moe;
}

SimilarityPage::SimilarityPage(QWidget *parent)
    : Page(tr("Layer similarity"),
           tr("Step 1 of LayerMoE: how similar the new languages' FFN inputs are to the old ones' in each layer "
              "(mean pairwise cosine, sim_i). The layer score S_i averages the new–old and new–new pairs. Layers "
              "with a low S_i get more new experts; the most similar layers (top 30% of the MoE layers, marked) "
              "get the old/new classifier in stage 2."),
           parent),
      m_job(new SimilarityJob(this))
{
    auto *controls = new QHBoxLayout;
    m_model = new QComboBox(this);
    m_model->setToolTip(tr("The model whose layers are compared"));
    m_tokens = new QSpinBox(this);
    m_tokens->setRange(256, 10000000);
    m_tokens->setSingleStep(1000);
    m_tokens->setValue(100000);
    m_tokens->setSuffix(tr(" tokens"));
    m_tokens->setToolTip(tr("Held-out tokens per language (the papers use about 100,000)"));
    m_recompute = new QPushButton(tr("&Recompute"), this);
    m_recompute->setToolTip(tr("Run the similarity analysis again and store it in the project"));
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setEnabled(false);
    m_progress = new QProgressBar(this);
    m_progress->setVisible(false);
    controls->addWidget(new QLabel(tr("Model:"), this));
    controls->addWidget(m_model);
    controls->addWidget(m_tokens);
    controls->addWidget(m_recompute);
    controls->addWidget(m_cancel);
    controls->addWidget(m_progress, 1);
    m_info = new QLabel(this);
    m_info->setWordWrap(true);

    m_heat = new QCustomPlot(this);
    m_curve = new QCustomPlot(this);
    m_heat->setMinimumHeight(220);
    m_curve->setMinimumHeight(220);
    installChartExport(m_heat, "similarity-heatmap");
    installChartExport(m_curve, "layer-scores");
    auto *split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_heat);
    split->addWidget(m_curve);

    contentLayout()->addLayout(controls);
    contentLayout()->addWidget(m_info);
    contentLayout()->addWidget(split, 1);

    connect(m_recompute, &QPushButton::clicked, this, &SimilarityPage::recompute);
    connect(m_cancel, &QPushButton::clicked, this, &SimilarityPage::cancel);
    connect(m_job, &SimilarityJob::progress, this, [this](const QString &stage, qint64 done, qint64 total) {
        m_progress->setFormat(stage + " %p%");
        m_progress->setRange(0, total > 0 ? 1000 : 0);
        if (total > 0)
            m_progress->setValue(int(1000.0 * double(done) / double(total)));
    });
    connect(m_job, &SimilarityJob::finished, this, [this](qint64 id) {
        setRunning(false);
        Q_EMIT statusMessage(tr("Similarity analysis %1 stored").arg(id));
        reload();
        Q_EMIT projectModified();
    });
    connect(m_job, &SimilarityJob::failed, this, [this](const QString &m) {
        setRunning(false);
        showError(tr("The similarity analysis failed: %1").arg(m));
    });
    connect(m_job, &SimilarityJob::cancelled, this, [this] {
        setRunning(false);
        Q_EMIT statusMessage(tr("Similarity analysis cancelled; nothing was stored"));
    });
}

double SimilarityPage::heatValue(int layer, int pair) const
{
    if (layer < 0 || size_t(layer) >= m_heatValues.size() || pair < 0 || size_t(pair) >= m_heatValues[size_t(layer)].size())
        return std::nan("");
    return m_heatValues[size_t(layer)][size_t(pair)];
}

void SimilarityPage::setRunning(bool running)
{
    m_recompute->setEnabled(!running);
    m_cancel->setEnabled(running);
    m_progress->setVisible(running);
    if (running) {
        m_progress->setRange(0, 0);
        m_progress->setFormat(tr("starting"));
    }
}

void SimilarityPage::recompute()
{
    if (m_job->isRunning())
        return;
    clearError();
    if (projectPath().isEmpty() || m_model->currentText().isEmpty()) {
        showError(tr("Open a project with a model first"));
        return;
    }
    setRunning(true);
    m_job->start(projectPath(), m_model->currentText(), m_tokens->value());
}

void SimilarityPage::cancel()
{
    m_job->cancel();
}

void SimilarityPage::reload()
{
    clearError();
    m_analysisId = 0;
    m_scores.clear();
    m_newOld.clear();
    m_newNew.clear();
    m_pairLabels.clear();
    m_heatValues.clear();
    m_classifier.clear();
    const QString keepModel = m_model->currentText();
    m_model->clear();
    const bool read = readProject(tr("the similarity analysis"), [&](ProjectStore &store) {
        for (const auto &m : store.models())
            m_model->addItem(QString::fromStdString(m.name));
        const auto analyses = store.similarityAnalyses();
        if (!analyses.empty()) {
            const auto &a = analyses.back();
            m_analysisId = a.id;
            std::map<std::string, LanguageGroup> groups;
            for (const auto &l : store.languages())
                groups[l.code] = l.group;
            const auto layerScores = store.layerScores(a.id);
            for (const auto &s : layerScores) {
                m_scores.push_back(s.score);
                m_newOld.push_back(s.newOld.value_or(std::nan("")));
                m_newNew.push_back(s.newNew.value_or(std::nan("")));
            }
            // Heatmap rows: each unordered pair once, with at least one new language (the pairs S_i uses),
            // then old-old pairs.
            std::map<std::pair<std::string, std::string>, std::map<int, double>> byPair;
            int layers = int(m_scores.size());
            for (const auto &v : store.similarityValues(a.id)) {
                if (v.languageA == v.languageB)
                    continue;
                auto key = std::minmax(v.languageA, v.languageB);
                byPair[{key.first, key.second}][v.layer] = v.value;
                layers = std::max(layers, v.layer + 1);
            }
            std::vector<std::pair<std::string, std::string>> order;
            for (const auto &[k, _] : byPair)
                order.push_back(k);
            auto rank = [&](const std::pair<std::string, std::string> &p) {
                const bool na = groups[p.first] == LanguageGroup::New, nb = groups[p.second] == LanguageGroup::New;
                return na && nb ? 1 : (na || nb ? 0 : 2); // new-old, new-new, old-old
            };
            std::stable_sort(order.begin(), order.end(), [&](auto &x, auto &y) { return rank(x) < rank(y); });
            m_heatValues.assign(size_t(layers), std::vector<double>(order.size(), std::nan("")));
            for (size_t p = 0; p < order.size(); ++p) {
                const auto &[la, lb] = order[p];
                const bool newA = groups[la] == LanguageGroup::New;
                // Name the new language first: "de–en".
                m_pairLabels << (newA || groups[lb] != LanguageGroup::New
                                     ? QString::fromStdString(la + "–" + lb)
                                     : QString::fromStdString(lb + "–" + la));
                for (const auto &[layer, value] : byPair[order[p]])
                    m_heatValues[size_t(layer)][p] = value;
            }
            std::vector<int> experts;
            const auto allocs = store.allocations();
            if (!allocs.empty() && allocs.back().experts.size() == m_scores.size())
                experts = allocs.back().experts;
            m_classifier = classifierLayersFor(m_scores, experts);
            QString model = tr("(unknown model)");
            if (a.modelId)
                if (auto m = store.model(*a.modelId))
                    model = QString::fromStdString(m->name);
            m_info->setText(tr("Analysis %1 of model '%2', %3 tokens per language, %4. Classifier layers: %5.")
                                .arg(a.id)
                                .arg(model)
                                .arg(a.tokensPerLanguage)
                                .arg(QString::fromStdString(a.createdAt))
                                .arg([&] {
                                    QStringList l;
                                    for (int c : m_classifier)
                                        l << QString::number(c);
                                    return l.isEmpty() ? tr("none") : l.join(", ");
                                }()));
        } else {
            m_info->setText(tr("No similarity analysis in this project yet: choose a model and press Recompute."));
        }
    });
    if (!read)
        m_info->clear();
    const int keep = m_model->findText(keepModel);
    if (keep >= 0)
        m_model->setCurrentIndex(keep);
    else if (m_model->findText("base") >= 0)
        m_model->setCurrentIndex(m_model->findText("base"));
    draw();
}

void SimilarityPage::draw()
{
    // Heatmap: layers along x, language pairs along y.
    m_heat->clearPlottables();
    m_heat->clearItems();
    for (int i = m_heat->plotLayout()->elementCount() - 1; i > 0; --i)
        if (qobject_cast<QCPColorScale *>(m_heat->plotLayout()->elementAt(i)))
            m_heat->plotLayout()->removeAt(i);
    m_heat->plotLayout()->simplify();
    const int layers = int(m_heatValues.size()), pairs = int(m_pairLabels.size());
    m_heat->xAxis->setLabel(tr("layer"));
    m_heat->yAxis->setLabel(tr("language pair"));
    if (layers > 0 && pairs > 0) {
        auto *map = new QCPColorMap(m_heat->xAxis, m_heat->yAxis);
        map->setName(tr("sim_i"));
        map->data()->setSize(layers, pairs);
        map->data()->setRange(QCPRange(0, layers - 1), QCPRange(0, pairs - 1));
        for (int x = 0; x < layers; ++x)
            for (int y = 0; y < pairs; ++y)
                map->data()->setCell(x, y, std::isfinite(m_heatValues[size_t(x)][size_t(y)]) ? m_heatValues[size_t(x)][size_t(y)] : 0);
        auto *scale = new QCPColorScale(m_heat);
        m_heat->plotLayout()->addElement(0, 1, scale);
        scale->axis()->setLabel(tr("mean cosine"));
        map->setColorScale(scale);
        map->setGradient(QCPColorGradient::gpThermal);
        map->setInterpolate(false);
        map->rescaleDataRange(true);
        auto group = new QCPMarginGroup(m_heat);
        m_heat->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
        scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
        QSharedPointer<QCPAxisTickerText> yt(new QCPAxisTickerText);
        for (int y = 0; y < pairs; ++y)
            yt->addTick(y, m_pairLabels[y]);
        m_heat->yAxis->setTicker(yt);
        QSharedPointer<QCPAxisTickerFixed> xt(new QCPAxisTickerFixed);
        xt->setTickStep(1);
        xt->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
        m_heat->xAxis->setTicker(xt);
        m_heat->xAxis->setRange(-0.5, layers - 0.5);
        m_heat->yAxis->setRange(-0.5, pairs - 0.5);
    }
    m_heat->replot();

    // S_i curve with its parts; classifier layers marked.
    m_curve->clearGraphs();
    m_curve->clearItems();
    m_curve->legend->setVisible(true);
    m_curve->xAxis->setLabel(tr("layer"));
    m_curve->yAxis->setLabel(tr("similarity"));
    auto addGraph = [&](const std::vector<double> &v, const QString &name, const QPen &pen, bool markers) {
        QVector<double> x, y;
        for (size_t i = 0; i < v.size(); ++i)
            if (std::isfinite(v[i])) {
                x << double(i);
                y << v[i];
            }
        if (x.isEmpty())
            return;
        QCPGraph *g = m_curve->addGraph();
        g->setName(name);
        g->setPen(pen);
        g->setData(x, y);
        if (markers)
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
    };
    addGraph(m_scores, tr("S_i"), QPen(QColor("#1f4e9c"), 2.5), true);
    addGraph(m_newOld, tr("new–old"), QPen(QColor("#d9822b"), 1.5, Qt::DashLine), false);
    addGraph(m_newNew, tr("new–new"), QPen(QColor("#2b9d55"), 1.5, Qt::DashLine), false);
    if (!m_classifier.empty()) {
        QVector<double> x, y;
        for (int c : m_classifier) {
            x << c;
            y << m_scores[size_t(c)];
        }
        QCPGraph *g = m_curve->addGraph();
        g->setName(tr("classifier layers"));
        g->setLineStyle(QCPGraph::lsNone);
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssStar, QColor("#b01c1c"), 14));
        g->setData(x, y);
    }
    QSharedPointer<QCPAxisTickerFixed> xt(new QCPAxisTickerFixed);
    xt->setTickStep(1);
    xt->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_curve->xAxis->setTicker(xt);
    m_curve->rescaleAxes();
    if (!m_scores.empty())
        m_curve->xAxis->setRange(-0.5, double(m_scores.size()) - 0.5);
    m_curve->yAxis->scaleRange(1.15, m_curve->yAxis->range().center());
    m_curve->replot();
}

} // namespace polymoe::ui
