/* hotline_csv's streaming reader (plugins/hotline_csv/csv_reader.c): encoding detection,
 * GB18030 and UTF-8 conversion (4-byte GB18030 sequences included, split across input
 * chunks anywhere), RFC 4180 quoting, multi-line fields, line numbers and byte offsets, and
 * resuming at a row's offset. GB18030 bytes are written out by hand, not produced with
 * iconv, so the conversion is checked against the standard rather than against itself. */
#include "csv_reader.h"
#include "row_ids.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GB18030 bytes of a few characters (GB 18030-2005 code charts; cross-checked with Python's
 * independent gb18030 codec). */
#define GB_ZHONG "\xD6\xD0"          /* 中 U+4E2D */
#define GB_WEN "\xCE\xC4"            /* 文 U+6587 */
#define GB_KONG "\xBF\xD5"           /* 空 U+7A7A */
#define GB_TIAO "\xB5\xF7"           /* 调 U+8C03 */
#define GB_EURO "\xA2\xE3"           /* € U+20AC */
#define GB_U20000 "\x95\x32\x82\x36" /* 𠀀 U+20000, four bytes */
#define GB_U00C9 "\x81\x30\x87\x37"  /* É U+00C9, four bytes in the BMP */
#define UTF8_U20000 "\xF0\xA0\x80\x80"

/* A row copied out of the reader (its own rows only live until the next call). */
struct trow {
    struct voc_csv_row r;
    char *f[32];
    size_t n;
};

struct rows {
    struct trow row[64];
    size_t count;
};

static void copy_row(struct rows *out, const struct voc_csv_row *r)
{
    ck_assert_uint_lt(out->count, 64);
    struct trow *t = &out->row[out->count++];
    t->r = *r;
    t->n = r->count;
    ck_assert_uint_le(r->count, 32);
    for (size_t i = 0; i < r->count; i++) {
        ck_assert_uint_eq(strlen(r->fields[i]), r->lens[i]);
        t->f[i] = strdup(r->fields[i]);
    }
    t->r.raw = NULL;
}

static void free_rows(struct rows *rs)
{
    for (size_t i = 0; i < rs->count; i++)
        for (size_t k = 0; k < rs->row[i].n; k++)
            free(rs->row[i].f[k]);
    memset(rs, 0, sizeof *rs);
}

/* Read `data` fed in chunks of `chunk` bytes (0 = all at once) starting at `start`. */
static void read_all(struct rows *out, enum voc_csv_encoding enc, const char *data, size_t len,
                     size_t chunk, struct voc_csv_pos start, size_t max_row)
{
    struct voc_csv_reader *r;
    struct voc_csv_reader_opts o = {.encoding = enc, .start = start, .max_row_bytes = max_row};
    ck_assert_int_eq(voc_csv_reader_new(&r, &o), 0);
    memset(out, 0, sizeof *out);
    size_t off = (size_t)start.offset;
    if (chunk == 0)
        chunk = len + 1;
    for (;;) {
        size_t n = len - off < chunk ? len - off : chunk;
        bool eof = off + n == len;
        voc_csv_reader_input(r, data + off, n, eof);
        off += n;
        struct voc_csv_row row;
        int rc;
        while ((rc = voc_csv_reader_next(r, &row)) == 1)
            copy_row(out, &row);
        ck_assert_int_eq(rc, 0);
        if (eof)
            break;
    }
    voc_csv_reader_free(r);
}

static const struct voc_csv_pos TOP = {0, 1, false};

