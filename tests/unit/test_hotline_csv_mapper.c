/* hotline_csv's row mapper (plugins/hotline_csv/row_mapper.c): header mapping, the intake
 * record built for a row, every reject reason, the configured time formats in an IANA zone,
 * and the rejects file format; plus the checkpoint text and the JSON/CSV writers it uses.
 * Records are parsed back with jansson so the tests look at structure, not at bytes. */
#include "checkpoint.h"
#include "csv_reader.h"
#include "row_mapper.h"
#include "textbuf.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const targets[] = {"received_at",     "customer.name", "customer.contact",
                                      "customer.region", "product.model", "text",
                                      "expected",        "external_id",   "fields.agent_id"};
static const char *const headers[] = {"来电时间", "客户姓名", "联系电话", "所在地区", "产品型号",
                                      "问题描述", "客户诉求", "工单号",   "坐席工号"};
static const char *const formats[] = {"%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"};

static struct voc_row_mapper_config config(void)
{
    return (struct voc_row_mapper_config){.targets = targets,
                                          .headers = headers,
                                          .count = 9,
                                          .time_formats = formats,
                                          .time_format_count = 2,
                                          .time_zone = "Asia/Shanghai",
                                          .channel = "hotline"};
}

/* A fake row over a list of UTF-8 strings. */
struct fake {
    struct voc_csv_row row;
    char *fields[32];
    size_t lens[32];
};

static void fake_row(struct fake *f, uint64_t line, const char *const *cells, size_t n)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        f->fields[i] = (char *)cells[i];
        f->lens[i] = strlen(cells[i]);
    }
    f->row.count = n;
    f->row.fields = f->fields;
    f->row.lens = f->lens;
    f->row.start.line = line;
    f->row.last_line = line;
    f->row.raw = "";
}

static const char *const header_cells[] = {"工单号",   "来电时间", "客户姓名", "联系电话",
                                           "所在地区", "产品型号", "问题描述", "客户诉求",
                                           "坐席",     "坐席工号", "备注",     "坐席"};
#define NCOLS 12

static struct voc_row_mapper *mapper_for(const struct voc_row_mapper_config *cfg)
{
    struct fake h;
    fake_row(&h, 1, header_cells, NCOLS);
    struct voc_row_mapper *m = NULL;
    char err[256] = "";
    ck_assert_msg(voc_row_mapper_new(cfg, &h.row, VOC_CSV_GB18030, &m, err, sizeof err) == 0,
                  "mapper: %s", err);
    return m;
}

/* Map and parse the record; NULL for a reject (reason in *reason). */
static json_t *map(struct voc_row_mapper *m, const char *const *cells, size_t n, uint64_t line,
                   char *reason, size_t rlen)
{
    struct fake f;
    fake_row(&f, line, cells, n);
    struct voc_textbuf json, why;
    voc_textbuf_init(&json);
    voc_textbuf_init(&why);
    int rc = voc_row_mapper_map(m, &f.row, "row:f00d", &json, &why);
    ck_assert_int_ge(rc, 0);
    json_t *out = NULL;
    if (rc == 1) {
        json_error_t e;
        out = json_loads(json.data, 0, &e);
        ck_assert_msg(out != NULL, "not JSON: %s (%s)", json.data, e.text);
    } else {
        snprintf(reason, rlen, "%s", why.data);
    }
    voc_textbuf_free(&json);
    voc_textbuf_free(&why);
    return out;
}

static const char *str(json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = '\0';
        o = json_object_get(o, buf);
        path = dot + 1;
    }
    json_t *v = json_object_get(o, path);
    return v ? json_string_value(v) : NULL;
}

/* ---- records ---------------------------------------------------------------------------- */

