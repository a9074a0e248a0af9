// The main window.
#include "main_window.h"

#include "allocation_page.h"
#include "chart_export.h"
#include "chart_style.h"
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
#include <QIcon>
#include <QImage>
#include <QPixmap>
#include <QListWidget>
#include <QMenuBar>
#include <QAbstractButton>
#include <QMessageBox>
#include <QSettings>
#include <QSignalBlocker>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QPushButton>
#include <QStyle>
#include <QStyleFactory>
#include <QVBoxLayout>

namespace polymoe::ui {

namespace {

// A standard icon for the sidebar. Some styles draw icons in plain black (Fusion's media icons),
// which vanish on a dark palette: those are redrawn in the palette's text colour.
QIcon sidebarIcon(const QStyle *style, QStyle::StandardPixmap which, const QPalette &palette)
{
    QIcon icon = style->standardIcon(which);
    if (palette.color(QPalette::Base).lightnessF() >= 0.5)
        return icon;
    QImage img = icon.pixmap(QSize(40, 40)).toImage().convertToFormat(QImage::Format_ARGB32);
    double sum = 0;
    int n = 0;
    for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x)
            if (const QColor c = img.pixelColor(x, y); c.alphaF() > 0.5)
                sum += c.lightnessF(), ++n;
    if (n == 0 || sum / n > 0.25)
        return icon;
    const QColor text = palette.color(QPalette::Text);
    for (int y = 0; y < img.height(); ++y)
        for (int x = 0; x < img.width(); ++x) {
            QColor c = text;
            c.setAlphaF(img.pixelColor(x, y).alphaF());
            img.setPixelColor(x, y, c);
        }
    return QIcon(QPixmap::fromImage(img));
}

} // namespace

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
    m_presentationBar = buildPresentationBar();
    auto *central = new QWidget(this);
    auto *column = new QVBoxLayout(central);
    column->setContentsMargins(0, 0, 0, 0);
    column->setSpacing(0);
    column->addWidget(m_presentationBar);
    column->addWidget(split, 1);
    setCentralWidget(central);

    addPages();
    buildMenus();

    statusBar()->showMessage(tr("No project open: Ctrl+O opens one, or build the demo"));
    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    restoreState(s.value("window/state").toByteArray());
    updateRecentMenu();
    showPage(0);
    m_normalStyle = QApplication::style()->name();
    m_normalPalette = QApplication::palette();
    styleCharts(this);
}

MainWindow::~MainWindow() = default;

void MainWindow::addPage(Page *page, int icon)
{
    m_pages << page;
    m_stack->addWidget(page);
    const auto pix = QStyle::StandardPixmap(icon);
    m_icons << icon;
    auto *item = new QListWidgetItem(sidebarIcon(style(), pix, palette()), page->title(), m_sidebar);
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
    for (QAction *a : m_presentationActions)
        a->setEnabled(on);
    QFont stepFont = f;
    stepFont.setPointSizeF(f.pointSizeF() > 0 ? f.pointSizeF() * 1.15 : 16);
    m_stepLabel->setFont(stepFont);
    m_presentationBar->setVisible(on);
    updatePresentationBar();
    statusBar()->showMessage(on ? tr("Presentation mode: Page Down / Page Up step through the method, Esc leaves")
                                : tr("Presentation mode off"),
                             3000);
}

void MainWindow::nextStep()
{
    if (currentPage() + 1 < m_pages.size())
        showPage(currentPage() + 1);
}

void MainWindow::previousStep()
{
    if (currentPage() > 0)
        showPage(currentPage() - 1);
}

QString MainWindow::presentationStepText() const
{
    const int i = currentPage();
    if (i < 0 || i >= m_pages.size())
        return {};
    Page *p = m_pages[i];
    return tr("Step %1 of %2: %3 — %4").arg(i + 1).arg(m_pages.size()).arg(p->title(), m_steps.value(p));
}

void MainWindow::updatePresentationBar()
{
    const int i = currentPage();
    m_stepLabel->setText(QString("<b>%1</b>").arg(presentationStepText().toHtmlEscaped()));
    m_prevButton->setEnabled(i > 0);
    m_nextButton->setEnabled(i + 1 < m_pages.size());
}

