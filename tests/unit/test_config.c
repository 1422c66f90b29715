/* The daemon's config (daemon/config.[ch]) loaded from real files in a temporary folder:
 * defaults, relative paths, the checks beyond the option tables (tokens, calendars,
 * notifiers, plugins, listen), file:line in every error, and the shipped etc/vocd.yaml. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "config.h"

/* config.h uses struct voc_kv without including its declaration. */
#include <vocd/plugin.h>

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_A "ba30f59c2ec033f40fcd0f8dc89c9765a4d4ed51ee5140e915a8b3ccd2b43986"
#define HASH_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char tmp_root[PATH_MAX];      /* realpath of the temporary folder */
static char cfg_path[PATH_MAX + 32]; /* <tmp>/etc/vocd.yaml */

static void setup(void)
{
    char dir[] = "/tmp/voc-config-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(realpath(dir, tmp_root));
    char etc[PATH_MAX + 8];
    snprintf(etc, sizeof etc, "%s/etc", tmp_root);
    ck_assert_int_eq(mkdir(etc, 0700), 0);
    snprintf(cfg_path, sizeof cfg_path, "%s/vocd.yaml", etc);
}

static void teardown(void)
{
    voc_test_rm_rf(tmp_root);
}

static void write_config(const char *text)
{
    FILE *f = fopen(cfg_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

struct load {
    struct voc_config *cfg;
    struct voc_diag diag;
    char all[8192];
};

static void load(struct load *l, const char *text)
{
    write_config(text);
    voc_diag_init(&l->diag);
    l->cfg = voc_config_load(cfg_path, &l->diag);
    l->all[0] = '\0';
    for (size_t i = 0; i < l->diag.count; i++) {
        strncat(l->all, l->diag.messages[i], sizeof l->all - strlen(l->all) - 1);
        strncat(l->all, "\n", sizeof l->all - strlen(l->all) - 1);
    }
}

static void unload(struct load *l)
{
    voc_config_free(l->cfg);
    voc_diag_free(&l->diag);
}

/* The load fails, one message is "<cfg_path>:<line>: <message>", and every error message
 * carries the file and a line. */
static void expect_error(const char *text, int line, const char *message)
{
    struct load l;
    load(&l, text);
    ck_assert_msg(l.cfg == NULL, "accepted:\n%s", text);
    char want[PATH_MAX + 512];
    if (line > 0)
        snprintf(want, sizeof want, "%s:%d: %s", cfg_path, line, message);
    else
        snprintf(want, sizeof want, "%s: %s", cfg_path, message);
    bool found = false;
    for (size_t i = 0; i < l.diag.count; i++)
        found |= strcmp(l.diag.messages[i], want) == 0;
    ck_assert_msg(found, "no message\n  %s\namong\n%s", want, l.all);
    unload(&l);
}

static const char *const minimal = "data_dir: ../var/vocd\n"
                                   "auth:\n"
                                   "  tokens:\n"
                                   "    - { name: ops, role: admin, sha256: \"" HASH_A "\" }\n";

START_TEST(defaults_and_paths)
{
    struct load l;
    load(&l, minimal);
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_uint_eq(l.diag.errors, 0);
    struct voc_config *c = l.cfg;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/etc", tmp_root);
    ck_assert_str_eq(c->base_dir, want);
    ck_assert_str_eq(c->path, cfg_path);
    snprintf(want, sizeof want, "%s/etc/../var/vocd", tmp_root);
    ck_assert_str_eq(c->data_dir, want);
    ck_assert_str_eq(c->listen.http, "127.0.0.1:8080");
    ck_assert_int_eq(c->log_level, 1); /* info */
    ck_assert_ptr_null(c->profile);
    ck_assert_ptr_nonnull(c->plugin_dir);
    ck_assert_uint_eq(c->http.max_body_size, 1024 * 1024);
    ck_assert_double_eq(c->http.request_timeout_s, 30);
    ck_assert_uint_eq(c->store.map_size, 256ull << 20);
    ck_assert_uint_eq(c->store.max_map_size, 64ull << 30);
    ck_assert_int_eq(c->store.max_readers, 126);
    ck_assert_int_eq(c->writer.queue_limit, 10000);
    ck_assert_int_eq(c->writer.batch_max, 1000);
    ck_assert_int_eq(c->rules.max_instructions, 10000000);
    ck_assert_uint_eq(c->rules.max_memory, 64ull << 20);
    ck_assert_uint_eq(c->auth.token_count, 1);
    ck_assert_str_eq(c->auth.tokens[0].name, "ops");
    ck_assert_int_eq(c->auth.tokens[0].role, VOC_ROLE_ADMIN);
    ck_assert_int_eq(c->auth.tokens[0].hash[0], 0xba);
    ck_assert_int_eq(c->auth.tokens[0].hash[31], 0x86);
    ck_assert_int_eq(c->auth.tokens[0].line, 4);
    ck_assert_uint_eq(c->calendar_count, 0);
    ck_assert_uint_eq(c->notifier_count, 0);
    ck_assert_uint_eq(c->plugin_count, 0);
    unload(&l);

    load(&l, "data_dir: /srv/vocd\n"
             "profile: ../scripts/profiles/voc-general.lua\n"
             "plugin_dir: plugins\n"
             "log_level: debug\n"
             "rules: { max_instructions: 5000 }\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    /* Without tokens every request is refused: worth a warning, not an error. */
    ck_assert_uint_eq(l.diag.errors, 0);
    ck_assert_uint_eq(l.diag.count, 1);
    ck_assert_msg(strstr(l.all, "warning: no auth.tokens") != NULL, "%s", l.all);
    ck_assert_str_eq(l.cfg->data_dir, "/srv/vocd");
    snprintf(want, sizeof want, "%s/etc/../scripts/profiles/voc-general.lua", tmp_root);
    ck_assert_str_eq(l.cfg->profile, want);
    snprintf(want, sizeof want, "%s/etc/plugins", tmp_root);
    ck_assert_str_eq(l.cfg->plugin_dir, want);
    /* lib_dir defaults to <profile folder>/../lib */
    snprintf(want, sizeof want, "%s/etc/../scripts/profiles/../lib", tmp_root);
    ck_assert_str_eq(l.cfg->rules.lib_dir, want);
    ck_assert_int_eq(l.cfg->log_level, 0);
    ck_assert_int_eq(l.cfg->rules.max_instructions, 5000);
    unload(&l);

    /* Loaded through a relative path, relative paths are still relative to the file. */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmp_root), 0);
    write_config("data_dir: data\n");
    struct voc_diag diag;
    voc_diag_init(&diag);
    struct voc_config *rc = voc_config_load("etc/vocd.yaml", &diag);
    ck_assert_ptr_nonnull(rc);
    snprintf(want, sizeof want, "%s/etc/data", tmp_root);
    ck_assert_str_eq(rc->data_dir, want);
    voc_config_free(rc);
    voc_diag_free(&diag);
    ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

START_TEST(unknown_and_wrong)
{
    expect_error("data_dir: d\nlisen:\n  http: 127.0.0.1:1\n", 2,
                 "unknown key 'lisen' (did you mean 'listen'?)");
    expect_error("data_dir: d\nstore:\n  map_sise: 1MB\n", 3,
                 "unknown key 'store.map_sise' (did you mean 'map_size'?)");
    expect_error("data_dir: d\nlog_level: loud\n", 2,
                 "log_level: 'loud' is not one of: debug, info, warn, error");
    expect_error("data_dir: d\nstore:\n  map_size: huge\n", 3,
                 "store.map_size: 'huge' is not a size (use e.g. 512KiB, 25MB, 1GB)");
    expect_error("data_dir: d\nwriter:\n  queue_limit: 0\n", 3,
                 "writer.queue_limit: 0 is outside 1..10000000");
    expect_error(
        "data_dir: d\nhttp:\n  request_timeout: soon\n", 3,
        "http.request_timeout: 'soon' is not a duration (use e.g. 500ms, 30s, 5m, 24h, 7d)");
    expect_error("data_dir: d\nlisten: 127.0.0.1:8080\n", 2, "listen must be a mapping");
    expect_error("data_dir: [a, b]\n", 1, "data_dir must be a string, not a list");
    expect_error("log_level: info\nlisten:\n  http: 127.0.0.1:1\n", 1, "data_dir is required");
}
END_TEST

START_TEST(tokens)
{
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: q, role: agent, sha256: \"" HASH_A "\" }\n",
                 4, "auth.tokens[0]: an agent token needs departments");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: o, role: admin, departments: [质量部], sha256: \"" HASH_A "\" }\n",
                 4, "auth.tokens[0]: departments only apply to agent tokens");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: o, role: admin, sha256: \"abc\" }\n",
                 4,
                 "auth.tokens[0].sha256 must be 64 hex digits (the SHA-256 of the token, "
                 "never the token itself)");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: o, role: admin, sha256: "
                 "\"zz30f59c2ec033f40fcd0f8dc89c9765a4d4ed51ee5140e915a8b3ccd2b43986\" }\n",
                 4,
                 "auth.tokens[0].sha256 must be 64 hex digits (the SHA-256 of the token, "
                 "never the token itself)");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: o, role: admin, sha256: \"" HASH_A "\" }\n"
                 "    - { name: o, role: viewer, sha256: \"" HASH_B "\" }\n",
                 5, "auth.tokens[1]: name 'o' is used twice");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: a, role: admin, sha256: \"" HASH_A "\" }\n"
                 "    - { name: b, role: viewer, sha256: \"" HASH_A "\" }\n",
                 5, "auth.tokens[1]: same token hash as auth.tokens[0]");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: a, role: root, sha256: \"" HASH_A "\" }\n",
                 4, "auth.tokens[0].role: 'root' is not one of: admin, agent, viewer, ingest");
    expect_error("data_dir: d\nauth:\n  tokens:\n"
                 "    - { name: a, role: admin }\n",
                 4, "auth.tokens[0].sha256 is required");

    struct load l;
    load(&l, "data_dir: d\nauth:\n  tokens:\n"
             "    - { name: ops, role: admin, sha256: \"" HASH_A "\" }\n"
             "    - name: quality\n"
             "      role: agent\n"
             "      departments: [质量部, 生产部]\n"
             "      sha256: \"" HASH_B "\"\n"
             "    - { name: viewer, role: viewer, sha256: \""
             "BA30F59C2EC033F40FCD0F8DC89C9765"
             "A4D4ED51EE5140E915A8B3CCD2B43987\" }\n"
             "    - { name: feed, role: ingest, sha256: \""
             "0000000000000000000000000000000000"
             "000000000000000000000000000000\" }\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_uint_eq(l.cfg->auth.token_count, 4);
    struct voc_token_config *t = l.cfg->auth.tokens;
    ck_assert_int_eq(t[1].role, VOC_ROLE_AGENT);
    ck_assert_uint_eq(t[1].department_count, 2);
    ck_assert_str_eq(t[1].departments[1], "生产部");
    ck_assert_int_eq(t[1].line, 5);
    ck_assert_int_eq(t[2].role, VOC_ROLE_VIEWER);
    ck_assert_int_eq(t[2].hash[31], 0x87); /* upper-case hex is fine */
    ck_assert_int_eq(t[3].role, VOC_ROLE_INGEST);
    ck_assert_str_eq(voc_role_name(VOC_ROLE_AGENT), "agent");
    ck_assert_str_eq(voc_role_name(7), "?");
    unload(&l);
}
END_TEST

