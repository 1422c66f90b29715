/* Option tables (daemon/options.[ch], struct voc_option in <vocd/plugin.h>): every option
 * type, defaults, nested tables, and the messages for unknown keys, wrong types and missing
 * required keys, each with file:line. The tables here are the test's own, shaped like a
 * plugin's. voc_options_free must leave nothing behind (the ASan build checks leaks). */
#include "options.h"

#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct endpoint {
    char *host;
    long long port;
};

struct source {
    char *name;
    char *secret;
    char **paths;
    size_t path_count;
};

struct named {
    char *name; /* the mapping key */
    char *url;
    double timeout_s;
};

struct conf {
    char *title;
    char *dir;
    long long workers;
    bool enabled;
    uint64_t max_size;
    double interval_s;
    int mode;
    char **tags;
    size_t tag_count;
    struct voc_kv *headers;
    size_t header_count;
    struct endpoint endpoint;
    struct source *sources;
    size_t source_count;
    struct named *targets;
    size_t target_count;
    char *secret;
};

static const char *const modes[] = {"fast", "safe", "paranoid", NULL};

static const struct voc_option endpoint_options[] = {
    {"host", VOC_OPT_STRING, offsetof(struct endpoint, host), "localhost", 0, "host", NULL, 0, 0,
     NULL, 0, 0},
    {"port", VOC_OPT_INT, offsetof(struct endpoint, port), "8080", 0, "port", NULL, 0, 0, NULL, 1,
     65535},
    {0},
};

static const struct voc_option source_options[] = {
    {"name", VOC_OPT_STRING, offsetof(struct source, name), NULL, VOC_OPT_REQUIRED, "name", NULL, 0,
     0, NULL, 0, 0},
    {"secret", VOC_OPT_STRING, offsetof(struct source, secret), NULL, 0, "secret", NULL, 0, 0, NULL,
     0, 0},
    {"paths", VOC_OPT_STRING_LIST, offsetof(struct source, paths), NULL, 0, "paths", NULL, 0,
     offsetof(struct source, path_count), NULL, 0, 0},
    {0},
};

static const struct voc_option named_options[] = {
    {"url", VOC_OPT_STRING, offsetof(struct named, url), NULL, VOC_OPT_REQUIRED, "url", NULL, 0, 0,
     NULL, 0, 0},
    {"timeout", VOC_OPT_DURATION, offsetof(struct named, timeout_s), "10s", 0, "timeout", NULL, 0,
     0, NULL, 0, 0},
    {0},
};

static const struct voc_option conf_options[] = {
    {"title", VOC_OPT_STRING, offsetof(struct conf, title), "untitled", 0, "a string", NULL, 0, 0,
     NULL, 0, 0},
    {"dir", VOC_OPT_PATH, offsetof(struct conf, dir), "spool", 0, "a path", NULL, 0, 0, NULL, 0, 0},
    {"workers", VOC_OPT_INT, offsetof(struct conf, workers), "4", 0, "an int", NULL, 0, 0, NULL, 1,
     64},
    {"enabled", VOC_OPT_BOOL, offsetof(struct conf, enabled), "true", 0, "a bool", NULL, 0, 0, NULL,
     0, 0},
    {"max_size", VOC_OPT_SIZE, offsetof(struct conf, max_size), "25MB", 0, "a size", NULL, 0, 0,
     NULL, 0, 0},
    {"interval", VOC_OPT_DURATION, offsetof(struct conf, interval_s), "1h30m", 0, "a duration",
     NULL, 0, 0, NULL, 0, 0},
    {"mode", VOC_OPT_ENUM, offsetof(struct conf, mode), "safe", 0, "an enum", NULL, 0, 0, modes, 0,
     0},
    {"tags", VOC_OPT_STRING_LIST, offsetof(struct conf, tags), NULL, 0, "a list", NULL, 0,
     offsetof(struct conf, tag_count), NULL, 0, 0},
    {"headers", VOC_OPT_STRING_MAP, offsetof(struct conf, headers), NULL, 0, "a map", NULL, 0,
     offsetof(struct conf, header_count), NULL, 0, 0},
    {"endpoint", VOC_OPT_TABLE, offsetof(struct conf, endpoint), NULL, 0, "a table",
     endpoint_options, 0, 0, NULL, 0, 0},
    {"sources", VOC_OPT_TABLE_LIST, offsetof(struct conf, sources), NULL, 0, "a table list",
     source_options, sizeof(struct source), offsetof(struct conf, source_count), NULL, 0, 0},
    {"targets", VOC_OPT_TABLE_MAP, offsetof(struct conf, targets), NULL, 0, "a table map",
     named_options, sizeof(struct named), offsetof(struct conf, target_count), NULL, 0, 0},
    {"secret", VOC_OPT_STRING, offsetof(struct conf, secret), NULL, VOC_OPT_REQUIRED, "required",
     NULL, 0, 0, NULL, 0, 0},
    {0},
};