static void same_rows(const struct rows *a, const struct rows *b, const char *what)
{
    ck_assert_msg(a->count == b->count, "%s: %zu rows vs %zu", what, a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const struct trow *x = &a->row[i], *y = &b->row[i];
        ck_assert_msg(x->n == y->n, "%s: row %zu field count", what, i);
        for (size_t k = 0; k < x->n; k++)
            ck_assert_msg(strcmp(x->f[k], y->f[k]) == 0, "%s: row %zu field %zu: '%s' vs '%s'",
                          what, i, k, x->f[k], y->f[k]);
        ck_assert_msg(x->r.start.offset == y->r.start.offset &&
                          x->r.end.offset == y->r.end.offset &&
                          x->r.start.line == y->r.start.line && x->r.last_line == y->r.last_line &&
                          x->r.error == y->r.error,
                      "%s: row %zu position/error differs", what, i);
    }
}

/* ---- GB18030 -------------------------------------------------------------------------- */

static const char gb_file[] =
    "ID," GB_WEN "," GB_ZHONG "\r\n"
    "1,\"" GB_KONG GB_TIAO ",\r\n" GB_U20000 " " GB_EURO "\"," GB_U00C9 "\r\n"
    "2,plain," GB_U20000 GB_U20000 "\r\n";

START_TEST(gb18030_fields)
{
    struct rows rs;
    read_all(&rs, VOC_CSV_GB18030, gb_file, sizeof gb_file - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 3);
    ck_assert_str_eq(rs.row[0].f[1], "文");
    ck_assert_str_eq(rs.row[0].f[2], "中");
    /* A quoted field with an embedded comma and CRLF, a 4-byte character after the break. */
    ck_assert_str_eq(rs.row[1].f[1], "空调,\r\n" UTF8_U20000 " €");
    ck_assert_str_eq(rs.row[1].f[2], "É");
    ck_assert_str_eq(rs.row[2].f[2], UTF8_U20000 UTF8_U20000);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(rs.row[i].r.error, VOC_CSV_ROW_OK);
    free_rows(&rs);
}
END_TEST

/* Every chunk size from 1 byte up gives the same rows: 4-byte sequences, CRLF pairs and
 * quotes split anywhere. */
START_TEST(gb18030_any_split)
{
    struct rows whole, part;
    read_all(&whole, VOC_CSV_GB18030, gb_file, sizeof gb_file - 1, 0, TOP, 0);
    for (size_t chunk = 1; chunk < sizeof gb_file; chunk++) {
        char what[32];
        snprintf(what, sizeof what, "chunk %zu", chunk);
        read_all(&part, VOC_CSV_GB18030, gb_file, sizeof gb_file - 1, chunk, TOP, 0);
        same_rows(&whole, &part, what);
        free_rows(&part);
    }
    free_rows(&whole);
}
END_TEST

START_TEST(gb18030_invalid_bytes)
{
    /* 0xFF never appears in GB18030; 0x81 0x30 0x20 is a broken 4-byte sequence. */
    static const char data[] = "a,b,c\n1," GB_ZHONG "\xFF" GB_WEN ",ok\n2,x,\x81\x30\x20y\n3,"
                               "fine,ok\n";
    struct rows rs;
    read_all(&rs, VOC_CSV_GB18030, data, sizeof data - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 4);
    ck_assert_int_eq(rs.row[1].r.error, VOC_CSV_ROW_INVALID_BYTES);
    ck_assert_uint_eq(rs.row[1].r.bad_field, 1);
    ck_assert_str_eq(rs.row[1].f[1], "中\xEF\xBF\xBD文"); /* shown as U+FFFD */
    ck_assert_str_eq(rs.row[1].f[2], "ok");
    ck_assert_int_eq(rs.row[2].r.error, VOC_CSV_ROW_INVALID_BYTES);
    ck_assert_uint_eq(rs.row[2].r.bad_field, 2);
    ck_assert_int_eq(rs.row[3].r.error, VOC_CSV_ROW_OK);
    ck_assert_str_eq(rs.row[3].f[1], "fine");
    free_rows(&rs);
}
END_TEST

/* ---- UTF-8 ------------------------------------------------------------------------------ */

