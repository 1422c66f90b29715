#include "textnorm.h"
#include "t2s_dict.h"

#include <opencc/opencc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

/* NFKC (compatibility decomposition + canonical composition) with case folding. STABLE keeps
 * the result stable across Unicode versions, which matters because normalised text is
 * compared with keywords normalised on another day. */
#define NORM_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD)

/* Without the key set (it could not be read), every code point from here up counts as one
 * that a key may contain: every key in OpenCC's t2s dictionaries is a CJK ideograph (the
 * lowest is U+346E; test_textnorm checks it against the installed data). */
#define T2S_MIN_CODEPOINT 0x3400
#define BMP_SIZE 0x10000

/* A scratch buffer grown for one huge text is dropped afterwards instead of being kept. */
#define SCRATCH_KEEP_CODEPOINTS (64 * 1024)

/* Inputs beyond this cannot be decomposed into an int32 buffer without overflow worries;
 * nothing that reaches the core is anywhere near it. */
#define MAX_INPUT_BYTES ((size_t)1 << 30)

struct voc_textnorm {
    opencc_t cc;
    /* Code points that occur in some key of the t2s dictionaries: one bit per BMP code
     * point, plus a sorted list of the few beyond it. NULL when the keys could not be
     * read; then T2S_MIN_CODEPOINT decides. */
    uint8_t *key_bmp;
    uint32_t *key_astral;
    size_t key_astral_count;
    int32_t *scratch; /* decomposed code points, then the re-encoded UTF-8 in place */
    size_t scratch_cap;
};

/* opencc_open/opencc_close and opencc_error() (one global message) are not documented as
 * thread-safe; contexts are created rarely, so a lock costs nothing. Conversions run on
 * each context's own handle and need no lock. */
static pthread_mutex_t opencc_lock = PTHREAD_MUTEX_INITIALIZER;

/* Absolute paths first: OpenCC's own lookup tries the working directory before its data
 * directory, and the daemon's working directory is not ours to trust. */
static const char *const t2s_configs[] = {
    "/usr/share/opencc/" OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP,
    "/usr/local/share/opencc/" OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP,
    OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP,
};

/* The code point at s (n bytes left) and its length in *len; -1 (and *len 1) when it is
 * not UTF-8. */
static int32_t next_codepoint(const char *s, size_t n, size_t *len)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t got = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
    *len = got > 0 ? (size_t)got : 1;
    if (got <= 0)
        return -1;
    return cp;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Read the dictionaries' keys into the key set. On any failure the context simply has no
 * key set (the conversion stays exact, only slower). */
static void load_key_set(struct voc_textnorm *tn, const char *config_path)
{
    char **keys = NULL, *err = NULL;
    size_t count = 0;
    if (voc_t2s_dict_keys(config_path, &keys, &count, &err) != 0) {
        free(err);
        return;
    }
    uint8_t *bmp = calloc(BMP_SIZE / 8, 1);
    size_t astral_cap = 0, astral_count = 0;
    uint32_t *astral = NULL;
    if (!bmp)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        const char *k = keys[i];
        size_t n = strlen(k);
        for (size_t at = 0, len; at < n; at += len) {
            int32_t cp = next_codepoint(k + at, n - at, &len);
            if (cp < 0)
                goto fail; /* not UTF-8: do not guess, fall back to the coarse bound */
            if (cp < BMP_SIZE) {
                bmp[cp >> 3] |= (uint8_t)(1u << (cp & 7));
                continue;
            }
            if (astral_count == astral_cap) {
                size_t cap = astral_cap ? astral_cap * 2 : 64;
                uint32_t *grown = realloc(astral, cap * sizeof *grown);
                if (!grown)
                    goto fail;
                astral = grown;
                astral_cap = cap;
            }
            astral[astral_count++] = (uint32_t)cp;
        }
    }
    if (astral_count > 0)
        qsort(astral, astral_count, sizeof *astral, compare_u32);
    tn->key_bmp = bmp;
    tn->key_astral = astral;
    tn->key_astral_count = astral_count;
    voc_t2s_dict_keys_free(keys, count);
    return;
