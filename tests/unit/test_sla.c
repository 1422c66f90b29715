/* SLA clocks (daemon/sla.[ch]) driven directly on a temporary store with a real compiled
 * profile (fixtures/sla/clocks.lua), real calendars from a YAML config, and the injectable
 * clock: start/stop, warning and breach, pause/resume (also across a weekend), target
 * functions, reopen cycles, stale deadline keys, exactly-once firing, and a property test
 * that checks the open-clock counters and the deadline/alert indexes against the clocks in
 * the records after many random operations. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "case_view.h"
#include "casedb.h"
#include "config.h"
#include "diag.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "store.h"
#include "timeutil.h"

#include <check.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIXTURE VOC_SOURCE_DIR "/tests/unit/fixtures/sla/clocks.lua"
#define TIME_BIAS ((uint64_t)1 << 63)
#define MIN_US (60 * VOC_US_PER_S)
#define HOUR_US (60 * MIN_US)

static char tmp_dir[PATH_MAX];
static struct voc_store *store;
static struct voc_config *cfg;
static struct voc_policy *policy;
static int64_t now_us;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return now_us;
}

static int64_t at(const char *text)
{
    int64_t us;
    ck_assert_msg(voc_parse_time(text, &us) == 0, "bad time %s", text);
    return us;
}

/* Monday 2026-11-16 08:00 UTC: the start of most scenarios. */
static int64_t t0(void)
{
    return at("2026-11-16T08:00:00Z");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char dir[] = "/tmp/voc-sla-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(tmp_dir, sizeof tmp_dir, "%s", dir);
    voc_log_set_level(VOC_LOG_ERROR);

    char path[PATH_MAX + 32], yaml[2 * PATH_MAX + 1024];
    snprintf(path, sizeof path, "%s/vocd.yaml", tmp_dir);
    snprintf(yaml, sizeof yaml,
             "data_dir: %s/data\n"
             "profile: %s\n"
             "calendars:\n"
             "  workdays:\n"
             "    time_zone: UTC\n"
             "    hours: { mon: \"09:00-18:00\", tue: \"09:00-18:00\", wed: \"09:00-18:00\",\n"
             "             thu: \"09:00-18:00\", fri: \"09:00-18:00\" }\n",
             tmp_dir, FIXTURE);
    write_file(path, yaml);

    struct voc_diag diag;
    voc_diag_init(&diag);
    cfg = voc_config_load(path, &diag);
    for (size_t i = 0; i < diag.count && !cfg; i++)
        fprintf(stderr, "config: %s\n", diag.messages[i]);
    ck_assert_ptr_nonnull(cfg);
    const char *calendars[] = {"workdays", NULL};
    struct voc_rules *rules = NULL;
    int rc = voc_rules_load(cfg->profile, cfg->rules.lib_dir, NULL, calendars, &rules, &diag);
    for (size_t i = 0; i < diag.count && rc != 0; i++)
        fprintf(stderr, "profile: %s\n", diag.messages[i]);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(voc_policy_new(cfg, rules, &policy, &diag), 0);
    voc_diag_free(&diag);

    struct voc_store_options so = {.path = cfg->data_dir};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    voc_sla_metrics_init();
    now_us = t0();
    voc_set_clock(fake_clock, NULL);
}

static void teardown(void)
{
    voc_set_clock(NULL, NULL);
    voc_store_close(store);
    store = NULL;
    voc_policy_free(policy);
    policy = NULL;
    voc_config_free(cfg);
    cfg = NULL;
    voc_test_rm_rf(tmp_dir);
}

/* ---- cases and events ------------------------------------------------------------------ */

static void create_case_in(struct voc_txn *txn, uint64_t id, const char *severity)
{
    json_t *rec =
        json_pack("{s:I, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:[]}, s:[], s:b, s:[]}", "id",
                  (json_int_t)id, "state", "new", "received_at", "2026-11-16T08:00:00.000Z",
                  "subject", "SLA test", "classification", "severity", severity, "department",
                  "质量部", "category", "产品质量", "tags", "clocks", "breached", 0, "fired");
    ck_assert_ptr_nonnull(rec);
    ck_assert_int_eq(voc_casedb_put(txn, NULL, rec), 0);
    json_decref(rec);
}

static void create_case(uint64_t id, const char *severity)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    create_case_in(&txn, id, severity);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
}

static json_t *get_case_in(struct voc_txn *txn, uint64_t id)
{
    json_t *rec = NULL;
    ck_assert_int_eq(voc_casedb_get(txn, id, &rec), 0);
    return rec;
}

static json_t *get_case(uint64_t id)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    json_t *rec = get_case_in(&txn, id);
    voc_txn_abort(&txn);
    return rec;
}

/* The case view a target function gets, as case_ops builds it. */
static json_t *make_view(void *arg)
{
    return voc_case_view(arg, NULL, now_us);
}

static void apply_in(struct voc_txn *txn, uint64_t id, const char *type)
{
    json_t *rec = get_case_in(txn, id);
    json_t *old = json_deep_copy(rec);
    struct voc_sla_case c = {.txn = txn,
                             .policy = policy,
                             .record = rec,
                             .now_us = now_us,
                             .view = make_view,
                             .view_arg = rec};
    ck_assert_int_eq(voc_sla_apply_event(&c, type), 0);
    ck_assert_int_eq(voc_casedb_put(txn, old, rec), 0);
    json_decref(old);
    json_decref(rec);
}

/* Apply event `type` to case `id` at now_us in its own transaction. */
static void apply(uint64_t id, const char *type)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    apply_in(&txn, id, type);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
}

/* Fire what is due at now_us the way the daemon's fire job does; each firing appends
 * {type, clock, cycle, due_at} to the record's "fired" list (standing in for the
 * clock_warning / clock_breached event). Returns how many fired. */
