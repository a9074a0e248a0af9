// Corpus import: reading .txt/.jsonl into documents, validation, de-duplication, the split, and
// the per-language statistics.
#include "polymoe/corpus.h"

#include "file_read.h"

#include "content_hash.h"
#include "polymoe/error.h"
#include "sqlite_db.h"
#include "utf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <map>
#include <set>

namespace polymoe {

using detail::Statement;
using detail::Transaction;

namespace {
constexpr size_t kMaxIssues = 50;

void addIssue(std::vector<ImportIssue> &issues, std::string origin, std::string problem)
{
    if (issues.size() < kMaxIssues)
        issues.push_back({std::move(origin), std::move(problem)});
}

// True (and the document reported) when it is longer than options.maxDocumentBytes.
bool rejectOverLong(const RawDocument &doc, const CorpusImportOptions &options, std::vector<ImportIssue> &issues)
{
    if (int64_t(doc.text.size()) <= options.maxDocumentBytes)
        return false;
    addIssue(issues, doc.origin,
             "document of " + std::to_string(doc.text.size()) + " bytes is longer than the limit of " +
                 std::to_string(options.maxDocumentBytes) + " (--max-document-bytes)");
    return true;
}

std::string originOf(const std::filesystem::path &file, int64_t line)
{
    return file.string() + ":" + std::to_string(line);
}
} // namespace

TextFormat parseTextFormat(const std::string &s)
{
    if (s == "auto") return TextFormat::Auto;
    if (s == "lines") return TextFormat::Lines;
    if (s == "paragraphs") return TextFormat::Paragraphs;
    if (s == "jsonl") return TextFormat::Jsonl;
    throw ConfigError("unknown text format '" + s + "' (expected auto, lines, paragraphs or jsonl)");
}

std::string toString(TextFormat f)
{
    switch (f) {
    case TextFormat::Auto: return "auto";
    case TextFormat::Lines: return "lines";
    case TextFormat::Paragraphs: return "paragraphs";
    case TextFormat::Jsonl: return "jsonl";
    }
    return "auto";
}

bool isHeldOut(std::string_view text, double heldoutFraction, uint64_t seed)
{
    if (heldoutFraction <= 0)
        return false;
    // The top 53 bits as a uniform number in [0, 1).
    const double u = double(documentKey(text, seed) >> 11) / double(uint64_t(1) << 53);
    return u < heldoutFraction;
}

std::optional<size_t> findControlCharacter(std::string_view text)
{
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c == 0x7F)
            return i;
    }
    return std::nullopt;
}

std::vector<RawDocument> readDocuments(const std::filesystem::path &file, TextFormat format,
                                       std::vector<ImportIssue> &issues, int64_t &emptyCount, std::string *sha256)
{
    // Regular files only (a FIFO or device is refused without blocking), read once.
    const std::string bytes = readRegularFile(file);
    if (sha256)
        *sha256 = sha256Hex(bytes);
    std::istringstream in(bytes);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        lines.push_back(std::move(line));
    }
    if (in.bad())
        throw IoError(file.string() + ": read error");
    if (!lines.empty() && lines.front().rfind("\xEF\xBB\xBF", 0) == 0)
        lines.front().erase(0, 3); // byte-order mark

    if (format == TextFormat::Auto) {
        const auto ext = file.extension().string();
        if (ext == ".jsonl" || ext == ".ndjson") {
            format = TextFormat::Jsonl;
        } else {
            format = TextFormat::Lines;
            for (const auto &l : lines)
                if (trimWhitespace(l).empty()) {
                    format = TextFormat::Paragraphs;
                    break;
                }
        }
    }

    std::vector<RawDocument> docs;
    auto accept = [&](std::string text, int64_t line) {
        if (auto bad = findInvalidUtf8(text)) {
            addIssue(issues, originOf(file, line), "invalid UTF-8 at byte " + std::to_string(*bad) + " of the document");
            return false;
        }
        if (auto c = findControlCharacter(text)) {
            char code[16];
            std::snprintf(code, sizeof code, "U+%04X", unsigned(static_cast<unsigned char>(text[*c])));
            addIssue(issues, originOf(file, line), std::string("control character ") + code + " at byte " +
                                                       std::to_string(*c) + " of the document: not text (a binary file?)");
            return false;
        }
        text = trimWhitespace(text);
        if (text.empty()) {
            ++emptyCount;
            return false;
        }
        docs.push_back({std::move(text), originOf(file, line)});
        return true;
    };

    if (format == TextFormat::Lines) {
        for (size_t i = 0; i < lines.size(); ++i)
            if (trimWhitespace(lines[i]).empty() && findInvalidUtf8(lines[i]) == std::nullopt)
                ++emptyCount;
            else
                accept(std::move(lines[i]), int64_t(i + 1));
    } else if (format == TextFormat::Paragraphs) {
        std::string cur;
        int64_t start = 0;
        for (size_t i = 0; i <= lines.size(); ++i) {
            const bool blank = i == lines.size() || trimWhitespace(lines[i]).empty();
            if (blank) {
                if (!cur.empty())
                    accept(std::move(cur), start);
                cur.clear();
                continue;
            }
            if (cur.empty())
                start = int64_t(i + 1);
            else
                cur += '\n';
            cur += lines[i];
        }
    } else {
        for (size_t i = 0; i < lines.size(); ++i) {
            const int64_t lineNo = int64_t(i + 1);
            if (trimWhitespace(lines[i]).empty())
                continue;
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(lines[i]);
            } catch (const nlohmann::json::exception &e) {
                // nlohmann reports invalid UTF-8 here too.
                addIssue(issues, originOf(file, lineNo), std::string("not a JSON object: ") + e.what());
                continue;
            }
            if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
                addIssue(issues, originOf(file, lineNo), "no string field \"text\"");
                continue;
            }
            accept(j["text"].get<std::string>(), lineNo);
        }
    }
    return docs;
}