fail:
    free(bmp);
    free(astral);
    voc_t2s_dict_keys_free(keys, count);
}

static bool in_key_set(const struct voc_textnorm *tn, uint32_t cp)
{
    if (!tn->key_bmp)
        return cp >= T2S_MIN_CODEPOINT;
    if (cp < BMP_SIZE)
        return (tn->key_bmp[cp >> 3] >> (cp & 7)) & 1;
    return tn->key_astral_count > 0 &&
           bsearch(&cp, tn->key_astral, tn->key_astral_count, sizeof cp, compare_u32) != NULL;
}

int voc_textnorm_new(struct voc_textnorm **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    struct voc_textnorm *tn = calloc(1, sizeof *tn);
    if (!tn)
        goto nomem;
    tn->cc = (opencc_t)-1;
    char last_error[256] = "no configuration found";
    pthread_mutex_lock(&opencc_lock);
    for (size_t i = 0; i < sizeof t2s_configs / sizeof t2s_configs[0]; i++) {
        const char *path = t2s_configs[i];
        if (path[0] == '/' && access(path, R_OK) != 0)
            continue;
        tn->cc = opencc_open(path);
        if (tn->cc != (opencc_t)-1) {
            load_key_set(tn, path);
            break;
        }
        const char *why = opencc_error();
        snprintf(last_error, sizeof last_error, "%s: %s", path, why ? why : "cannot open");
    }
    pthread_mutex_unlock(&opencc_lock);
    if (tn->cc == (opencc_t)-1) {
        if (err) {
            char msg[512];
            snprintf(msg, sizeof msg, "cannot load OpenCC %s (%s)",
                     OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP, last_error);
            *err = strdup(msg);
        }
        free(tn);
        return -1;
    }
    *out = tn;
    return 0;
nomem:
    if (err)
        *err = strdup("out of memory");
    return -1;
}

void voc_textnorm_free(struct voc_textnorm *tn)
{
    if (!tn)
        return;
    if (tn->cc != (opencc_t)-1) {
        pthread_mutex_lock(&opencc_lock);
        opencc_close(tn->cc);
        pthread_mutex_unlock(&opencc_lock);
    }
    free(tn->scratch);
    free(tn->key_bmp);
    free(tn->key_astral);
    free(tn);
}

const char *voc_normalize_strerror(int status)
{
    switch (status) {
    case VOC_NORM_OK:
        return "ok";
    case VOC_NORM_INVALID_UTF8:
        return "invalid UTF-8";
    case VOC_NORM_NOMEM:
        return "out of memory";
    case VOC_NORM_CONVERT:
        return "Traditional to Simplified conversion failed";
    default:
        return "unknown error";
    }
}

struct outbuf {
    char *data;
    size_t len, cap;
};