/* One load: the YAML document, the diag, the filled struct. */
struct run {
    struct voc_yaml_doc doc;
    struct voc_diag diag;
    struct conf conf;
    int rc;
};

static void apply(struct run *r, const char *text)
{
    memset(r, 0, sizeof *r);
    voc_diag_init(&r->diag);
    ck_assert_msg(voc_yaml_load_string("p.yaml", text, strlen(text), &r->doc, &r->diag) == 0,
                  "YAML of the test does not parse:\n%s", text);
    struct voc_options_ctx ctx = {.file = "p.yaml", .base_dir = "/etc/vocd", .diag = &r->diag};
    r->rc = voc_options_apply(conf_options, r->doc.root, &r->conf, "", NULL, &ctx);
}

static void done(struct run *r)
{
    voc_options_free(conf_options, &r->conf);
    /* Everything freed is also forgotten: a second free is harmless. */
    ck_assert_ptr_null(r->conf.title);
    ck_assert_ptr_null(r->conf.tags);
    ck_assert_uint_eq(r->conf.tag_count, 0);
    ck_assert_ptr_null(r->conf.sources);
    ck_assert_uint_eq(r->conf.source_count, 0);
    ck_assert_ptr_null(r->conf.targets);
    ck_assert_ptr_null(r->conf.headers);
    voc_options_free(conf_options, &r->conf);
    voc_yaml_doc_free(&r->doc);
    voc_diag_free(&r->diag);
}

static bool has_message(const struct run *r, const char *text)
{
    for (size_t i = 0; i < r->diag.count; i++)
        if (strcmp(r->diag.messages[i], text) == 0)
            return true;
    return false;
}

static void dump(const struct run *r, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < r->diag.count; i++) {
        strncat(buf, r->diag.messages[i], len - strlen(buf) - 1);
        strncat(buf, "\n", len - strlen(buf) - 1);
    }
}

/* The load fails and among its messages is exactly `message`. */
static void expect_error(const char *text, const char *message)
{
    struct run r;
    apply(&r, text);
    char all[4096];
    dump(&r, all, sizeof all);
    ck_assert_msg(r.rc == -1, "accepted:\n%s", text);
    ck_assert_msg(has_message(&r, message), "no message\n  %s\namong\n%s", message, all);
    done(&r);
}

