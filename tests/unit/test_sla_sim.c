/* The in-memory SLA simulation (daemon/sla_sim.[ch]) against the real thing: the same
 * random events and time steps go to sla.c (on a temporary store, with its deadline index
 * and fire job) and to the simulation, and after every step each clock must agree in name,
 * cycle, status, target and every time. Then the replay over a stored history (received
 * waiting for the classification, a new classification feeding a target function, the
 * lifecycle fold stopping clocks of a closed case, clock events skipped) and the outcome of
 * stored clocks as of a later time. Profile: tests/unit/fixtures/sla/clocks.lua. */
#define _GNU_SOURCE /* nftw */
#include "test_util.h"
#include "case_view.h"
#include "casedb.h"
#include "config.h"
#include "diag.h"
#include "jsonutil.h"
#include "log.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "sla_sim.h"
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
#define MIN_US (60 * VOC_US_PER_S)
#define HOUR_US (60 * MIN_US)

static char tmp_dir[PATH_MAX];
static struct voc_store *store;
static struct voc_config *cfg;
static struct voc_policy *policy;
static int64_t now_us;

static int64_t at(const char *text)
{
    int64_t us;
    ck_assert_msg(voc_parse_time(text, &us) == 0, "bad time %s", text);
    return us;
}

static void setup(void)
{
    char dir[] = "/tmp/voc-slasim-XXXXXX";
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
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    struct voc_diag diag;
    voc_diag_init(&diag);
    cfg = voc_config_load(path, &diag);
    ck_assert_ptr_nonnull(cfg);
    const char *calendars[] = {"workdays", NULL};
    struct voc_rules *rules = NULL;
    ck_assert_int_eq(
        voc_rules_load(cfg->profile, cfg->rules.lib_dir, NULL, calendars, &rules, &diag), 0);
    ck_assert_int_eq(voc_policy_new(cfg, rules, &policy, &diag), 0);
    voc_diag_free(&diag);
    struct voc_store_options so = {.path = cfg->data_dir};
    char err[256];
    ck_assert_msg(voc_store_open(&store, &so, err, sizeof err) == 0, "%s", err);
    voc_sla_metrics_init();
}

static void teardown(void)
{
    voc_store_close(store);
    store = NULL;
    voc_policy_free(policy);
    policy = NULL;
    voc_config_free(cfg);
    cfg = NULL;
    voc_test_rm_rf(tmp_dir);
}

static json_t *record_view(void *arg)
{
    return voc_case_view(arg, NULL, now_us);
}

/* ---- the real clocks, driven as case_ops does ---- */

static void real_apply(struct voc_txn *txn, json_t *rec, const char *type)
{
    struct voc_sla_case c = {.txn = txn,
                             .policy = policy,
                             .record = rec,
                             .now_us = now_us,
                             .view = record_view,
                             .view_arg = rec};
    ck_assert_int_eq(voc_sla_apply_event(&c, type), 0);
}

static void real_fire(struct voc_txn *txn, json_t *rec)
{
    for (;;) {
        struct voc_deadline due[16];
        size_t n = 0;
        ck_assert_int_eq(voc_sla_due(txn, now_us, due, 16, &n), 0);
        for (size_t i = 0; i < n; i++) {
            struct voc_sla_case c = {.txn = txn,
                                     .policy = policy,
                                     .record = rec,
                                     .now_us = now_us,
                                     .view = record_view,
                                     .view_arg = rec};
            const char *status;
            json_t *clock;
            ck_assert_int_ge(voc_sla_fire(&c, &due[i], &status, &clock), 0);
        }
        if (n < 16)
            return;
    }
}

