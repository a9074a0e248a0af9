// Start: open a project, the recent projects, and "Open the demo" (polymoe demo as a child process).
#pragma once

#include "page.h"

class QComboBox;
class QLabel;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace polymoe::ui {

class CliProcess;

class StartPage : public Page {
    Q_OBJECT
public:
    explicit StartPage(QWidget *parent = nullptr);
    void reload() override;

    static QStringList recentProjects();
    static void addRecentProject(const QString &path);
    // Where the demo projects are built: <AppData>/demo.
    static QString demoFolder();

    void startDemo(const QString &profile);
    bool demoRunning() const;

public Q_SLOTS:
    void openWithDialog();

private:
    void demoFinished(int exitCode, bool crashed);

    QListWidget *m_recent = nullptr;
    QComboBox *m_profile = nullptr;
    QPushButton *m_demoButton = nullptr;
    QPushButton *m_cancelDemo = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_stage = nullptr;
    QPlainTextEdit *m_log = nullptr;
    CliProcess *m_demo = nullptr;
    QString m_demoProfile;
};

} // namespace polymoe::ui
