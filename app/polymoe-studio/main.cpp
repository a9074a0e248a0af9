// polymoe-studio: the Qt workbench. Parses the command line, shows the main window, and holds the
// top-level catch. --screenshots DIR renders every view to DIR/NN-name.png and quits (works with
// QT_QPA_PLATFORM=offscreen), on the demo project unless --project names another.
#include "main_window.h"
#include "start_page.h"

#include "polymoe/project_store.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QMessageBox>
#include <QSettings>

#include <cstdio>
#include <exception>

namespace {

// Where `polymoe demo` puts the standard demo by default (./polymoe-demo, as installer/run.sh demo
// does), then the workbench's own demo folder ("Open the demo"). Empty when neither exists.
QString defaultDemoProject(QStringList *looked)
{
    for (const QString &dir : {QDir::current().filePath("polymoe-demo"), polymoe::ui::StartPage::demoFolder()}) {
        const QString f = QDir(dir).filePath("demo-standard.polymoe");
        looked->append(f);
        if (QFileInfo::exists(f))
            return f;
    }
    return {};
}

} // namespace

int main(int argc, char **argv)
{
    QApplication app(argc, argv);
    QApplication::setOrganizationName("PolyMoE");
    QApplication::setApplicationName("polymoe-studio");
    QApplication::setApplicationVersion(POLYMOE_VERSION);

    QCommandLineParser parser;
    parser.setApplicationDescription(
        "PolyMoE Studio: teach a language model new languages with Mixture-of-Experts.\n"
        "--screenshots DIR renders every view to DIR/NN-name.png (QT_QPA_PLATFORM=offscreen works) on\n"
        "--project FILE, by default the standard demo (polymoe-demo/demo-standard.polymoe, made by\n"
        "'polymoe demo'). QT_SCALE_FACTOR=2 renders at twice the pixel density.");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("project", "a .polymoe project to open");
    QCommandLineOption shots("screenshots", "render every view into DIR as PNG and quit", "DIR");
    QCommandLineOption shot("screenshot", "the same as --screenshots (older spelling; takes PROJECT as argument)", "DIR");
    QCommandLineOption project("project", "the project to open (the same as the positional argument)", "FILE");
    QCommandLineOption present("presentation", "start in presentation mode (F5)");
    QCommandLineOption dark("dark", "Fusion style with a dark palette (as View > Dark palette)");
    QCommandLineOption light("light", "the normal palette even if View > Dark palette was chosen last time");
    parser.addOption(shots);
    parser.addOption(shot);
    parser.addOption(project);
    parser.addOption(present);
    parser.addOption(dark);
    parser.addOption(light);
    parser.process(app);

    const bool screenshots = parser.isSet(shots) || parser.isSet(shot);
    const QString shotDir = parser.isSet(shots) ? parser.value(shots) : parser.value(shot);
    QString path = parser.isSet(project) ? parser.value(project)
                                         : (parser.positionalArguments().isEmpty() ? QString() : parser.positionalArguments().first());
    try {
        if (screenshots) {
            if (path.isEmpty()) {
                QStringList looked;
                path = defaultDemoProject(&looked);
                if (path.isEmpty()) {
                    std::fprintf(stderr,
                                 "polymoe-studio: no demo project (looked for %s); build it with 'polymoe demo' "
                                 "(or 'bash installer/run.sh demo'), or name one with --project FILE\n",
                                 qPrintable(looked.join(" and ")));
                    return 1;
                }
            }
            // Checked here so that a bad file is a message on stderr, not a dialog nobody sees.
            try {
                polymoe::ProjectStore::open(path.toStdString(), true);
            } catch (const std::exception &e) {
                std::fprintf(stderr, "polymoe-studio: cannot open %s: %s\n", qPrintable(path), e.what());
                return 1;
            }
        }
        polymoe::ui::MainWindow window;
        const bool wantDark = parser.isSet(dark) || (!parser.isSet(light) && !screenshots && QSettings().value("view/dark").toBool());
        if (wantDark)
            window.setDarkPalette(true);
        if (!path.isEmpty() && !window.openProject(path))
            return screenshots ? 1 : 0;
        if (parser.isSet(present))
            window.setPresentationMode(true);
        window.show();
        if (screenshots) {
            const QStringList files = window.saveScreenshots(shotDir);
            for (const QString &f : files)
                std::printf("%s\n", qPrintable(f));
            return files.isEmpty() ? 1 : 0;
        }
        return app.exec();
    } catch (const std::exception &e) {
        QMessageBox::critical(nullptr, "PolyMoE Studio", QString::fromUtf8(e.what()));
        return 1;
    }
}