static int outbuf_append(struct outbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Convert already-folded (so valid) UTF-8 with OpenCC, one run of key-set characters at a
 * time, and copy everything else as it is. Exact: a dictionary match (segmentation or
 * conversion) consists of key-set characters only, so none can reach across a character
 * outside the set, and OpenCC's greedy left-to-right matching starts afresh after one. Most
 * of a Simplified text is outside the set, so OpenCC sees a few short runs instead of the
 * whole text: its per-character dictionary lookups were most of the cost of a new case.
 * NUL is outside the set too, which also keeps OpenCC from cutting the text at one. */
static int convert_t2s(struct voc_textnorm *tn, const char *s, size_t n, struct outbuf *b)
{
    size_t at = 0;
    while (at < n) {
        size_t start = at, len;
        /* The text is folded by utf8proc, so it is valid UTF-8. */
        while (at < n && !in_key_set(tn, (uint32_t)next_codepoint(s + at, n - at, &len)))
            at += len;
        if (at > start && outbuf_append(b, s + start, at - start) != 0)
            return VOC_NORM_NOMEM;
        start = at;
        while (at < n && in_key_set(tn, (uint32_t)next_codepoint(s + at, n - at, &len)))
            at += len;
        if (at == start)
            continue;
        char *conv = opencc_convert_utf8(tn->cc, s + start, at - start);
        if (!conv)
            return VOC_NORM_CONVERT;
        int rc = outbuf_append(b, conv, strlen(conv));
        opencc_convert_utf8_free(conv);
        if (rc != 0)
            return VOC_NORM_NOMEM;
    }
    return VOC_NORM_OK;
}

/* ASCII is its own NFKC form and folds by lowering A-Z, and it never needs OpenCC. */
static int normalize_ascii(const char *text, size_t len, char **out, size_t *out_len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return VOC_NORM_NOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        copy[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    copy[len] = '\0';
    *out = copy;
    *out_len = len;
    return VOC_NORM_OK;
}

static int is_ascii(const char *text, size_t len)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (unsigned char)text[i];
    return (acc & 0x80) == 0;
}

static int scratch_reserve(struct voc_textnorm *tn, size_t codepoints)
{
    if (tn->scratch_cap >= codepoints)
        return 0;
    int32_t *grown = realloc(tn->scratch, codepoints * sizeof *grown);
    if (!grown)
        return -1;
    tn->scratch = grown;
    tn->scratch_cap = codepoints;
    return 0;
}

/* NFKC + case fold into tn->scratch as UTF-8; returns the byte length or a status < 0. */
static utf8proc_ssize_t fold(struct voc_textnorm *tn, const char *text, size_t len)
{
    /* Valid UTF-8 has at most one code point per byte; compatibility decompositions can
     * expand, in which case utf8proc reports the size it needs and we go again. The +1 is
     * the slack utf8proc_reencode needs for its terminating NUL. */
    size_t want = len + 1;
    for (;;) {
        if (scratch_reserve(tn, want) != 0)
            return VOC_NORM_NOMEM;
        utf8proc_ssize_t n = utf8proc_decompose_custom(
            (const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, tn->scratch,
            (utf8proc_ssize_t)tn->scratch_cap - 1, NORM_OPTIONS, NULL, NULL);
        if (n == UTF8PROC_ERROR_INVALIDUTF8)
            return VOC_NORM_INVALID_UTF8;
        if (n < 0)
            return VOC_NORM_NOMEM;
        if ((size_t)n < tn->scratch_cap) {
            utf8proc_ssize_t bytes = utf8proc_reencode(tn->scratch, n, NORM_OPTIONS);
            return bytes < 0 ? VOC_NORM_NOMEM : bytes;
        }
        want = (size_t)n + 1;
    }
}

int voc_normalize(struct voc_textnorm *tn, const char *text, size_t len, char **out,
                  size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len > MAX_INPUT_BYTES)
        return VOC_NORM_NOMEM;
    if (is_ascii(text, len))
        return normalize_ascii(text, len, out, out_len);

    int rc;
    utf8proc_ssize_t folded_len = fold(tn, text, len);
    if (folded_len < 0) {
        rc = (int)folded_len;
        goto done;
    }
    const char *folded = (const char *)tn->scratch;
    struct outbuf b = {0};
    rc = convert_t2s(tn, folded, (size_t)folded_len, &b);
    if (rc != VOC_NORM_OK) {
        free(b.data);
        goto done;
    }
    if (!b.data && outbuf_append(&b, "", 0) != 0) {
        rc = VOC_NORM_NOMEM;
        goto done;
    }
    *out = b.data;
    *out_len = b.len;
done:
    if (tn->scratch_cap > SCRATCH_KEEP_CODEPOINTS) {
        free(tn->scratch);
        tn->scratch = NULL;
        tn->scratch_cap = 0;
    }
    return rc;
}
