// The workbench's main window: a sidebar of views in the workflow's order, menus and shortcuts,
// presentation mode (F5: larger fonts, "Step k of n" through the views in the method's order with
// Next/Previous, Esc leaves), the dark palette, the status bar, window state and recent projects in
// QSettings. Every chart follows the palette (chart_style.h).
#pragma once

#include <QHash>
#include <QMainWindow>
#include <QPalette>

class QListWidget;
class QStackedWidget;
class QMenu;
class QAction;
class QLabel;
class QPushButton;

namespace polymoe::ui {

class Page;
class StartPage;
class DataPage;
class SimilarityPage;
class AllocationPage;
class TrainingPage;
class RouterPage;
class ForgettingPage;
class RunsPage;
class TokenInspectorPage;
class ExportPage;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget *parent = nullptr);
    ~MainWindow() override;

    bool openProject(const QString &path); // false (message shown) when it cannot be opened
    QString projectPath() const { return m_projectPath; }
    QList<Page *> pages() const { return m_pages; }
    void showPage(int index);
    int currentPage() const;
    void setPresentationMode(bool on);
    bool presentationMode() const { return m_presentation; }
    // Presentation stepping: the views in the method's order; both stop at the ends.
    void nextStep();
    void previousStep();
    // "Step k of n: <view> — <what it shows, METHOD.md section>" for the current view.
    QString presentationStepText() const;
    // Fusion with darkPalette(), or back to the style and palette the application started with.
    void setDarkPalette(bool on);
    bool isDarkPalette() const { return m_dark; }
    // Grabs every page (offscreen works) into DIR/NN-name.png; returns the files written.
    QStringList saveScreenshots(const QString &dir, const QSize &size = {1400, 900});

    StartPage *startPage() const { return m_start; }
    DataPage *dataPage() const { return m_data; }
    SimilarityPage *similarityPage() const { return m_similarity; }
    AllocationPage *allocationPage() const { return m_allocation; }
    TrainingPage *trainingPage() const { return m_training; }
    RouterPage *routerPage() const { return m_router; }
    ForgettingPage *forgettingPage() const { return m_forgetting; }
    RunsPage *runsPage() const { return m_runs; }
    TokenInspectorPage *tokenInspectorPage() const { return m_tokens; }
    ExportPage *exportPage() const { return m_export; }

protected:
    void closeEvent(QCloseEvent *e) override;
    void changeEvent(QEvent *e) override; // palette changes re-colour every chart

private:
    QWidget *buildPresentationBar();
    void addPages();
    void buildMenus();
    void addPage(Page *page, int icon); // icon: a QStyle::StandardPixmap
    void reloadAll();
    void updateRecentMenu();
    void updatePresentationBar();

    QListWidget *m_sidebar = nullptr;
    QStackedWidget *m_stack = nullptr;
    QList<Page *> m_pages;
    QList<int> m_icons; // each page's QStyle::StandardPixmap, redrawn when the palette changes
    QMenu *m_recentMenu = nullptr;
    QAction *m_presentationAction = nullptr;
    QAction *m_darkAction = nullptr;
    QList<QAction *> m_presentationActions; // next, previous, leave: enabled in presentation mode
    QWidget *m_presentationBar = nullptr;
    QLabel *m_stepLabel = nullptr;
    QPushButton *m_prevButton = nullptr;
    QPushButton *m_nextButton = nullptr;
    QHash<Page *, QString> m_steps; // what each view shows, with its METHOD.md section
    bool m_dark = false;
    QString m_normalStyle;
    QPalette m_normalPalette;
    QString m_projectPath;
    bool m_presentation = false;
    QFont m_normalFont;

    StartPage *m_start = nullptr;
    DataPage *m_data = nullptr;
    SimilarityPage *m_similarity = nullptr;
    AllocationPage *m_allocation = nullptr;
    TrainingPage *m_training = nullptr;
    RouterPage *m_router = nullptr;
    ForgettingPage *m_forgetting = nullptr;
    RunsPage *m_runs = nullptr;
    TokenInspectorPage *m_tokens = nullptr;
    ExportPage *m_export = nullptr;
};

} // namespace polymoe::ui
