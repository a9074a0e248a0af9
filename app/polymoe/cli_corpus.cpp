// polymoe corpus demo|add|stats|languages
#include "cli.h"

#include "polymoe/corpus.h"
#include "polymoe/demo_corpus.h"
#include "polymoe/error.h"
#include "polymoe/project_store.h"

#include <cstdio>
#include <sstream>

namespace polymoe::cli {
namespace {

nlohmann::json reportJson(const ImportReport &r)
{
    nlohmann::json issues = nlohmann::json::array();
    for (const auto &i : r.issues)
        issues.push_back({{"where", i.origin}, {"problem", i.problem}});
    return {{"language", r.language}, {"documents", r.documents}, {"heldout", r.heldout},
            {"characters", r.characters}, {"empty", r.empty}, {"duplicates", r.duplicates},
            {"invalid", r.invalid}, {"issues", issues}};
}

std::string reportText(const ImportReport &r, size_t maxIssues)
{
    std::ostringstream os;
    os << r.language << ": " << r.documents << " documents (" << r.heldout << " held out), " << r.characters
       << " characters; skipped " << r.duplicates << " duplicate, " << r.empty << " empty, " << r.invalid
       << " invalid\n";
    if (r.documents > 0 && r.heldout == 0)
        os << "    note: none of these documents is held out (too few for the held-out share); a language without\n"
              "    held-out documents has no perplexity in evaluations and reports\n";
    for (size_t i = 0; i < r.issues.size() && i < maxIssues; ++i)
        os << "    " << r.issues[i].origin << ": " << r.issues[i].problem << "\n";
    if (r.issues.size() > maxIssues)
        os << "    ... " << r.issues.size() - maxIssues << " more (see --json)\n";
    return os.str();
}

int corpusDemo(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0]);
    DemoCorpusOptions o;
    o.languages = a.getList("--languages", o.languages);
    o.oldLanguages = a.getList("--old", o.oldLanguages);
    o.maxCharactersPerLanguage = a.getInt("--max-chars", o.maxCharactersPerLanguage);
    o.heldoutFraction = a.getDouble("--heldout", o.heldoutFraction);
    o.splitSeed = uint64_t(a.getInt("--split-seed", 0));
    const std::string en = a.get("--english-manpages", "translated");
    if (en != "translated" && en != "all")
        throw UsageError("--english-manpages must be translated or all, not '" + en + "'");
    o.allEnglishManPages = en == "all";
    const auto rep = buildDemoCorpus(store, o, ctx.progressFn, ctx.stop);
    nlohmann::json j = {{"project", store.path().string()}, {"languages", nlohmann::json::array()}};
    std::string text;
    for (const auto &r : rep.languages) {
        j["languages"].push_back(reportJson(r));
        text += reportText(r, 3);
    }
    ctx.print(j, text);
    return kExitOk;
}

int corpusAdd(const Args &a, Context &ctx)
{
    if (!a.has("--lang") || !a.has("--group"))
        throw UsageError("--lang and --group are required");
    auto store = ProjectStore::open(a.positionals[0]);
    Language lang;
    lang.code = a.get("--lang");
    lang.name = a.get("--name", lang.code);
    lang.group = parseLanguageGroup(a.get("--group"));
    lang.wave = a.getInt32("--wave", lang.group == LanguageGroup::Old ? 0 : 1, 0, 1000);
    CorpusImportOptions o;
    o.format = parseTextFormat(a.get("--format", "auto"));
    o.heldoutFraction = a.getDouble("--heldout", o.heldoutFraction);
    o.splitSeed = uint64_t(a.getInt("--split-seed", 0));
    o.provenance = a.get("--provenance");
    o.maxDocumentBytes = a.getInt("--max-document-bytes", o.maxDocumentBytes);
    if (o.maxDocumentBytes < 1 || o.maxDocumentBytes > (int64_t(1) << 30))
        throw UsageError("--max-document-bytes must be 1 to 1073741824");
    std::vector<std::filesystem::path> files(a.positionals.begin() + 1, a.positionals.end());
    const auto r = importCorpusFiles(store, lang, files, o, ctx.progressFn, ctx.stop);
    ctx.print(reportJson(r), reportText(r, 10));
    return kExitOk;
}