START_TEST(defaults)
{
    struct run r;
    apply(&r, "secret: s3cret\n");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.diag.count, 0);
    ck_assert_str_eq(r.conf.title, "untitled");
    ck_assert_str_eq(r.conf.dir, "/etc/vocd/spool"); /* a PATH default is resolved too */
    ck_assert_int_eq(r.conf.workers, 4);
    ck_assert(r.conf.enabled);
    ck_assert_uint_eq(r.conf.max_size, 25000000);
    ck_assert_double_eq(r.conf.interval_s, 5400);
    ck_assert_int_eq(r.conf.mode, 1);
    ck_assert_ptr_null(r.conf.tags);
    ck_assert_uint_eq(r.conf.tag_count, 0);
    /* An absent nested table still gets its defaults. */
    ck_assert_str_eq(r.conf.endpoint.host, "localhost");
    ck_assert_int_eq(r.conf.endpoint.port, 8080);
    ck_assert_uint_eq(r.conf.source_count, 0);
    ck_assert_uint_eq(r.conf.target_count, 0);
    ck_assert_str_eq(r.conf.secret, "s3cret");
    done(&r);

    /* A NULL map: defaults only (a plugin without a section); required keys are missing. */
    struct conf c;
    memset(&c, 0, sizeof c);
    struct voc_diag diag;
    voc_diag_init(&diag);
    struct voc_options_ctx ctx = {.file = "p.yaml", .base_dir = NULL, .diag = &diag};
    ck_assert_int_eq(voc_options_apply(conf_options, NULL, &c, "plugin", NULL, &ctx), -1);
    ck_assert_uint_eq(diag.errors, 1);
    ck_assert_str_eq(diag.messages[0], "p.yaml: plugin.secret is required");
    ck_assert_str_eq(c.dir, "spool"); /* no base dir: left relative */
    voc_options_free(conf_options, &c);
    voc_diag_free(&diag);

    /* `key:` with nothing takes the default. */
    apply(&r, "secret: x\nworkers:\nmax_size: ~\nendpoint:\n");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.conf.workers, 4);
    ck_assert_uint_eq(r.conf.max_size, 25000000);
    ck_assert_int_eq(r.conf.endpoint.port, 8080);
    done(&r);
}
END_TEST

START_TEST(every_type)
{
    struct run r;
    apply(&r, "title: 质量看板\n"
              "dir: /var/spool/vocd\n"
              "workers: 16\n"
              "enabled: no\n"
              "max_size: 512KiB\n"
              "interval: 500ms\n"
              "mode: paranoid\n"
              "tags: [a, b, c]\n"
              "headers: { X-One: '1', X-Two: two }\n"
              "endpoint: { host: 127.0.0.1, port: 9000 }\n"
              "sources:\n"
              "  - { name: shop, secret: k1, paths: [/a, /b] }\n"
              "  - { name: chat, paths: /only }\n"
              "targets:\n"
              "  ops: { url: 'http://x/1' }\n"
              "  qa: { url: 'http://x/2', timeout: 2m }\n"
              "secret: s\n");
    char all[4096];
    dump(&r, all, sizeof all);
    ck_assert_msg(r.rc == 0, "%s", all);
    ck_assert_str_eq(r.conf.title, "质量看板");
    ck_assert_str_eq(r.conf.dir, "/var/spool/vocd"); /* absolute: unchanged */
    ck_assert_int_eq(r.conf.workers, 16);
    ck_assert(!r.conf.enabled);
    ck_assert_uint_eq(r.conf.max_size, 512 * 1024);
    ck_assert_double_eq_tol(r.conf.interval_s, 0.5, 1e-9);
    ck_assert_int_eq(r.conf.mode, 2);
    ck_assert_uint_eq(r.conf.tag_count, 3);
    ck_assert_str_eq(r.conf.tags[2], "c");
    ck_assert_uint_eq(r.conf.header_count, 2);
    ck_assert_str_eq(r.conf.headers[0].key, "X-One");
    ck_assert_str_eq(r.conf.headers[0].value, "1");
    ck_assert_str_eq(r.conf.headers[1].value, "two");
    ck_assert_str_eq(r.conf.endpoint.host, "127.0.0.1");
    ck_assert_int_eq(r.conf.endpoint.port, 9000);
    ck_assert_uint_eq(r.conf.source_count, 2);
    ck_assert_str_eq(r.conf.sources[0].name, "shop");
    ck_assert_str_eq(r.conf.sources[0].secret, "k1");
    ck_assert_uint_eq(r.conf.sources[0].path_count, 2);
    ck_assert_str_eq(r.conf.sources[0].paths[1], "/b");
    ck_assert_ptr_null(r.conf.sources[1].secret);
    /* A scalar where a list is expected is a one-item list. */
    ck_assert_uint_eq(r.conf.sources[1].path_count, 1);
    ck_assert_str_eq(r.conf.sources[1].paths[0], "/only");
    ck_assert_uint_eq(r.conf.target_count, 2);
    ck_assert_str_eq(r.conf.targets[0].name, "ops");
    ck_assert_double_eq(r.conf.targets[0].timeout_s, 10);
    ck_assert_str_eq(r.conf.targets[1].name, "qa");
    ck_assert_str_eq(r.conf.targets[1].url, "http://x/2");
    ck_assert_double_eq(r.conf.targets[1].timeout_s, 120);
    done(&r);

    apply(&r, "secret: s\ndir: data/in\nenabled: yes\ntags: []\nheaders: {}\nsources: []\n");
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.conf.dir, "/etc/vocd/data/in");
    ck_assert(r.conf.enabled);
    ck_assert_uint_eq(r.conf.tag_count, 0);
    ck_assert_uint_eq(r.conf.source_count, 0);
    done(&r);

    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        char text[64];
        snprintf(text, sizeof text, "secret: s\nenabled: %s\n", yes[i]);
        apply(&r, text);
        ck_assert(r.rc == 0 && r.conf.enabled);
        done(&r);
        snprintf(text, sizeof text, "secret: s\nenabled: %s\n", no[i]);
        apply(&r, text);
        ck_assert(r.rc == 0 && !r.conf.enabled);
        done(&r);
    }
}
END_TEST

