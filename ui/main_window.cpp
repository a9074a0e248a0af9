// The main window.
#include "main_window.h"

#include "allocation_page.h"
#include "chart_export.h"
#include "data_page.h"
#include "forgetting_page.h"
#include "router_page.h"
#include "runs_page.h"
#include "similarity_page.h"
#include "start_page.h"
#include "token_inspector_page.h"
#include "export_page.h"
#include "training_page.h"

#include "polymoe/project_store.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QEventLoop>
#include <QTimer>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>

namespace polymoe::ui {

MainWindow::MainWindow(QWidget *parent) : QMainWindow(parent)
{
    setWindowTitle(tr("PolyMoE Studio"));
    m_normalFont = QApplication::font();
    m_sidebar = new QListWidget(this);
    m_sidebar->setObjectName("sidebar");
    m_sidebar->setMaximumWidth(210);
    m_sidebar->setIconSize(QSize(20, 20));
    m_stack = new QStackedWidget(this);
    auto *split = new QSplitter(this);
    split->addWidget(m_sidebar);
    split->addWidget(m_stack);
    split->setStretchFactor(1, 1);
    setCentralWidget(split);

    addPage(m_start = new StartPage(this), QStyle::SP_DirHomeIcon);
    addPage(m_data = new DataPage(this), QStyle::SP_FileDialogDetailedView);
    addPage(m_similarity = new SimilarityPage(this), QStyle::SP_FileDialogContentsView);
    addPage(m_allocation = new AllocationPage(this), QStyle::SP_FileDialogListView);
    addPage(m_training = new TrainingPage(this), QStyle::SP_MediaPlay);
    addPage(m_router = new RouterPage(this), QStyle::SP_BrowserReload);
    addPage(m_forgetting = new ForgettingPage(this), QStyle::SP_MessageBoxInformation);
    addPage(m_runs = new RunsPage(this), QStyle::SP_FileDialogInfoView);
    addPage(m_tokens = new TokenInspectorPage(this), QStyle::SP_FileDialogContentsView);
    addPage(m_export = new ExportPage(this), QStyle::SP_DialogSaveButton);
    connect(m_sidebar, &QListWidget::currentRowChanged, m_stack, &QStackedWidget::setCurrentIndex);

    // Menus and shortcuts.
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *open = file->addAction(tr("&Open project..."), m_start, &StartPage::openWithDialog);
    open->setShortcut(QKeySequence::Open);
    m_recentMenu = file->addMenu(tr("Open &recent"));
    file->addAction(tr("Open the &demo (tiny)"), this, [this] {
        showPage(0);
        m_start->startDemo("tiny");
    });
    QAction *reload = file->addAction(tr("Re&load"), this, &MainWindow::reloadAll);
    reload->setShortcut(QKeySequence("Ctrl+R"));
    file->addSeparator();
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    QMenu *view = menuBar()->addMenu(tr("&View"));
    for (int i = 0; i < m_pages.size(); ++i) {
        QAction *a = view->addAction(m_pages[i]->title(), this, [this, i] { showPage(i); });
        if (i < 10) // Alt+1 ... Alt+9, then Alt+0
            a->setShortcut(QKeySequence(QString("Alt+%1").arg((i + 1) % 10)));
    }
    view->addSeparator();
    m_presentationAction = view->addAction(tr("&Presentation mode"));
    m_presentationAction->setCheckable(true);
    m_presentationAction->setShortcut(QKeySequence(Qt::Key_F5));
    m_presentationAction->setToolTip(tr("Larger font and an explanation at the top of each view"));
    connect(m_presentationAction, &QAction::toggled, this, &MainWindow::setPresentationMode);
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About PolyMoE Studio"), this, [this] {
        QMessageBox::about(this, tr("About PolyMoE Studio"),
                           tr("<b>PolyMoE Studio</b> %1<p>Teach a language model new languages with Mixture-of-Experts "
                              "(MoE-LPR, LayerMoE).</p>")
                               .arg(QApplication::applicationVersion()));
    });

    statusBar()->showMessage(tr("No project open: Ctrl+O opens one, or build the demo"));
    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    restoreState(s.value("window/state").toByteArray());
    updateRecentMenu();
    showPage(0);
}

MainWindow::~MainWindow() = default;