void MainWindow::setDarkPalette(bool on)
{
    if (on == m_dark)
        return;
    m_dark = on;
    if (m_darkAction->isChecked() != on) {
        const QSignalBlocker block(m_darkAction); // only the menu remembers the choice
        m_darkAction->setChecked(on);
    }
    if (on) {
        QApplication::setStyle(QStyleFactory::create("Fusion"));
        QApplication::setPalette(polymoe::ui::darkPalette());
    } else {
        QApplication::setStyle(QStyleFactory::create(m_normalStyle));
        QApplication::setPalette(m_normalPalette);
    }
    // Widgets get their PaletteChange events from QApplication::setPalette; the charts too, via
    // changeEvent below. Style-sheet labels (Page) restyle themselves.
    styleCharts(this);
}

void MainWindow::changeEvent(QEvent *e)
{
    if (e->type() == QEvent::PaletteChange || e->type() == QEvent::StyleChange) {
        styleCharts(this);
        for (int i = 0; i < m_icons.size() && i < m_sidebar->count(); ++i)
            m_sidebar->item(i)->setIcon(sidebarIcon(style(), QStyle::StandardPixmap(m_icons[i]), palette()));
    }
    QMainWindow::changeEvent(e);
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
    const bool training = m_training->job()->isRunning();
    if (training || m_start->demoRunning()) {
        // A training run may go on without the window (issue: "a run goes on if the window closes");
        // the demo build is the Start view's own child and stops with it.
        QMessageBox box(QMessageBox::Question, tr("Quit"),
                        training ? tr("A training run is still going on. Keep it running without the window "
                                      "(reopen the project to follow it again), or stop it (it keeps its "
                                      "checkpoint; Resume continues it)?")
                                 : tr("The demo is still being built. Stop it (finished steps are kept) and quit?"),
                        QMessageBox::NoButton, this);
        QAbstractButton *keep = training ? box.addButton(tr("Keep running"), QMessageBox::AcceptRole) : nullptr;
        QAbstractButton *stop = box.addButton(tr("Stop and quit"), QMessageBox::DestructiveRole);
        box.addButton(QMessageBox::Cancel);
        box.setDefaultButton(QMessageBox::Cancel);
        box.exec();
        if (keep && box.clickedButton() == keep) {
            m_training->job()->detach();
        } else if (box.clickedButton() == stop) {
            if (training)
                m_training->cancel();
        } else {
            e->ignore();
            return;
        }
    }
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    e->accept();
}


// Presentation mode's bar: Previous, "Step k of n: ...", Next, Leave.
QWidget *MainWindow::buildPresentationBar()
{
    auto *barWidget = new QWidget(this);
    barWidget->setObjectName("presentationBar");
    auto *bar = new QHBoxLayout(barWidget);
    bar->setContentsMargins(6, 4, 6, 4);
    m_prevButton = new QPushButton(style()->standardIcon(QStyle::SP_ArrowBack), tr("Previous"), barWidget);
    m_prevButton->setObjectName("previousStep");
    m_prevButton->setToolTip(tr("The previous step (Page Up, Left)"));
    m_nextButton = new QPushButton(style()->standardIcon(QStyle::SP_ArrowForward), tr("Next"), barWidget);
    m_nextButton->setObjectName("nextStep");
    m_nextButton->setToolTip(tr("The next step (Page Down, Right)"));
    auto *leave = new QPushButton(tr("Leave"), barWidget);
    leave->setToolTip(tr("Leave presentation mode (Esc, F5)"));
    m_stepLabel = new QLabel(barWidget);
    m_stepLabel->setObjectName("presentationStep");
    m_stepLabel->setWordWrap(true);
    bar->addWidget(m_prevButton);
    bar->addWidget(m_stepLabel, 1);
    bar->addWidget(m_nextButton);
    bar->addWidget(leave);
    barWidget->setVisible(false);
    connect(m_prevButton, &QPushButton::clicked, this, &MainWindow::previousStep);
    connect(m_nextButton, &QPushButton::clicked, this, &MainWindow::nextStep);
    connect(leave, &QPushButton::clicked, this, [this] { setPresentationMode(false); });
    return barWidget;
}

