/* Text normalisation for matching: Unicode NFKC + case folding (utf8proc), then Traditional
 * to Simplified Chinese (OpenCC, "t2s.json"). 質量問題, 质量问题 and ＡＢＣ/abc become equal,
 * so keyword rules and `q` search work whatever script or width the customer typed in.
 *
 * Threads: a voc_textnorm is owned by one thread at a time (it keeps its own OpenCC handle
 * and scratch buffer). The HTTP loop and the writer thread each make their own; that costs
 * one dictionary load (~5 ms, a few hundred KiB) per context and no lock on the hot path.
 * Creating and freeing contexts is safe from any thread.
 *
 * Speed: OpenCC costs microseconds per call even for short strings, so it only runs when
 * the folded text has a code point at or above U+3400: every key in OpenCC's t2s
 * dictionaries is a CJK ideograph (the lowest is U+346E), so text below that bound comes
 * out of OpenCC unchanged and skipping the call gives the identical result. Pure ASCII
 * skips utf8proc too.
 */
#ifndef VOC_TEXTNORM_H
#define VOC_TEXTNORM_H

#include <stddef.h>

struct voc_textnorm;

enum voc_norm_status {
    VOC_NORM_OK = 0,
    VOC_NORM_INVALID_UTF8 = -1, /* the input is not valid UTF-8 */
    VOC_NORM_NOMEM = -2,        /* allocation failed, or the input is too large */
    VOC_NORM_CONVERT = -3,      /* OpenCC failed */
};

/* Open a context (loads the OpenCC t2s dictionaries). Returns 0 and sets *out, or -1 with
 * *err (malloc'd) saying why. */
int voc_textnorm_new(struct voc_textnorm **out, char **err);
void voc_textnorm_free(struct voc_textnorm *tn);

/* Normalise `len` bytes of UTF-8 (NUL bytes are allowed and kept). On success returns
 * VOC_NORM_OK with *out a malloc'd, NUL-terminated string of *out_len bytes; otherwise a
 * negative voc_norm_status and *out is NULL. */
int voc_normalize(struct voc_textnorm *tn, const char *text, size_t len, char **out,
                  size_t *out_len);

/* A short English description of a voc_norm_status. */
const char *voc_normalize_strerror(int status);

#endif