static int fire_due_in(struct voc_txn *txn)
{
    int fired = 0;
    for (;;) {
        struct voc_deadline due[16];
        size_t n = 0;
        ck_assert_int_eq(voc_sla_due(txn, now_us, due, 16, &n), 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert(due[i].due_us <= now_us);
            json_t *rec = get_case_in(txn, due[i].case_id);
            json_t *old = json_deep_copy(rec);
            struct voc_sla_case c = {.txn = txn,
                                     .policy = policy,
                                     .record = rec,
                                     .now_us = now_us,
                                     .view = make_view,
                                     .view_arg = rec};
            const char *status = NULL;
            json_t *clock = NULL;
            int rc = voc_sla_fire(&c, &due[i], &status, &clock);
            ck_assert_int_ge(rc, 0);
            if (rc == 1) {
                ck_assert_ptr_nonnull(clock);
                ck_assert_str_eq(status,
                                 due[i].kind == VOC_DEADLINE_WARNING ? "warning" : "breached");
                json_array_append_new(
                    json_object_get(rec, "fired"),
                    json_pack("{s:s, s:i, s:O, s:O, s:O}", "type",
                              strcmp(status, "warning") == 0 ? "clock_warning" : "clock_breached",
                              "index", (int)due[i].clock, "clock", json_object_get(clock, "name"),
                              "cycle", json_object_get(clock, "cycle"), "due_at",
                              json_object_get(clock, "due_at")));
                fired++;
            }
            ck_assert_int_eq(voc_casedb_put(txn, old, rec), 0);
            json_decref(old);
            json_decref(rec);
        }
        if (n < 16)
            return fired;
    }
}

static int fire_due(void)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    int fired = fire_due_in(&txn);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    return fired;
}

/* ---- reading clocks -------------------------------------------------------------------- */

/* The clock called `name` in its `cycle` (borrowed from rec), or NULL. */
static json_t *clock_of(json_t *rec, const char *name, int cycle)
{
    size_t i;
    json_t *clock;
    json_array_foreach (json_object_get(rec, "clocks"), i, clock) {
        if (strcmp(voc_json_str(clock, "name"), name) == 0 &&
            voc_json_int(clock, "cycle", 0) == cycle)
            return clock;
    }
    return NULL;
}

static size_t clocks_named(json_t *rec, const char *name)
{
    size_t i, n = 0;
    json_t *clock;
    json_array_foreach (json_object_get(rec, "clocks"), i, clock)
        n += strcmp(voc_json_str(clock, "name"), name) == 0;
    return n;
}

/* A time field of a clock in microseconds; INT64_MIN when null or absent. */
static int64_t time_of(const json_t *clock, const char *key)
{
    const char *s = voc_json_str(clock, key);
    int64_t us;
    if (!s || voc_parse_time(s, &us) != 0)
        return INT64_MIN;
    return us;
}

static const char *status_of(const json_t *clock)
{
    const char *s = voc_json_str(clock, "status");
    ck_assert_ptr_nonnull(s);
    return s;
}

static struct voc_sla_counts counts(void)
{
    struct voc_txn txn;
    struct voc_sla_counts c;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_sla_open_counts(&txn, &c), 0);
    voc_txn_abort(&txn);
    return c;
}

static void assert_counts(int64_t running, int64_t paused, int64_t warning, int64_t breached)
{
    struct voc_sla_counts c = counts();
    ck_assert_msg(c.running == running && c.paused == paused && c.warning == warning &&
                      c.breached == breached,
                  "open clocks running=%" PRId64 " paused=%" PRId64 " warning=%" PRId64
                  " breached=%" PRId64 ", expected %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64,
                  c.running, c.paused, c.warning, c.breached, running, paused, warning, breached);
}

static int64_t next_deadline(void)
{
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    int64_t next = voc_sla_next_deadline(&txn);
    voc_txn_abort(&txn);
    return next;
}

static int count_keys_cb(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)key;
    (void)val;
    (*(size_t *)arg)++;
    return 0;
}

static size_t key_count(enum voc_db db)
{
    struct voc_txn txn;
    size_t n = 0;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_txn_scan(&txn, db, "", 0, NULL, 0, NULL, 0, false, count_keys_cb, &n), 0);
    voc_txn_abort(&txn);
    return n;
}

struct alert_list {
    uint64_t case_id[16];
    uint16_t clock[16];
    int64_t due[16];
    size_t n;
};

static int collect_alert(uint64_t case_id, uint16_t clock, int64_t due_us, void *arg)
{
    struct alert_list *l = arg;
    if (l->n == 16)
        return 1;
    l->case_id[l->n] = case_id;
    l->clock[l->n] = clock;
    l->due[l->n] = due_us;
    l->n++;
    return 0;
}

static struct alert_list alerts(void)
{
    struct alert_list l = {.n = 0};
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_sla_list_alerts(&txn, NULL, collect_alert, &l), 0);
    voc_txn_abort(&txn);
    return l;
}

static size_t fired_count(json_t *rec, const char *type)
{
    size_t i, n = 0;
    json_t *f;
    json_array_foreach (json_object_get(rec, "fired"), i, f)
        n += strcmp(voc_json_str(f, "type"), type) == 0;
    return n;
}

static bool has_tag(json_t *rec, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(json_object_get(rec, "classification"), "tags"), i, t)
        if (strcmp(json_string_value(t), tag) == 0)
            return true;
    return false;
}

/* ---- scenarios ------------------------------------------------------------------------- */