// The views in sidebar order, and what each shows and which step of the method it is (presentation
// mode).
void MainWindow::addPages()
{
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
    connect(m_stack, &QStackedWidget::currentChanged, this, &MainWindow::updatePresentationBar);
    // What each view shows and which step of the method it is (presentation mode), in sidebar order.
    m_steps = {
        {m_start, tr("open the demo project: English and Spanish (old) and German and Russian (new) text from "
                     "Debian, a tokenizer and a small dense base model (METHOD.md section 9)")},
        {m_data, tr("the corpus of each language, its held-out split and the tokenizer's fertility (section 0: old "
                    "languages the base knows, new ones to teach)")},
        {m_similarity, tr("how similar the new languages' FFN inputs are to the old ones', layer by layer: S_i "
                          "(section 1, LayerMoE)")},
        {m_allocation, tr("how many experts each layer gets, more where S_i is low, within a budget (section 2)")},
        {m_training, tr("upcycling and the two stages: new experts on new text, then the routers with Language "
                        "Priors Routing on a replay of old text (sections 3, 4 and 5)")},
        {m_router, tr("where each language's tokens are routed; stage 2 sends old-language tokens back to the "
                      "frozen expert 0 (sections 5 and 8)")},
        {m_forgetting, tr("held-out perplexity per language after each step: what the old languages lost and the "
                          "new ones gained (section 8)")},
        {m_runs, tr("every run of the project with its loss curves, the baselines beside the method (sections 8 "
                    "and 9)")},
        {m_tokens, tr("the experts each token of a sentence goes to in every MoE layer, and the classifier's "
                      "decision (sections 3, 5 and 6)")},
        {m_export, tr("the expanded checkpoint as a Hugging Face folder, for benchmark suites (section 8)")},
    };
}

// Menus and shortcuts.
void MainWindow::buildMenus()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *create = file->addAction(tr("&New project..."), this, [this] {
        showPage(0);
        m_start->newProject();
    });
    create->setShortcut(QKeySequence::New);
    create->setToolTip(tr("A new project from a base model and your corpora"));
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
    // Stepping keys, live only in presentation mode (text fields keep their arrow keys: they
    // take the shortcut override for keys they use).
    QAction *next = view->addAction(tr("&Next step"), this, &MainWindow::nextStep);
    next->setShortcuts({QKeySequence(Qt::Key_PageDown), QKeySequence(Qt::Key_Right)});
    QAction *previous = view->addAction(tr("P&revious step"), this, &MainWindow::previousStep);
    previous->setShortcuts({QKeySequence(Qt::Key_PageUp), QKeySequence(Qt::Key_Left)});
    QAction *leaveAction = view->addAction(tr("&Leave presentation mode"), this, [this] { setPresentationMode(false); });
    leaveAction->setShortcut(QKeySequence(Qt::Key_Escape));
    m_presentationActions = {next, previous, leaveAction};
    for (QAction *a : m_presentationActions)
        a->setEnabled(false);
    view->addSeparator();
    m_darkAction = view->addAction(tr("&Dark palette"));
    m_darkAction->setCheckable(true);
    m_darkAction->setToolTip(tr("Fusion style with a dark palette; charts follow"));
    connect(m_darkAction, &QAction::toggled, this, [this](bool on) {
        setDarkPalette(on);
        QSettings().setValue("view/dark", on); // polymoe-studio starts with it next time
    });
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About PolyMoE Studio"), this, [this] {
        QMessageBox::about(this, tr("About PolyMoE Studio"),
                           tr("<b>PolyMoE Studio</b> %1<p>Teach a language model new languages with Mixture-of-Experts "
                              "(MoE-LPR, LayerMoE).</p>")
                               .arg(QApplication::applicationVersion()));
    });
}

} // namespace polymoe::ui
