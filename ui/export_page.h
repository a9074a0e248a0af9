// The export view: writes a project model as Hugging Face folders with `polymoe export` run as a
// child process (remote-code "polymoe" folder; a stock Mixtral one when the allocation allows), shows
// its progress and says where the folders went.
#pragma once

#include "page.h"

#include <QStringList>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;

namespace polymoe::ui {

class CliProcess;

class ExportPage : public Page {
    Q_OBJECT
public:
    explicit ExportPage(QWidget *parent = nullptr);
    void reload() override;

    // The `polymoe export` arguments for the current settings.
    QStringList exportArguments() const;
    void startExport();
    bool busy() const;
    QStringList exportedFolders() const { return m_folders; }
    QString resultText() const;
    QComboBox *modelBox() const { return m_model; }
    QLineEdit *outEdit() const { return m_out; }

Q_SIGNALS:
    void exported(const QStringList &folders);
    void exportFailed(const QString &message);

private:
    void suggestOutDir();

    QComboBox *m_model = nullptr;
    QLineEdit *m_out = nullptr;
    QComboBox *m_format = nullptr;
    QComboBox *m_dtype = nullptr;
    QCheckBox *m_force = nullptr;
    QPushButton *m_go = nullptr;
    QPushButton *m_openFolder = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_result = nullptr;
    CliProcess *m_cli = nullptr;
    QStringList m_folders;
    QString m_log;
};

} // namespace polymoe::ui