/* Every clock of the record (sla.c) equals the simulation's. */
static void assert_same_clocks(const json_t *rec, const struct voc_sla_sim *sim, unsigned step)
{
    json_t *real = voc_sla_clocks_view(json_object_get(rec, "clocks"), now_us);
    json_t *simulated = voc_sla_sim_clocks_json(sim);
    ck_assert_msg(json_array_size(real) == json_array_size(simulated),
                  "step %u: %zu clocks in sla.c, %zu simulated", step, json_array_size(real),
                  json_array_size(simulated));
    static const char *const keys[] = {"name",       "cycle",  "calendar", "target_s",   "status",
                                       "started_at", "due_at", "warn_at",  "stopped_at", NULL};
    size_t i;
    json_t *r;
    json_array_foreach (real, i, r) {
        json_t *s = json_array_get(simulated, i);
        for (size_t k = 0; keys[k]; k++) {
            json_t *a = json_object_get(r, keys[k]), *b = json_object_get(s, keys[k]);
            if (!a)
                a = json_null();
            if (!b)
                b = json_null();
            char *ta = json_dumps(a, JSON_ENCODE_ANY), *tb = json_dumps(b, JSON_ENCODE_ANY);
            ck_assert_msg(json_equal(a, b), "step %u: clock %zu (%s#%lld) %s: sla.c %s, sim %s",
                          step, i, voc_json_str(r, "name"), voc_json_int(r, "cycle", 0), keys[k],
                          ta, tb);
            free(ta);
            free(tb);
        }
    }
    json_decref(real);
    json_decref(simulated);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

START_TEST(test_same_as_sla_c)
{
    static const char *const events[] = {"received", "acknowledged", "assigned", "planned",
                                         "resolved", "waiting",      "resumed",  "reopened",
                                         "note",     "closed"};
    static const char *const severities[] = {"general", "serious", "broken"};
    rng_state = UINT64_C(0xD1B54A32D192ED03) ^ (uint64_t)(_i + 1) * UINT64_C(0x100000001B3);
    /* Friday afternoon, odd microseconds: weekends, evenings, deadlines between events. */
    now_us = at("2026-11-20T14:00:00Z") + (int64_t)(rnd() % 1000000);
    json_t *rec = json_pack("{s:I, s:s, s:s, s:{s:s, s:s, s:[]}, s:[]}", "id", (json_int_t)1,
                            "state", "assigned", "subject", "sim", "classification", "severity",
                            severities[rnd() % 3], "department", "质量部", "tags", "clocks");
    struct voc_sla_sim sim;
    voc_sla_sim_init(&sim, policy->rules, policy);
    sim.view = record_view;
    sim.view_arg = rec;
    size_t rule_errors = 0;
    struct voc_txn txn;
    ck_assert_int_eq(voc_txn_begin_write(store, &txn), 0);
    for (unsigned step = 1; step <= 1500; step++) {
        if (rnd() % 100 < 30) {
            now_us += (int64_t)(rnd() % (uint64_t)(5 * HOUR_US));
            real_fire(&txn, rec);
            voc_sla_sim_fire(&sim, now_us);
        } else {
            const char *type = events[rnd() % (sizeof events / sizeof events[0])];
            /* The state the event leaves; sla.c reads it from the record. */
            const char *state = !strcmp(type, "waiting")    ? "waiting"
                                : !strcmp(type, "closed")   ? "closed"
                                : !strcmp(type, "reopened") ? "reopened"
                                : !strcmp(type, "resumed")  ? "assigned"
                                                            : voc_json_str(rec, "state");
            char keep[32];
            snprintf(keep, sizeof keep, "%s", state);
            json_object_set_new(rec, "state", json_string(keep));
            real_apply(&txn, rec, type);
            ck_assert_int_eq(voc_sla_sim_apply(&sim, type, keep, now_us), 0);
            if (!strcmp(type, "closed"))
                json_object_set_new(rec, "state", json_string("reopened"));
        }
        assert_same_clocks(rec, &sim, step);
        rule_errors = sim.error_count;
    }
    voc_txn_abort(&txn);
    ck_assert_uint_ge(json_array_size(json_object_get(rec, "clocks")), 10); /* it did things */
    if (strcmp(voc_json_str(json_object_get(rec, "classification"), "severity"), "broken") == 0) {
        ck_assert_uint_gt(rule_errors, 0);
        ck_assert_msg(strstr(sim.errors[0], "clocks.lua:") != NULL, "%s", sim.errors[0]);
    }
    voc_sla_sim_free(&sim);
    json_decref(rec);
}
END_TEST

/* ---- replay over a stored history ---- */

static json_t *ev(const char *type, const char *when, const char *actor, json_t *data)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "type", type, "at", when, "actor", actor, "data",
                     data ? data : json_object());
}

static const json_t *sim_clock(const struct voc_sla_sim *sim, const char *name, int cycle)
{
    static json_t *last;
    json_decref(last);
    last = NULL;
    for (size_t i = 0; i < sim->count; i++)
        if (!strcmp(sim->clocks[i].name, name) && sim->clocks[i].cycle == cycle)
            return last = voc_sla_sim_clock_json(&sim->clocks[i]);
    return NULL;
}

