/* Internal layout of the tokenizer shared by tokenizer*.c. The pipeline is tokenizers' own:
 * added tokens split the text, normalizers, pre-tokenizers, the BPE model, the post-processor;
 * decoding runs the decoder chain. */
#ifndef AWQ_TOKENIZER_IMPL_H
#define AWQ_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "awqrun_text.h"

#define TOK_MAX_STEPS 8

/* String -> id, open addressing. */
struct tok_strmap {
	uint32_t *slots; /* id + 1, 0 = empty */
	size_t cap;
};

/* (left id, right id) -> merge rank and the merged token's id. */
struct tok_pairmap {
	uint64_t *keys;
	int32_t *rank, *merged;
	size_t cap; /* keys[i] == UINT64_MAX: empty */
};

enum norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_PREPEND, NORM_REPLACE, NORM_LOWERCASE };
struct tok_norm {
	enum norm_kind kind;
	char *a, *b; /* PREPEND: a; REPLACE: pattern a -> content b */
};

enum pre_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
enum split_behavior { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT };
struct tok_pre {
	enum pre_kind kind;
	pcre2_code *re; /* SPLIT; BYTELEVEL with use_regex */
	enum split_behavior behavior;
	int add_prefix_space;  /* BYTELEVEL */
	int prepend_scheme;    /* METASPACE: 0 never, 1 first, 2 always */
	int split;             /* METASPACE */
	char repl[8];          /* METASPACE replacement, UTF-8 */
};

enum dec_kind { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
struct tok_dec {
	enum dec_kind kind;
	char *a, *b;     /* REPLACE pattern -> content */
	char repl[8];    /* METASPACE replacement; STRIP content character */
	int start, stop; /* STRIP */
	int prepend_scheme;
};

struct tok_added {
	int32_t id;
	char *content;
	size_t len;
	int special, normalized, lstrip, rstrip;
};

struct awq_tokenizer {
	char path[512]; /* tokenizer.json, for messages */
	/* model */
	char **vocab; /* id -> token string (model vocab and added tokens), NULL for holes */
	int n_vocab;
	struct tok_strmap map;
	struct tok_pairmap merges;
	int32_t unk;
	int byte_fallback, fuse_unk, ignore_merges;
	int32_t byte_token[256]; /* <0xNN> ids (-1 absent) */
	/* pipeline */
	struct tok_norm norm[TOK_MAX_STEPS];
	int n_norm;
	struct tok_pre pre[TOK_MAX_STEPS];
	int n_pre;
	int byte_level; /* a ByteLevel pre-tokenizer: BPE starts from bytes, not characters */
	struct tok_dec dec[TOK_MAX_STEPS];
	int n_dec;
	int32_t post_prefix[4], post_suffix[4];
	int n_post_prefix, n_post_suffix;
	struct tok_added *added;
	int n_added;
	unsigned char *is_special; /* per id */
	/* tokenizer_config.json */
	char *chat_template;
	int32_t bos, eos;
	char *bos_text;
	int32_t stop[8]; /* generation_config.json eos_token_id(s) */
	int n_stop;
	struct awq_sampler_opts gen; /* generation_config.json's sampling fields ... */
	unsigned gen_set;            /* ... those it has (AWQ_GEN_* bits) */
};

/* A piece of text on its way through the pipeline: either text still to tokenize, or an added
 * token already resolved to its id. */
struct tok_piece {
	char *s;
	size_t len;
	int32_t id;   /* >= 0: an added token */
	int at_start; /* begins at offset 0 of the input (Metaspace prepend_scheme "first") */
};
struct tok_pieces {
	struct tok_piece *v;
	int n, cap;
};
int tok_pieces_push(struct tok_pieces *p, const char *s, size_t len, int32_t id, int at_start);
void tok_pieces_free(struct tok_pieces *p);

/* Hash maps (tokenizer_bpe.c). */
int tok_strmap_build(struct tok_strmap *m, char **vocab, int n);
int32_t tok_strmap_get(const struct tok_strmap *m, char **vocab, const char *s, size_t len);
void tok_strmap_free(struct tok_strmap *m);
int tok_pairmap_init(struct tok_pairmap *m, size_t n);
int tok_pairmap_put(struct tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
int tok_pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);
void tok_pairmap_free(struct tok_pairmap *m);

/* BPE on one pre-token; appends ids (tokenizer_bpe.c). */
struct tok_ids {
	int32_t *v;
	int n, cap;
};
int tok_ids_push(struct tok_ids *ids, int32_t id);
int tok_bpe_word(const awq_tokenizer *t, const char *s, size_t len, struct tok_ids *out);

/* GPT-2 byte <-> printable code point mapping. */
uint32_t tok_byte_to_cp(unsigned char b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the mapping */
/* Decode one UTF-8 code point of a valid string; returns its length. */
int tok_utf8_decode(const unsigned char *s, uint32_t *cp);
int tok_utf8_encode(uint32_t cp, char *out);

/* Every non-overlapping occurrence of pat, left to right, replaced by with; malloc'ed result. */
int tok_replace_all(const char *s, size_t len, const char *pat, const char *with, char **out, size_t *outlen);

/* Loader parts (tokenizer_load.c). */
int tok_load_pipeline(awq_tokenizer *t, const void *root_json, char *err, size_t errlen);

#endif