START_TEST(unknown_keys)
{
    expect_error("secret: s\ntitel: x\n", "p.yaml:2: unknown key 'titel' (did you mean 'title'?)");
    expect_error("secret: s\nwrokers: 3\n",
                 "p.yaml:2: unknown key 'wrokers' (did you mean 'workers'?)");
    expect_error("secret: s\nzzzzzzzzzzzzzzzz: 1\n", "p.yaml:2: unknown key 'zzzzzzzzzzzzzzzz'");
    expect_error("secret: s\nendpoint:\n  host: a\n  prot: 1\n",
                 "p.yaml:4: unknown key 'endpoint.prot' (did you mean 'port'?)");
    expect_error("secret: s\nsources:\n  - name: a\n  - name: b\n    secrt: x\n",
                 "p.yaml:5: unknown key 'sources[1].secrt' (did you mean 'secret'?)");
    expect_error("secret: s\ntargets:\n  ops:\n    url: u\n    timout: 1s\n",
                 "p.yaml:5: unknown key 'targets.ops.timout' (did you mean 'timeout'?)");

    /* Keys named in `skip` are the caller's business. */
    struct run r;
    memset(&r, 0, sizeof r);
    voc_diag_init(&r.diag);
    const char *text = "secret: s\nname: webhook\noptional: true\n";
    ck_assert_int_eq(voc_yaml_load_string("p.yaml", text, strlen(text), &r.doc, &r.diag), 0);
    static const char *const skip[] = {"name", "optional", NULL};
    struct voc_options_ctx ctx = {.file = "p.yaml", .base_dir = "/", .diag = &r.diag};
    ck_assert_int_eq(voc_options_apply(conf_options, r.doc.root, &r.conf, "", skip, &ctx), 0);
    ck_assert_uint_eq(r.diag.count, 0);
    done(&r);
}
END_TEST