START_TEST(utf8_with_and_without_bom)
{
    static const char plain[] = "名称,内容\n甲,\"多行\n文本 " UTF8_U20000 "\"\n";
    static const char bom[] = "\xEF\xBB\xBF名称,内容\n甲,\"多行\n文本 " UTF8_U20000 "\"\n";
    struct voc_csv_sniff s;
    size_t bom_len = 99;
    const char *problem = NULL;

    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s, plain, sizeof plain - 1);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom_len, &problem), VOC_CSV_UTF8);
    ck_assert_uint_eq(bom_len, 0);

    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s, bom, 2); /* the BOM split across updates */
    voc_csv_sniff_update(&s, bom + 2, sizeof bom - 3);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom_len, &problem), VOC_CSV_UTF8);
    ck_assert_uint_eq(bom_len, 3);

    struct rows a, b;
    read_all(&a, VOC_CSV_UTF8, plain, sizeof plain - 1, 0, TOP, 0);
    struct voc_csv_pos after_bom = {3, 1, false};
    read_all(&b, VOC_CSV_UTF8, bom, sizeof bom - 1, 5, after_bom, 0);
    ck_assert_uint_eq(a.count, 2);
    ck_assert_str_eq(a.row[0].f[0], "名称");
    ck_assert_str_eq(b.row[0].f[0], "名称");
    ck_assert_str_eq(a.row[1].f[1], "多行\n文本 " UTF8_U20000);
    ck_assert_str_eq(b.row[1].f[1], "多行\n文本 " UTF8_U20000);
    ck_assert_uint_eq(b.row[1].r.start.offset, a.row[1].r.start.offset + 3);
    free_rows(&a);
    free_rows(&b);
}
END_TEST

START_TEST(utf8_invalid_row)
{
    /* An overlong encoding, a lone continuation byte and a surrogate. */
    static const char data[] = "a,b\n1,\xC0\xAF\n2,ok\n\x80,x\n3,\xED\xA0\x80\n";
    struct rows rs;
    read_all(&rs, VOC_CSV_UTF8, data, sizeof data - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 5);
    ck_assert_int_eq(rs.row[1].r.error, VOC_CSV_ROW_INVALID_BYTES);
    ck_assert_uint_eq(rs.row[1].r.bad_field, 1);
    ck_assert_str_eq(rs.row[1].f[1], "\xEF\xBF\xBD\xEF\xBF\xBD");
    ck_assert_int_eq(rs.row[2].r.error, VOC_CSV_ROW_OK);
    ck_assert_int_eq(rs.row[3].r.error, VOC_CSV_ROW_INVALID_BYTES);
    ck_assert_uint_eq(rs.row[3].r.bad_field, 0);
    ck_assert_int_eq(rs.row[4].r.error, VOC_CSV_ROW_INVALID_BYTES);
    free_rows(&rs);
}
END_TEST

START_TEST(nul_byte_is_invalid)
{
    static const char data[] = "a,b\n1,x\0y\n";
    struct rows rs;
    read_all(&rs, VOC_CSV_UTF8, data, sizeof data - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 2);
    ck_assert_int_eq(rs.row[1].r.error, VOC_CSV_ROW_INVALID_BYTES);
    ck_assert_uint_eq(rs.row[1].r.bad_field, 1);
    free_rows(&rs);
}
END_TEST

/* ---- detection ---------------------------------------------------------------------------- */