START_TEST(full_record)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = mapper_for(&cfg);
    const char *cells[NCOLS] = {" GD-0042 ",
                                "2026-03-05 09:07",
                                "张三",
                                "13800138000",
                                "广东 深圳",
                                "KFR-35",
                                "\u3000空调不制冷，\r\n外机有异响\u3000 ",
                                "上门维修",
                                "王芳",
                                "A17",
                                "",
                                "第二坐席"};
    char reason[512] = "";
    json_t *r = map(m, cells, NCOLS, 7, reason, sizeof reason);
    ck_assert_msg(r != NULL, "rejected: %s", reason);
    ck_assert_str_eq(str(r, "channel"), "hotline");
    ck_assert_str_eq(str(r, "external_id"), "GD-0042");
    ck_assert_str_eq(str(r, "received_at"), "2026-03-05T09:07:00+08:00");
    ck_assert_str_eq(str(r, "customer.name"), "张三");
    ck_assert_str_eq(str(r, "customer.contact"), "13800138000");
    ck_assert_str_eq(str(r, "customer.region"), "广东 深圳");
    ck_assert_str_eq(str(r, "product.model"), "KFR-35");
    /* trimmed (U+3000 too), CRLF made LF */
    ck_assert_str_eq(str(r, "text"), "空调不制冷，\n外机有异响");
    ck_assert_str_eq(str(r, "expected"), "上门维修");
    /* unmapped columns by header name (an empty one left out, a repeated name suffixed),
     * and the one mapped to fields.agent_id */
    ck_assert_str_eq(str(r, "fields.坐席"), "王芳");
    ck_assert_str_eq(str(r, "fields.坐席_2"), "第二坐席");
    ck_assert_str_eq(str(r, "fields.agent_id"), "A17");
    ck_assert_ptr_null(json_object_get(json_object_get(r, "fields"), "备注"));
    ck_assert_uint_eq(json_object_size(json_object_get(r, "fields")), 3);
    ck_assert_ptr_null(json_object_get(r, "subject"));
    json_decref(r);
    voc_row_mapper_free(m);
}
END_TEST

START_TEST(external_id_fallback)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = mapper_for(&cfg);
    const char *cells[NCOLS] = {"", "2026/03/05 10:11:12", "", "", "", "", "漏水", "", "", "", "",
                                ""};
    char reason[256];
    json_t *r = map(m, cells, NCOLS, 42, reason, sizeof reason);
    ck_assert_ptr_nonnull(r);
    /* the caller's fallback id (row_ids.h), as it is */
    ck_assert_str_eq(str(r, "external_id"), "row:f00d");
    ck_assert_str_eq(str(r, "received_at"), "2026-03-05T10:11:12+08:00");
    ck_assert_ptr_null(json_object_get(r, "customer")); /* all empty: left out */
    json_decref(r);
    voc_row_mapper_free(m);

    /* A file without the 工单号 column at all: still fine, fallback ids. */
    static const char *const no_id[] = {"来电时间", "客户姓名", "联系电话", "所在地区",
                                        "产品型号", "问题描述", "客户诉求", "坐席工号"};
    struct fake h;
    fake_row(&h, 1, no_id, 8);
    char err[256] = "";
    ck_assert_int_eq(voc_row_mapper_new(&cfg, &h.row, VOC_CSV_UTF8, &m, err, sizeof err), 0);
    ck_assert_ptr_null(voc_row_mapper_id_column(m));
    const char *cells2[8] = {"2026-03-05 09:07", "", "", "", "", "坏了", "", ""};
    r = map(m, cells2, 8, 3, reason, sizeof reason);
    ck_assert_str_eq(str(r, "external_id"), "row:f00d");
    json_decref(r);
    voc_row_mapper_free(m);
}
END_TEST

START_TEST(json_escaping)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = mapper_for(&cfg);
    const char *cells[NCOLS] = {"a\"b\\c",
                                "2026-03-05 09:07",
                                "",
                                "",
                                "",
                                "",
                                "tab\there \x01 \"quoted\" back\\slash",
                                "",
                                "",
                                "",
                                "",
                                ""};
    char reason[256];
    json_t *r = map(m, cells, NCOLS, 2, reason, sizeof reason);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(str(r, "external_id"), "a\"b\\c");
    ck_assert_str_eq(str(r, "text"), "tab\there \x01 \"quoted\" back\\slash");
    json_decref(r);
    voc_row_mapper_free(m);
}
END_TEST

/* ---- rejects ---------------------------------------------------------------------------- */

