#include "csv_reader.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

/* libcsv's parser states (csv.h keeps them private to libcsv.c but the struct is public):
 * a quoted field still open at the end of the file is FIELD_BEGUN with `quoted` set. */
#define LIBCSV_FIELD_BEGUN 2

#define DEFAULT_MAX_ROW (1024 * 1024)

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

const char *voc_csv_encoding_name(enum voc_csv_encoding enc)
{
    switch (enc) {
    case VOC_CSV_UTF8:
        return "utf-8";
    case VOC_CSV_GB18030:
        return "gb18030";
    }
    return "?";
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* A lead byte: 0 invalid, 1 ASCII, else 2 with the continuation count and the allowed range
 * of the first continuation byte (which rules out overlongs, surrogates, > U+10FFFF). */
static int utf8_lead(unsigned char c, unsigned *need, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        *need = 1;
    else if (c == 0xE0)
        *need = 2, *lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        *need = 2;
    else if (c == 0xED)
        *need = 2, *hi = 0x9F;
    else if (c == 0xF0)
        *need = 3, *lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        *need = 3;
    else if (c == 0xF4)
        *need = 3, *hi = 0x8F;
    else
        return 0;
    return 2;
}

/* Length of the valid UTF-8 sequence at s, 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned need = 0;
    unsigned char lo, hi;
    int kind = utf8_lead(s[0], &need, &lo, &hi);
    if (kind != 2)
        return (size_t)kind;
    if (n < need + 1 || s[1] < lo || s[1] > hi)
        return 0;
    for (unsigned i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need + 1;
}

static size_t ascii_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    /* Eight bytes at a time: most CSV bytes (digits, delimiters) are ASCII. */
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

size_t voc_utf8_valid_prefix(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        i += ascii_prefix(s + i, n - i);
        if (i == n)
            break;
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0)
            break;
        i += k;
    }
    return i;
}

static int lossy_utf8(const unsigned char *s, size_t n, char **out, size_t *out_len)
{
    char *o = malloc(n * 3 + 1);
    if (!o)
        return -1;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = s[i] < 0x80 ? 1 : utf8_seq(s + i, n - i);
        if (k == 0) {
            memcpy(o + w, replacement, 3);
            w += 3;
            i++;
            continue;
        }
        memcpy(o + w, s + i, k);
        w += k;
        i += k;
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return 0;
}

/* ---- GB18030 ------------------------------------------------------------------------------- */

/* Convert with iconv, U+FFFD for each byte that does not start a valid sequence. `o` has
 * room for 3 * n + 1 bytes (a GB18030 byte never becomes more than 3 UTF-8 bytes, and an
 * invalid one becomes exactly 3). Returns bytes written, or -1 when iconv cannot be used;
 * *first_bad = input index of the first invalid byte, or n. */
static long gb_convert(iconv_t cd, const unsigned char *s, size_t n, char *o, size_t *first_bad)
{
    char *in = (char *)s;
    size_t inleft = n;
    char *out = o;
    size_t outleft = n * 3 + 1;
    *first_bad = n;
    iconv(cd, NULL, NULL, NULL, NULL);
    while (inleft > 0) {
        if (iconv(cd, &in, &inleft, &out, &outleft) != (size_t)-1)
            break;
        if (errno != EILSEQ && errno != EINVAL)
            return -1;
        size_t at = (size_t)((unsigned char *)in - s);
        if (*first_bad == n)
            *first_bad = at;
        memcpy(out, replacement, 3);
        out += 3;
        outleft -= 3;
        in++;
        inleft--;
    }
    return (long)(out - o);
}

int voc_csv_to_utf8_lossy(enum voc_csv_encoding enc, const char *raw, size_t len, char **out,
                          size_t *out_len)
{
    if (enc != VOC_CSV_GB18030)
        return lossy_utf8((const unsigned char *)raw, len, out, out_len);
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1)
        return -1;
    char *o = malloc(len * 3 + 1);
    size_t bad;
    long n = o ? gb_convert(cd, (const unsigned char *)raw, len, o, &bad) : -1;
    iconv_close(cd);
    if (n < 0) {
        free(o);
        return -1;
    }
    o[n] = '\0';
    *out = o;
    *out_len = (size_t)n;
    return 0;
}

