// The base of every workbench view: a title, a short explanation of the method step it shows
// (visible in presentation mode), an inline error label, and the project it looks at.
#pragma once

#include "polymoe/project_store.h"

#include <QWidget>

#include <functional>
#include <optional>

class QLabel;
class QVBoxLayout;

namespace polymoe::ui {

class Page : public QWidget {
    Q_OBJECT
public:
    Page(const QString &title, const QString &explanation, QWidget *parent = nullptr);

    QString title() const { return m_title; }
    QString projectPath() const { return m_projectPath; }
    void setProjectPath(const QString &path);
    void setPresentationMode(bool on);
    // Reads the project again and redraws. Errors end up in the inline label, never thrown.
    virtual void reload() = 0;
    QString errorText() const;

Q_SIGNALS:
    void statusMessage(const QString &text);
    void projectModified(); // this page wrote to the project: others should reload
    void openProjectRequested(const QString &path);

protected:
    void changeEvent(QEvent *e) override; // palette changes restyle the explanation and error labels
    QVBoxLayout *contentLayout() const { return m_content; }
    void showError(const QString &text);
    void clearError();
    // Opens the project store; nullopt (with the error shown) when there is no project or it fails.
    std::optional<ProjectStore> openStore(bool readOnly = true);
    // Reads the project: opens it read-only and runs `read` on it. False when there is no project or
    // when opening or reading fails; a failure is shown in the inline label as "Cannot read WHAT:
    // ...". The views' one catch point for reading the store.
    bool readProject(const QString &what, const std::function<void(ProjectStore &)> &read);

private:
    void updateLabelStyles();

    QString m_title;
    QString m_projectPath;
    QLabel *m_explanation = nullptr;
    QLabel *m_error = nullptr;
    QVBoxLayout *m_content = nullptr;
};

} // namespace polymoe::ui
