// Fuzz target: a corpus file read as lines, paragraphs and JSON lines.
#include "fuzz_input_file.h"
#include "polymoe/corpus.h"
#include "polymoe/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (const auto &[format, suffix] : {std::pair{polymoe::TextFormat::Lines, ".txt"},
                                         std::pair{polymoe::TextFormat::Paragraphs, ".txt"},
                                         std::pair{polymoe::TextFormat::Jsonl, ".jsonl"},
                                         std::pair{polymoe::TextFormat::Auto, ".txt"}}) {
        const auto path = polymoe::fuzz::inputFile(data, size, suffix);
        try {
            std::vector<polymoe::ImportIssue> issues;
            int64_t empty = 0;
            std::string sha;
            for (const auto &d : polymoe::readDocuments(path, format, issues, empty, &sha))
                if (polymoe::findControlCharacter(d.text))
                    __builtin_trap(); // readDocuments promises documents without control characters
        } catch (const polymoe::Error &) {
        }
    }
    return 0;
}
