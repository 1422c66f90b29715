/* Streaming CSV reader for call-centre exports: RFC 4180 parsing with libcsv (quotes,
 * embedded delimiters and line breaks, CRLF), conversion of every field to UTF-8 (from UTF-8
 * or GB18030), and for each row where it starts and ends in the file, so that an import can
 * be checkpointed and resumed at a byte offset.
 *
 * The reader parses the file's own bytes and converts per row, not the other way round:
 * GB18030 never uses the bytes of '"', ',', CR or LF inside a multi-byte character, so
 * parsing the raw bytes is exact, and row offsets stay offsets into the file.
 *
 * Pure code (no I/O): the caller feeds bytes and pulls rows. */
#ifndef VOC_HOTLINE_CSV_READER_H
#define VOC_HOTLINE_CSV_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum voc_csv_encoding {
    VOC_CSV_UTF8 = 1,
    VOC_CSV_GB18030,
};

const char *voc_csv_encoding_name(enum voc_csv_encoding enc);

/* ---- encoding detection ------------------------------------------------------------------
 * Fed the whole file (in pieces of any size). A BOM decides (UTF-8 EF BB BF, GB18030
 * 84 31 95 33); UTF-16 BOMs are refused. Otherwise the file is UTF-8 when it has no invalid
 * UTF-8 sequence, or when invalid sequences are rare next to valid multi-byte ones (a UTF-8
 * export with a few corrupt rows: those rows are rejected, the rest imported); else GB18030. */
struct voc_csv_sniff {
    unsigned char head[4];
    size_t head_len;
    unsigned need;        /* continuation bytes still expected */
    unsigned char lo, hi; /* allowed range of the next continuation byte */
    uint64_t multibyte;   /* valid multi-byte sequences seen */
    uint64_t invalid;     /* invalid sequences seen */
};

void voc_csv_sniff_init(struct voc_csv_sniff *s);
void voc_csv_sniff_update(struct voc_csv_sniff *s, const void *buf, size_t len);
/* The verdict after the last update. Returns the encoding and sets *bom_len (bytes to skip
 * at offset 0), or returns 0 and sets *problem when the file cannot be read as either. */
enum voc_csv_encoding voc_csv_sniff_result(const struct voc_csv_sniff *s, size_t *bom_len,
                                           const char **problem);
/* The BOM at the start of head (at least 4 bytes or the whole file), if any: its encoding
 * (0 = none, -1 = UTF-16) and length. */
int voc_csv_bom(const unsigned char *head, size_t len, size_t *bom_len);

/* ---- rows ---------------------------------------------------------------------------------- */

/* A place in the file: byte offset, 1-based line number there, and whether the byte before
 * it was a CR (so that an LF right at the offset is not counted as a second line break). */
struct voc_csv_pos {
    uint64_t offset;
    uint64_t line;
    bool after_cr;
};

enum voc_csv_row_error {
    VOC_CSV_ROW_OK = 0,
    VOC_CSV_ROW_INVALID_BYTES, /* a field is not valid in the encoding (or holds a NUL) */
    VOC_CSV_ROW_TOO_LONG,      /* longer than max_row_bytes: usually a quote never closed */
    VOC_CSV_ROW_UNTERMINATED,  /* the file ends inside a quoted field */
};

struct voc_csv_row {
    struct voc_csv_pos start; /* its first byte */
    struct voc_csv_pos end;   /* just past its line break: where reading resumes */
    uint64_t last_line;       /* line of its last byte (> start.line for multi-line rows) */
    size_t count;             /* fields */
    char **fields;            /* UTF-8, NUL-terminated; with INVALID_BYTES, bad bytes are
                                 shown as U+FFFD */
    size_t *lens;
    enum voc_csv_row_error error;
    size_t bad_field; /* INVALID_BYTES: index of the first bad field */
    const char *raw;  /* the row's bytes as they are in the file (without the final
                         line break), at most max_row_bytes */
    size_t raw_len;
    bool raw_truncated;
    bool terminated; /* it ended with a line break, not with the end of the file: a file
                        still being written may have more of this row to come */
};

struct voc_csv_reader_opts {
    enum voc_csv_encoding encoding;
    unsigned char delimiter;  /* 0 = ',' */
    size_t max_row_bytes;     /* 0 = 1 MiB */
    struct voc_csv_pos start; /* where the first byte fed sits in the file ({0, 1, false} for
                                 the start; the caller skips a BOM itself) */
};

struct voc_csv_reader;

int voc_csv_reader_new(struct voc_csv_reader **out, const struct voc_csv_reader_opts *opts);
void voc_csv_reader_free(struct voc_csv_reader *r);
/* Hand the next bytes of the file to the reader; eof = nothing follows them. `buf` must stay
 * valid until voc_csv_reader_next() returned 0 (it is used up then). */
void voc_csv_reader_input(struct voc_csv_reader *r, const void *buf, size_t len, bool eof);
/* The next row: 1 (row filled; valid until the next call), 0 (input used up: feed more, or
 * done after eof), -1 (out of memory). */
int voc_csv_reader_next(struct voc_csv_reader *r, struct voc_csv_row *row);
/* Where the next byte to be fed sits. */
struct voc_csv_pos voc_csv_reader_pos(const struct voc_csv_reader *r);

/* Can `d` separate fields of a file in these encodings without splitting characters?
 * NULL when it can, else why not. Bytes 0x80-0xFF are never a character by themselves
 * (UTF-8 or GB18030); with GB18030 possible (`gb18030`: encoding auto or gb18030) neither are
 * the second bytes of its two-byte characters (0x40-0x7E: '@', letters, '|', '~' ...) or the
 * digits of its four-byte ones. '"', CR and LF belong to the CSV syntax. */
const char *voc_csv_delimiter_problem(unsigned char d, bool gb18030);

/* Bytes of `raw` as UTF-8 from `enc`, invalid sequences shown as U+FFFD, appended to a
 * malloc'd NUL-terminated string (*out, *out_len). Returns 0 or -1. */
int voc_csv_to_utf8_lossy(enum voc_csv_encoding enc, const char *raw, size_t len, char **out,
                          size_t *out_len);

/* Length of the valid UTF-8 prefix of s. */
size_t voc_utf8_valid_prefix(const char *s, size_t len);

#endif