/* ---- detection ----------------------------------------------------------------------------- */

void voc_csv_sniff_init(struct voc_csv_sniff *s)
{
    memset(s, 0, sizeof *s);
}

void voc_csv_sniff_update(struct voc_csv_sniff *s, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (s->head_len < sizeof s->head) {
        /* Only the file's first bytes matter for the BOM. */
        size_t k = sizeof s->head - s->head_len < len ? sizeof s->head - s->head_len : len;
        memcpy(s->head + s->head_len, p, k);
        s->head_len += k;
    }
    size_t i = 0;
    while (i < len) {
        if (s->need == 0) {
            i += ascii_prefix(p + i, len - i);
            if (i == len)
                break;
            unsigned need = 0;
            unsigned char lo, hi;
            if (utf8_lead(p[i], &need, &lo, &hi) == 0) {
                s->invalid++;
            } else {
                s->need = need;
                s->lo = lo;
                s->hi = hi;
            }
            i++;
            continue;
        }
        unsigned char c = p[i];
        if (c < s->lo || c > s->hi) {
            /* The sequence is broken; this byte starts afresh. */
            s->invalid++;
            s->need = 0;
            continue;
        }
        s->lo = 0x80;
        s->hi = 0xBF;
        if (--s->need == 0)
            s->multibyte++;
        i++;
    }
}

int voc_csv_bom(const unsigned char *head, size_t len, size_t *bom_len)
{
    *bom_len = 0;
    if (len >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) {
        *bom_len = 3;
        return VOC_CSV_UTF8;
    }
    if (len >= 4 && head[0] == 0x84 && head[1] == 0x31 && head[2] == 0x95 && head[3] == 0x33) {
        *bom_len = 4;
        return VOC_CSV_GB18030;
    }
    if (len >= 2 && ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF)))
        return -1;
    return 0;
}

enum voc_csv_encoding voc_csv_sniff_result(const struct voc_csv_sniff *s, size_t *bom_len,
                                           const char **problem)
{
    int bom = voc_csv_bom(s->head, s->head_len, bom_len);
    if (bom < 0) {
        *problem = "the file is UTF-16 (Excel \"Unicode text\"); export it as \"CSV UTF-8\" or "
                   "\"CSV (comma delimited)\" instead";
        return 0;
    }
    if (bom > 0)
        return (enum voc_csv_encoding)bom;
    uint64_t invalid = s->invalid + (s->need ? 1 : 0);
    /* Chinese GB18030 text read as UTF-8 is invalid almost everywhere; a UTF-8 file with a
     * damaged row has a handful of invalid sequences among many valid ones. */
    if (invalid == 0 || s->multibyte >= invalid * 20)
        return VOC_CSV_UTF8;
    return VOC_CSV_GB18030;
}

/* ---- reader -------------------------------------------------------------------------------- */

struct voc_csv_reader {
    struct csv_parser parser;
    enum voc_csv_encoding enc;
    unsigned char delim;
    size_t max_row;
    iconv_t cd;

    const unsigned char *in;
    size_t in_len, in_pos;
    bool eof, finished;
    struct voc_csv_pos pos;
    bool at_break; /* the last byte passed was a CR or LF */

    /* the row being read */
    bool row_open, row_done, skipping;
    struct voc_csv_pos row_start;
    size_t row_bytes;
    enum voc_csv_row_error error;
    size_t bad_field;
    bool ended_by_break; /* vs. by the end of the file */
    unsigned char *raw;  /* the row's bytes, up to max_row */
    size_t raw_len, raw_cap;
    bool raw_truncated;
    unsigned char *fraw; /* fields in the file's encoding, each followed by a NUL */
    size_t fraw_len, fraw_cap;
    size_t *foff;
    size_t nfields, fields_cap;
    bool oom;

    /* the row handed out */
    char *out;
    size_t out_cap;
    char **fields;
    size_t *lens;
    size_t table_cap;
};

