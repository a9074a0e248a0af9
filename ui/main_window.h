// The workbench's main window: a sidebar of views in the workflow's order, menus and shortcuts,
// presentation mode (F5), the status bar, window state and recent projects in QSettings.
#pragma once

#include <QMainWindow>

class QListWidget;
class QStackedWidget;
class QMenu;
class QAction;

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

private:
    void addPage(Page *page, int icon); // icon: a QStyle::StandardPixmap
    void reloadAll();
    void updateRecentMenu();

    QListWidget *m_sidebar = nullptr;
    QStackedWidget *m_stack = nullptr;
    QList<Page *> m_pages;
    QMenu *m_recentMenu = nullptr;
    QAction *m_presentationAction = nullptr;
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