START_TEST(test_start_stop_met)
{
    create_case(1, "general");
    apply(1, "received");
    json_t *rec = get_case(1);
    json_t *ack = clock_of(rec, "ack", 1);
    ck_assert_ptr_nonnull(ack);
    ck_assert_str_eq(status_of(ack), "running");
    ck_assert_str_eq(voc_json_str(ack, "calendar"), "24x7");
    ck_assert(json_real_value(json_object_get(ack, "target_s")) == 7200.0);
    ck_assert_int_eq(time_of(ack, "started_at"), t0());
    ck_assert_int_eq(time_of(ack, "due_at"), t0() + 2 * HOUR_US);
    ck_assert_int_eq(time_of(ack, "warn_at"), t0() + 1 * HOUR_US);
    ck_assert(json_is_null(json_object_get(ack, "stopped_at")));
    /* Only the clock whose start event this was runs. */
    ck_assert_ptr_null(clock_of(rec, "resolve", 1));
    ck_assert_ptr_null(clock_of(rec, "plan", 1));
    json_decref(rec);
    assert_counts(1, 0, 0, 0);
    ck_assert_int_eq(next_deadline(), t0() + HOUR_US);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 2);

    now_us = t0() + 30 * MIN_US;
    apply(1, "acknowledged");
    rec = get_case(1);
    ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "met");
    ck_assert_int_eq(time_of(ack, "stopped_at"), now_us);
    json_decref(rec);
    assert_counts(0, 0, 0, 0);
    ck_assert_int_eq(next_deadline(), INT64_MAX);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);

    /* Nothing fires later for a met clock, and the API view hides the bookkeeping. */
    now_us = t0() + 5 * HOUR_US;
    ck_assert_int_eq(fire_due(), 0);
    rec = get_case(1);
    json_t *view = voc_sla_clocks_view(json_object_get(rec, "clocks"), now_us);
    const char *key;
    json_t *value;
    json_object_foreach (json_array_get(view, 0), key, value)
        ck_assert_msg(key[0] != '_', "internal field %s in the view", key);
    ck_assert_ptr_null(json_object_get(json_array_get(view, 0), "overdue_s"));
    json_decref(view);
    json_decref(rec);
}
END_TEST

START_TEST(test_warning_then_breach)
{
    create_case(1, "general");
    apply(1, "received");
    now_us = t0() + HOUR_US - 1000;
    ck_assert_int_eq(fire_due(), 0);
    now_us = t0() + HOUR_US; /* warn = 0.5 of 2h */
    ck_assert_int_eq(fire_due(), 1);
    json_t *rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "warning");
    ck_assert_uint_eq(fired_count(rec, "clock_warning"), 1);
    ck_assert(!json_is_true(json_object_get(rec, "breached")));
    json_decref(rec);
    assert_counts(0, 0, 1, 0);
    struct alert_list l = alerts();
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(l.case_id[0], 1);
    ck_assert_int_eq(l.due[0], t0() + 2 * HOUR_US);

    now_us = t0() + 2 * HOUR_US;
    ck_assert_int_eq(fire_due(), 1);
    rec = get_case(1);
    json_t *ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "breached");
    ck_assert(json_is_null(json_object_get(ack, "stopped_at")));
    ck_assert(json_is_true(json_object_get(rec, "breached")));
    ck_assert_uint_eq(fired_count(rec, "clock_warning"), 1);
    ck_assert_uint_eq(fired_count(rec, "clock_breached"), 1);
    json_decref(rec);
    assert_counts(0, 0, 0, 1);
    l = alerts();
    ck_assert_uint_eq(l.n, 1);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);

    /* Still open 90 minutes later: the view says how late it is. */
    now_us = t0() + 3 * HOUR_US + 30 * MIN_US;
    rec = get_case(1);
    json_t *view = voc_sla_clocks_view(json_object_get(rec, "clocks"), now_us);
    ck_assert(json_real_value(json_object_get(json_array_get(view, 0), "overdue_s")) == 5400.0);
    json_decref(view);
    json_decref(rec);

    /* Stopped late: stays breached, leaves the open counts and the alert list. */
    apply(1, "acknowledged");
    rec = get_case(1);
    ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "breached");
    ck_assert_int_eq(time_of(ack, "stopped_at"), now_us);
    json_decref(rec);
    assert_counts(0, 0, 0, 0);
    ck_assert_uint_eq(alerts().n, 0);
    ck_assert_uint_eq(key_count(VOC_DB_ALERTS), 0);
}
END_TEST

START_TEST(test_exactly_once)
{
    create_case(1, "general");
    apply(1, "received");
    /* Both deadlines passed while "down": the warning, then the breach, each once. */
    now_us = t0() + 5 * HOUR_US;
    struct voc_deadline due[4];
    size_t n = 0;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_sla_due(&txn, now_us, due, 4, &n), 0);
    voc_txn_abort(&txn);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(due[0].kind, VOC_DEADLINE_WARNING);
    ck_assert_int_eq(due[0].due_us, t0() + HOUR_US);
    ck_assert_int_eq(due[1].kind, VOC_DEADLINE_BREACH);
    ck_assert_int_eq(due[1].due_us, t0() + 2 * HOUR_US);
    ck_assert_uint_eq(due[1].case_id, 1);
    ck_assert_uint_eq(due[1].clock, 0);

    ck_assert_int_eq(fire_due(), 2);
    ck_assert_int_eq(fire_due(), 0);

    /* The same deadline handed to voc_sla_fire again (a retried job) does nothing. */
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    json_t *rec = get_case_in(&txn, 1);
    struct voc_sla_case c = {.txn = &txn,
                             .policy = policy,
                             .record = rec,
                             .now_us = now_us,
                             .view = make_view,
                             .view_arg = rec};
    const char *status = NULL;
    json_t *clock = NULL;
    ck_assert_int_eq(voc_sla_fire(&c, &due[1], &status, &clock), 0);
    ck_assert_int_eq(voc_sla_fire(&c, &due[0], &status, &clock), 0);
    ck_assert_ptr_null(status);
    json_decref(rec);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);

    rec = get_case(1);
    ck_assert_uint_eq(fired_count(rec, "clock_warning"), 1);
    ck_assert_uint_eq(fired_count(rec, "clock_breached"), 1);
    json_t *first = json_array_get(json_object_get(rec, "fired"), 0);
    ck_assert_str_eq(voc_json_str(first, "type"), "clock_warning");
    json_decref(rec);
    assert_counts(0, 0, 0, 1);
}
END_TEST