START_TEST(reject_reasons)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = mapper_for(&cfg);
    char reason[512];
    const char *ok[NCOLS] = {"1", "2026-03-05 09:07", "", "", "", "", "text", "", "", "", "", ""};

    const char *few[3] = {"1", "2", "3"};
    ck_assert_ptr_null(map(m, few, 3, 5, reason, sizeof reason));
    ck_assert_str_eq(reason, "expected 12 columns, found 3");

    const char *bad_time[NCOLS];
    memcpy(bad_time, ok, sizeof ok);
    bad_time[1] = "05.03.2026 09:07";
    ck_assert_ptr_null(map(m, bad_time, NCOLS, 5, reason, sizeof reason));
    ck_assert_ptr_nonnull(strstr(reason, "unparseable time '05.03.2026 09:07'"));
    ck_assert_ptr_nonnull(strstr(reason, "来电时间"));

    bad_time[1] = "";
    ck_assert_ptr_null(map(m, bad_time, NCOLS, 5, reason, sizeof reason));
    ck_assert_ptr_nonnull(strstr(reason, "no time"));

    const char *empty_text[NCOLS];
    memcpy(empty_text, ok, sizeof ok);
    empty_text[6] = " \u3000\r\n ";
    ck_assert_ptr_null(map(m, empty_text, NCOLS, 5, reason, sizeof reason));
    ck_assert_str_eq(reason, "empty text (column '问题描述')");

    char long_id[300];
    memset(long_id, 'x', 299);
    long_id[299] = '\0';
    const char *id_row[NCOLS];
    memcpy(id_row, ok, sizeof ok);
    id_row[0] = long_id;
    ck_assert_ptr_null(map(m, id_row, NCOLS, 5, reason, sizeof reason));
    ck_assert_ptr_nonnull(strstr(reason, "longer than 256"));

    struct fake f;
    fake_row(&f, 9, ok, NCOLS);
    f.row.error = VOC_CSV_ROW_INVALID_BYTES;
    f.row.bad_field = 6;
    struct voc_textbuf json, why;
    voc_textbuf_init(&json);
    voc_textbuf_init(&why);
    ck_assert_int_eq(voc_row_mapper_map(m, &f.row, "f00d", &json, &why), 0);
    ck_assert_str_eq(why.data, "invalid GB18030 bytes in column 7 '问题描述'");
    voc_textbuf_reset(&why);
    f.row.error = VOC_CSV_ROW_TOO_LONG;
    f.row.last_line = 30;
    ck_assert_int_eq(voc_row_mapper_map(m, &f.row, "f00d", &json, &why), 0);
    ck_assert_ptr_nonnull(strstr(why.data, "lines 9-30"));
    voc_textbuf_free(&json);
    voc_textbuf_free(&why);
    voc_row_mapper_free(m);
}
END_TEST

START_TEST(rejects_file_lines)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = mapper_for(&cfg);
    struct voc_textbuf out;
    voc_textbuf_init(&out);
    voc_row_mapper_reject_header(m, &out);
    ck_assert_str_eq(out.data, "line,reason,\"工单号\",\"来电时间\",\"客户姓名\",\"联系电话\","
                               "\"所在地区\",\"产品型号\",\"问题描述\",\"客户诉求\",\"坐席\","
                               "\"坐席工号\",\"备注\",\"坐席\"\r\n");
    voc_textbuf_reset(&out);
    const char *cells[3] = {"a,b", "say \"hi\"", "line\nbreak"};
    struct fake f;
    fake_row(&f, 12, cells, 3);
    voc_rejects_line(&f.row, VOC_CSV_UTF8, "expected 12 columns, found 3", &out);
    ck_assert_str_eq(out.data, "12,\"expected 12 columns, found 3\",\"a,b\",\"say \"\"hi\"\"\","
                               "\"line\nbreak\"\r\n");
    /* A row that could not be split: its raw text (converted) in one field. */
    voc_textbuf_reset(&out);
    f.row.error = VOC_CSV_ROW_UNTERMINATED;
    f.row.raw = "2,\"\xD6\xD0";
    f.row.raw_len = 5;
    voc_rejects_line(&f.row, VOC_CSV_GB18030, "the file ends inside a quoted field", &out);
    ck_assert_str_eq(out.data, "12,\"the file ends inside a quoted field\",\"2,\"\"中\"\r\n");
    voc_textbuf_free(&out);
    voc_row_mapper_free(m);
}
END_TEST

