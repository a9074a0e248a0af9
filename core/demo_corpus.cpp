// Building the demo corpus from Debian's fortunes and translated manual pages.
#include "polymoe/demo_corpus.h"

#include "content_hash.h"
#include "polymoe/error.h"
#include "man_page_text.h"
#include "utf8.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> &languageNames()
{
    static const std::map<std::string, std::string> m = {
        {"en", "English"}, {"de", "German"}, {"es", "Spanish"}, {"ru", "Russian"}, {"fr", "French"},
        {"it", "Italian"}, {"pl", "Polish"}, {"cs", "Czech"}, {"zh", "Chinese"}, {"zh_CN", "Chinese (simplified)"},
        {"zh_TW", "Chinese (traditional)"}, {"ja", "Japanese"}, {"tr", "Turkish"}, {"hu", "Hungarian"},
        {"el", "Greek"}, {"uk", "Ukrainian"}, {"nl", "Dutch"}, {"pt", "Portuguese"}, {"pt_BR", "Portuguese (Brazil)"},
        {"ro", "Romanian"}, {"fi", "Finnish"}, {"sv", "Swedish"}, {"da", "Danish"}, {"id", "Indonesian"},
        {"ko", "Korean"}, {"vi", "Vietnamese"}, {"sr", "Serbian"}, {"hr", "Croatian"}, {"sk", "Slovak"},
        {"sl", "Slovenian"}, {"nb", "Norwegian"}, {"ca", "Catalan"}, {"bg", "Bulgarian"}, {"mk", "Macedonian"},
    };
    return m;
}

// Fortune collections that are pictures rather than text.
bool isArtCollection(const std::string &name)
{
    return name == "art" || name == "ascii-art" || name == "asciiart";
}