static int no_space(unsigned char c)
{
    (void)c;
    return 0; /* RFC 4180: spaces belong to the field */
}

static int parser_init(struct voc_csv_reader *r)
{
    if (csv_init(&r->parser, 0) != 0)
        return -1;
    csv_set_delim(&r->parser, r->delim);
    csv_set_space_func(&r->parser, no_space);
    /* libcsv grows its field buffer by blk_size at a time: keep long fields cheap. */
    csv_set_blk_size(&r->parser, 16 * 1024);
    return 0;
}

int voc_csv_reader_new(struct voc_csv_reader **out, const struct voc_csv_reader_opts *opts)
{
    struct voc_csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->enc = opts->encoding;
    r->delim = opts->delimiter ? opts->delimiter : ',';
    r->max_row = opts->max_row_bytes ? opts->max_row_bytes : DEFAULT_MAX_ROW;
    r->pos = opts->start;
    if (r->pos.line == 0)
        r->pos.line = 1;
    r->cd = (iconv_t)-1;
    if (r->enc == VOC_CSV_GB18030) {
        r->cd = iconv_open("UTF-8", "GB18030");
        if (r->cd == (iconv_t)-1) {
            free(r);
            return -1;
        }
    }
    if (parser_init(r) != 0) {
        if (r->cd != (iconv_t)-1)
            iconv_close(r->cd);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void voc_csv_reader_free(struct voc_csv_reader *r)
{
    if (!r)
        return;
    csv_free(&r->parser);
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    free(r->raw);
    free(r->fraw);
    free(r->foff);
    free(r->out);
    free(r->fields);
    free(r->lens);
    free(r);
}

void voc_csv_reader_input(struct voc_csv_reader *r, const void *buf, size_t len, bool eof)
{
    r->in = buf;
    r->in_len = len;
    r->in_pos = 0;
    r->eof = eof;
}

struct voc_csv_pos voc_csv_reader_pos(const struct voc_csv_reader *r)
{
    return r->pos;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

static void on_field(void *s, size_t len, void *data)
{
    struct voc_csv_reader *r = data;
    if (grow((void **)&r->fraw, &r->fraw_cap, r->fraw_len + len + 1, 1) != 0 ||
        grow((void **)&r->foff, &r->fields_cap, r->nfields + 1, sizeof *r->foff) != 0) {
        r->oom = true;
        return;
    }
    unsigned char *dst = r->fraw + r->fraw_len;
    if (len)
        memcpy(dst, s, len);
    if (len && memchr(dst, 0, len)) {
        /* NUL separates fields below and is never text: mark the field bad. */
        if (r->error == VOC_CSV_ROW_OK) {
            r->error = VOC_CSV_ROW_INVALID_BYTES;
            r->bad_field = r->nfields;
        }
        for (size_t i = 0; i < len; i++)
            if (dst[i] == 0)
                dst[i] = '?';
    }
    dst[len] = '\0';
    r->foff[r->nfields++] = r->fraw_len;
    r->fraw_len += len + 1;
}

static void on_row(int c, void *data)
{
    struct voc_csv_reader *r = data;
    r->row_done = true;
    r->ended_by_break = c >= 0;
}

/* Bytes up to and including the first CR or LF, or all of them. */
static size_t piece_len(const unsigned char *p, size_t n, bool *term)
{
    const unsigned char *lf = memchr(p, '\n', n);
    size_t lim = lf ? (size_t)(lf - p) : n;
    const unsigned char *cr = memchr(p, '\r', lim);
    *term = cr || lf;
    if (cr)
        return (size_t)(cr - p) + 1;
    return lf ? lim + 1 : n;
}

/* Move past a piece (only its last byte can be a line break). */
static void advance(struct voc_csv_reader *r, const unsigned char *p, size_t n)
{
    bool prev_cr = n == 1 ? r->pos.after_cr : false;
    unsigned char last = p[n - 1];
    r->pos.offset += n;
    r->in_pos += n;
    r->at_break = last == '\r' || last == '\n';
    if (last == '\r') {
        r->pos.line++;
        r->pos.after_cr = true;
    } else {
        if (last == '\n' && !prev_cr)
            r->pos.line++;
        r->pos.after_cr = false;
    }
}

static void open_row(struct voc_csv_reader *r)
{
    r->row_open = true;
    r->row_start = r->pos;
    r->row_start.after_cr = false;
    r->row_bytes = 0;
    r->error = VOC_CSV_ROW_OK;
    r->bad_field = 0;
    r->ended_by_break = false;
    r->raw_len = 0;
    r->raw_truncated = false;
    r->fraw_len = 0;
    r->nfields = 0;
}

static void keep_raw(struct voc_csv_reader *r, const unsigned char *p, size_t n)
{
    size_t room = r->max_row - r->raw_len;
    size_t k = n < room ? n : room;
    if (k < n)
        r->raw_truncated = true;
    if (k == 0)
        return;
    if (grow((void **)&r->raw, &r->raw_cap, r->raw_len + k, 1) != 0) {
        r->oom = true;
        return;
    }
    memcpy(r->raw + r->raw_len, p, k);
    r->raw_len += k;
}

static size_t field_of(const struct voc_csv_reader *r, size_t at)
{
    size_t i = 0;
    while (i + 1 < r->nfields && r->foff[i + 1] <= at)
        i++;
    return i;
}

static size_t field_len(const struct voc_csv_reader *r, size_t i)
{
    size_t end = i + 1 < r->nfields ? r->foff[i + 1] : r->fraw_len;
    return end - r->foff[i] - 1;
}

/* Point the row's field table at NUL-separated UTF-8 text. */
static void split_fields(struct voc_csv_reader *r, char *text)
{
    char *s = text;
    for (size_t i = 0; i < r->nfields; i++) {
        size_t len = strlen(s);
        r->fields[i] = s;
        r->lens[i] = len;
        s += len + 1;
    }
}

/* Fields to UTF-8 (r->out, or in place when they already are) and the row's field table. */
static int convert_fields(struct voc_csv_reader *r)
{
    size_t n = r->nfields ? r->nfields : 1;
    if (n > r->table_cap) {
        char **f = realloc(r->fields, n * sizeof *f);
        if (!f)
            return -1;
        r->fields = f;
        size_t *l = realloc(r->lens, n * sizeof *l);
        if (!l)
            return -1;
        r->lens = l;
        r->table_cap = n;
    }
    if (ascii_prefix(r->fraw, r->fraw_len) == r->fraw_len) {
        split_fields(r, (char *)r->fraw);
        return 0;
    }
    if (grow((void **)&r->out, &r->out_cap, r->fraw_len * 3 + 1, 1) != 0)
        return -1;
    if (r->enc == VOC_CSV_GB18030) {
        size_t bad;
        long w = gb_convert(r->cd, r->fraw, r->fraw_len, r->out, &bad);
        if (w < 0)
            return -1;
        r->out[w] = '\0';
        if (bad < r->fraw_len && r->error == VOC_CSV_ROW_OK) {
            r->error = VOC_CSV_ROW_INVALID_BYTES;
            r->bad_field = field_of(r, bad);
        }
        split_fields(r, r->out);
        return 0;
    }
    bool all_valid = true;
    for (size_t i = 0; i < r->nfields; i++) {
        size_t len = field_len(r, i);
        const char *s = (const char *)r->fraw + r->foff[i];
        if (voc_utf8_valid_prefix(s, len) != len) {
            if (r->error == VOC_CSV_ROW_OK) {
                r->error = VOC_CSV_ROW_INVALID_BYTES;
                r->bad_field = i;
            }
            all_valid = false;
        }
    }
    if (all_valid) {
        split_fields(r, (char *)r->fraw);
        return 0;
    }
    size_t w = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        char *fixed;
        size_t len;
        if (lossy_utf8(r->fraw + r->foff[i], field_len(r, i), &fixed, &len) != 0)
            return -1;
        memcpy(r->out + w, fixed, len + 1);
        w += len + 1;
        free(fixed);
    }
    split_fields(r, r->out);
    return 0;
}

static int emit(struct voc_csv_reader *r, struct voc_csv_row *row, uint64_t last_line)
{
    r->row_open = false;
    if (r->oom)
        return -1;
    if (r->error == VOC_CSV_ROW_TOO_LONG) {
        r->nfields = 0;
        r->fraw_len = 0;
    }
    if (convert_fields(r) != 0)
        return -1;
    size_t raw_len = r->raw_len;
    if (r->ended_by_break && !r->raw_truncated && raw_len > 0 &&
        (r->raw[raw_len - 1] == '\n' || r->raw[raw_len - 1] == '\r'))
        raw_len--;
    *row = (struct voc_csv_row){
        .start = r->row_start,
        .end = r->pos,
        .last_line = last_line,
        .count = r->nfields,
        .fields = r->fields,
        .lens = r->lens,
        .error = r->error,
        .bad_field = r->bad_field,
        .raw = (const char *)r->raw,
        .raw_len = raw_len,
        .raw_truncated = r->raw_truncated,
        .terminated = r->ended_by_break,
    };
    if (!row->raw)
        row->raw = "";
    return 1;
}

/* A row too long to be real (a quote that is never closed swallows the rest of the file):
 * drop what the parser holds and start afresh after the current line. */
static int cut_row(struct voc_csv_reader *r)
{
    r->error = VOC_CSV_ROW_TOO_LONG;
    r->ended_by_break = true;
    csv_free(&r->parser);
    return parser_init(r);
}

int voc_csv_reader_next(struct voc_csv_reader *r, struct voc_csv_row *row)
{
    for (;;) {
        if (r->in_pos == r->in_len) {
            if (!r->eof || r->finished)
                return 0;
            r->finished = true;
            if (r->skipping) {
                r->skipping = false;
                r->ended_by_break = false;
                return emit(r, row, r->pos.line);
            }
            if (!r->row_open)
                return 0;
            if (r->parser.pstate == LIBCSV_FIELD_BEGUN && r->parser.quoted &&
                r->error == VOC_CSV_ROW_OK)
                r->error = VOC_CSV_ROW_UNTERMINATED;
            r->row_done = false;
            csv_fini(&r->parser, on_field, on_row, r);
            r->ended_by_break = false;
            return emit(r, row, r->at_break ? r->pos.line - 1 : r->pos.line);
        }
        const unsigned char *p = r->in + r->in_pos;
        bool term;
        size_t n = piece_len(p, r->in_len - r->in_pos, &term);
        if (r->skipping) {
            uint64_t line = r->pos.line;
            advance(r, p, n);
            if (!term)
                continue;
            r->skipping = false;
            return emit(r, row, line);
        }
        if (!r->row_open) {
            if (term && n == 1) {
                advance(r, p, n); /* a blank line between rows */
                continue;
            }
            open_row(r);
        }
        keep_raw(r, p, n);
        r->row_done = false;
        if (csv_parse(&r->parser, p, n, on_field, on_row, r) != n)
            return -1; /* not strict: only running out of memory stops libcsv */
        r->row_bytes += n;
        uint64_t line = r->pos.line;
        advance(r, p, n);
        if (r->row_done)
            return emit(r, row, line);
        if (r->row_bytes > r->max_row) {
            if (cut_row(r) != 0)
                return -1;
            if (term)
                return emit(r, row, line);
            r->skipping = true;
        }
    }
}

const char *voc_csv_delimiter_problem(unsigned char d, bool gb18030)
{
    if (d == '"' || d == '\r' || d == '\n' || d == 0)
        return "'\"', CR, LF and NUL belong to the CSV syntax";
    if (d >= 0x80)
        return "a byte of 0x80 or more is part of a multi-byte character in UTF-8 and GB18030";
    if (gb18030 && d >= '0' && d <= '9')
        return "digits are the 2nd and 4th bytes of GB18030 four-byte characters";
    if (gb18030 && d >= 0x40 && d <= 0x7e)
        return "bytes 0x40-0x7E ('@', letters, '[', '\\', ']', '^', '_', '`', '{', '|', '}', "
               "'~') are the second byte of GB18030/GBK characters";
    return NULL;
}