void MainWindow::addPage(Page *page, int icon)
{
    m_pages << page;
    m_stack->addWidget(page);
    const auto pix = QStyle::StandardPixmap(icon);
    auto *item = new QListWidgetItem(style()->standardIcon(pix), page->title(), m_sidebar);
    item->setToolTip(page->toolTip());
    connect(page, &Page::statusMessage, this, [this](const QString &t) { statusBar()->showMessage(t, 8000); });
    connect(page, &Page::openProjectRequested, this, &MainWindow::openProject);
    connect(page, &Page::projectModified, this, [this, page] {
        for (Page *p : m_pages)
            if (p != page && p != m_start)
                p->reload();
    });
}

void MainWindow::showPage(int index)
{
    m_sidebar->setCurrentRow(index);
}

int MainWindow::currentPage() const
{
    return m_stack->currentIndex();
}

bool MainWindow::openProject(const QString &path)
{
    try {
        // Check it opens (schema, format) before every view tries.
        ProjectStore::open(path.toStdString(), true);
    } catch (const std::exception &e) {
        QMessageBox::warning(this, tr("Open project"),
                             tr("Cannot open %1:\n%2").arg(path, QString::fromStdString(e.what())));
        return false;
    }
    m_projectPath = QFileInfo(path).absoluteFilePath();
    StartPage::addRecentProject(m_projectPath);
    updateRecentMenu();
    for (Page *p : m_pages)
        p->setProjectPath(m_projectPath);
    setWindowTitle(tr("%1 — PolyMoE Studio").arg(QFileInfo(path).fileName()));
    statusBar()->showMessage(tr("Project %1").arg(m_projectPath));
    if (currentPage() == 0)
        showPage(1);
    return true;
}

void MainWindow::reloadAll()
{
    for (Page *p : m_pages)
        p->reload();
    statusBar()->showMessage(tr("Reloaded"), 3000);
}

void MainWindow::updateRecentMenu()
{
    m_recentMenu->clear();
    const QStringList recent = StartPage::recentProjects();
    for (const QString &p : recent)
        m_recentMenu->addAction(QFileInfo(p).fileName(), this, [this, p] { openProject(p); })->setToolTip(p);
    m_recentMenu->setEnabled(!recent.isEmpty());
    m_start->reload();
}

void MainWindow::setPresentationMode(bool on)
{
    m_presentation = on;
    if (m_presentationAction->isChecked() != on)
        m_presentationAction->setChecked(on);
    QFont f = m_normalFont;
    if (on)
        f.setPointSizeF(f.pointSizeF() > 0 ? f.pointSizeF() * 1.4 : 14);
    QApplication::setFont(f);
    for (Page *p : m_pages) {
        p->setPresentationMode(on);
        for (QCustomPlot *plot : p->findChildren<QCustomPlot *>())
            setChartFont(plot, f);
    }
    statusBar()->showMessage(on ? tr("Presentation mode (F5 to leave)") : tr("Presentation mode off"), 3000);
}

QStringList MainWindow::saveScreenshots(const QString &dir, const QSize &size)
{
    QDir().mkpath(dir);
    resize(size);
    QStringList out;
    const int keep = currentPage();
    // The token inspector shows a routing only after a forward pass: run one on its example text.
    if (!m_projectPath.isEmpty()) {
        QEventLoop loop;
        connect(m_tokens, &TokenInspectorPage::inspected, &loop, &QEventLoop::quit);
        connect(m_tokens, &TokenInspectorPage::inspectionFailed, &loop, &QEventLoop::quit);
        QTimer::singleShot(60000, &loop, &QEventLoop::quit);
        m_tokens->inspectCurrent();
        if (m_tokens->busy())
            loop.exec();
    }
    for (int i = 0; i < m_pages.size(); ++i) {
        showPage(i);
        QApplication::processEvents();
        QString name = m_pages[i]->title().toLower().replace(' ', '-');
        const QString file = QDir(dir).filePath(QString("%1-%2.png").arg(i + 1, 2, 10, QChar('0')).arg(name));
        if (grab().save(file))
            out << file;
    }
    showPage(keep);
    return out;
}

void MainWindow::closeEvent(QCloseEvent *e)
{
    if (m_training->job()->isRunning() || m_start->demoRunning()) {
        const auto answer = QMessageBox::question(
            this, tr("Quit"), tr("A job is still running. Stop it (it keeps its checkpoint) and quit?"));
        if (answer != QMessageBox::Yes) {
            e->ignore();
            return;
        }
        m_training->cancel();
    }
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    e->accept();
}

} // namespace polymoe::ui