START_TEST(test_pause_resume)
{
    create_case(1, "general");
    apply(1, "received"); /* ack: due t0+2h, warn t0+1h */
    now_us = t0() + 30 * MIN_US;
    apply(1, "waiting");
    json_t *rec = get_case(1);
    json_t *ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "paused");
    ck_assert(json_is_null(json_object_get(ack, "due_at")));
    ck_assert_int_eq(time_of(ack, "paused_at"), now_us);
    json_decref(rec);
    assert_counts(0, 1, 0, 0);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);
    ck_assert_int_eq(next_deadline(), INT64_MAX);

    /* Waiting through the old warning and due times: nothing fires. */
    now_us = t0() + 2 * HOUR_US;
    ck_assert_int_eq(fire_due(), 0);

    /* Paused for 2h30m in all: due and warning move by exactly that. */
    now_us = t0() + 3 * HOUR_US;
    apply(1, "resumed");
    rec = get_case(1);
    ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "running");
    ck_assert_ptr_null(json_object_get(ack, "paused_at"));
    ck_assert_int_eq(time_of(ack, "due_at"), t0() + 4 * HOUR_US + 30 * MIN_US);
    ck_assert_int_eq(time_of(ack, "warn_at"), t0() + 3 * HOUR_US + 30 * MIN_US);
    ck_assert_int_eq(time_of(ack, "started_at"), t0());
    json_decref(rec);
    assert_counts(1, 0, 0, 0);
    ck_assert_int_eq(next_deadline(), t0() + 3 * HOUR_US + 30 * MIN_US);

    now_us = t0() + 3 * HOUR_US + 30 * MIN_US - 1000;
    ck_assert_int_eq(fire_due(), 0);
    now_us += 1000;
    ck_assert_int_eq(fire_due(), 1);
    /* A pause in warning comes back in warning, the remaining time still exact. */
    now_us = t0() + 4 * HOUR_US;
    apply(1, "waiting");
    ck_assert_uint_eq(alerts().n, 0);
    assert_counts(0, 1, 0, 0);
    now_us = t0() + 5 * HOUR_US;
    apply(1, "resumed");
    rec = get_case(1);
    ack = clock_of(rec, "ack", 1);
    ck_assert_str_eq(status_of(ack), "warning");
    ck_assert_int_eq(time_of(ack, "due_at"), t0() + 5 * HOUR_US + 30 * MIN_US);
    ck_assert(json_is_null(json_object_get(ack, "warn_at")));
    json_decref(rec);
    assert_counts(0, 0, 1, 0);
    ck_assert_uint_eq(alerts().n, 1);
    now_us = t0() + 5 * HOUR_US + 30 * MIN_US;
    ck_assert_int_eq(fire_due(), 1);
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "breached");
    ck_assert_uint_eq(fired_count(rec, "clock_warning"), 1);
    ck_assert_uint_eq(fired_count(rec, "clock_breached"), 1);
    json_decref(rec);

    /* A breached clock does not pause: the customer's silence comes too late. */
    now_us += HOUR_US;
    apply(1, "waiting");
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "breached");
    json_decref(rec);
    assert_counts(0, 0, 0, 1);
}
END_TEST

/* Real clocks are not whole milliseconds: a pause and resume at odd microseconds must still
 * leave deadlines that fire, keys that match the record, and nothing stale behind. */
START_TEST(test_pause_resume_microseconds)
{
    create_case(1, "general");
    int64_t start = t0() + 123;
    now_us = start;
    apply(1, "received");
    int64_t pause = t0() + 10 * MIN_US + 456;
    now_us = pause;
    apply(1, "waiting");
    int64_t resume = t0() + 20 * MIN_US + 789;
    now_us = resume;
    apply(1, "resumed");

    /* The true deadline: the target after the start, plus the paused time. Shown in whole
     * milliseconds, it may be at most 1 ms later, never earlier. */
    int64_t exact_due = start + 2 * HOUR_US + (resume - pause);
    int64_t exact_warn = start + HOUR_US + (resume - pause);
    json_t *rec = get_case(1);
    json_t *ack = clock_of(rec, "ack", 1);
    int64_t due = time_of(ack, "due_at"), warn = time_of(ack, "warn_at");
    json_decref(rec);
    ck_assert_msg(due >= exact_due && due < exact_due + 1000,
                  "due %" PRId64 " us after the exact due", due - exact_due);
    ck_assert_msg(warn >= exact_warn && warn < exact_warn + 1000,
                  "warning %" PRId64 " us after the exact time", warn - exact_warn);
    /* The index holds exactly the times the record shows. */
    ck_assert_int_eq(next_deadline(), warn);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 2);

    now_us = warn;
    ck_assert_int_eq(fire_due(), 1);
    now_us = t0() + 2 * HOUR_US + 5 * MIN_US + 3; /* pause again before the due */
    apply(1, "waiting");
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);
    now_us += 17 * MIN_US + 901;
    apply(1, "resumed");
    rec = get_case(1);
    due = time_of(clock_of(rec, "ack", 1), "due_at");
    json_decref(rec);
    ck_assert_int_eq(next_deadline(), due);
    now_us = due - 1;
    ck_assert_int_eq(fire_due(), 0);
    now_us = due;
    ck_assert_int_eq(fire_due(), 1);
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "breached");
    json_decref(rec);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);
}
END_TEST

START_TEST(test_pause_over_weekend)
{
    create_case(1, "general");
    now_us = at("2026-11-20T15:00:00Z"); /* Friday */
    apply(1, "assigned");
    json_t *rec = get_case(1);
    json_t *plan = clock_of(rec, "plan", 1);
    ck_assert_str_eq(voc_json_str(plan, "calendar"), "workdays");
    /* 4 working hours: 3 on Friday, 1 on Monday. */
    ck_assert_int_eq(time_of(plan, "due_at"), at("2026-11-23T10:00:00Z"));
    ck_assert_int_eq(time_of(plan, "warn_at"), at("2026-11-20T17:00:00Z"));
    json_decref(rec);

    now_us = at("2026-11-20T16:00:00Z");
    apply(1, "waiting");
    assert_counts(0, 2, 0, 0); /* plan and resolve */
    now_us = at("2026-11-23T09:00:00Z");
    apply(1, "resumed");
    rec = get_case(1);
    plan = clock_of(rec, "plan", 1);
    /* Paused Fri 16:00-18:00 of working time (the weekend does not count): due moves 2h. */
    ck_assert_int_eq(time_of(plan, "due_at"), at("2026-11-23T12:00:00Z"));
    ck_assert_int_eq(time_of(plan, "warn_at"), at("2026-11-23T10:00:00Z"));
    /* The 24x7 resolve clock (24h for general) moves by the whole 65 hours. */
    json_t *resolve = clock_of(rec, "resolve", 1);
    ck_assert_int_eq(time_of(resolve, "due_at"), at("2026-11-24T08:00:00Z"));
    json_decref(rec);
    assert_counts(2, 0, 0, 0);

    now_us = at("2026-11-23T10:00:00Z");
    ck_assert_int_eq(fire_due(), 1);
    now_us = at("2026-11-23T12:00:00Z");
    ck_assert_int_eq(fire_due(), 1);
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "plan", 1)), "breached");
    ck_assert_str_eq(status_of(clock_of(rec, "resolve", 1)), "running");
    json_decref(rec);
    assert_counts(1, 0, 0, 1);
}
END_TEST