ImportReport importDocuments(ProjectStore &store, const Language &language,
                             const std::vector<std::pair<CorpusSource, std::vector<RawDocument>>> &sources,
                             const CorpusImportOptions &options, const ProgressFn &progress,
                             std::stop_token stop)
{
    if (options.heldoutFraction < 0 || options.heldoutFraction >= 1)
        throw ConfigError("held-out fraction must be in [0, 1), not " + std::to_string(options.heldoutFraction));
    ImportReport report;
    report.language = language.code;
    int64_t total = 0;
    for (const auto &s : sources)
        total += int64_t(s.second.size());

    auto &db = store.db();
    Transaction tx(db);
    store.addLanguage(language);
    Statement findDup(db, "SELECT id FROM documents WHERE language = ? AND sha256 = ?");
    Statement insDoc(db, "INSERT INTO documents(corpus_id, language, split, origin, sha256, n_characters, "
                         "n_words, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    std::map<std::string, std::string> seen; // sha256 -> origin, for duplicates inside this import
    int64_t done = 0;
    for (const auto &[src, docs] : sources) {
        Statement insCorpus(db, "INSERT INTO corpora(language, name, source, sha256, provenance, format) "
                                "VALUES (?, ?, ?, ?, ?, ?)");
        insCorpus.bind(1, language.code).bind(2, src.name).bind(3, src.source).bind(4, src.sha256)
            .bind(5, src.provenance).bind(6, src.format).run();
        const int64_t corpusId = db.lastInsertId();
        report.corpusIds.push_back(corpusId);
        int64_t nDocs = 0, nChars = 0, nDup = 0, nInvalid = 0;
        for (const auto &doc : docs) {
            if ((++done & 1023) == 0) {
                throwIfStopped(stop);
                if (progress)
                    progress({"import " + language.code, done, total, "documents", {}});
            }
            if (rejectOverLong(doc, options, report.issues)) {
                ++nInvalid;
                continue;
            }
            const std::string hash = sha256Hex(doc.text);
            if (auto it = seen.find(hash); it != seen.end()) {
                ++nDup;
                addIssue(report.issues, doc.origin, "duplicate of " + it->second);
                continue;
            }
            findDup.bind(1, language.code).bind(2, hash);
            const bool inProject = findDup.step();
            findDup.reset();
            if (inProject) {
                ++nDup;
                addIssue(report.issues, doc.origin, "duplicate of a document already in the project");
                continue;
            }
            seen.emplace(hash, doc.origin);
            const bool held = isHeldOut(doc.text, options.heldoutFraction, options.splitSeed);
            const int64_t chars = countCodePoints(doc.text);
            insDoc.bind(1, corpusId).bind(2, language.code).bind(3, held ? "heldout" : "train")
                .bind(4, doc.origin).bind(5, hash).bind(6, chars).bind(7, countWords(doc.text)).bind(8, doc.text);
            insDoc.run();
            insDoc.reset();
            ++nDocs;
            nChars += chars;
            report.heldout += held;
        }
        Statement upd(db, "UPDATE corpora SET n_documents = ?, n_characters = ?, n_duplicates = ?, "
                          "n_rejected = ? WHERE id = ?");
        upd.bind(1, nDocs).bind(2, nChars).bind(3, nDup).bind(4, nInvalid).bind(5, corpusId).run();
        report.documents += nDocs;
        report.characters += nChars;
        report.duplicates += nDup;
        report.invalid += nInvalid;
    }
    throwIfStopped(stop);
    if (report.documents == 0)
        throw FormatError("language '" + language.code + "': no new document to import (" + std::to_string(report.duplicates) +
                          " duplicates, " + std::to_string(report.invalid) + " refused" +
                          (report.issues.empty() ? std::string() : "; first: " + report.issues.front().origin + ": " +
                                                                       report.issues.front().problem) +
                          "); nothing was written");
    tx.commit();
    if (progress)
        progress({"import " + language.code, total, total, "documents", {}});
    return report;
}

ImportReport importCorpusFiles(ProjectStore &store, const Language &language,
                               const std::vector<std::filesystem::path> &files,
                               const CorpusImportOptions &options, const ProgressFn &progress,
                               std::stop_token stop)
{
    if (files.empty())
        throw ConfigError("no input files given");
    std::vector<std::pair<CorpusSource, std::vector<RawDocument>>> sources;
    std::vector<ImportIssue> issues;
    int64_t empty = 0, invalidBefore = 0;
    for (const auto &file : files) {
        throwIfStopped(stop);
        const size_t issuesBefore = issues.size();
        int64_t emptyHere = 0;
        std::string hash;
        auto docs = readDocuments(file, options.format, issues, emptyHere, &hash);
        // Documents over the length limit are reported here, so that a file of nothing else is refused
        // below instead of leaving an empty language behind.
        std::erase_if(docs, [&](const RawDocument &d) { return rejectOverLong(d, options, issues); });
        empty += emptyHere;
        invalidBefore += int64_t(issues.size() - issuesBefore);
        if (docs.empty())
            throw FormatError(file.string() + ": contains no usable documents" +
                              (issues.size() > issuesBefore ? " (first problem: line " +
                                   issues[issuesBefore].origin.substr(issues[issuesBefore].origin.rfind(':') + 1) +
                                   ": " + issues[issuesBefore].problem + ")"
                                                            : std::string(" (the file is empty)")));
        CorpusSource src;
        src.name = file.filename().string();
        src.source = std::filesystem::absolute(file).string();
        src.sha256 = hash; // of the bytes the documents came from
        src.provenance = options.provenance.empty() ? "user file" : options.provenance;
        TextFormat fmt = options.format;
        src.format = fmt == TextFormat::Auto ? (file.extension() == ".jsonl" ? "jsonl" : "txt") : toString(fmt);
        sources.emplace_back(std::move(src), std::move(docs));
    }
    ImportReport report = importDocuments(store, language, sources, options, progress, stop);
    report.empty += empty;
    report.invalid += invalidBefore;
    issues.insert(issues.end(), report.issues.begin(), report.issues.end());
    if (issues.size() > kMaxIssues)
        issues.resize(kMaxIssues);
    report.issues = std::move(issues);
    if (empty > 0 && !report.corpusIds.empty()) {
        Statement st(store.db(), "UPDATE corpora SET n_empty = ? WHERE id = ?");
        st.bind(1, empty).bind(2, report.corpusIds.front()).run();
    }
    return report;
}

std::vector<LanguageStats> corpusStats(const ProjectStore &store)
{
    auto &db = store.db();
    std::vector<LanguageStats> out;
    for (const auto &lang : store.languages()) {
        LanguageStats s;
        s.language = lang;
        Statement st(db, "SELECT split, count(*), sum(n_characters), sum(n_words) FROM documents "
                         "WHERE language = ? GROUP BY split");
        st.bind(1, lang.code);
        while (st.step()) {
            const bool train = st.text(0) == "train";
            (train ? s.trainDocuments : s.heldoutDocuments) = st.int64(1);
            s.characters += st.int64(2);
            s.words += st.int64(3);
        }
        Statement c(db, "SELECT count(*) FROM corpora WHERE language = ?");
        c.bind(1, lang.code);
        if (c.step())
            s.corpora = c.int64(0);
        Statement sh(db, "SELECT s.split, s.n_tokens FROM token_shards s JOIN tokenizers t ON t.id = s.tokenizer_id "
                         "WHERE t.is_current = 1 AND s.language = ?");
        sh.bind(1, lang.code);
        while (sh.step())
            (sh.text(0) == "train" ? s.trainTokens : s.heldoutTokens) = sh.int64(1);
        // Fertility over every document, so a language whose text is all held out has one too.
        const int64_t tokens = std::max<int64_t>(s.trainTokens, 0) + std::max<int64_t>(s.heldoutTokens, 0);
        if (s.trainTokens >= 0 || s.heldoutTokens >= 0) {
            s.tokensPerWord = s.words > 0 ? double(tokens) / double(s.words) : 0;
            s.tokensPerCharacter = s.characters > 0 ? double(tokens) / double(s.characters) : 0;
        }
        out.push_back(std::move(s));
    }
    return out;
}

} // namespace polymoe