/* ---- header and config -------------------------------------------------------------------- */

START_TEST(header_problems)
{
    struct voc_row_mapper_config cfg = config();
    struct voc_row_mapper *m = NULL;
    char err[256];
    static const char *const missing[] = {"工单号", "来电时间", "问题描述"};
    struct fake h;
    fake_row(&h, 1, missing, 3);
    ck_assert_int_eq(voc_row_mapper_new(&cfg, &h.row, VOC_CSV_UTF8, &m, err, sizeof err), -1);
    ck_assert_str_eq(err, "the header has no column '客户姓名' (mapped to customer.name)");

    static const char *const twice[] = {"来电时间", "客户姓名", "联系电话", "所在地区", "产品型号",
                                        "问题描述", "客户诉求", "坐席工号", "问题描述"};
    fake_row(&h, 1, twice, 9);
    ck_assert_int_eq(voc_row_mapper_new(&cfg, &h.row, VOC_CSV_UTF8, &m, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "two columns named '问题描述'"));

    /* Header cells are trimmed (a stray BOM, spaces). */
    static const char *const padded[] = {"\xEF\xBB\xBF来电时间 ",
                                         " 客户姓名",
                                         "联系电话",
                                         "所在地区",
                                         "产品型号",
                                         "问题描述",
                                         "客户诉求",
                                         "坐席工号"};
    fake_row(&h, 1, padded, 8);
    ck_assert_int_eq(voc_row_mapper_new(&cfg, &h.row, VOC_CSV_UTF8, &m, err, sizeof err), 0);
    voc_row_mapper_free(m);
}
END_TEST