START_TEST(test_target_function)
{
    create_case(1, "serious");
    create_case(2, "general");
    create_case(3, "broken");
    apply(1, "assigned");
    apply(2, "assigned");
    apply(3, "assigned");

    json_t *rec = get_case(1);
    json_t *resolve = clock_of(rec, "resolve", 1);
    ck_assert(json_real_value(json_object_get(resolve, "target_s")) == 7200.0);
    ck_assert_int_eq(time_of(resolve, "due_at"), t0() + 2 * HOUR_US);
    ck_assert_int_eq(time_of(resolve, "warn_at"), t0() + 90 * MIN_US);
    ck_assert(!has_tag(rec, "rule_error"));
    json_decref(rec);

    rec = get_case(2);
    resolve = clock_of(rec, "resolve", 1);
    ck_assert(json_real_value(json_object_get(resolve, "target_s")) == 86400.0);
    ck_assert_int_eq(time_of(resolve, "due_at"), t0() + 24 * HOUR_US);
    json_decref(rec);

    /* A failing target function: the clock runs without a deadline, the case is tagged,
     * and the other clocks of the case are unaffected. */
    rec = get_case(3);
    resolve = clock_of(rec, "resolve", 1);
    ck_assert_ptr_nonnull(resolve);
    ck_assert_str_eq(status_of(resolve), "running");
    ck_assert(json_is_null(json_object_get(resolve, "target_s")));
    ck_assert(json_is_null(json_object_get(resolve, "due_at")));
    ck_assert(has_tag(rec, "rule_error"));
    ck_assert(time_of(clock_of(rec, "plan", 1), "due_at") != INT64_MIN);
    json_decref(rec);
    assert_counts(6, 0, 0, 0);
    /* 2 keys (warn + due) for each clock with a target: 5 of the 6. */
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 10);

    /* Much later, everything with a deadline breached; the clock without one did not. */
    now_us = t0() + 30 * 24 * HOUR_US;
    ck_assert_int_eq(fire_due(), 10);
    rec = get_case(3);
    ck_assert_str_eq(status_of(clock_of(rec, "resolve", 1)), "running");
    ck_assert_str_eq(status_of(clock_of(rec, "plan", 1)), "breached");
    json_decref(rec);
    assert_counts(1, 0, 0, 5);
    /* It can still be stopped. */
    apply(3, "resolved");
    rec = get_case(3);
    ck_assert_str_eq(status_of(clock_of(rec, "resolve", 1)), "met");
    json_decref(rec);
    assert_counts(0, 0, 0, 5);
}
END_TEST

START_TEST(test_reopen_new_cycle)
{
    create_case(1, "general");
    apply(1, "assigned");
    now_us = t0() + HOUR_US;
    apply(1, "resolved");
    now_us = t0() + 3 * HOUR_US;
    apply(1, "reopened");
    json_t *rec = get_case(1);
    ck_assert_uint_eq(clocks_named(rec, "resolve"), 2);
    json_t *first = clock_of(rec, "resolve", 1);
    json_t *second = clock_of(rec, "resolve", 2);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    /* The earlier cycle is history, untouched. */
    ck_assert_str_eq(status_of(first), "met");
    ck_assert_int_eq(time_of(first, "started_at"), t0());
    ck_assert_int_eq(time_of(first, "stopped_at"), t0() + HOUR_US);
    ck_assert_int_eq(time_of(first, "due_at"), t0() + 24 * HOUR_US);
    ck_assert_str_eq(status_of(second), "running");
    ck_assert_int_eq(time_of(second, "started_at"), t0() + 3 * HOUR_US);
    ck_assert_int_eq(time_of(second, "due_at"), t0() + 27 * HOUR_US);
    /* Not named for reopening: plan (still running) and ack (never started) stay as they
     * were. */
    ck_assert_uint_eq(clocks_named(rec, "plan"), 1);
    ck_assert_uint_eq(clocks_named(rec, "ack"), 0);
    json_decref(rec);
    assert_counts(2, 0, 0, 0);

    /* A reopen while the new cycle still runs does not start a third one. */
    now_us = t0() + 4 * HOUR_US;
    apply(1, "reopened");
    rec = get_case(1);
    ck_assert_uint_eq(clocks_named(rec, "resolve"), 2);
    json_decref(rec);

    /* The second cycle breaches on its own schedule; the first never fires. */
    now_us = t0() + 27 * HOUR_US;
    fire_due();
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "resolve", 2)), "breached");
    ck_assert_str_eq(status_of(clock_of(rec, "resolve", 1)), "met");
    size_t i;
    json_t *f;
    int breaches = 0;
    json_array_foreach (json_object_get(rec, "fired"), i, f) {
        if (strcmp(voc_json_str(f, "clock"), "resolve") == 0 &&
            strcmp(voc_json_str(f, "type"), "clock_breached") == 0) {
            ck_assert_int_eq(voc_json_int(f, "cycle", 0), 2);
            breaches++;
        }
    }
    ck_assert_int_eq(breaches, 1);
    json_decref(rec);
}
END_TEST