START_TEST(wrong_types)
{
    expect_error("secret: s\nworkers: many\n", "p.yaml:2: workers: 'many' is not an integer");
    expect_error("secret: s\nworkers: 3.5\n", "p.yaml:2: workers: '3.5' is not an integer");
    expect_error("secret: s\nworkers: 65\n", "p.yaml:2: workers: 65 is outside 1..64");
    expect_error("secret: s\nworkers: 0\n", "p.yaml:2: workers: 0 is outside 1..64");
    expect_error("secret: s\nenabled: maybe\n", "p.yaml:2: enabled: 'maybe' is not true or false");
    expect_error("secret: s\nmax_size: huge\n",
                 "p.yaml:2: max_size: 'huge' is not a size (use e.g. 512KiB, 25MB, 1GB)");
    expect_error("secret: s\ninterval: soon\n",
                 "p.yaml:2: interval: 'soon' is not a duration (use e.g. 500ms, 30s, 5m, 24h, 7d)");
    expect_error("secret: s\nmode: reckless\n",
                 "p.yaml:2: mode: 'reckless' is not one of: fast, safe, paranoid");
    expect_error("secret: s\ntitle: [a, b]\n", "p.yaml:2: title must be a string, not a list");
    expect_error("secret: s\nworkers: {n: 1}\n",
                 "p.yaml:2: workers must be an integer, not a mapping");
    expect_error("secret: s\ntags: {a: 1}\n", "p.yaml:2: tags must be a list of strings");
    expect_error("secret: s\ntags:\n  - a\n  - [b]\n", "p.yaml:4: tags[1] must be a string");
    expect_error("secret: s\nheaders: [a]\n", "p.yaml:2: headers must be a mapping of strings");
    expect_error("secret: s\nheaders:\n  X-A: [1]\n", "p.yaml:3: headers.X-A must be a string");
    expect_error("secret: s\nendpoint: here\n", "p.yaml:2: endpoint must be a mapping");
    expect_error("secret: s\nendpoint:\n  port: 0\n",
                 "p.yaml:3: endpoint.port: 0 is outside 1..65535");
    expect_error("secret: s\nsources: {name: a}\n", "p.yaml:2: sources must be a list of mappings");
    expect_error("secret: s\nsources:\n  - shop\n", "p.yaml:3: sources[0] must be a mapping");
    expect_error("secret: s\ntargets: [a]\n", "p.yaml:2: targets must be a mapping");
    expect_error("secret: s\ntargets:\n  ops: http://x\n",
                 "p.yaml:3: targets.ops must be a mapping");
    expect_error("secret: s\ntargets:\n  ops:\n    url: u\n    timeout: forever\n",
                 "p.yaml:5: targets.ops.timeout: 'forever' is not a duration (use e.g. 500ms, 30s,"
                 " 5m, 24h, 7d)");
}
END_TEST

START_TEST(required)
{
    expect_error("title: x\n", "p.yaml:1: secret is required");
    expect_error("title: x\nsources:\n  - { secret: k }\n",
                 "p.yaml:3: sources[0].name is required");
    expect_error("secret: s\ntargets:\n  ops:\n    timeout: 1s\n",
                 "p.yaml:4: targets.ops.url is required");
    /* A required key of the wrong type is a type error, not a missing key. */
    expect_error("title: x\ntargets:\n  ops:\n    url: u\nsecret: []\n",
                 "p.yaml:5: secret must be a string, not a list");
}
END_TEST

/* Every problem is reported, not just the first, and each has file:line. */
START_TEST(all_errors_with_lines)
{
    struct run r;
    apply(&r, "titel: x\n"
              "workers: lots\n"
              "enabled: perhaps\n"
              "endpoint:\n"
              "  port: http\n"
              "sources:\n"
              "  - { secret: 1 }\n"
              "  - nope\n"
              "targets:\n"
              "  a: { timeout: never }\n");
    ck_assert_int_eq(r.rc, -1);
    char all[4096];
    dump(&r, all, sizeof all);
    /* titel, workers, enabled, endpoint.port, sources[0].name, sources[1], targets.a.url,
     * targets.a.timeout, secret */
    ck_assert_msg(r.diag.errors == 9, "%zu errors:\n%s", r.diag.errors, all);
    for (size_t i = 0; i < r.diag.count; i++) {
        int line = 0;
        ck_assert_msg(sscanf(r.diag.messages[i], "p.yaml:%d: ", &line) == 1 && line > 0,
                      "no file:line in '%s'", r.diag.messages[i]);
    }
    done(&r);
}
END_TEST