START_TEST(test_replay_history)
{
    json_t *rec = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)7, "state", "closed",
                            "subject", "冰箱漏水", "received_at", "2026-11-16T08:00:00.000Z");
    json_t *events = json_array();
    json_array_append_new(events, ev("received", "2026-11-16T08:00:00.000Z", "api", NULL));
    json_array_append_new(events, ev("classified", "2026-11-16T08:00:00.000Z", "rules",
                                     json_pack("{s:s}", "severity", "general")));
    /* The old profile's breach of some clock: not an input of the new one. */
    json_array_append_new(events, ev("clock_breached", "2026-11-16T08:30:00.000Z", "vocd",
                                     json_pack("{s:s}", "clock", "old")));
    json_array_append_new(events, ev("assigned", "2026-11-16T09:00:00.000Z", "ops",
                                     json_pack("{s:s}", "department", "质量部")));
    json_array_append_new(events, ev("acknowledged", "2026-11-16T09:30:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("planned", "2026-11-16T10:00:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("resolved", "2026-11-16T12:00:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("replied", "2026-11-16T12:10:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("closed", "2026-11-16T12:20:00.000Z", "ops", NULL));
    int64_t later = at("2026-12-01T00:00:00Z");

    /* As stored: severity general, resolve has 24h and is met at 4h. */
    struct voc_sla_sim sim;
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, NULL, later), 0);
    ck_assert_uint_eq(sim.count, 3);
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "ack", 1), "status"), "met");
    /* received moved the clocks with the classification, at its time */
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "ack", 1), "started_at"),
                     "2026-11-16T08:00:00.000Z");
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "status"), "met");
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "due_at"),
                     "2026-11-17T09:00:00.000Z");
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "plan", 1), "status"), "met");
    voc_sla_sim_free(&sim);

    /* A new classification "serious": resolve gets 2h and was breached at 11:00. */
    json_t *serious = json_pack("{s:s, s:s}", "severity", "serious", "category", "产品质量");
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, serious, later), 0);
    const json_t *resolve = sim_clock(&sim, "resolve", 1);
    ck_assert_str_eq(voc_json_str(resolve, "status"), "breached");
    ck_assert_str_eq(voc_json_str(resolve, "due_at"), "2026-11-16T11:00:00.000Z");
    ck_assert_str_eq(voc_json_str(resolve, "stopped_at"), "2026-11-16T12:00:00.000Z");
    ck_assert_uint_eq(sim.error_count, 0);
    voc_sla_sim_free(&sim);

    /* "broken": the target function fails with file:line; the clock has no deadline. */
    json_t *broken = json_pack("{s:s}", "severity", "broken");
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, broken, later), 0);
    ck_assert_uint_eq(sim.error_count, 1);
    ck_assert_msg(strstr(sim.errors[0], "clocks.lua:") && strstr(sim.errors[0], "broken"), "%s",
                  sim.errors[0]);
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "status"), "met");
    ck_assert(json_is_null(json_object_get(sim_clock(&sim, "resolve", 1), "due_at")));
    voc_sla_sim_free(&sim);

    /* Cut the history before `closed` and `resolved`: resolve stays open and breaches by
     * `later`; plan (4 working hours from Mon 09:00) was met at 10:00. */
    json_array_remove(events, json_array_size(events) - 1);
    json_array_remove(events, json_array_size(events) - 1);
    json_array_remove(events, json_array_size(events) - 1);
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, NULL, at("2026-11-16T10:30:00Z")), 0);
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "status"), "running");
    voc_sla_sim_free(&sim);
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, NULL, later), 0);
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "status"), "breached");
    ck_assert(json_is_null(json_object_get(sim_clock(&sim, "resolve", 1), "stopped_at")));
    voc_sla_sim_free(&sim);

    /* A waiting customer pauses, a reopen starts cycle 2 of resolve. */
    json_array_append_new(events, ev("waiting", "2026-11-16T10:30:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("resumed", "2026-11-18T10:30:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("resolved", "2026-11-18T11:00:00.000Z", "ops", NULL));
    json_array_append_new(events, ev("reopened", "2026-11-19T09:00:00.000Z", "ops", NULL));
    voc_sla_sim_init(&sim, policy->rules, policy);
    ck_assert_int_eq(voc_sla_sim_replay(&sim, rec, events, NULL, at("2026-11-19T10:00:00Z")), 0);
    /* 1.5 h used before the pause, 0.5 h after: met, 22 h to spare */
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 1), "status"), "met");
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 2), "status"), "running");
    ck_assert_str_eq(voc_json_str(sim_clock(&sim, "resolve", 2), "started_at"),
                     "2026-11-19T09:00:00.000Z");
    voc_sla_sim_free(&sim);
    sim_clock(&sim, "", 0); /* releases the last JSON */

    json_decref(serious);
    json_decref(broken);
    json_decref(events);
    json_decref(rec);
}
END_TEST

START_TEST(test_stored_outcome)
{
    int64_t now = at("2026-11-16T12:00:00Z");
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:n}", "status", "running", "due_at", "2026-11-16T13:00:00.000Z",
                  "warn_at", "2026-11-16T11:00:00.000Z", "stopped_at");
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, now), "warning");
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, at("2026-11-16T10:00:00Z")), "running");
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, at("2026-11-16T13:00:00Z")), "breached");
    json_object_set_new(c, "stopped_at", json_string("2026-11-16T12:30:00.000Z"));
    json_object_set_new(c, "status", json_string("met"));
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, at("2026-11-20T00:00:00Z")), "met");
    json_object_set_new(c, "status", json_string("paused"));
    json_object_set_new(c, "stopped_at", json_null());
    json_object_set_new(c, "due_at", json_null());
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, at("2026-11-20T00:00:00Z")), "paused");
    json_object_set_new(c, "status", json_string("bogus"));
    ck_assert_str_eq(voc_sla_sim_stored_outcome(c, now), "?");
    json_decref(c);
}
END_TEST

static Suite *sla_sim_suite(void)
{
    Suite *s = suite_create("sla_sim");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_same_as_sla_c, 0, 6);
    tcase_add_test(tc, test_replay_history);
    tcase_add_test(tc, test_stored_outcome);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sla_sim_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