START_TEST(test_second_start_does_not_restart)
{
    create_case(1, "general");
    apply(1, "received");
    apply(1, "assigned");
    now_us = t0() + 30 * MIN_US;
    apply(1, "received");
    apply(1, "assigned");
    json_t *rec = get_case(1);
    ck_assert_uint_eq(json_array_size(json_object_get(rec, "clocks")), 3);
    json_t *ack = clock_of(rec, "ack", 1);
    ck_assert_int_eq(time_of(ack, "started_at"), t0());
    ck_assert_int_eq(time_of(ack, "due_at"), t0() + 2 * HOUR_US);
    ck_assert_int_eq(time_of(clock_of(rec, "resolve", 1), "started_at"), t0());
    json_decref(rec);
    assert_counts(3, 0, 0, 0);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 6);

    /* After its stop, a start event does start a new cycle. */
    apply(1, "acknowledged");
    now_us = t0() + HOUR_US;
    apply(1, "received");
    rec = get_case(1);
    ck_assert_uint_eq(clocks_named(rec, "ack"), 2);
    ck_assert_int_eq(time_of(clock_of(rec, "ack", 2), "due_at"), t0() + 3 * HOUR_US);
    json_decref(rec);
}
END_TEST

START_TEST(test_stale_deadline_does_not_fire)
{
    create_case(1, "general");
    apply(1, "received");
    struct voc_deadline old[4];
    size_t n = 0;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_sla_due(&txn, t0() + 10 * HOUR_US, old, 4, &n), 0);
    voc_txn_abort(&txn);
    ck_assert_uint_eq(n, 2);

    now_us = t0() + 30 * MIN_US;
    apply(1, "waiting");
    now_us = t0() + 90 * MIN_US;
    apply(1, "resumed"); /* new: warn t0+2h, due t0+3h */
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 2);

    /* The old deadlines, handed in as a fire job that read them before the pause would. */
    now_us = t0() + 2 * HOUR_US;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    json_t *rec = get_case_in(&txn, 1);
    struct voc_sla_case c = {.txn = &txn,
                             .policy = policy,
                             .record = rec,
                             .now_us = now_us,
                             .view = make_view,
                             .view_arg = rec};
    for (size_t i = 0; i < n; i++) {
        const char *status = NULL;
        json_t *clock = NULL;
        ck_assert_int_eq(voc_sla_fire(&c, &old[i], &status, &clock), 0);
    }
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "running");
    json_decref(rec);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    /* The current deadlines are still there and fire on time. */
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 2);
    ck_assert_int_eq(fire_due(), 1); /* the warning at t0+2h */
    rec = get_case(1);
    ck_assert_str_eq(status_of(clock_of(rec, "ack", 1)), "warning");
    json_decref(rec);
    now_us = t0() + 3 * HOUR_US - 1;
    ck_assert_int_eq(fire_due(), 0);
    now_us = t0() + 3 * HOUR_US;
    ck_assert_int_eq(fire_due(), 1);
}
END_TEST

START_TEST(test_alerts_most_overdue_first)
{
    create_case(1, "general");
    create_case(2, "serious");
    apply(1, "received"); /* ack due t0+2h */
    now_us = t0() - HOUR_US;
    apply(2, "received"); /* due t0+1h: more overdue */
    now_us = t0() + 5 * HOUR_US;
    ck_assert_int_eq(fire_due(), 4);
    struct alert_list l = alerts();
    ck_assert_uint_eq(l.n, 2);
    ck_assert_uint_eq(l.case_id[0], 2);
    ck_assert_uint_eq(l.case_id[1], 1);
    ck_assert_int_lt(l.due[0], l.due[1]);
}
END_TEST

/* A listing goes on from a position (the API's cursor), and the cursor text round-trips. */
START_TEST(test_alerts_from_position)
{
    for (uint64_t id = 1; id <= 3; id++) {
        create_case(id, "general");
        now_us = t0() + (int64_t)id * MIN_US;
        apply(id, "received");
    }
    now_us = t0() + 5 * HOUR_US;
    ck_assert_int_eq(fire_due(), 6);
    struct alert_list all = alerts();
    ck_assert_uint_eq(all.n, 3);
    struct voc_alert_pos pos = {
        .due_us = all.due[1], .case_id = all.case_id[1], .clock = all.clock[1]};
    char text[80];
    voc_sla_alert_cursor_format(&pos, text, sizeof text);
    struct voc_alert_pos back;
    ck_assert_int_eq(voc_sla_alert_cursor_parse(text, &back), 0);
    ck_assert_int_eq(back.due_us, pos.due_us);
    ck_assert_uint_eq(back.case_id, pos.case_id);
    ck_assert_uint_eq(back.clock, pos.clock);

    struct alert_list rest = {.n = 0};
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_read(store, &txn), 0);
    ck_assert_int_eq(voc_sla_list_alerts(&txn, &back, collect_alert, &rest), 0);
    voc_txn_abort(&txn);
    ck_assert_uint_eq(rest.n, 2); /* inclusive: the entry at the position, then the next */
    ck_assert_uint_eq(rest.case_id[0], all.case_id[1]);
    ck_assert_uint_eq(rest.case_id[1], all.case_id[2]);

    /* Text this server did not give out. */
    static const char *const bad[] = {"",       "abc",       "1-2",    "1-2-3-4",
                                      "-1-2-3", "1-2-10000", "1-2-3 ", " 1-2-3",
                                      "+1-2-3", "G-2-3",     "1--3",   "11111111111111111-2-3",
                                      NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(voc_sla_alert_cursor_parse(bad[i], &back) == -1, "accepted '%s'", bad[i]);
}
END_TEST

/* A target beyond ten years, from a function or fixed in the profile, would overflow the
 * microsecond arithmetic: it is refused like a failing target function. */
