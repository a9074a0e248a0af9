// Loading the project's shards into streams.
#include "project_data.h"

#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "sqlite_db.h"
#include "token_shard.h"

namespace polymoe {

std::vector<LanguageStream> projectStreams(const ProjectStore &store, const std::string &split,
                                           const std::map<std::string, double> &weights)
{
    const auto shards = projectShards(store);
    if (shards.empty())
        throw ConfigError(store.path().string() + ": no token shards yet; run 'polymoe tokenizer train' first");
    const SpecialTokens sp = projectDocumentTokens(store);
    std::vector<LanguageStream> out;
    for (const auto &lang : store.languages()) {
        const ShardRecord *rec = nullptr;
        for (const auto &s : shards)
            if (s.language == lang.code && s.split == split)
                rec = &s;
        if (!rec)
            throw ConfigError(store.path().string() + ": language '" + lang.code + "' has no " + split +
                              " shard; run 'polymoe tokenizer train' again to tokenize it");
        double w = 1;
        if (!weights.empty()) {
            auto it = weights.find(lang.code);
            w = it == weights.end() ? 0.0 : it->second;
        }
        const TokenShard shard = readTokenShard(rec->path);
        out.push_back(makeStream(shard, lang.group == LanguageGroup::New, w, sp.bos, sp.eos));
    }
    return out;
}

void attachDocumentSizes(const ProjectStore &store, const std::string &split, std::vector<LanguageStream> &streams)
{
    for (auto &s : streams) {
        detail::Statement st(store.db(), "SELECT n_characters, length(CAST(text AS BLOB)) FROM documents "
                                 "WHERE language = ? AND split = ? ORDER BY id");
        st.bind(1, s.language).bind(2, split);
        std::vector<int64_t> chars, bytes;
        while (st.step()) {
            chars.push_back(st.int64(0));
            bytes.push_back(st.int64(1));
        }
        if (chars.size() != s.documentEnds.size())
            continue;
        s.documentCharacters = std::move(chars);
        s.documentBytes = std::move(bytes);
    }
}

} // namespace polymoe
