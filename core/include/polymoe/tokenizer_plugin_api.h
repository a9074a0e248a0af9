/* The C ABI between core and a tokenizer plugin. A plugin is a shared library exporting one
 * function, polymoe_tokenizer_plugin(), that returns a table of function pointers. No C++ type and
 * no exception crosses this boundary: every call returns a status (0 = ok) and, on failure, fills
 * an error string that the caller frees with free_string(). Core loads plugins with
 * dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) so that the plugin's own copy of protobuf (inside
 * libsentencepiece) never meets LibTorch's (PLATFORM.md, trap 2).
 *
 * Version rule: POLYMOE_TOKENIZER_API_VERSION changes whenever this table changes; the loader
 * refuses a plugin whose version differs and names both versions. */
#ifndef POLYMOE_TOKENIZER_PLUGIN_API_H
#define POLYMOE_TOKENIZER_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLYMOE_TOKENIZER_API_VERSION 1
#define POLYMOE_TOKENIZER_ENTRY "polymoe_tokenizer_plugin"

typedef struct PolymoeTokenizer PolymoeTokenizer; /* opaque, owned by the plugin */

/* Settings for training a tokenizer from a plain-text file, one sentence or document per line. */
typedef struct PolymoeTokenizerTrainOptions {
    const char *input_path;     /* UTF-8 text, one sentence per line */
    const char *model_type;     /* "unigram" or "bpe" */
    int32_t vocab_size;         /* pieces in the vocabulary, special tokens included */
    float character_coverage;   /* share of characters covered, e.g. 0.9995 */
    int32_t byte_fallback;      /* 1: unknown characters become <0xNN> byte pieces */
    int32_t max_sentence_length; /* bytes; longer input lines are skipped by the trainer */
    int64_t input_sentence_size; /* sentences sampled for training; 0 = all */
    int32_t num_threads;        /* trainer threads */
    uint64_t seed;              /* sampling seed */
} PolymoeTokenizerTrainOptions;

typedef struct PolymoeTokenizerPluginApi {
    int32_t api_version;   /* POLYMOE_TOKENIZER_API_VERSION of the plugin's build */
    const char *name;      /* "sentencepiece" */
    const char *version;   /* the plugin's own version and its library's, for logs */

    void (*free_string)(char *s);
    void (*free_ids)(int32_t *ids);

    /* Trains a model; on success *model_bytes (free_string) holds the serialised model. */
    int32_t (*train)(const PolymoeTokenizerTrainOptions *options, char **model_bytes,
                     size_t *model_size, char **error);

    /* Loads a model from a file (e.g. a Llama-2 tokenizer.model) or from bytes in memory. */
    int32_t (*load_file)(const char *path, PolymoeTokenizer **out, char **error);
    int32_t (*load_bytes)(const char *bytes, size_t size, PolymoeTokenizer **out, char **error);
    void (*destroy)(PolymoeTokenizer *tok);

    /* Serialised model bytes (free_string), so a project can store the model it uses. */
    int32_t (*serialize)(const PolymoeTokenizer *tok, char **bytes, size_t *size, char **error);

    /* Encodes UTF-8 text to ids (free_ids); no BOS/EOS added. */
    int32_t (*encode)(const PolymoeTokenizer *tok, const char *text, size_t size, int32_t **ids,
                      size_t *count, char **error);
    /* Decodes ids to UTF-8 text (free_string). */
    int32_t (*decode)(const PolymoeTokenizer *tok, const int32_t *ids, size_t count, char **text,
                      size_t *size, char **error);

    int32_t (*vocab_size)(const PolymoeTokenizer *tok);
    /* The piece of an id (free_string); NULL when out of range. */
    char *(*id_to_piece)(const PolymoeTokenizer *tok, int32_t id);
    /* The id of a piece, or the unknown id when absent. */
    int32_t (*piece_to_id)(const PolymoeTokenizer *tok, const char *piece);
    /* Special ids: -1 when the model has none. */
    int32_t (*bos_id)(const PolymoeTokenizer *tok);
    int32_t (*eos_id)(const PolymoeTokenizer *tok);
    int32_t (*unk_id)(const PolymoeTokenizer *tok);
    int32_t (*pad_id)(const PolymoeTokenizer *tok);
} PolymoeTokenizerPluginApi;

typedef const PolymoeTokenizerPluginApi *(*PolymoeTokenizerPluginEntry)(void);

#ifdef __cplusplus
}
#endif

#endif /* POLYMOE_TOKENIZER_PLUGIN_API_H */
