/* Text normalisation for matching: Unicode NFKC + case folding (utf8proc), then Traditional
 * to Simplified Chinese (OpenCC, "t2s.json"). 質量問題, 质量问题 and ＡＢＣ/abc become equal,
 * so keyword rules and `q` search work whatever script or width the customer typed in.
 *
 * Threads: a voc_textnorm is owned by one thread at a time (it keeps its own OpenCC handle
 * and scratch buffer). The HTTP loop and the writer thread each make their own; that costs
 * one dictionary load (~5 ms, a few hundred KiB) per context and no lock on the hot path.
 * Creating and freeing contexts is safe from any thread.
 *
 * Speed: OpenCC costs about half a microsecond per character, more than everything else a new
 * case costs together, so it only sees the runs of characters that occur in some key of the
 * t2s dictionaries (read once per context through OpenCC's own loader, t2s_dict.h). A
 * character outside every key can neither be changed nor be part of a changed phrase, so
 * the result is identical to converting the whole text; test_textnorm checks every key of
 * the installed dictionaries in context. If the keys cannot be read, every code point at or
 * above U+3400 counts as a key character (the lowest key is U+346E). Pure ASCII skips
 * utf8proc too.
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
