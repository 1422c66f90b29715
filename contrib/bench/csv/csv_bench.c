/* The pieces of the hotline CSV benchmark that run without vocd (contrib/bench/csv/run.py
 * drives them and vocd):
 *
 *   csv_bench gen ROWS FILE     a call-centre export: GB18030, CRLF, the columns, a
 *                               unique call time per row (so a run can be checked), every 10th
 *                               description quoted over two lines with a comma and a 4-byte
 *                               character (U+20000)
 *   csv_bench libcsv FILE       baseline: libcsv parses the file, fields counted, nothing else
 *   csv_bench iconv FILE        baseline: libcsv + every field converted to UTF-8 with iconv
 *   csv_bench plugin FILE       the plugin's own work without vocd: its reader (libcsv,
 *                               GB18030 -> UTF-8, row offsets) and mapper (intake JSON, times)
 *
 * Each prints one line: `<mode> rows=N bytes=N seconds=S rows_per_s=R`. */
#define _GNU_SOURCE
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csv_reader.h"
#include "row_mapper.h"
#include "textbuf.h"

#define CHUNK (1024 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "csv_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void report(const char *mode, unsigned long long rows, unsigned long long bytes, double secs)
{
    printf("%s rows=%llu bytes=%llu seconds=%.3f rows_per_s=%.0f\n", mode, rows, bytes, secs,
           secs > 0 ? (double)rows / secs : 0.0);
}

/* ---- gen ------------------------------------------------------------------------------------ */

static const char *const texts[] = {
    "空调不制冷，外机有异响",       "洗衣机漏水，地板都湿了",       "冰箱噪音大，晚上睡不着",
    "遥控器失灵，换了电池也不行",   "安装师傅迟到两个小时，态度差", "热水器显示E4故障",
    "产品很好用，表扬一下售后小王", "建议说明书增加图示",
};
static const char *const regions[] = {"广东深圳", "北京朝阳", "上海浦东", "浙江杭州", "四川成都"};
static const char *const wants[] = {"上门维修", "退货退款", "换新机", "道歉", "尽快处理"};

static int cmd_gen(unsigned long long rows, const char *path)
{
    FILE *out = fopen(path, "wb");
    if (!out)
        die(path);
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    if (cd == (iconv_t)-1)
        die("iconv_open");
    struct voc_textbuf u;
    voc_textbuf_init(&u);
    char *gb = malloc(8 * CHUNK);
    if (!gb)
        die("malloc");
    voc_textbuf_adds(&u, "工单号,来电时间,客户姓名,联系电话,所在地区,产品型号,问题描述,客户诉求,"
                         "坐席\r\n");
    time_t base = 1735660800; /* 2025-01-01 00:00 +08:00 */
    for (unsigned long long i = 0; i < rows; i++) {
        time_t t = base + (time_t)i * 60 + 8 * 3600;
        struct tm tm;
        gmtime_r(&t, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        const char *text = texts[i % (sizeof texts / sizeof texts[0])];
        voc_textbuf_printf(&u, "GD%010llu,%s,客户%llu,138%08llu,%s,KFR-%llu,", i, when, i,
                           i % 100000000ULL, regions[i % 5], i % 50);
        if (i % 10 == 3)
            voc_textbuf_printf(&u, "\"%s,第%llu次报修\r\n第二行 \xF0\xA0\x80\x80\"", text, i % 7);
        else
            voc_textbuf_printf(&u, "%s", text);
        voc_textbuf_printf(&u, ",%s,坐席%llu\r\n", wants[i % 5], i % 30);
        if (u.len > CHUNK || i + 1 == rows) {
            char *in = u.data, *o = gb;
            size_t inleft = u.len, outleft = 8 * CHUNK;
            if (iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1)
                die("iconv");
            if (fwrite(gb, 1, (size_t)(o - gb), out) != (size_t)(o - gb))
                die(path);
            voc_textbuf_reset(&u);
        }
    }
    if (u.failed || fclose(out) != 0)
        die(path);
    iconv_close(cd);
    free(gb);
    voc_textbuf_free(&u);
    return 0;
}

/* ---- baselines ------------------------------------------------------------------------------ */

struct base {
    unsigned long long rows, fields;
    iconv_t cd;
    char *out;
};

static void base_field(void *s, size_t len, void *data)
{
    struct base *b = data;
    b->fields++;
    if (b->cd == (iconv_t)-1)
        return;
    char *in = s, *o = b->out;
    size_t inleft = len, outleft = len * 3 + 16;
    iconv(b->cd, &in, &inleft, &o, &outleft);
}

static void base_row(int c, void *data)
{
    (void)c;
    ((struct base *)data)->rows++;
}

static unsigned char *slurp_chunk_buf(void)
{
    unsigned char *buf = malloc(CHUNK);
    if (!buf)
        die("malloc");
    return buf;
}

static int cmd_baseline(const char *path, bool convert)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    unsigned char *buf = slurp_chunk_buf();
    struct base b = {.cd = (iconv_t)-1};
    if (convert) {
        b.cd = iconv_open("UTF-8", "GB18030");
        b.out = malloc(3 * 1024 * 1024 + 16); /* fields are far smaller than this */
        if (b.cd == (iconv_t)-1 || !b.out)
            die("iconv");
    }
    struct csv_parser p;
    csv_init(&p, 0);
    unsigned long long bytes = 0;
    double t0 = now_s();
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0) {
        if (csv_parse(&p, buf, (size_t)n, base_field, base_row, &b) != (size_t)n)
            die("csv_parse");
        bytes += (unsigned long long)n;
    }
    csv_fini(&p, base_field, base_row, &b);
    double secs = now_s() - t0;
    csv_free(&p);
    /* The header is a row too; count data rows like the other modes. */
    report(convert ? "iconv" : "libcsv", b.rows ? b.rows - 1 : 0, bytes, secs);
    if (convert) {
        iconv_close(b.cd);
        free(b.out);
    }
    free(buf);
    close(fd);
    return 0;
}