int corpusStatsCmd(const Args &a, Context &ctx)
{
    auto store = ProjectStore::open(a.positionals[0], true);
    const auto stats = corpusStats(store);
    nlohmann::json j = nlohmann::json::array();
    std::ostringstream os;
    char line[256];
    std::snprintf(line, sizeof line, "%-6s %-5s %9s %9s %12s %11s %11s %9s %9s\n", "lang", "group", "train docs",
                  "held out", "characters", "train tok", "held tok", "tok/word", "tok/char");
    os << line;
    for (const auto &s : stats) {
        j.push_back({{"language", s.language.code}, {"name", s.language.name}, {"group", toString(s.language.group)},
                     {"train_documents", s.trainDocuments}, {"heldout_documents", s.heldoutDocuments},
                     {"characters", s.characters}, {"words", s.words}, {"corpora", s.corpora},
                     {"train_tokens", s.trainTokens}, {"heldout_tokens", s.heldoutTokens},
                     {"tokens_per_word", s.tokensPerWord}, {"tokens_per_character", s.tokensPerCharacter}});
        auto tok = [](int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
        std::snprintf(line, sizeof line, "%-6s %-5s %9lld %9lld %12lld %11s %11s %9.3f %9.3f\n", s.language.code.c_str(),
                      toString(s.language.group).c_str(), (long long)s.trainDocuments, (long long)s.heldoutDocuments,
                      (long long)s.characters, tok(s.trainTokens).c_str(), tok(s.heldoutTokens).c_str(),
                      s.tokensPerWord, s.tokensPerCharacter);
        os << line;
    }
    if (stats.empty())
        os << "(no languages yet: polymoe corpus demo PROJECT, or polymoe corpus add)\n";
    else if (stats.front().trainTokens < 0)
        os << "(token counts and fertility appear after 'polymoe tokenizer train')\n";
    ctx.print(nlohmann::json{{"languages", j}}, os.str());
    return kExitOk;
}

int corpusLanguages(const Args &a, Context &ctx)
{
    const auto langs = scanDemoLanguages(a.get("--root", "/"));
    nlohmann::json j = nlohmann::json::array();
    std::ostringstream os;
    for (const auto &l : langs) {
        j.push_back({{"code", l.code}, {"name", l.name}, {"packages", l.packages},
                     {"fortune_files", l.fortuneFiles.size()}, {"man_pages", l.manPages.size()}});
        os << l.code << "\t" << l.name << "\t" << l.fortuneFiles.size() << " fortune files, " << l.manPages.size()
           << " man pages\n";
    }
    if (langs.empty())
        os << "no demo text installed: run installer/setup.sh (fortunes-*, manpages-* packages)\n";
    ctx.print(j, os.str());
    return kExitOk;
}

Register demoCmd({"corpus demo", "add the demo corpus: real text from Debian's fortunes and translated man pages",
                  "PROJECT [--languages en,es,de,ru] [--old en,es]",
                  "Reads fortunes (/usr/share/games/fortunes) and manual pages (/usr/share/man) for each language,\n"
                  "renders them to plain text, removes duplicates and records the packages they came from.\n"
                  "Languages listed in --old form the old group; the others are new. 'polymoe corpus languages'\n"
                  "lists what is installed.",
                  {{"--languages", "LIST", "languages to add, comma-separated", "en,es,de,ru"},
                   {"--old", "LIST", "which of them the base model knows (old group)", "en,es"},
                   {"--max-chars", "N", "characters per language at most", "3000000"},
                   {"--heldout", "FRACTION", "share of documents held out", "0.05"},
                   {"--split-seed", "N", "seed of the train/held-out split (another seed holds out other documents)", "0"},
                   {"--english-manpages", "WHICH", "translated (the originals of the other languages' pages) or all", "translated"}},
                  1, 1, true, corpusDemo});
Register addCmd({"corpus add", "import text files for one language",
                 "PROJECT --lang CODE --group old|new FILE...",
                 "FILE: .txt (one document per line, or documents separated by blank lines) or .jsonl (a \"text\"\n"
                 "field per line). Invalid UTF-8, control characters (NUL, backspace...: binary files), empty,\n"
                 "over-long and duplicate documents are skipped and reported with file and line. All files go in\n"
                 "one transaction: on an error, or when no document is left, nothing is imported.",
                 {{"--lang", "CODE", "language code, e.g. de", ""},
                  {"--group", "old|new", "old: the base model knows it; new: to be taught", ""},
                  {"--name", "NAME", "language name shown in reports", ""},
                  {"--wave", "N", "expansion wave for new languages (lifelong expansion)", ""},
                  {"--format", "FMT", "auto, lines, paragraphs or jsonl", "auto"},
                  {"--heldout", "FRACTION", "share of documents held out", "0.05"},
                  {"--split-seed", "N", "seed of the train/held-out split", "0"},
                  {"--provenance", "TEXT", "where the text comes from, recorded with it", ""},
                  {"--max-document-bytes", "N", "longer documents are skipped and reported", "8388608"}},
                 2, -1, true, corpusAdd});
Register statsCmd({"corpus stats", "per-language documents, characters, tokens and tokenizer fertility", "PROJECT",
                   "", {}, 1, 1, true, corpusStatsCmd});
Register langsCmd({"corpus languages", "list the demo languages whose text is installed", "", "",
                   {{"--root", "DIR", "file system root to scan", "/"}}, 0, 0, true, corpusLanguages});

} // namespace
} // namespace polymoe::cli