START_TEST(sniff_decisions)
{
    struct voc_csv_sniff s;
    size_t bom;
    const char *problem = NULL;

    /* Chinese GB18030 text is almost all invalid as UTF-8. */
    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s, gb_file, sizeof gb_file - 1);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom, &problem), VOC_CSV_GB18030);
    ck_assert_uint_eq(bom, 0);

    /* Pure ASCII reads the same either way: UTF-8. */
    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s, "a,b\n1,2\n", 8);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom, &problem), VOC_CSV_UTF8);

    /* A UTF-8 export with one damaged byte among many characters stays UTF-8 (that row is
     * rejected later); a sequence split between two updates is still one sequence. */
    voc_csv_sniff_init(&s);
    for (int i = 0; i < 30; i++)
        voc_csv_sniff_update(&s, "空调不制冷\n", strlen("空调不制冷\n"));
    voc_csv_sniff_update(&s, "\xE7", 1);
    voc_csv_sniff_update(&s, "\xA9\xBA\xFF\n", 4);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom, &problem), VOC_CSV_UTF8);
    ck_assert_uint_eq(s.invalid, 1);

    /* GB18030 BOM */
    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s,
                         "\x84\x31\x95\x33"
                         "a,b\n",
                         8);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom, &problem), VOC_CSV_GB18030);
    ck_assert_uint_eq(bom, 4);

    /* UTF-16 is refused with advice. */
    voc_csv_sniff_init(&s);
    voc_csv_sniff_update(&s,
                         "\xFF\xFE"
                         "a\0,\0",
                         6);
    ck_assert_int_eq(voc_csv_sniff_result(&s, &bom, &problem), 0);
    ck_assert_ptr_nonnull(strstr(problem, "UTF-16"));
}
END_TEST

/* ---- quoting, lines, offsets ------------------------------------------------------------- */

START_TEST(rfc4180_quoting)
{
    static const char data[] = "a,b,c\r\n"
                               "\"x,y\",\"say \"\"hi\"\"\", z \r\n"
                               ",,\r\n"
                               "\"\",\" \",\"\"\"\"\r\n"
                               "last,row,no newline";
    struct rows rs;
    read_all(&rs, VOC_CSV_UTF8, data, sizeof data - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 5);
    ck_assert_str_eq(rs.row[1].f[0], "x,y");
    ck_assert_str_eq(rs.row[1].f[1], "say \"hi\"");
    ck_assert_str_eq(rs.row[1].f[2], " z "); /* spaces belong to the field */
    ck_assert_uint_eq(rs.row[2].n, 3);
    ck_assert_str_eq(rs.row[2].f[2], "");
    ck_assert_str_eq(rs.row[3].f[0], "");
    ck_assert_str_eq(rs.row[3].f[1], " ");
    ck_assert_str_eq(rs.row[3].f[2], "\"");
    ck_assert_str_eq(rs.row[4].f[2], "no newline");
    ck_assert_uint_eq(rs.row[4].r.end.offset, sizeof data - 1);
    free_rows(&rs);
}
END_TEST

START_TEST(lines_and_offsets)
{
    /* line 1 header; 2-4 one row with two embedded breaks (LF and CRLF); 5 blank; 6 row;
     * 7 a row ended by a lone CR (old Mac), 8 a row. */
    static const char data[] = "h1,h2\r\n"
                               "1,\"one\ntwo\r\nthree\"\r\n"
                               "\r\n"
                               "2,x\r\n"
                               "3,y\r"
                               "4,z\n";
    struct rows rs;
    read_all(&rs, VOC_CSV_UTF8, data, sizeof data - 1, 0, TOP, 0);
    ck_assert_uint_eq(rs.count, 5);
    const struct voc_csv_row *r = &rs.row[1].r;
    ck_assert_uint_eq(r->start.line, 2);
    ck_assert_uint_eq(r->last_line, 4);
    ck_assert_uint_eq(r->start.offset, 7);
    ck_assert_str_eq(rs.row[1].f[1], "one\ntwo\r\nthree");
    ck_assert_uint_eq(rs.row[2].r.start.line, 6);
    ck_assert_uint_eq(rs.row[2].r.start.offset, (size_t)(strstr(data, "2,x") - data));
    ck_assert_uint_eq(rs.row[3].r.start.line, 7);
    ck_assert_uint_eq(rs.row[4].r.start.line, 8);
    ck_assert_uint_eq(rs.row[4].r.end.line, 9);
    /* Each row ends where the next starts, or just before blank lines. */
    ck_assert_uint_le(rs.row[1].r.end.offset, rs.row[2].r.start.offset);
    free_rows(&rs);
}
END_TEST

