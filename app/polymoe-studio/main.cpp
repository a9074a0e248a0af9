// polymoe-studio: the Qt workbench. Parses the command line, shows the main window, and holds the
// top-level catch. --screenshot DIR grabs every view (works with QT_QPA_PLATFORM=offscreen).
#include "main_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>
#include <QTimer>

#include <cstdio>
#include <exception>

int main(int argc, char **argv)
{
    QApplication app(argc, argv);
    QApplication::setOrganizationName("PolyMoE");
    QApplication::setApplicationName("polymoe-studio");
    QApplication::setApplicationVersion(POLYMOE_VERSION);

    QCommandLineParser parser;
    parser.setApplicationDescription("PolyMoE Studio: teach a language model new languages with Mixture-of-Experts");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("project", "a .polymoe project to open");
    QCommandLineOption shots("screenshot", "grab every view into DIR as PNG and quit", "DIR");
    QCommandLineOption present("presentation", "start in presentation mode");
    parser.addOption(shots);
    parser.addOption(present);
    parser.process(app);

    try {
        polymoe::ui::MainWindow window;
        if (!parser.positionalArguments().isEmpty() && !window.openProject(parser.positionalArguments().first()))
            return parser.isSet(shots) ? 1 : 0;
        if (parser.isSet(present))
            window.setPresentationMode(true);
        window.show();
        if (parser.isSet(shots)) {
            const QStringList files = window.saveScreenshots(parser.value(shots));
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
