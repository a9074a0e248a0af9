// Synthetic token "languages" for the tests that train tiny models without a tokenizer plugin
// (tst_expansion, tst_training_run): each language lives in its own range of kSyntheticRange token
// ids and follows its own rule next = first + (mul * t + add) % range, 90% of the time.
#pragma once

#include "polymoe/project_store.h"
#include "sqlite_db.h"
#include "token_shard.h"

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe::test {

constexpr int kSyntheticVocab = 64;
constexpr int kSyntheticRange = 15; // tokens per language: en 3..17, es 18..32, de 33..47, ru 48..62

struct SyntheticLanguage {
    const char *code;
    LanguageGroup group;
    int first;    // first token id of its range
    int mul, add; // next = first + (mul * t + add) % kSyntheticRange, 90% of the time
};
inline constexpr SyntheticLanguage kSyntheticLanguages[] = {
    {"en", LanguageGroup::Old, 3, 2, 1},
    {"es", LanguageGroup::Old, 18, 4, 3},
    {"de", LanguageGroup::New, 33, 7, 2},
    {"ru", LanguageGroup::New, 48, 11, 5},
};

// `documents` documents of `length` tokens, deterministic in `seed`.
inline TokenShard syntheticShard(const SyntheticLanguage &l, int documents, int length, uint32_t seed)
{
    TokenShard s;
    s.language = l.code;
    s.vocabSize = kSyntheticVocab;
    uint32_t x = seed;
    for (int d = 0; d < documents; ++d) {
        std::vector<int32_t> ids;
        x = x * 1664525u + 1013904223u;
        int t = int((x >> 16) % kSyntheticRange);
        for (int i = 0; i < length; ++i) {
            ids.push_back(l.first + t);
            x = x * 1664525u + 1013904223u;
            t = (x >> 24) % 10 == 0 ? int((x >> 8) % kSyntheticRange) : (l.mul * t + l.add) % kSyntheticRange;
        }
        s.addDocument(ids);
    }
    return s;
}

// A tokenizer row without a plugin, made current: training reads back only its special ids.
inline void addSyntheticTokenizer(ProjectStore &store)
{
    store.db().exec("INSERT INTO tokenizers(backend, model_type, vocab_size, settings, model, sha256, source, is_current) "
                    "VALUES ('sentencepiece', 'unigram', 64, '{\"bos_id\": 1, \"eos_id\": 2, \"unk_id\": 0, \"pad_id\": -1}', "
                    "x'00', '00', 'synthetic', 1)");
}

// Writes `l`'s train and held-out shards (syntheticShard, the seed advanced by 101 before each) to
// the project's shards/ folder and records them under the current tokenizer. Returns the last seed.
inline uint32_t addSyntheticShards(ProjectStore &store, const SyntheticLanguage &l, int trainDocuments,
                                   int heldoutDocuments, int length, uint32_t seed)
{
    store.ensureDataDir("shards");
    for (const std::string split : {"train", "heldout"}) {
        const TokenShard shard = syntheticShard(l, split == "train" ? trainDocuments : heldoutDocuments, length, seed += 101);
        const std::string rel = "shards/" + std::string(l.code) + "-" + split + ".bin";
        writeTokenShard(store.dataDir() / rel, shard);
        store.db().exec("INSERT INTO token_shards(tokenizer_id, language, split, path, n_documents, n_tokens, n_words, "
                        "n_characters) SELECT id, '" + std::string(l.code) + "', '" + split + "', '" + rel + "', " +
                        std::to_string(shard.documents()) + ", " + std::to_string(shard.tokens.size()) +
                        ", 0, 0 FROM tokenizers WHERE is_current = 1");
    }
    return seed;
}

} // namespace polymoe::test