START_TEST(test_target_over_limit)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/huge.lua", tmp_dir);
    write_file(
        path, "return { name = 'huge', clocks = {\n"
              "  { name = 'number', start = 'received', stop = 'acknowledged',\n"
              "    target = function(case) return 1e300 end },\n"
              "  { name = 'days', start = 'received', stop = 'acknowledged',\n"
              "    target = function(case) return '100000d' end },\n"
              "  { name = 'fixed', start = 'received', stop = 'acknowledged', target = '4000d' },\n"
              "  { name = 'ten_years', start = 'received', stop = 'acknowledged', warn = 0.5,\n"
              "    target = function(case) return '3652d' end },\n"
              "} }\n");
    struct voc_diag diag;
    voc_diag_init(&diag);
    struct voc_rules *rules = NULL;
    ck_assert_int_eq(voc_rules_load(path, NULL, NULL, NULL, &rules, &diag), 0);
    voc_policy_free(policy);
    policy = NULL;
    ck_assert_int_eq(voc_policy_new(cfg, rules, &policy, &diag), 0);
    voc_diag_free(&diag);

    char why[160];
    ck_assert(voc_sla_target_ok(VOC_SLA_MAX_TARGET_S, why, sizeof why));
    ck_assert(!voc_sla_target_ok(VOC_SLA_MAX_TARGET_S + 1, why, sizeof why));
    ck_assert_msg(strstr(why, "10 years") != NULL, "%s", why);
    ck_assert(!voc_sla_target_ok(0, why, sizeof why));
    ck_assert(!voc_sla_target_ok(-1, why, sizeof why));
    ck_assert(!voc_sla_target_ok(1.0 / 0.0, why, sizeof why));

    create_case(1, "general");
    apply(1, "received");
    json_t *rec = get_case(1);
    static const char *const refused[] = {"number", "days", "fixed", NULL};
    for (int i = 0; refused[i]; i++) {
        json_t *clock = clock_of(rec, refused[i], 1);
        ck_assert_ptr_nonnull(clock);
        ck_assert_str_eq(status_of(clock), "running");
        ck_assert(json_is_null(json_object_get(clock, "target_s")));
        ck_assert(json_is_null(json_object_get(clock, "due_at")));
    }
    ck_assert(has_tag(rec, "rule_error"));
    json_t *ten = clock_of(rec, "ten_years", 1);
    ck_assert(json_real_value(json_object_get(ten, "target_s")) == 3652.0 * 86400);
    ck_assert_int_eq(time_of(ten, "due_at"), t0() + 3652 * 24 * HOUR_US);
    ck_assert_int_eq(time_of(ten, "warn_at"), t0() + 1826 * 24 * HOUR_US);
    json_decref(rec);
    /* Only the ten-year clock has deadlines (warning and due). */
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 2);
    /* And they stop like any other clock. */
    apply(1, "acknowledged");
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);
    assert_counts(0, 0, 0, 0);
}
END_TEST

/* ---- property test --------------------------------------------------------------------- */

#define PROP_CASES 12

struct tuple {
    int64_t due;
    uint64_t id;
    unsigned clock, kind;
};

static int tuple_cmp(const void *a, const void *b)
{
    const struct tuple *x = a, *y = b;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock < y->clock ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

struct tuples {
    struct tuple *v;
    size_t n, cap;
};

static void tuples_add(struct tuples *t, int64_t due, uint64_t id, unsigned clock, unsigned kind)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = realloc(t->v, t->cap * sizeof *t->v);
        ck_assert_ptr_nonnull(t->v);
    }
    t->v[t->n++] = (struct tuple){due, id, clock, kind};
}

static int collect_tuple(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    const unsigned char *k = key->mv_data;
    ck_assert(key->mv_size == 18 || key->mv_size == 19);
    tuples_add(arg, (int64_t)(voc_key_get_u64(k) - TIME_BIAS), voc_key_get_u64(k + 8),
               (unsigned)(k[16] << 8 | k[17]), key->mv_size == 19 ? k[18] : 0);
    return 0;
}

static void assert_same(struct tuples *expected, struct tuples *actual, const char *what,
                        unsigned step)
{
    if (expected->n)
        qsort(expected->v, expected->n, sizeof *expected->v, tuple_cmp);
    if (actual->n)
        qsort(actual->v, actual->n, sizeof *actual->v, tuple_cmp);
    for (size_t i = 0; i < expected->n && i < actual->n; i++)
        ck_assert_msg(tuple_cmp(&expected->v[i], &actual->v[i]) == 0,
                      "step %u: %s #%zu differs: expected case %" PRIu64 " clock %u kind %u at "
                      "%" PRId64 ", found case %" PRIu64 " clock %u kind %u at %" PRId64,
                      step, what, i, expected->v[i].id, expected->v[i].clock, expected->v[i].kind,
                      expected->v[i].due, actual->v[i].id, actual->v[i].clock, actual->v[i].kind,
                      actual->v[i].due);
    ck_assert_msg(expected->n == actual->n, "step %u: %zu %s expected, %zu in the index", step,
                  expected->n, what, actual->n);
}

