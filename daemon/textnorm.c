#include "textnorm.h"

#include <opencc/opencc.h>
#include <pthread.h>
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

/* Lowest code point that can appear in a t2s dictionary key (textnorm.h explains why the
 * bound makes skipping OpenCC exact; test_textnorm checks it against the installed data). */
#define T2S_MIN_CODEPOINT 0x3400

/* A scratch buffer grown for one huge text is dropped afterwards instead of being kept. */
#define SCRATCH_KEEP_CODEPOINTS (64 * 1024)

/* Inputs beyond this cannot be decomposed into an int32 buffer without overflow worries;
 * nothing that reaches the core is anywhere near it. */
#define MAX_INPUT_BYTES ((size_t)1 << 30)

struct voc_textnorm {
    opencc_t cc;
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
        if (tn->cc != (opencc_t)-1)
            break;
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

/* Does valid UTF-8 `s` contain a code point >= T2S_MIN_CODEPOINT? U+3400 is E3 90 80, so
 * that is any lead byte above E3, or E3 followed by 90 or more. */
static int needs_t2s(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0xE3)
            continue;
        if (s[i] > 0xE3 || (i + 1 < n && s[i + 1] >= 0x90))
            return 1;
    }
    return 0;
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

/* Convert already-folded UTF-8 with OpenCC. OpenCC treats its input as a C string and drops
 * everything after a NUL, so NUL-free pieces are converted one by one and the NULs kept. */
static int convert_t2s(struct voc_textnorm *tn, const char *s, size_t n, struct outbuf *b)
{
    const char *end = s + n;
    for (;;) {
        const char *nul = memchr(s, '\0', (size_t)(end - s));
        size_t piece = nul ? (size_t)(nul - s) : (size_t)(end - s);
        if (piece > 0 && needs_t2s((const unsigned char *)s, piece)) {
            char *conv = opencc_convert_utf8(tn->cc, s, piece);
            if (!conv)
                return VOC_NORM_CONVERT;
            int rc = outbuf_append(b, conv, strlen(conv));
            opencc_convert_utf8_free(conv);
            if (rc != 0)
                return VOC_NORM_NOMEM;
        } else if (outbuf_append(b, s, piece) != 0) {
            return VOC_NORM_NOMEM;
        }
        if (!nul)
            return VOC_NORM_OK;
        if (outbuf_append(b, "", 1) != 0)
            return VOC_NORM_NOMEM;
        s = nul + 1;
    }
}

static int copy_out(const char *s, size_t n, char **out, size_t *out_len)
{
    char *copy = malloc(n + 1);
    if (!copy)
        return VOC_NORM_NOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    *out = copy;
    *out_len = n;
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
    if (!needs_t2s((const unsigned char *)folded, (size_t)folded_len)) {
        rc = copy_out(folded, (size_t)folded_len, out, out_len);
        goto done;
    }
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