START_TEST(config_check)
{
    char err[512];
    struct voc_row_mapper_config cfg = config();
    ck_assert_int_eq(voc_row_mapper_check(&cfg, err, sizeof err), 0);

    const char *t1[] = {"text", "customer.shoe_size"};
    const char *h1[] = {"a", "b"};
    cfg.targets = t1;
    cfg.headers = h1;
    cfg.count = 2;
    ck_assert_int_eq(voc_row_mapper_check(&cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'customer.shoe_size' is not an intake field"));

    const char *t2[] = {"expected"};
    cfg.targets = t2;
    cfg.count = 1;
    ck_assert_int_eq(voc_row_mapper_check(&cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "map 'text'"));

    const char *t3[] = {"text"};
    cfg.targets = t3;
    cfg.time_zone = "Mars/Olympus_Mons";
    ck_assert_int_eq(voc_row_mapper_check(&cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "Mars/Olympus_Mons"));
}
END_TEST

/* ---- times --------------------------------------------------------------------------------- */

struct time_case {
    const char *zone, *text, *want; /* want NULL = no match */
};

static const struct time_case time_cases[] = {
    {"Asia/Shanghai", "2026-03-05 09:07", "2026-03-05T09:07:00+08:00"},
    {"Asia/Shanghai", "2026/3/5 9:07:33", "2026-03-05T09:07:33+08:00"}, /* Excel, unpadded */
    {"Asia/Shanghai", "  2026-12-31 23:59  ", "2026-12-31T23:59:00+08:00"},
    {"Asia/Shanghai", "2026-02-30 10:00", NULL}, /* no such day */
    {"Asia/Shanghai", "2026-03-05 25:00", NULL},
    {"Asia/Shanghai", "2026-03-05 09:07 extra", NULL},
    {"Asia/Shanghai", "2026-03-05", NULL},
    {"Asia/Shanghai", "46087.38", NULL}, /* an Excel serial number */
    {"Europe/Berlin", "2026-07-01 12:00", "2026-07-01T12:00:00+02:00"},
    {"Europe/Berlin", "2026-01-15 12:00", "2026-01-15T12:00:00+01:00"},
    {"UTC", "2026/01/15 00:00:00", "2026-01-15T00:00:00+00:00"},
};

START_TEST(time_formats)
{
    const struct time_case *c = &time_cases[_i];
    const char *fmts[] = {"%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"};
    GTimeZone *tz = g_time_zone_new_identifier(c->zone);
    ck_assert_ptr_nonnull(tz);
    char out[64] = "";
    int rc = voc_hotline_parse_time(c->text, fmts, 2, tz, out, sizeof out);
    if (c->want) {
        ck_assert_msg(rc == 0, "'%s' in %s did not parse", c->text, c->zone);
        ck_assert_str_eq(out, c->want);
    } else {
        ck_assert_msg(rc == -1, "'%s' parsed as %s", c->text, out);
    }
    g_time_zone_unref(tz);
}
END_TEST

/* ---- checkpoint and text -------------------------------------------------------------------- */

START_TEST(checkpoint_round_trip)
{
    struct voc_csv_checkpoint c = {.pos = {123456789012ULL, 987654, true},
                                   .rejects_len = 4096,
                                   .rows = 1000000,
                                   .created = 999000,
                                   .existing = 500,
                                   .rejects = 500};
    char buf[VOC_CSV_CHECKPOINT_MAX];
    size_t n = voc_csv_checkpoint_encode(&c, buf);
    ck_assert_uint_gt(n, 0);
    struct voc_csv_checkpoint d;
    ck_assert_int_eq(voc_csv_checkpoint_decode(buf, n, &d), 0);
    ck_assert(memcmp(&c.pos.offset, &d.pos.offset, sizeof c.pos.offset) == 0);
    ck_assert_uint_eq(d.pos.line, 987654);
    ck_assert(d.pos.after_cr);
    ck_assert_uint_eq(d.rejects_len, 4096);
    ck_assert_uint_eq(d.rows, 1000000);
    ck_assert_uint_eq(d.created, 999000);
    ck_assert_uint_eq(d.existing, 500);
    ck_assert_uint_eq(d.rejects, 500);
    /* Not ours, truncated, trailing junk: refused. */
    ck_assert_int_eq(voc_csv_checkpoint_decode("hello", 5, &d), -1);
    ck_assert_int_eq(voc_csv_checkpoint_decode(buf, n - 3, &d), -1); /* "rejects=" */
    char junk[VOC_CSV_CHECKPOINT_MAX + 8];
    memcpy(junk, buf, n);
    memcpy(junk + n, " x", 2);
    ck_assert_int_eq(voc_csv_checkpoint_decode(junk, n + 2, &d), -1);
}
END_TEST

START_TEST(textbuf_writers)
{
    struct voc_textbuf b;
    voc_textbuf_init(&b);
    voc_textbuf_json_string(&b, "a\"\\\n\r\t\x01\x1f中", strlen("a\"\\\n\r\t\x01\x1f中"));
    ck_assert_str_eq(b.data, "\"a\\\"\\\\\\n\\r\\t\\u0001\\u001f中\"");
    voc_textbuf_reset(&b);
    voc_textbuf_csv_field(&b, "x\"y", 3);
    ck_assert_str_eq(b.data, "\"x\"\"y\"");
    voc_textbuf_reset(&b);
    for (int i = 0; i < 10000; i++)
        voc_textbuf_printf(&b, "%d,", i);
    ck_assert_uint_eq(b.len, strlen(b.data));
    ck_assert(!b.failed);
    voc_textbuf_free(&b);
}
END_TEST

static Suite *mapper_suite(void)
{
    Suite *s = suite_create("hotline_csv_mapper");
    TCase *tc = tcase_create("mapper");
    tcase_add_test(tc, full_record);
    tcase_add_test(tc, external_id_fallback);
    tcase_add_test(tc, json_escaping);
    tcase_add_test(tc, reject_reasons);
    tcase_add_test(tc, rejects_file_lines);
    tcase_add_test(tc, header_problems);
    tcase_add_test(tc, config_check);
    tcase_add_loop_test(tc, time_formats, 0, (int)(sizeof time_cases / sizeof time_cases[0]));
    tcase_add_test(tc, checkpoint_round_trip);
    tcase_add_test(tc, textbuf_writers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mapper_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