std::vector<fs::path> fortuneFilesIn(const fs::path &dir)
{
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return out;
    for (const auto &e : fs::directory_iterator(dir, ec)) {
        const auto name = e.path().filename().string();
        if (!e.is_regular_file() || e.is_symlink() || e.path().extension() == ".dat" || isArtCollection(name) ||
            name.rfind("README", 0) == 0)
            continue;
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<fs::path> manPagesIn(const fs::path &dir)
{
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return out;
    for (const auto &sec : fs::directory_iterator(dir, ec)) {
        const auto sname = sec.path().filename().string();
        if (!sec.is_directory() || sname.rfind("man", 0) != 0)
            continue;
        for (const auto &e : fs::directory_iterator(sec.path(), ec))
            if (e.is_regular_file() && !e.is_symlink())
                out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string packageVersion(const std::string &pkg)
{
    const std::string cmd = "dpkg-query -W -f='${Version}' " + pkg + " 2>/dev/null";
    std::string v;
    if (FILE *p = ::popen(cmd.c_str(), "r")) {
        char buf[128];
        while (std::fgets(buf, sizeof buf, p))
            v += buf;
        ::pclose(p);
    }
    return v.empty() ? pkg + " (version unknown)" : pkg + " " + v;
}

// The page name without section and compression: "ls.1.gz" -> "ls.1".
std::string pageKey(const fs::path &p)
{
    std::string n = p.filename().string();
    if (n.size() > 3 && n.substr(n.size() - 3) == ".gz")
        n.resize(n.size() - 3);
    return n;
}

} // namespace

std::vector<RawDocument> readFortunes(const fs::path &file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw IoError(file.string() + ": cannot open");
    std::vector<RawDocument> out;
    std::string cur;
    int64_t lineNo = 0, start = 1;
    for (std::string line; std::getline(in, line);) {
        ++lineNo;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line == "%") {
            if (!cur.empty())
                out.push_back({std::move(cur), file.string() + ":" + std::to_string(start)});
            cur.clear();
            start = lineNo + 1;
            continue;
        }
        if (!cur.empty())
            cur += '\n';
        cur += line;
    }
    if (!cur.empty())
        out.push_back({std::move(cur), file.string() + ":" + std::to_string(start)});
    return out;
}

std::vector<DemoLanguage> scanDemoLanguages(const fs::path &root, bool allEnglishManPages)
{
    const fs::path fortunes = root / "usr/share/games/fortunes";
    const fs::path man = root / "usr/share/man";
    std::map<std::string, DemoLanguage> langs;
    auto entry = [&](const std::string &code) -> DemoLanguage & {
        auto &l = langs[code];
        if (l.code.empty()) {
            l.code = code;
            auto it = languageNames().find(code);
            l.name = it != languageNames().end() ? it->second : code;
        }
        return l;
    };

    std::error_code ec;
    // English: the top of the fortunes folder and the untranslated man pages.
    if (auto f = fortuneFilesIn(fortunes); !f.empty()) {
        auto &en = entry("en");
        en.fortuneFiles = std::move(f);
        en.packages.push_back("fortunes");
    }
    if (fs::is_directory(fortunes, ec))
        for (const auto &e : fs::directory_iterator(fortunes, ec)) {
            const auto code = e.path().filename().string();
            if (!e.is_directory() || code == "off")
                continue;
            if (auto f = fortuneFilesIn(e.path()); !f.empty()) {
                auto &l = entry(code);
                l.fortuneFiles = std::move(f);
                l.packages.push_back("fortunes-" + code);
            }
        }
    std::set<std::string> translated;
    if (fs::is_directory(man, ec))
        for (const auto &e : fs::directory_iterator(man, ec)) {
            const auto code = e.path().filename().string();
            if (!e.is_directory() || code.rfind("man", 0) == 0 || code.find('.') != std::string::npos)
                continue;
            auto pages = manPagesIn(e.path());
            if (pages.empty())
                continue;
            for (const auto &p : pages)
                translated.insert(p.parent_path().filename().string() + "/" + pageKey(p));
            auto &l = entry(code);
            l.manPages = std::move(pages);
            l.packages.push_back("manpages-" + code);
        }
    {
        std::vector<fs::path> enPages;
        for (const auto &p : manPagesIn(man))
            if (allEnglishManPages || translated.count(p.parent_path().filename().string() + "/" + pageKey(p)))
                enPages.push_back(p);
        if (!enPages.empty()) {
            auto &en = entry("en");
            en.manPages = std::move(enPages);
            en.packages.push_back("manpages");
        }
    }
    std::vector<DemoLanguage> out;
    for (auto &[code, l] : langs)
        out.push_back(std::move(l));
    return out;
}

namespace {

// Stops with the Debian packages to install when a chosen language has no text on this machine.
void refuseMissingLanguages(const DemoCorpusOptions &options, const std::vector<DemoLanguage> &available)
{
    std::vector<std::string> missing;
    for (const auto &code : options.languages)
        if (std::none_of(available.begin(), available.end(), [&](const DemoLanguage &l) { return l.code == code; }))
            missing.push_back(code);
    if (missing.empty())
        return;
    std::string have, pkgs, names;
    for (const auto &l : available)
        have += (have.empty() ? "" : ", ") + l.code;
    for (const auto &c : missing) {
        pkgs += (pkgs.empty() ? "" : " ") + (c == "en" ? std::string("fortunes manpages") : "fortunes-" + c + " manpages-" + c);
        names += (names.empty() ? "" : ", ") + c;
    }
    throw ConfigError("no demo text installed for " + std::to_string(missing.size()) + " language(s): " + names +
                      ". Install the Debian packages (whichever exist): " + pkgs +
                      (have.empty() ? std::string() : ". Available now: " + have));
}

// A document read before selection. A man page keeps its roff source (roff) until it is selected,
// and its key is that of the source, so that only the pages selected are rendered.
struct Candidate {
    size_t source; // index into LanguageText::sources
    RawDocument doc;
    uint64_t key;  // documentKey: the selection order
    bool roff;
};

struct LanguageText {
    std::vector<std::pair<CorpusSource, std::vector<RawDocument>>> sources; // documents filled by selectDocuments
    std::vector<Candidate> candidates;
    std::vector<ImportIssue> issues;
};

// Every candidate document of one language: its fortunes, then its man pages, each a source with
// its package's version and the SHA-256 of what was read.
LanguageText readLanguageText(const DemoLanguage &dl, std::stop_token stop)
{
    LanguageText t;
    auto addSource = [&](const std::string &kind, const std::vector<fs::path> &files, const std::string &prefix) {
        if (files.empty())
            return;
        std::string pkg = prefix;
        for (const auto &p : dl.packages)
            if (p.rfind(prefix, 0) == 0) {
                pkg = p;
                break;
            }
        CorpusSource src;
        src.name = kind + "-" + dl.code;
        src.format = kind == "fortunes" ? "fortune" : "manpage";
        src.provenance = packageVersion(pkg);
        src.source = files.front().parent_path().string() + (files.size() > 1 ? " (" + std::to_string(files.size()) + " files)" : "");
        Sha256 h;
        const size_t index = t.sources.size();
        for (const auto &f : files) {
            throwIfStopped(stop);
            if (kind == "fortunes") {
                std::ifstream in(f, std::ios::binary);
                std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                h.update(raw);
                for (auto &d : readFortunes(f)) {
                    const uint64_t key = documentKey(d.text, 0x5eed);
                    t.candidates.push_back({index, std::move(d), key, false});
                }
            } else {
                std::string roff;
                try {
                    roff = readManPage(f);
                } catch (const Error &e) {
                    t.issues.push_back({f.string(), e.what()});
                    continue;
                }
                h.update(roff);
                const uint64_t key = documentKey(roff, 0x5eed);
                t.candidates.push_back({index, {std::move(roff), f.string()}, key, true});
            }
        }
        src.sha256 = h.hexDigest();
        t.sources.emplace_back(std::move(src), std::vector<RawDocument>{});
    };
    addSource("fortunes", dl.fortuneFiles, "fortunes");
    addSource("manpages", dl.manPages, "manpages");
    return t;
}

// The selection: candidates in key order until maxCharacters code points, man pages rendered by
// groff as they are taken; each source's documents then back in reading order.
void selectDocuments(LanguageText &t, int64_t maxCharacters, std::stop_token stop)
{
    std::sort(t.candidates.begin(), t.candidates.end(), [](const Candidate &a, const Candidate &b) { return a.key < b.key; });
    int64_t chars = 0;
    for (auto &c : t.candidates) {
        if (chars >= maxCharacters)
            break;
        throwIfStopped(stop);
        RawDocument &d = c.doc;
        if (c.roff) {
            try {
                d.text = renderManPage(d.text, d.origin);
            } catch (const FormatError &e) {
                t.issues.push_back({d.origin, e.what()});
                continue;
            }
        }
        if (auto bad = findInvalidUtf8(d.text)) {
            t.issues.push_back({d.origin, "invalid UTF-8 at byte " + std::to_string(*bad)});
            continue;
        }
        d.text = trimWhitespace(d.text);
        if (d.text.empty())
            continue;
        chars += countCodePoints(d.text);
        t.sources[c.source].second.push_back(std::move(d));
    }
    for (auto &s : t.sources)
        std::sort(s.second.begin(), s.second.end(),
                  [](const RawDocument &a, const RawDocument &b) { return a.origin < b.origin; });
}

} // namespace

DemoCorpusReport buildDemoCorpus(ProjectStore &store, const DemoCorpusOptions &options,
                                 const ProgressFn &progress, std::stop_token stop)
{
    if (options.languages.empty())
        throw ConfigError("no demo languages chosen");
    const auto available = scanDemoLanguages(options.root, options.allEnglishManPages);
    refuseMissingLanguages(options, available);

    DemoCorpusReport report;
    int64_t langDone = 0;
    for (const auto &code : options.languages) {
        throwIfStopped(stop);
        const DemoLanguage &dl =
            *std::find_if(available.begin(), available.end(), [&](const DemoLanguage &l) { return l.code == code; });
        if (progress)
            progress({"demo corpus " + code, langDone, int64_t(options.languages.size()), "languages",
                      "reading " + std::to_string(dl.fortuneFiles.size()) + " fortune files and " +
                          std::to_string(dl.manPages.size()) + " man pages"});
        LanguageText text = readLanguageText(dl, stop);
        selectDocuments(text, options.maxCharactersPerLanguage, stop);

        Language lang;
        lang.code = code;
        lang.name = dl.name;
        const bool isOld = std::find(options.oldLanguages.begin(), options.oldLanguages.end(), code) != options.oldLanguages.end();
        lang.group = isOld ? LanguageGroup::Old : LanguageGroup::New;
        lang.wave = isOld ? 0 : 1;
        CorpusImportOptions io;
        io.heldoutFraction = options.heldoutFraction;
        io.splitSeed = options.splitSeed;
        ImportReport r = importDocuments(store, lang, text.sources, io, progress, stop);
        std::vector<ImportIssue> issues = std::move(text.issues);
        issues.insert(issues.end(), r.issues.begin(), r.issues.end());
        r.invalid += int64_t(std::count_if(issues.begin(), issues.end(), [](const ImportIssue &i) {
            return i.problem.rfind("invalid", 0) == 0;
        }));
        if (issues.size() > 50)
            issues.resize(50);
        r.issues = std::move(issues);
        report.languages.push_back(std::move(r));
        ++langDone;
    }
    if (progress)
        progress({"demo corpus", langDone, langDone, "languages", {}});
    return report;
}

} // namespace polymoe
