// The data view over corpusStats.
#include "data_page.h"

#include "corpus_stats_model.h"

#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

namespace polymoe::ui {

DataPage::DataPage(QWidget *parent)
    : Page(tr("Data"),
           tr("Data: the text of each language in the project. Old languages are what the base model knows; new "
              "languages are what the expansion teaches. Held-out documents (chosen by a hash of their text) are "
              "used for the similarity analysis and for perplexity; tokens per word is the tokenizer's fertility."),
           parent),
      m_model(new CorpusStatsModel(this))
{
    auto *proxy = new QSortFilterProxyModel(this);
    proxy->setSourceModel(m_model);
    proxy->setSortRole(Qt::EditRole);
    m_table = new QTableView(this);
    m_table->setModel(proxy);
    // No sort column at first: the project's order (old languages, then new); a header click sorts.
    m_table->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder);
    m_table->setSortingEnabled(true);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_summary = new QLabel(this);
    contentLayout()->addWidget(m_table, 1);
    contentLayout()->addWidget(m_summary);
}

void DataPage::reload()
{
    clearError();
    if (!readProject(tr("the corpus statistics"), [&](ProjectStore &store) { m_model->setStats(corpusStats(store)); })) {
        m_model->setStats({});
        if (projectPath().isEmpty()) {
            m_summary->clear();
            return;
        }
    }
    int64_t docs = 0, tokens = 0;
    for (const auto &s : m_model->stats()) {
        docs += s.trainDocuments + s.heldoutDocuments;
        tokens += std::max<int64_t>(0, s.trainTokens) + std::max<int64_t>(0, s.heldoutTokens);
    }
    m_summary->setText(tr("%1 languages, %2 documents, %3 tokens").arg(m_model->stats().size()).arg(docs).arg(tokens));
}

} // namespace polymoe::ui