/* Resuming at any row's end position (as a checkpoint does) gives exactly the rows after it,
 * with the same line numbers, also when the position sits between the CR and LF of a
 * CRLF. */
START_TEST(resume_at_row_end)
{
    struct rows whole, tail;
    read_all(&whole, VOC_CSV_GB18030, gb_file, sizeof gb_file - 1, 0, TOP, 0);
    for (size_t i = 0; i < whole.count; i++) {
        struct voc_csv_pos at = whole.row[i].r.end;
        read_all(&tail, VOC_CSV_GB18030, gb_file, sizeof gb_file - 1, 3, at, 0);
        ck_assert_uint_eq(tail.count, whole.count - i - 1);
        for (size_t k = 0; k < tail.count; k++) {
            ck_assert_uint_eq(tail.row[k].r.start.line, whole.row[i + 1 + k].r.start.line);
            ck_assert_uint_eq(tail.row[k].r.start.offset, whole.row[i + 1 + k].r.start.offset);
            ck_assert_str_eq(tail.row[k].f[1], whole.row[i + 1 + k].f[1]);
        }
        free_rows(&tail);
    }
    /* CRLF: the row ends after the CR; the position says so. */
    ck_assert(whole.row[0].r.end.after_cr);
    ck_assert_int_eq(gb_file[whole.row[0].r.end.offset], '\n');
    free_rows(&whole);
}
END_TEST

/* ---- broken quoting ---------------------------------------------------------------------------
 */

START_TEST(unclosed_quote_is_cut)
{
    /* Row 2 opens a quote it never closes; with a 40-byte limit the reader gives up on it
     * and starts again on the line after the one where the limit was hit. */
    static const char data[] = "a,b\n"
                               "1,\"never closed\n"
                               "swallowed line one\n"
                               "swallowed line two\n"
                               "3,after\n"
                               "4,good\n";
    struct rows rs;
    read_all(&rs, VOC_CSV_UTF8, data, sizeof data - 1, 7, TOP, 40);
    ck_assert_uint_ge(rs.count, 3);
    ck_assert_int_eq(rs.row[1].r.error, VOC_CSV_ROW_TOO_LONG);
    ck_assert_uint_eq(rs.row[1].r.start.line, 2);
    ck_assert_uint_gt(rs.row[1].r.last_line, 2);
    const struct trow *last = &rs.row[rs.count - 1];
    ck_assert_int_eq(last->r.error, VOC_CSV_ROW_OK);
    ck_assert_str_eq(last->f[1], "good");
    ck_assert_uint_eq(last->r.start.line, 6);
    free_rows(&rs);
}
END_TEST

START_TEST(unterminated_at_eof)
{
    static const char data[] = "a,b\n1,ok\n2,\"open\nstill open\n";
    struct voc_csv_reader *r;
    struct voc_csv_reader_opts o = {.encoding = VOC_CSV_UTF8, .start = TOP};
    ck_assert_int_eq(voc_csv_reader_new(&r, &o), 0);
    voc_csv_reader_input(r, data, sizeof data - 1, true);
    struct voc_csv_row row;
    ck_assert_int_eq(voc_csv_reader_next(r, &row), 1);
    ck_assert_int_eq(voc_csv_reader_next(r, &row), 1);
    ck_assert_int_eq(row.error, VOC_CSV_ROW_OK);
    ck_assert_int_eq(voc_csv_reader_next(r, &row), 1);
    ck_assert_int_eq(row.error, VOC_CSV_ROW_UNTERMINATED);
    ck_assert_uint_eq(row.start.line, 3);
    ck_assert_uint_eq(row.last_line, 4);
    ck_assert_uint_eq(row.raw_len, strlen("2,\"open\nstill open\n"));
    ck_assert_int_eq(voc_csv_reader_next(r, &row), 0);
    voc_csv_reader_free(r);
}
END_TEST