/* Recount everything from the records and compare with the counters and the indexes. */
static void check_invariants(struct voc_txn *txn, unsigned step)
{
    struct voc_sla_counts want = {0, 0, 0, 0};
    struct tuples dl = {0}, al = {0}, got_dl = {0}, got_al = {0};
    for (uint64_t id = 1; id <= PROP_CASES; id++) {
        json_t *rec = get_case_in(txn, id);
        size_t i;
        json_t *clock;
        json_array_foreach (json_object_get(rec, "clocks"), i, clock) {
            /* At most one open clock per name. */
            if (json_is_null(json_object_get(clock, "stopped_at"))) {
                size_t j;
                json_t *other;
                json_array_foreach (json_object_get(rec, "clocks"), j, other)
                    ck_assert_msg(
                        j == i ||
                            strcmp(voc_json_str(other, "name"), voc_json_str(clock, "name")) != 0 ||
                            !json_is_null(json_object_get(other, "stopped_at")),
                        "step %u: case %" PRIu64 " has two open %s clocks", step, id,
                        voc_json_str(clock, "name"));
            } else {
                const char *s = status_of(clock);
                ck_assert_msg(strcmp(s, "met") == 0 || strcmp(s, "breached") == 0,
                              "step %u: stopped clock in status %s", step, s);
                continue;
            }
            const char *s = status_of(clock);
            int64_t due = time_of(clock, "due_at"), warn = time_of(clock, "warn_at");
            if (strcmp(s, "running") == 0) {
                want.running++;
                if (due != INT64_MIN)
                    tuples_add(&dl, due, id, (unsigned)i, VOC_DEADLINE_BREACH);
                if (warn != INT64_MIN)
                    tuples_add(&dl, warn, id, (unsigned)i, VOC_DEADLINE_WARNING);
            } else if (strcmp(s, "warning") == 0) {
                want.warning++;
                ck_assert(due != INT64_MIN);
                tuples_add(&dl, due, id, (unsigned)i, VOC_DEADLINE_BREACH);
                tuples_add(&al, due, id, (unsigned)i, 0);
            } else if (strcmp(s, "breached") == 0) {
                want.breached++;
                tuples_add(&al, due, id, (unsigned)i, 0);
            } else {
                ck_assert_msg(strcmp(s, "paused") == 0, "step %u: open clock in status %s", step,
                              s);
                want.paused++;
                ck_assert(due == INT64_MIN);
            }
        }
        /* Each deadline of each clock fired at most once. */
        json_t *fired = json_object_get(rec, "fired");
        json_t *a, *b;
        size_t x, y;
        json_array_foreach (fired, x, a)
            json_array_foreach (fired, y, b)
                if (x < y)
                    ck_assert_msg(voc_json_int(a, "index", -1) != voc_json_int(b, "index", -2) ||
                                      strcmp(voc_json_str(a, "type"), voc_json_str(b, "type")) != 0,
                                  "step %u: case %" PRIu64 " clock %lld fired %s twice", step, id,
                                  voc_json_int(a, "index", -1), voc_json_str(a, "type"));
        json_decref(rec);
    }
    struct voc_sla_counts got;
    ck_assert_int_eq(voc_sla_open_counts(txn, &got), 0);
    ck_assert_msg(got.running == want.running && got.paused == want.paused &&
                      got.warning == want.warning && got.breached == want.breached,
                  "step %u: counters %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64
                  ", records say %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64,
                  step, got.running, got.paused, got.warning, got.breached, want.running,
                  want.paused, want.warning, want.breached);
    ck_assert_int_eq(
        voc_txn_scan(txn, VOC_DB_DEADLINES, "", 0, NULL, 0, NULL, 0, false, collect_tuple, &got_dl),
        0);
    ck_assert_int_eq(
        voc_txn_scan(txn, VOC_DB_ALERTS, "", 0, NULL, 0, NULL, 0, false, collect_tuple, &got_al),
        0);
    assert_same(&dl, &got_dl, "deadline keys", step);
    assert_same(&al, &got_al, "alert keys", step);
    int64_t next = voc_sla_next_deadline(txn);
    ck_assert_int_eq(next, dl.n ? dl.v[0].due : INT64_MAX);
    free(dl.v);
    free(al.v);
    free(got_dl.v);
    free(got_al.v);
}

/* xorshift64*: deterministic, so a failing seed can be replayed. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

START_TEST(test_property_random_operations)
{
    static const char *const events[] = {"received", "acknowledged", "assigned", "planned",
                                         "resolved", "waiting",      "resumed",  "reopened",
                                         "note",     "closed"};
    static const char *const severities[] = {"general", "serious", "broken"};
    const unsigned steps = 3000, per_txn = 60;
    rng_state = UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)(_i + 1) * UINT64_C(0x100000001B3);
    /* A Friday afternoon, so the workdays calendar sees weekends and evenings. */
    now_us = at("2026-11-20T14:00:00Z") + (int64_t)(rnd() % 1000000);

    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    for (uint64_t id = 1; id <= PROP_CASES; id++)
        create_case_in(&txn, id, severities[rnd() % 3]);
    for (unsigned step = 1; step <= steps; step++) {
        unsigned r = (unsigned)(rnd() % 100);
        if (r < 25) {
            /* Time passes (microsecond-odd amounts, up to 5h), due deadlines fire. */
            now_us += (int64_t)(rnd() % (uint64_t)(5 * HOUR_US));
            fire_due_in(&txn);
        } else {
            uint64_t id = 1 + rnd() % PROP_CASES;
            apply_in(&txn, id, events[rnd() % (sizeof events / sizeof events[0])]);
        }
        if (step % per_txn == 0) {
            check_invariants(&txn, step);
            ck_assert_int_eq(voc_txn_commit(&txn), 0);
            ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
        }
    }
    /* Far in the future, everything with a deadline has breached exactly once. */
    now_us += 400 * 24 * HOUR_US;
    fire_due_in(&txn);
    check_invariants(&txn, steps + 1);
    ck_assert_int_eq(voc_txn_commit(&txn), 0);
    struct voc_sla_counts c = counts();
    ck_assert_int_eq(c.warning, 0);
    ck_assert_uint_eq(key_count(VOC_DB_DEADLINES), 0);
    ck_assert_int_ge(c.running + c.paused + c.breached, 1); /* the test did something */
}
END_TEST

static Suite *sla_suite(void)
{
    Suite *s = suite_create("sla");
    TCase *tc = tcase_create("clocks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_start_stop_met);
    tcase_add_test(tc, test_warning_then_breach);
    tcase_add_test(tc, test_exactly_once);
    tcase_add_test(tc, test_pause_resume);
    tcase_add_test(tc, test_pause_resume_microseconds);
    tcase_add_test(tc, test_pause_over_weekend);
    tcase_add_test(tc, test_target_function);
    tcase_add_test(tc, test_reopen_new_cycle);
    tcase_add_test(tc, test_second_start_does_not_restart);
    tcase_add_test(tc, test_stale_deadline_does_not_fire);
    tcase_add_test(tc, test_alerts_most_overdue_first);
    tcase_add_test(tc, test_alerts_from_position);
    tcase_add_test(tc, test_target_over_limit);
    tcase_add_loop_test(tc, test_property_random_operations, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sla_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
