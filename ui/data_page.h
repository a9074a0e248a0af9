// Data: the project's languages and their corpora (documents, tokens, held-out split, fertility).
#pragma once

#include "page.h"

class QTableView;
class QLabel;

namespace polymoe::ui {

class CorpusStatsModel;

class DataPage : public Page {
    Q_OBJECT
public:
    explicit DataPage(QWidget *parent = nullptr);
    void reload() override;
    CorpusStatsModel *model() const { return m_model; }

private:
    CorpusStatsModel *m_model = nullptr;
    QTableView *m_table = nullptr;
    QLabel *m_summary = nullptr;
};

} // namespace polymoe::ui
