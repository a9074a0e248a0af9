// The project's token shards as training and evaluation streams, with language weights.
#pragma once

#include "polymoe/project_store.h"
#include "sequence_batcher.h"

#include <map>
#include <string>
#include <vector>

namespace polymoe {

// One stream per project language for a split ("train" / "heldout") of the current tokenizer,
// documents wrapped in the tokenizer's BOS/EOS. Weights default to 1; languages missing from a
// non-empty weights map get 0. Throws ConfigError when the project has no shards yet.
std::vector<LanguageStream> projectStreams(const ProjectStore &store, const std::string &split,
                                           const std::map<std::string, double> &weights = {});

// Fills each stream's document sizes (characters, UTF-8 bytes) from the project's documents of
// `split`, in the order the shards hold them; a stream whose document count differs is left
// without sizes (its bits per character stay unknown).
void attachDocumentSizes(const ProjectStore &store, const std::string &split, std::vector<LanguageStream> &streams);

} // namespace polymoe
