// Corpora: importing text per language into the project (validation, de-duplication, the
// deterministic train/held-out split), tokenizing it into shards, and per-language statistics.
#pragma once

#include "polymoe/progress.h"
#include "polymoe/project_store.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

class ITokenizer;

// How a file's text is cut into documents.
enum class TextFormat {
    Auto,           // .jsonl -> Jsonl; .txt -> Paragraphs if the file has a blank line, else Lines
    Lines,          // one document per line
    Paragraphs,     // documents separated by one or more blank lines
    Jsonl,          // one JSON object per line with a string field "text"
};
TextFormat parseTextFormat(const std::string &s); // "auto", "lines", "paragraphs", "jsonl"
std::string toString(TextFormat f);

struct RawDocument {
    std::string text;
    std::string origin; // where it came from: "file.txt:12", "/usr/share/man/de/man1/ls.1.gz"
};

struct ImportIssue {
    std::string origin;  // "file:line"
    std::string problem; // "invalid UTF-8 at byte 17", "duplicate of file:3", "empty document"
};

// Reads one file into documents. Invalid UTF-8, control characters other than tab, line feed, form
// feed and carriage return (NUL, backspace, escape...: a binary file is not text) and bad JSON lines are
// not documents: they are appended to issues with their line. Throws IoError when the file cannot be
// read. sha256, when given, receives the hash of the bytes read (the file is read once).
std::vector<RawDocument> readDocuments(const std::filesystem::path &file, TextFormat format,
                                       std::vector<ImportIssue> &issues, int64_t &emptyCount,
                                       std::string *sha256 = nullptr);
// The first byte of `text` that is a control character no text holds (see readDocuments), if any.
std::optional<size_t> findControlCharacter(std::string_view text);

struct CorpusImportOptions {
    TextFormat format = TextFormat::Auto;
    double heldoutFraction = 0.05; // share of documents held out, chosen by a hash of their text
    uint64_t splitSeed = 0;        // changes which documents are held out
    std::string provenance{};      // free text recorded with the corpus ("user file", package...)
    int64_t maxDocumentBytes = 8 << 20; // longer documents are rejected with a message
};

struct ImportReport {
    std::string language;
    int64_t documents = 0;  // imported
    int64_t heldout = 0;    // of which held out
    int64_t characters = 0; // Unicode code points imported
    int64_t empty = 0;      // empty documents skipped
    int64_t duplicates = 0; // already in the project (or earlier in this import) for this language
    int64_t invalid = 0;    // rejected: invalid UTF-8, bad JSON line, too long
    std::vector<ImportIssue> issues; // the first problems, with file and line
    std::vector<int64_t> corpusIds;
};

// Imports files for one language in one transaction: either every file goes in, or (on an error
// such as an unreadable or document-less file) nothing does. The language is added if new; an
// existing language must have the same group.
ImportReport importCorpusFiles(ProjectStore &store, const Language &language,
                               const std::vector<std::filesystem::path> &files,
                               const CorpusImportOptions &options, const ProgressFn &progress = {},
                               std::stop_token stop = {});

// The same for documents already in memory (the demo corpus): one corpus row per call.
struct CorpusSource {
    std::string name;       // "fortunes-de"
    std::string source;     // a path or a description
    std::string sha256;     // of the source content
    std::string provenance; // package and version, or "user file"
    std::string format;     // "fortune", "manpage", "txt", "jsonl"
};
ImportReport importDocuments(ProjectStore &store, const Language &language,
                             const std::vector<std::pair<CorpusSource, std::vector<RawDocument>>> &sources,
                             const CorpusImportOptions &options, const ProgressFn &progress = {},
                             std::stop_token stop = {});

// Which split a document falls in: a pure function of its text, the fraction and the seed.
bool isHeldOut(std::string_view text, double heldoutFraction, uint64_t seed);

struct LanguageStats {
    Language language;
    int64_t trainDocuments = 0, heldoutDocuments = 0;
    int64_t characters = 0, words = 0;        // all splits
    int64_t trainTokens = -1, heldoutTokens = -1; // -1: not tokenized with the current tokenizer
    double tokensPerWord = 0, tokensPerCharacter = 0; // fertility: shard tokens of both splits per word / character
    int64_t corpora = 0;
};
std::vector<LanguageStats> corpusStats(const ProjectStore &store);

} // namespace polymoe
