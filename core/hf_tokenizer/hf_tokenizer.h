// Hugging Face tokenizer.json in C++: the same ids as the Python `tokenizers` library (0.2x) for BPE
// models (GPT-2, Llama-3, Qwen2, SmolLM2, Llama-2/Mistral style), without Python or LibTorch.
#pragma once

#include "polymoe/tokenizer.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace polymoe {

namespace detail::hf {
struct TokenizerState;
}

// One loaded tokenizer.json. Every method is const and safe to call from several threads at once.
//
// Supported: model BPE (merges as "a b" or [a, b], byte_fallback, unk_token and fuse_unk,
// ignore_merges, continuing_subword_prefix, end_of_word_suffix; dropout must be null or 0);
// normalizers NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, StripAccents, Nmt,
// BertNormalizer, ByteLevel, Sequence; pre-tokenizers ByteLevel, Split, Digits, Metaspace,
// Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit, Sequence;
// added tokens (special or not, lstrip, rstrip, normalized, single_word); post-processors
// TemplateProcessing (single), RobertaProcessing, BertProcessing, ByteLevel, Sequence; decoders
// ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece, BPEDecoder, CTC, Sequence;
// truncation and padding as tokenizer.json sets them. Anything else is refused with ConfigError
// (other models: WordPiece, WordLevel, Unigram; pre-tokenizers UnicodeScripts, FixedLength; the
// Precompiled normalizer; BPE dropout).
//
// Unicode: tokenizers mixes versions (its normalization tables are Unicode 9.0, Oniguruma's are 16,
// Rust's 17); hf_tokenizer_unicode_tables.cpp, measured from the Python library, reproduces them.
// Not covered: script properties such as \p{Han} and a negated \P{..} inside a character class in
// a pattern use PCRE2's own (older) Unicode data, so code points assigned after it may differ there.
class HfTokenizer final : public ITokenizer {
public:
    explicit HfTokenizer(std::unique_ptr<detail::hf::TokenizerState> state);
    ~HfTokenizer() override;

    // tok.encode(text, add_special_tokens=False).ids. Text that is not valid UTF-8 is read as Python
    // reads bytes.decode("utf-8", "replace"): each invalid sequence becomes U+FFFD.
    std::vector<int32_t> encode(std::string_view text) const override;
    // tok.encode(text, add_special_tokens=addSpecialTokens).ids (the post-processor when true).
    std::vector<int32_t> encode(std::string_view text, bool addSpecialTokens) const;

    // tok.decode(ids, skip_special_tokens=false); ids without a token are skipped, as tokenizers does.
    std::string decode(const std::vector<int32_t> &ids) const override;
    std::string decode(const std::vector<int32_t> &ids, bool skipSpecialTokens) const;

    // The largest id of the model vocabulary and the added tokens, plus one.
    int32_t vocabSize() const override;
    // tok.id_to_token(id) (a normalized added token reads as its normalized form); throws
    // ConfigError for an id that has no token.
    std::string idToPiece(int32_t id) const override;
    // tok.token_to_id(piece); when absent the model's unk id, or -1 when it has no unk token.
    int32_t pieceToId(std::string_view piece) const override;
    // The exact id of a piece (added tokens first, then the model), -1 when absent.
    int32_t findPiece(std::string_view piece) const;
    bool isSpecial(int32_t id) const; // an added token marked special

    // bos/eos/unk/pad: from tokenizer_config.json, then special_tokens_map.json; else unk from the
    // model's unk_token, bos/eos from the post-processor's template, pad from "padding"; else -1.
    SpecialTokens specialTokens() const override;
    std::string serialize() const override; // the tokenizer.json bytes, unchanged
    std::string backend() const override { return "hf-tokenizers"; }

private:
    std::unique_ptr<detail::hf::TokenizerState> m_state;
};

// Parses tokenizer.json text; `where` names it in messages ("tokenizer.json: model.merges[3]: ...").
// The optional texts of tokenizer_config.json and special_tokens_map.json give the special tokens.
// Throws FormatError for a malformed file (also JSON nested deeper than 64 levels), ConfigError for a
// component type or option that is not supported.
std::unique_ptr<HfTokenizer> loadHfTokenizer(std::string tokenizerJson, const std::string &where,
                                             std::string tokenizerConfigJson = {},
                                             std::string specialTokensMapJson = {});

// A tokenizer.json file, or a folder holding tokenizer.json and optionally tokenizer_config.json and
// special_tokens_map.json. Throws IoError for a missing or unreadable file or one that is not a
// regular file (a FIFO is refused, never read), and what loadHfTokenizer throws.
std::unique_ptr<HfTokenizer> loadHfTokenizerFolder(const std::filesystem::path &fileOrFolder);

} // namespace polymoe
