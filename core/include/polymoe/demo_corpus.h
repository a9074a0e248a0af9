// The demo corpus: real text in several languages from Debian's packages (fortunes and
// translated manual pages), rendered to plain text, de-duplicated, with provenance recorded.
#pragma once

#include "polymoe/corpus.h"

#include <filesystem>
#include <string>
#include <vector>

namespace polymoe {

struct DemoLanguage {
    std::string code;                      // "de"
    std::string name;                      // "German"
    std::vector<std::string> packages;     // Debian packages that provide its text
    std::vector<std::filesystem::path> fortuneFiles;
    std::vector<std::filesystem::path> manPages;
    bool available() const { return !fortuneFiles.empty() || !manPages.empty(); }
};

// Every language with fortunes or translated man pages installed under root (default "/").
// English man pages are limited to those translated into at least one other language, so the
// corpus does not depend on which other programs happen to be installed, and its English pages
// are the originals of the other languages' ones; allEnglishManPages takes every English page.
std::vector<DemoLanguage> scanDemoLanguages(const std::filesystem::path &root = "/", bool allEnglishManPages = false);

struct DemoCorpusOptions {
    std::vector<std::string> languages{"en", "es", "de", "ru"};
    std::vector<std::string> oldLanguages{"en", "es"}; // the others are new
    int64_t maxCharactersPerLanguage = 3'000'000;      // documents are taken in a hash order up to this
    double heldoutFraction = 0.05;                     // METHOD.md section 9
    uint64_t splitSeed = 0;                            // which documents are held out (corpus.h)
    bool allEnglishManPages = false;                   // see scanDemoLanguages
    std::filesystem::path root = "/";                  // where /usr/share lives (tests)
};

struct DemoCorpusReport {
    std::vector<ImportReport> languages;
    std::vector<std::string> missingPackages; // packages to install for languages that had no text
};

// Builds the demo corpus into the project. Throws ConfigError naming the Debian packages to
// install when a requested language has no text on this machine.
DemoCorpusReport buildDemoCorpus(ProjectStore &store, const DemoCorpusOptions &options,
                                 const ProgressFn &progress = {}, std::stop_token stop = {});

// Fortune file entries: separated by lines holding only "%".
std::vector<RawDocument> readFortunes(const std::filesystem::path &file);

} // namespace polymoe
