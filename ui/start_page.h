// Start: open a project, the recent projects, a new project (the wizard), and "Open the demo"
// (polymoe demo as a child process).
#pragma once

#include "page.h"

#include <QPointer>

class QComboBox;
class QProcess;
class QLabel;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace polymoe::ui {

class CliProcess;
class NewProjectWizard;

class StartPage : public Page {
    Q_OBJECT
public:
    explicit StartPage(QWidget *parent = nullptr);
    void reload() override;

    static QStringList recentProjects();
    static void addRecentProject(const QString &path);
    // Where the demo projects are built: $POLYMOE_DEMO_DIR if set, else <AppData>/demo.
    static QString demoFolder();

    // Where the smollm2 profile's model is (fetched there first when missing): $POLYMOE_SMOLLM2_DIR
    // if set, else models/smollm2-135m in the source tree, as installer/fetch-smollm2.sh puts it.
    static QString smollm2Folder();

    // Builds (or reuses) the profile's demo project and opens it; with baselines, runs the method
    // against its baselines on it instead (`polymoe bench expansion`: the table in the log and in
    // baselinesTable(profile)).
    void startDemo(const QString &profile, bool baselines = false);
    bool demoRunning() const;
    static QString baselinesTable(const QString &profile);

    // The wizard newProject() opened, while it is open (tests fill it in).
    NewProjectWizard *wizard() const;

public Q_SLOTS:
    void openWithDialog();
    // Opens the new-project wizard (window-modal); the created project is opened when it finishes.
    void newProject();

private:
    void demoFinished(int exitCode, bool crashed);
    void runDemo(const QString &profile); // the demo, or the baselines when m_baselines
    void setDemoButtons(bool running); // "Open the demo" off and Cancel on while the demo (or its fetch) runs
    void fetchSmollm2(); // installer/fetch-smollm2.sh, then the smollm2 demo

    QListWidget *m_recent = nullptr;
    QComboBox *m_profile = nullptr;
    QPushButton *m_demoButton = nullptr;
    QPushButton *m_cancelDemo = nullptr;
    QPushButton *m_baselinesButton = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_stage = nullptr;
    QPlainTextEdit *m_log = nullptr;
    CliProcess *m_demo = nullptr;
    QProcess *m_fetch = nullptr;
    bool m_fetchCancelled = false; // Cancel was pressed while the fetch ran: its end is no failure
    QPointer<NewProjectWizard> m_wizard;
    QString m_demoProfile;
    bool m_baselines = false; // the running job is the baseline comparison
};

} // namespace polymoe::ui