START_TEST(sizes)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"25MB", 25000000ull},
        {"512KiB", 524288ull},
        {"1GB", 1000000000ull},
        {"1024", 1024ull},
        {"0", 0ull},
        {"1.5KiB", 1536ull},
        {"64GiB", 64ull << 30},
        {"256MiB", 256ull << 20},
        {"2TB", 2000000000000ull},
        {"1TiB", 1ull << 40},
        {"100B", 100ull},
        {"5K", 5000ull},
        {"7M", 7000000ull},
        {"3G", 3000000000ull},
        {"10 MB", 10000000ull},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        ck_assert_msg(voc_parse_size(good[i].text, &v) == 0, "'%s' refused", good[i].text);
        ck_assert_msg(v == good[i].bytes, "'%s' = %llu, want %llu", good[i].text,
                      (unsigned long long)v, (unsigned long long)good[i].bytes);
    }
    static const char *const bad[] = {"",       "MB",     "big",   "-1",   "-1MB", "25XB",
                                      "25 M B", "1e30TB", "25MBs", "KiB5", "0x",   " "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 12345;
        ck_assert_msg(voc_parse_size(bad[i], &v) == -1, "'%s' accepted as %llu", bad[i],
                      (unsigned long long)v);
        ck_assert_uint_eq(v, 12345);
    }
}
END_TEST

START_TEST(durations)
{
    static const struct {
        const char *text;
        double seconds;
    } good[] = {
        {"500ms", 0.5},    {"30s", 30}, {"5m", 300},     {"24h", 86400},    {"7d", 604800},
        {"1h30m", 5400},   {"90", 90},  {"1w", 604800},  {"1.5h", 5400},    {"2m30s", 150},
        {"1d12h", 129600}, {"0s", 0},   {"250ms", 0.25}, {"1m500ms", 60.5},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        ck_assert_msg(voc_parse_duration(good[i].text, &v) == 0, "'%s' refused", good[i].text);
        ck_assert_msg(v > good[i].seconds - 1e-9 && v < good[i].seconds + 1e-9,
                      "'%s' = %g, want %g", good[i].text, v, good[i].seconds);
    }
    static const char *const bad[] = {"",     "soon",      "h",      "ms", "5x",     "-5s",
                                      "1m30", "5 minutes", "1h-30m", ".s", "1e999s", "s5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = -1;
        ck_assert_msg(voc_parse_duration(bad[i], &v) == -1, "'%s' accepted as %g", bad[i], v);
        ck_assert_double_eq(v, -1);
    }
}
END_TEST

START_TEST(paths)
{
    char *p = voc_path_resolve("/etc/vocd", "data");
    ck_assert_str_eq(p, "/etc/vocd/data");
    free(p);
    p = voc_path_resolve("/etc/vocd", "../var/vocd");
    ck_assert_str_eq(p, "/etc/vocd/../var/vocd");
    free(p);
    p = voc_path_resolve("/etc/vocd", "/abs/path");
    ck_assert_str_eq(p, "/abs/path");
    free(p);
    p = voc_path_resolve(NULL, "rel");
    ck_assert_str_eq(p, "rel");
    free(p);
    p = voc_path_resolve("", "rel");
    ck_assert_str_eq(p, "rel");
    free(p);
}
END_TEST

/* A failed load frees as cleanly as a good one, wherever it stopped. */
START_TEST(free_after_errors)
{
    struct run r;
    apply(&r, "title: a\ntags: [a, [b], c]\nheaders: {a: x, b: [y], c: z}\n"
              "sources: [{name: a, paths: [p, {q: 1}]}, 5, {secret: z}]\n"
              "targets: {a: {url: u}, b: 7, c: {timeout: 1s}}\n");
    ck_assert_int_eq(r.rc, -1);
    ck_assert_uint_eq(r.conf.tag_count, 2);
    ck_assert_uint_eq(r.conf.header_count, 2);
    ck_assert_uint_eq(r.conf.source_count, 3);
    ck_assert_uint_eq(r.conf.target_count, 3);
    done(&r);
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, every_type);
    tcase_add_test(tc, unknown_keys);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, required);
    tcase_add_test(tc, all_errors_with_lines);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, paths);
    tcase_add_test(tc, free_after_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