START_TEST(listen)
{
    static const struct {
        const char *text, *host;
        uint16_t port;
    } good[] = {
        {"127.0.0.1:0", "127.0.0.1", 0},     {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"[::1]:8080", "::1", 8080},         {"localhost:65535", "localhost", 65535},
        {"[fe80::1%lo]:1", "fe80::1%lo", 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *host = NULL;
        uint16_t port = 1234;
        ck_assert_msg(voc_parse_listen(good[i].text, &host, &port) == 0, "%s", good[i].text);
        ck_assert_str_eq(host, good[i].host);
        ck_assert_uint_eq(port, good[i].port);
        free(host);
    }
    static const char *const bad[] = {"garbage",         "127.0.0.1",    "127.0.0.1:",    ":8080",
                                      "127.0.0.1:65536", "127.0.0.1:-1", "[::1]8080",     "[::1]",
                                      "[::1:8080",       "[]:80",        "127.0.0.1:80x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *host = NULL;
        uint16_t port;
        ck_assert_msg(voc_parse_listen(bad[i], &host, &port) == -1, "'%s' accepted", bad[i]);
        ck_assert_ptr_null(host);
    }

    struct load l;
    load(&l, "data_dir: d\nlisten:\n  http: \"[::1]:0\"\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_str_eq(l.cfg->listen.http, "[::1]:0");
    unload(&l);
    expect_error("data_dir: d\nlisten:\n  http: garbage\n", 3,
                 "listen.http: 'garbage' is not host:port");
}
END_TEST

START_TEST(calendars)
{
    struct load l;
    load(&l, "data_dir: d\n"
             "calendars:\n"
             "  workdays:\n"
             "    time_zone: Asia/Shanghai\n"
             "    hours: { mon: \"09:00-12:00,13:00-18:00\", fri: \"09:00-18:00\" }\n"
             "    holidays: [2026-10-01, 2026-10-02]\n"
             "    extra_workdays: 2026-10-10\n"
             "  berlin:\n"
             "    time_zone: Europe/Berlin\n"
             "    hours: { sat: \"10:00-14:00\" }\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_uint_eq(l.cfg->calendar_count, 2);
    const struct voc_calendar_config *c = voc_config_calendar(l.cfg, "workdays");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->time_zone, "Asia/Shanghai");
    ck_assert_uint_eq(c->hour_count, 2);
    ck_assert_str_eq(c->hours[0].key, "mon");
    ck_assert_str_eq(c->hours[0].value, "09:00-12:00,13:00-18:00");
    ck_assert_uint_eq(c->holiday_count, 2);
    ck_assert_str_eq(c->holidays[1], "2026-10-02");
    ck_assert_uint_eq(c->extra_workday_count, 1); /* a scalar is a one-item list */
    ck_assert_str_eq(c->extra_workdays[0], "2026-10-10");
    ck_assert_int_eq(c->line, 3);
    ck_assert_ptr_nonnull(voc_config_calendar(l.cfg, "berlin"));
    ck_assert_ptr_null(voc_config_calendar(l.cfg, "24x7"));
    unload(&l);

    expect_error("data_dir: d\ncalendars:\n  24x7:\n    time_zone: UTC\n    hours: {mon: "
                 "\"00:00-24:00\"}\n",
                 3, "calendars: '24x7' is built in and cannot be redefined");
    expect_error("data_dir: d\ncalendars:\n  w:\n    time_zone: UTC\n    hours: {monday: "
                 "\"09:00-18:00\"}\n",
                 3, "calendars.w.hours: 'monday' is not a weekday (mon..sun)");
    expect_error("data_dir: d\ncalendars:\n  w:\n    hours: {mon: \"09:00-18:00\"}\n", 4,
                 "calendars.w.time_zone is required");
    expect_error("data_dir: d\ncalendars:\n  w:\n    time_zone: UTC\n    hours: [mon]\n", 5,
                 "calendars.w.hours must be a mapping of strings");
    expect_error("data_dir: d\ncalendars:\n  - w\n", 3, "calendars must be a mapping");
}
END_TEST

START_TEST(notifiers)
{
    struct load l;
    load(&l, "data_dir: d\n"
             "notifiers:\n"
             "  - { name: hook, type: webhook, url: \"http://127.0.0.1:9000/voc\", secret: s }\n"
             "  - { name: mail, type: email, smtp: \"smtp://127.0.0.1:25\", from: a@b.c, to: "
             "ops@b.c }\n"
             "  - { name: journal, type: log, timeout: 500ms }\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_uint_eq(l.cfg->notifier_count, 3);
    struct voc_notifier_config *n = l.cfg->notifiers;
    ck_assert_int_eq(n[0].type, VOC_NOTIFIER_WEBHOOK);
    ck_assert_double_eq(n[0].timeout_s, 10);
    ck_assert_double_eq(n[0].expire_s, 86400);
    ck_assert_int_eq(n[1].type, VOC_NOTIFIER_EMAIL);
    ck_assert_uint_eq(n[1].to_count, 1);
    ck_assert_str_eq(n[1].to[0], "ops@b.c");
    ck_assert_int_eq(n[2].type, VOC_NOTIFIER_LOG);
    ck_assert_double_eq_tol(n[2].timeout_s, 0.5, 1e-9);
    ck_assert_int_eq(n[2].line, 5);
    unload(&l);

    expect_error("data_dir: d\nnotifiers:\n  - { name: h, type: webhook }\n", 3,
                 "notifiers[0] (h): a webhook needs url");
    expect_error("data_dir: d\nnotifiers:\n  - { name: m, type: email, smtp: \"smtp://x\" }\n", 3,
                 "notifiers[0] (m): email needs smtp and from");
    /* Without `to`: accepted (acknowledgements name their own recipient), with a warning. */
    load(&l, "data_dir: d\nnotifiers:\n  - { name: m, type: email, smtp: \"smtp://x\", "
             "from: a@b.c }\n");
    ck_assert_ptr_nonnull(l.cfg);
    ck_assert_uint_eq(l.diag.errors, 0);
    ck_assert_ptr_nonnull(strstr(l.all, ":3: warning: notifiers[0] (m): email without to"));
    unload(&l);
    expect_error("data_dir: d\nnotifiers:\n  - { name: j, type: log }\n  - { name: j, type: log "
                 "}\n",
                 4, "notifiers[1]: name 'j' is used twice");
    expect_error("data_dir: d\nnotifiers:\n  - { name: j, type: pager }\n", 3,
                 "notifiers[0].type: 'pager' is not one of: webhook, email, log");
}
END_TEST

START_TEST(plugins)
{
    struct load l;
    load(&l, "data_dir: d\n"
             "plugins:\n"
             "  - { name: webhook, sources: [ {name: shop} ] }\n"
             "  - name: hotline_csv\n"
             "    optional: true\n"
             "    spool: /var/spool\n");
    ck_assert_msg(l.cfg != NULL, "%s", l.all);
    ck_assert_uint_eq(l.cfg->plugin_count, 2);
    ck_assert_str_eq(l.cfg->plugins[0].name, "webhook");
    ck_assert(!l.cfg->plugins[0].optional);
    ck_assert_int_eq(l.cfg->plugins[0].line, 3);
    /* The plugin's own keys stay in the tree for the plugin loader. */
    ck_assert_ptr_nonnull(voc_yaml_get(l.cfg->plugins[0].node, "sources"));
    ck_assert_str_eq(l.cfg->plugins[1].name, "hotline_csv");
    ck_assert(l.cfg->plugins[1].optional);
    ck_assert_int_eq(l.cfg->plugins[1].line, 4);
    unload(&l);

    expect_error("data_dir: d\nplugins: webhook\n", 2, "plugins must be a list");
    expect_error("data_dir: d\nplugins:\n  - webhook\n", 3, "plugins[0] must be a mapping");
    expect_error("data_dir: d\nplugins:\n  - { sources: [] }\n", 3, "plugins[0] needs a name");
    expect_error("data_dir: d\nplugins:\n  - { name: w, optional: maybe }\n", 3,
                 "plugins[0].optional must be true or false");
    expect_error("data_dir: d\nplugins:\n  - { name: w }\n  - { name: w }\n", 4,
                 "plugin 'w' is configured twice");
}
END_TEST

START_TEST(file_level_errors)
{
    expect_error("", 0, "the config must be a mapping of keys");
    expect_error("- a\n- b\n", 1, "the config must be a mapping of keys");
    expect_error("data_dir: d\ndata_dir: e\n", 2, "duplicate key 'data_dir' (first at line 1)");
    expect_error("data_dir: &d d\n", 1, "anchors are not supported in config");
    expect_error("data_dir: d\n---\nlog_level: info\n", 2, "only one YAML document per file");

    unlink(cfg_path);
    struct voc_diag diag;
    voc_diag_init(&diag);
    ck_assert_ptr_null(voc_config_load(cfg_path, &diag));
    ck_assert_uint_eq(diag.errors, 1);
    ck_assert_msg(strstr(diag.messages[0], "cannot open") != NULL, "%s", diag.messages[0]);
    voc_diag_free(&diag);
}
END_TEST

/* The size check across two keys also points at a line. */
START_TEST(map_size_above_max)
{
    expect_error("data_dir: d\nstore:\n  map_size: 1GiB\n  max_map_size: 512MiB\n", 3,
                 "store.map_size is larger than store.max_map_size");
    /* map_size left at its default (256MiB) */
    expect_error("data_dir: d\nstore:\n  max_map_size: 1MiB\n", 3,
                 "store.map_size is larger than store.max_map_size");
}
END_TEST

/* A file full of mistakes: every one is reported, each with file:line. */
START_TEST(every_error_has_a_line)
{
    struct load l;
    load(&l, "lisen: {http: x}\n"
             "log_level: chatty\n"
             "listen:\n"
             "  http: nowhere\n"
             "store:\n"
             "  map_size: 2GiB\n"
             "  max_map_size: 1GiB\n"
             "  max_readers: 0\n"
             "auth:\n"
             "  tokens:\n"
             "    - { name: a, role: agent, sha256: \"xyz\" }\n"
             "    - { name: a, role: boss }\n"
             "calendars:\n"
             "  24x7: { hours: { funday: \"09:00-10:00\" } }\n"
             "notifiers:\n"
             "  - { name: n, type: webhook }\n"
             "  - { name: n, type: email }\n"
             "plugins:\n"
             "  - { optional: true }\n"
             "  - { name: p, optional: sometimes }\n");
    ck_assert(l.cfg == NULL);
    ck_assert_msg(l.diag.errors >= 15, "only %zu errors:\n%s", l.diag.errors, l.all);
    char prefix[sizeof cfg_path + 2];
    snprintf(prefix, sizeof prefix, "%s:", cfg_path);
    for (size_t i = 0; i < l.diag.count; i++) {
        const char *m = l.diag.messages[i];
        if (strstr(m, "warning: "))
            continue;
        int line = 0;
        ck_assert_msg(strncmp(m, prefix, strlen(prefix)) == 0 &&
                          sscanf(m + strlen(prefix), "%d: ", &line) == 1 && line > 0,
                      "no file:line in '%s'", m);
    }
    unload(&l);
}
END_TEST

START_TEST(shipped_config)
{
    const char *path = VOC_SOURCE_DIR "/etc/vocd.yaml";
    struct voc_diag diag;
    voc_diag_init(&diag);
    struct voc_config *c = voc_config_load(path, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "%s\n", diag.messages[i]);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(diag.errors, 0);
    char *host = NULL;
    uint16_t port;
    ck_assert_int_eq(voc_parse_listen(c->listen.http, &host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1"); /* loopback only out of the box */
    free(host);
    ck_assert_int_eq(c->data_dir[0], '/');
    ck_assert_int_eq(c->plugin_dir[0], '/');
    /* The contract: out of the box vocd runs the general VOC profile. */
    ck_assert_ptr_nonnull(c->profile);
    ck_assert_int_eq(c->profile[0], '/');
    ck_assert_ptr_nonnull(strstr(c->profile, "/scripts/profiles/voc-general.lua"));
    ck_assert_uint_ge(c->auth.token_count, 1);
    const struct voc_calendar_config *w = voc_config_calendar(c, "workdays");
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->hour_count, 5);
    ck_assert_uint_ge(w->holiday_count, 2);
    ck_assert_uint_ge(w->extra_workday_count, 1);
    voc_config_free(c);
    voc_diag_free(&diag);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults_and_paths);
    tcase_add_test(tc, unknown_and_wrong);
    tcase_add_test(tc, tokens);
    tcase_add_test(tc, listen);
    tcase_add_test(tc, calendars);
    tcase_add_test(tc, notifiers);
    tcase_add_test(tc, plugins);
    tcase_add_test(tc, file_level_errors);
    tcase_add_test(tc, map_size_above_max);
    tcase_add_test(tc, every_error_has_a_line);
    tcase_add_test(tc, shipped_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