/* ---- the plugin's reader and mapper -----------------------------------------------------------
 */

static int cmd_plugin(const char *path)
{
    static const char *const targets[] = {
        "external_id",     "received_at",   "customer.name", "customer.contact",
        "customer.region", "product.model", "text",          "expected"};
    static const char *const headers[] = {"工单号",   "来电时间", "客户姓名", "联系电话",
                                          "所在地区", "产品型号", "问题描述", "客户诉求"};
    static const char *const formats[] = {"%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"};
    struct voc_row_mapper_config cfg = {.targets = targets,
                                        .headers = headers,
                                        .count = 8,
                                        .time_formats = formats,
                                        .time_format_count = 2,
                                        .time_zone = "Asia/Shanghai",
                                        .channel = "hotline"};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    unsigned char *buf = slurp_chunk_buf();
    struct voc_csv_reader *r;
    struct voc_csv_reader_opts o = {.encoding = VOC_CSV_GB18030, .start = {0, 1, false}};
    if (voc_csv_reader_new(&r, &o) != 0)
        die("reader");
    struct voc_row_mapper *m = NULL;
    struct voc_textbuf json, why;
    voc_textbuf_init(&json);
    voc_textbuf_init(&why);
    unsigned long long rows = 0, rejects = 0, bytes = 0, json_bytes = 0;
    double t0 = now_s();
    bool eof = false;
    for (;;) {
        struct voc_csv_row row;
        int rc = voc_csv_reader_next(r, &row);
        if (rc < 0)
            die("reader");
        if (rc == 0) {
            if (eof)
                break;
            ssize_t n = read(fd, buf, CHUNK);
            if (n < 0)
                die(path);
            eof = n == 0;
            bytes += (unsigned long long)n;
            voc_csv_reader_input(r, buf, (size_t)n, eof);
            continue;
        }
        if (!m) {
            char err[256];
            if (voc_row_mapper_new(&cfg, &row, VOC_CSV_GB18030, &m, err, sizeof err) != 0) {
                fprintf(stderr, "csv_bench: header: %s\n", err);
                return 1;
            }
            continue;
        }
        voc_textbuf_reset(&json);
        voc_textbuf_reset(&why);
        rc = voc_row_mapper_map(m, &row, "0123456789abcdef", &json, &why);
        if (rc < 0)
            die("mapper");
        rows++;
        rejects += rc == 0;
        json_bytes += json.len;
    }
    double secs = now_s() - t0;
    report("plugin", rows, bytes, secs);
    if (rejects)
        printf("plugin rejects=%llu\n", rejects);
    printf("plugin json_bytes_per_row=%.0f\n", rows ? (double)json_bytes / (double)rows : 0.0);
    voc_row_mapper_free(m);
    voc_csv_reader_free(r);
    voc_textbuf_free(&json);
    voc_textbuf_free(&why);
    free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(strtoull(argv[2], NULL, 10), argv[3]);
    if (argc == 3 && strcmp(argv[1], "libcsv") == 0)
        return cmd_baseline(argv[2], false);
    if (argc == 3 && strcmp(argv[1], "iconv") == 0)
        return cmd_baseline(argv[2], true);
    if (argc == 3 && strcmp(argv[1], "plugin") == 0)
        return cmd_plugin(argv[2]);
    fprintf(stderr, "usage: csv_bench gen ROWS FILE | libcsv FILE | iconv FILE | plugin FILE\n");
    return 2;
}