/* A row cut by the end of the file is marked: a file still being written may have more of
 * it. Quoted or not, and also the last row of a file without a final line break. */
START_TEST(terminated_flag)
{
    static const struct {
        const char *data;
        bool last_terminated;
    } cases[] = {
        {"a,b\r\n1,x\r\n", true},     {"a,b\n1,x\n", true},
        {"a,b\r\n1,x", false},        {"a,b\r\n1,\"half\r\nof it", false},
        {"a,b\r\n1,\"done\"", false}, {"a,b\r\n1,x\r", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rows rs;
        read_all(&rs, VOC_CSV_UTF8, cases[i].data, strlen(cases[i].data), 0, TOP, 0);
        ck_assert_uint_eq(rs.count, 2);
        ck_assert_msg(rs.row[0].r.terminated, "case %zu: header", i);
        ck_assert_msg(rs.row[1].r.terminated == cases[i].last_terminated, "case %zu", i);
        free_rows(&rs);
    }
}
END_TEST

/* '|' is the second byte of many GB18030 characters (e.g. 刓 = 0x84 0x7C): used as the
 * delimiter on raw bytes it would cut them. Such delimiters are refused unless the files are
 * UTF-8; the safe ones are accepted. */
START_TEST(delimiter_safety)
{
    static const char row[] = "\x84|x";
    struct voc_csv_reader *r;
    struct voc_csv_reader_opts o = {.encoding = VOC_CSV_GB18030, .delimiter = '|', .start = TOP};
    ck_assert_int_eq(voc_csv_reader_new(&r, &o), 0);
    voc_csv_reader_input(r, row, sizeof row - 1, true);
    struct voc_csv_row one;
    ck_assert_int_eq(voc_csv_reader_next(r, &one), 1);
    ck_assert_uint_eq(one.count, 2); /* the character was split: what the check prevents */
    voc_csv_reader_free(r);

    const char *bad_gb[] = {"|", "@", "A", "z", "~", "^", "_", "0", "9", "\\"};
    for (size_t i = 0; i < sizeof bad_gb / sizeof bad_gb[0]; i++) {
        unsigned char d = (unsigned char)bad_gb[i][0];
        ck_assert_msg(voc_csv_delimiter_problem(d, true) != NULL, "'%c' with gb18030", d);
        ck_assert_msg(voc_csv_delimiter_problem(d, false) == NULL, "'%c' with utf-8", d);
    }
    const char *good[] = {",", ";", "\t", ":", " ", "#", "/", "!", "?"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        unsigned char d = (unsigned char)good[i][0];
        ck_assert_msg(voc_csv_delimiter_problem(d, true) == NULL, "0x%02x", d);
        ck_assert_msg(voc_csv_delimiter_problem(d, false) == NULL, "0x%02x", d);
    }
    for (unsigned d = 0x80; d <= 0xff; d++) {
        ck_assert(voc_csv_delimiter_problem((unsigned char)d, true) != NULL);
        ck_assert(voc_csv_delimiter_problem((unsigned char)d, false) != NULL);
    }
    ck_assert(voc_csv_delimiter_problem('"', false) != NULL);
    ck_assert(voc_csv_delimiter_problem('\n', false) != NULL);
    ck_assert(voc_csv_delimiter_problem('\r', true) != NULL);
    /* Every byte a GB18030 character can contain after its first is refused. */
    for (unsigned d = 0x30; d <= 0x39; d++)
        ck_assert(voc_csv_delimiter_problem((unsigned char)d, true) != NULL);
    for (unsigned d = 0x40; d <= 0x7e; d++)
        ck_assert(voc_csv_delimiter_problem((unsigned char)d, true) != NULL);
}
END_TEST

/* Fallback row ids come from the row's bytes: the same in any file, numbered for repeats. */
START_TEST(row_ids_from_content)
{
    struct voc_row_ids *a, *b;
    ck_assert_int_eq(voc_row_ids_new(&a), 0);
    ck_assert_int_eq(voc_row_ids_new(&b), 0);
    char id1[VOC_ROW_ID_MAX], id2[VOC_ROW_ID_MAX], id3[VOC_ROW_ID_MAX], x[VOC_ROW_ID_MAX];
    ck_assert_int_eq(voc_row_ids_next(a, "1,x", 3, id1), 0);
    ck_assert_int_eq(voc_row_ids_next(a, "2,y", 3, id2), 0);
    ck_assert_int_eq(voc_row_ids_next(a, "1,x", 3, id3), 0);
    /* sha256("1,x") */
    ck_assert_str_eq(id1, "row:2ce33e350c23d4a89fa1e86bb103bac156785f0a6888548507c300dd9a5377e9");
    ck_assert_uint_eq(strlen(id2), 68);
    ck_assert_str_ne(id1, id2);
    ck_assert_int_eq(strncmp(id3, id1, 68), 0);
    ck_assert_str_eq(id3 + 68, ":2"); /* the second identical row */
    /* Another file (another reading): the same ids in the same order. */
    ck_assert_int_eq(voc_row_ids_next(b, "1,x", 3, x), 0);
    ck_assert_str_eq(x, id1);
    ck_assert_int_eq(voc_row_ids_next(b, "2,y", 3, x), 0);
    ck_assert_str_eq(x, id2);
    /* Many rows (the table grows), each distinct, then all again: every one numbered 2. */
    char buf[32];
    for (int round = 1; round <= 2; round++) {
        for (int i = 0; i < 5000; i++) {
            int n = snprintf(buf, sizeof buf, "row %d", i);
            ck_assert_int_eq(voc_row_ids_next(b, buf, (size_t)n, x), 0);
            if (round == 1)
                ck_assert_uint_eq(strlen(x), 68);
            else
                ck_assert_str_eq(x + 68, ":2");
        }
    }
    ck_assert_int_eq(voc_row_ids_next(b, "", 0, x), 0); /* an empty row has an id too */
    voc_row_ids_free(a);
    voc_row_ids_free(b);
}
END_TEST

START_TEST(lossy_conversion)
{
    char *out;
    size_t len;
    ck_assert_int_eq(
        voc_csv_to_utf8_lossy(VOC_CSV_GB18030, GB_ZHONG "\xFF" GB_U20000, 7, &out, &len), 0);
    ck_assert_str_eq(out, "中\xEF\xBF\xBD" UTF8_U20000);
    ck_assert_uint_eq(len, strlen(out));
    free(out);
    ck_assert_int_eq(voc_csv_to_utf8_lossy(VOC_CSV_UTF8, "a\xC3", 2, &out, &len), 0);
    ck_assert_str_eq(out, "a\xEF\xBF\xBD");
    free(out);
    ck_assert_uint_eq(voc_utf8_valid_prefix("abc" UTF8_U20000 "\xF4\x90\x80\x80", 11), 7);
}
END_TEST

static Suite *reader_suite(void)
{
    Suite *s = suite_create("hotline_csv_reader");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, gb18030_fields);
    tcase_add_test(tc, gb18030_any_split);
    tcase_add_test(tc, gb18030_invalid_bytes);
    tcase_add_test(tc, utf8_with_and_without_bom);
    tcase_add_test(tc, utf8_invalid_row);
    tcase_add_test(tc, nul_byte_is_invalid);
    tcase_add_test(tc, sniff_decisions);
    tcase_add_test(tc, rfc4180_quoting);
    tcase_add_test(tc, lines_and_offsets);
    tcase_add_test(tc, resume_at_row_end);
    tcase_add_test(tc, unclosed_quote_is_cut);
    tcase_add_test(tc, unterminated_at_eof);
    tcase_add_test(tc, lossy_conversion);
    tcase_add_test(tc, terminated_flag);
    tcase_add_test(tc, delimiter_safety);
    tcase_add_test(tc, row_ids_from_content);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reader_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
