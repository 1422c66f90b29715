#include "sla.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "rules.h"
#include "timeutil.h"

/* Deadline and alert keys are stored with this bias so that the big-endian byte order of a
 * signed time is its numeric order. */
#define TIME_BIAS ((uint64_t)1 << 63)

/* Clock fields whose name starts with '_' are bookkeeping, not shown by the API:
 *   _running_since   when the current running stretch began (start or last resume), integer
 *                    microseconds: the shown times are whole milliseconds, and a pause must
 *                    count the time that really ran
 *   _remaining_us    working time left to the target at _running_since
 *   _warn_remaining_us  working time left to the warning, -1 when none is pending
 *   _paused_from     the status to return to on resume */

static const char *const open_statuses[] = {"running", "paused", "warning", "breached"};

static struct voc_metric *m_warnings;
static struct voc_histogram *h_time_to_stop;

void voc_sla_metrics_init(void)
{
    m_warnings = voc_metric_register("vocd_clock_warnings_total", NULL, VOC_METRIC_COUNTER,
                                     "SLA clock warnings recorded");
    /* Seconds of wall time from start to stop; buckets from a minute to a month. */
    static const double bounds[] = {60,    300,    900,    3600,   7200,    14400,  28800,
                                    86400, 172800, 259200, 604800, 1209600, 2592000};
    h_time_to_stop = voc_histogram_register("vocd_clock_time_to_stop_seconds", NULL,
                                            "Wall time from a clock's start to its stop", bounds,
                                            sizeof bounds / sizeof bounds[0]);
}

static void count_breach(const char *clock_name)
{
    char labels[200];
    char safe[96];
    size_t n = 0;
    /* A label value must not carry quotes or backslashes; clock names are identifiers. */
    for (const char *p = clock_name; *p && n < sizeof safe - 1; p++)
        safe[n++] = (*p == '"' || *p == '\\' || *p == '\n') ? '_' : *p;
    safe[n] = '\0';
    snprintf(labels, sizeof labels, "clock=\"%s\"", safe);
    voc_metric_add(voc_metric_register("vocd_clock_breaches_total", labels, VOC_METRIC_COUNTER,
                                       "SLA clock breaches recorded, by clock name"),
                   1);
}

/* ---- keys ---- */

static void deadline_key(struct voc_key *k, int64_t due_us, uint64_t case_id, uint16_t clock,
                         enum voc_deadline_kind kind)
{
    voc_key_init(k);
    voc_key_u64(k, (uint64_t)due_us + TIME_BIAS);
    voc_key_u64(k, case_id);
    unsigned char tail[3] = {(unsigned char)(clock >> 8), (unsigned char)clock,
                             (unsigned char)kind};
    voc_key_bytes(k, tail, sizeof tail);
}

static void alert_key(struct voc_key *k, int64_t due_us, uint64_t case_id, uint16_t clock)
{
    voc_key_init(k);
    voc_key_u64(k, (uint64_t)due_us + TIME_BIAS);
    voc_key_u64(k, case_id);
    unsigned char tail[2] = {(unsigned char)(clock >> 8), (unsigned char)clock};
    voc_key_bytes(k, tail, sizeof tail);
}

/* ---- small accessors ---- */

static int64_t time_field(const json_t *clock, const char *key)
{
    const char *s = voc_json_str(clock, key);
    int64_t us;
    if (!s || voc_parse_time(s, &us) != 0)
        return INT64_MIN;
    return us;
}

static void set_time(json_t *clock, const char *key, int64_t us)
{
    if (us == INT64_MIN || us == INT64_MAX) {
        json_object_set_new(clock, key, json_null());
        return;
    }
    char buf[40];
    voc_format_time(us, buf, sizeof buf);
    json_object_set_new(clock, key, json_string(buf));
}

static const char *status_of(const json_t *clock)
{
    const char *s = voc_json_str(clock, "status");
    return s ? s : "";
}

static bool is_stopped(const json_t *clock)
{
    return !json_is_null(json_object_get(clock, "stopped_at"));
}

static bool is_active(const json_t *clock)
{
    return !is_stopped(clock);
}

static uint64_t case_id_of(const struct voc_sla_case *c)
{
    return (uint64_t)voc_json_int(c->record, "id", 0);
}

static const struct voc_calendar *calendar_of(const struct voc_sla_case *c, const json_t *clock)
{
    const char *name = voc_json_str(clock, "calendar");
    const struct voc_calendar *cal = voc_policy_calendar(c->policy, name);
    if (!cal) {
        /* The calendar was removed by a reload: count around the clock rather than never. */
        voc_warn("sla", "unknown calendar, counting 24x7 case=%llu clock=%s calendar=%s",
                 (unsigned long long)case_id_of(c), voc_json_str(clock, "name"), name ? name : "?");
        cal = voc_calendar_24x7();
    }
    return cal;
}

/* ---- open-clock counters (meta DB), kept in the same transaction as the clocks ---- */

static void counter_key(char *buf, size_t len, const char *status)
{
    snprintf(buf, len, "clocks_open.%s", status);
}

static int adjust_count(struct voc_txn *txn, const char *status, int delta)
{
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(open_statuses[i], status) == 0;
    if (!known || delta == 0)
        return 0;
    char key[64];
    counter_key(key, sizeof key, status);
    MDB_val v;
    int64_t value = 0;
    int rc = voc_txn_get(txn, VOC_DB_META, key, strlen(key), &v);
    if (rc == 0 && v.mv_size == 8)
        value = (int64_t)voc_key_get_u64(v.mv_data);
    else if (rc != MDB_NOTFOUND && rc != 0)
        return rc;
    value += delta;
    if (value < 0)
        value = 0;
    unsigned char b[8];
    voc_key_set_u64(b, (uint64_t)value);
    return voc_txn_put(txn, VOC_DB_META, key, strlen(key), b, sizeof b);
}

/* Every status change of an open clock goes through here so the counters stay right. */
static void set_status(struct voc_sla_case *c, json_t *clock, const char *status, bool stopping)
{
    const char *old = status_of(clock);
    if (is_active(clock))
        adjust_count(c->txn, old, -1);
    json_object_set_new(clock, "status", json_string(status));
    if (!stopping)
        adjust_count(c->txn, status, +1);
}

/* ---- deadline bookkeeping ---- */

static void put_deadline(struct voc_sla_case *c, uint16_t index, int64_t due,
                         enum voc_deadline_kind kind)
{
    if (due == INT64_MIN || due == INT64_MAX)
        return;
    struct voc_key k;
    deadline_key(&k, due, case_id_of(c), index, kind);
    voc_txn_put(c->txn, VOC_DB_DEADLINES, k.buf, k.len, "", 0);
}

static void del_deadline(struct voc_sla_case *c, uint16_t index, int64_t due,
                         enum voc_deadline_kind kind)
{
    if (due == INT64_MIN || due == INT64_MAX)
        return;
    struct voc_key k;
    deadline_key(&k, due, case_id_of(c), index, kind);
    voc_txn_del(c->txn, VOC_DB_DEADLINES, k.buf, k.len);
}

static void put_alert(struct voc_sla_case *c, uint16_t index, int64_t due)
{
    struct voc_key k;
    alert_key(&k, due == INT64_MIN ? 0 : due, case_id_of(c), index);
    voc_txn_put(c->txn, VOC_DB_ALERTS, k.buf, k.len, "", 0);
}

static void del_alert(struct voc_sla_case *c, uint16_t index, int64_t due)
{
    struct voc_key k;
    alert_key(&k, due == INT64_MIN ? 0 : due, case_id_of(c), index);
    voc_txn_del(c->txn, VOC_DB_ALERTS, k.buf, k.len);
}

/* Remove both pending deadlines of a running clock. */
static void clear_deadlines(struct voc_sla_case *c, uint16_t index, json_t *clock)
{
    del_deadline(c, index, time_field(clock, "due_at"), VOC_DEADLINE_BREACH);
    del_deadline(c, index, time_field(clock, "warn_at"), VOC_DEADLINE_WARNING);
}

static int64_t running_since(const json_t *clock)
{
    json_t *v = json_object_get(clock, "_running_since");
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    return time_field(clock, "_running_since"); /* records from before it was an integer */
}

/* due_at / warn_at are stored as text with whole milliseconds, and the deadline keys are
 * found again (to fire, to delete on pause or stop) by those texts: so a deadline must be a
 * whole millisecond. Rounded up: never early, at most 1 ms late. */
static int64_t ceil_ms(int64_t us)
{
    if (us == INT64_MIN || us == INT64_MAX)
        return us;
    int64_t r = us % 1000;
    if (r < 0)
        r += 1000;
    return r ? us + (1000 - r) : us;
}

/* From _running_since with _remaining_us / _warn_remaining_us left, compute due_at and
 * warn_at and index them. */
static void schedule(struct voc_sla_case *c, uint16_t index, json_t *clock)
{
    const struct voc_calendar *cal = calendar_of(c, clock);
    int64_t since = running_since(clock);
    json_t *remaining = json_object_get(clock, "_remaining_us");
    if (!json_is_integer(remaining) || since == INT64_MIN) {
        set_time(clock, "due_at", INT64_MIN);
        set_time(clock, "warn_at", INT64_MIN);
        return;
    }
    int64_t due = ceil_ms(voc_calendar_add(cal, since, json_integer_value(remaining)));
    set_time(clock, "due_at", due);
    put_deadline(c, index, due, VOC_DEADLINE_BREACH);
    int64_t warn_left = voc_json_int(clock, "_warn_remaining_us", -1);
    if (warn_left >= 0) {
        int64_t warn = ceil_ms(voc_calendar_add(cal, since, warn_left));
        set_time(clock, "warn_at", warn);
        put_deadline(c, index, warn, VOC_DEADLINE_WARNING);
    } else {
        set_time(clock, "warn_at", INT64_MIN);
    }
}

/* ---- transitions ---- */

static json_t *clocks_of(json_t *record)
{
    json_t *clocks = json_object_get(record, "clocks");
    if (!json_is_array(clocks)) {
        clocks = json_array();
        json_object_set_new(record, "clocks", clocks);
    }
    return clocks;
}

static void add_rule_error_tag(json_t *record)
{
    voc_json_list_add(json_object_get(json_object_get(record, "classification"), "tags"),
                      "rule_error");
}

static void start_clock(struct voc_sla_case *c, size_t def_index, int cycle)
{
    struct voc_rules *rules = c->policy->rules;
    const struct voc_clock_def *def = voc_rules_clock(rules, def_index);
    json_t *clocks = clocks_of(c->record);
    size_t index = json_array_size(clocks);
    if (index > UINT16_MAX)
        return;
    double target = def->target_s;
    bool has_target = true;
    if (target < 0) {
        json_t *view = c->view(c->view_arg);
        char *err = NULL;
        if (voc_rules_clock_target(rules, def_index, view, &target, &err) != 0) {
            voc_warn("rules", "clock target failed case=%llu clock=%s error=\"%s\"",
                     (unsigned long long)case_id_of(c), def->name, err ? err : "?");
            add_rule_error_tag(c->record);
            has_target = false;
        }
        free(err);
        json_decref(view);
    }
    char why[160];
    if (has_target && !voc_sla_target_ok(target, why, sizeof why)) {
        /* Whatever the profile returned, the clock runs without a deadline rather than
         * with one computed from an overflowing number. */
        voc_warn("rules", "clock target refused case=%llu clock=%s error=\"%s\"",
                 (unsigned long long)case_id_of(c), def->name, why);
        add_rule_error_tag(c->record);
        has_target = false;
    }
    json_t *clock = json_object();
    json_object_set_new(clock, "name", json_string(def->name));
    json_object_set_new(clock, "cycle", json_integer(cycle));
    json_object_set_new(clock, "calendar", json_string(def->calendar ? def->calendar : "24x7"));
    json_object_set_new(clock, "target_s", has_target ? json_real(target) : json_null());
    set_time(clock, "started_at", c->now_us);
    json_object_set_new(clock, "stopped_at", json_null());
    json_object_set_new(clock, "status", json_string("running"));
    adjust_count(c->txn, "running", +1);
    if (has_target) {
        int64_t target_us = (int64_t)(target * 1e6);
        json_object_set_new(clock, "_running_since", json_integer(c->now_us));
        json_object_set_new(clock, "_remaining_us", json_integer(target_us));
        json_object_set_new(
            clock, "_warn_remaining_us",
            json_integer(def->warn > 0 ? (json_int_t)(target * def->warn * 1e6) : -1));
    }
    json_array_append_new(clocks, clock);
    schedule(c, (uint16_t)index, clock);
}

static void stop_clock(struct voc_sla_case *c, uint16_t index, json_t *clock)
{
    const char *status = status_of(clock);
    int64_t due = time_field(clock, "due_at");
    if (strcmp(status, "running") == 0 || strcmp(status, "warning") == 0)
        clear_deadlines(c, index, clock);
    if (strcmp(status, "warning") == 0 || strcmp(status, "breached") == 0)
        del_alert(c, index, due);
    bool late = strcmp(status, "breached") == 0;
    set_status(c, clock, late ? "breached" : "met", true);
    set_time(clock, "stopped_at", c->now_us);
    int64_t started = time_field(clock, "started_at");
    if (started != INT64_MIN)
        voc_histogram_observe(h_time_to_stop, (double)(c->now_us - started) / 1e6);
    json_object_del(clock, "_paused_from");
}

static void pause_clock(struct voc_sla_case *c, uint16_t index, json_t *clock)
{
    const char *status = status_of(clock);
    if (strcmp(status, "running") != 0 && strcmp(status, "warning") != 0)
        return; /* a breached clock stays breached: the customer's silence comes too late */
    clear_deadlines(c, index, clock);
    if (strcmp(status, "warning") == 0)
        del_alert(c, index, time_field(clock, "due_at"));
    int64_t since = running_since(clock);
    json_t *remaining = json_object_get(clock, "_remaining_us");
    if (json_is_integer(remaining) && since != INT64_MIN) {
        int64_t used = voc_calendar_working_between(calendar_of(c, clock), since, c->now_us);
        int64_t left = json_integer_value(remaining) - used;
        json_object_set_new(clock, "_remaining_us", json_integer(left > 0 ? left : 0));
        int64_t warn_left = voc_json_int(clock, "_warn_remaining_us", -1);
        if (warn_left >= 0) {
            warn_left -= used;
            json_object_set_new(clock, "_warn_remaining_us",
                                json_integer(warn_left > 0 ? warn_left : 0));
        }
    }
    json_object_set_new(clock, "_paused_from", json_string(status));
    set_time(clock, "paused_at", c->now_us);
    set_time(clock, "due_at", INT64_MIN);
    set_time(clock, "warn_at", INT64_MIN);
    set_status(c, clock, "paused", false);
}

static void resume_clock(struct voc_sla_case *c, uint16_t index, json_t *clock)
{
    if (strcmp(status_of(clock), "paused") != 0)
        return;
    const char *back = voc_json_str(clock, "_paused_from");
    char status[16];
    snprintf(status, sizeof status, "%s", back ? back : "running");
    set_status(c, clock, status, false);
    json_object_del(clock, "_paused_from");
    json_object_del(clock, "paused_at");
    if (json_is_integer(json_object_get(clock, "_remaining_us")))
        json_object_set_new(clock, "_running_since", json_integer(c->now_us));
    schedule(c, index, clock);
    if (strcmp(status, "warning") == 0)
        put_alert(c, index, time_field(clock, "due_at"));
}

/* The newest clock with this name, or NULL. */
static json_t *latest(json_t *clocks, const char *name, size_t *index)
{
    for (size_t i = json_array_size(clocks); i > 0; i--) {
        json_t *clock = json_array_get(clocks, i - 1);
        if (strcmp(voc_json_str(clock, "name"), name) == 0) {
            *index = i - 1;
            return clock;
        }
    }
    return NULL;
}

int voc_sla_apply_event(struct voc_sla_case *c, const char *type)
{
    struct voc_rules *rules = c->policy ? c->policy->rules : NULL;
    size_t defs = rules ? voc_rules_clock_count(rules) : 0;
    json_t *clocks = json_object_get(c->record, "clocks");
    size_t n = json_array_size(clocks);

    if (strcmp(type, "waiting") == 0 || strcmp(type, "resumed") == 0) {
        for (size_t i = 0; i < n; i++) {
            json_t *clock = json_array_get(clocks, i);
            if (!is_active(clock))
                continue;
            if (type[0] == 'w')
                pause_clock(c, (uint16_t)i, clock);
            else
                resume_clock(c, (uint16_t)i, clock);
        }
    }
    bool stopped_now[64] = {false};
    for (size_t d = 0; d < defs; d++) {
        const struct voc_clock_def *def = voc_rules_clock(rules, d);
        if (strcmp(def->stop, type) != 0)
            continue;
        size_t index;
        json_t *clock = latest(clocks, def->name, &index);
        if (clock && is_active(clock)) {
            stop_clock(c, (uint16_t)index, clock);
            if (d < 64)
                stopped_now[d] = true;
        }
    }
    for (size_t d = 0; d < defs; d++) {
        const struct voc_clock_def *def = voc_rules_clock(rules, d);
        bool starts = strcmp(def->start, type) == 0;
        bool recycles = def->reopen && strcmp(type, "reopened") == 0;
        if (!starts && !recycles)
            continue;
        if (d < 64 && stopped_now[d])
            continue; /* start == stop: the event ended this clock, it does not restart it */
        clocks = clocks_of(c->record);
        size_t index;
        json_t *clock = latest(clocks, def->name, &index);
        if (clock && is_active(clock))
            continue; /* already running: a second start event does not reset it */
        int cycle = clock ? (int)voc_json_int(clock, "cycle", 1) + 1 : 1;
        start_clock(c, d, cycle);
        const char *state = voc_json_str(c->record, "state");
        if (state && strcmp(state, "waiting") == 0) {
            /* Started while the customer is awaited: it runs from the resume on. */
            clocks = clocks_of(c->record);
            size_t started = json_array_size(clocks) - 1;
            pause_clock(c, (uint16_t)started, json_array_get(clocks, started));
        }
    }
    /* A closed, rejected or duplicate case owes nothing more: its open clocks stop
     * (a breached one stays breached). */
    const char *state = voc_json_str(c->record, "state");
    if (state &&
        (!strcmp(state, "closed") || !strcmp(state, "rejected") || !strcmp(state, "duplicate"))) {
        clocks = json_object_get(c->record, "clocks");
        for (size_t i = 0; i < json_array_size(clocks); i++) {
            json_t *clock = json_array_get(clocks, i);
            if (is_active(clock))
                stop_clock(c, (uint16_t)i, clock);
        }
    }
    return c->txn->error ? -1 : 0;
}

/* ---- firing ---- */

struct due_scan {
    struct voc_deadline *out;
    size_t max, count;
    uint64_t limit; /* biased now */
};

static int collect_due(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    struct due_scan *s = arg;
    if (key->mv_size != 19)
        return 0;
    const unsigned char *k = key->mv_data;
    uint64_t due = voc_key_get_u64(k);
    if (due > s->limit || s->count == s->max)
        return 1;
    struct voc_deadline *d = &s->out[s->count++];
    d->due_us = (int64_t)(due - TIME_BIAS);
    d->case_id = voc_key_get_u64(k + 8);
    d->clock = (uint16_t)(k[16] << 8 | k[17]);
    d->kind = (enum voc_deadline_kind)k[18];
    return 0;
}

int voc_sla_due(struct voc_txn *txn, int64_t now_us, struct voc_deadline *out, size_t max,
                size_t *count)
{
    struct due_scan s = {.out = out, .max = max, .limit = (uint64_t)now_us + TIME_BIAS};
    int rc = voc_txn_scan(txn, VOC_DB_DEADLINES, "", 0, NULL, 0, NULL, 0, false, collect_due, &s);
    *count = s.count;
    return rc;
}

int voc_sla_fire(struct voc_sla_case *c, const struct voc_deadline *d, const char **status,
                 json_t **clock_out)
{
    del_deadline(c, d->clock, d->due_us, d->kind);
    json_t *clock = json_array_get(json_object_get(c->record, "clocks"), d->clock);
    if (!clock || !is_active(clock))
        return c->txn->error ? -1 : 0;
    const char *s = status_of(clock);
    const char *field = d->kind == VOC_DEADLINE_BREACH ? "due_at" : "warn_at";
    /* A clock that was paused and resumed has new deadlines; an old key is stale. */
    if (time_field(clock, field) != d->due_us ||
        (strcmp(s, "running") != 0 && strcmp(s, "warning") != 0))
        return c->txn->error ? -1 : 0;
    int64_t due = time_field(clock, "due_at");
    if (d->kind == VOC_DEADLINE_WARNING) {
        if (strcmp(s, "running") != 0)
            return c->txn->error ? -1 : 0;
        json_object_set_new(clock, "_warn_remaining_us", json_integer(-1));
        set_status(c, clock, "warning", false);
        put_alert(c, d->clock, due);
        voc_metric_add(m_warnings, 1);
        *status = "warning";
    } else {
        /* A warning that has not fired yet is moot now. */
        del_deadline(c, d->clock, time_field(clock, "warn_at"), VOC_DEADLINE_WARNING);
        json_object_set_new(clock, "_warn_remaining_us", json_integer(-1));
        set_status(c, clock, "breached", false);
        put_alert(c, d->clock, due);
        json_object_set_new(c->record, "breached", json_true());
        count_breach(voc_json_str(clock, "name"));
        *status = "breached";
    }
    *clock_out = clock;
    return c->txn->error ? -1 : 1;
}

int voc_sla_drop(struct voc_txn *txn, const struct voc_deadline *d)
{
    struct voc_key k;
    deadline_key(&k, d->due_us, d->case_id, d->clock, d->kind);
    return voc_txn_del(txn, VOC_DB_DEADLINES, k.buf, k.len);
}

static int first_key(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    if (key->mv_size >= 8)
        *(int64_t *)arg = (int64_t)(voc_key_get_u64(key->mv_data) - TIME_BIAS);
    return 1;
}

int64_t voc_sla_next_deadline(struct voc_txn *txn)
{
    int64_t next = INT64_MAX;
    voc_txn_scan(txn, VOC_DB_DEADLINES, "", 0, NULL, 0, NULL, 0, false, first_key, &next);
    return next;
}

struct alert_scan {
    int (*fn)(uint64_t, uint16_t, int64_t, void *);
    void *arg;
};

static int visit_alert(const MDB_val *key, const MDB_val *val, void *arg)
{
    (void)val;
    struct alert_scan *s = arg;
    if (key->mv_size != 18)
        return 0;
    const unsigned char *k = key->mv_data;
    return s->fn(voc_key_get_u64(k + 8), (uint16_t)(k[16] << 8 | k[17]),
                 (int64_t)(voc_key_get_u64(k) - TIME_BIAS), s->arg);
}

int voc_sla_list_alerts(struct voc_txn *txn, const struct voc_alert_pos *from,
                        int (*fn)(uint64_t case_id, uint16_t clock, int64_t due_us, void *arg),
                        void *arg)
{
    struct alert_scan s = {fn, arg};
    struct voc_key k;
    if (from)
        alert_key(&k, from->due_us, from->case_id, from->clock);
    return voc_txn_scan(txn, VOC_DB_ALERTS, "", 0, from ? k.buf : NULL, from ? k.len : 0, NULL, 0,
                        false, visit_alert, &s);
}

void voc_sla_alert_cursor_format(const struct voc_alert_pos *pos, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIx64 "-%" PRIx64 "-%x", (uint64_t)pos->due_us + TIME_BIAS,
             pos->case_id, (unsigned)pos->clock);
}

int voc_sla_alert_cursor_parse(const char *text, struct voc_alert_pos *pos)
{
    uint64_t part[3];
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        /* strtoull would take a sign or spaces: only hex digits are ours. */
        size_t n = strspn(p, "0123456789abcdef");
        if (n == 0 || n > 16 || (i < 2 ? p[n] != '-' : p[n] != '\0'))
            return -1;
        part[i] = strtoull(p, NULL, 16);
        p += n + 1;
    }
    if (part[2] > UINT16_MAX)
        return -1;
    pos->due_us = (int64_t)(part[0] - TIME_BIAS);
    pos->case_id = part[1];
    pos->clock = (uint16_t)part[2];
    return 0;
}

bool voc_sla_target_ok(double target_s, char *msg, size_t msglen)
{
    if (!isfinite(target_s) || target_s <= 0) {
        snprintf(msg, msglen, "target %g s is not a positive duration", target_s);
        return false;
    }
    if (target_s > VOC_SLA_MAX_TARGET_S) {
        snprintf(msg, msglen, "target %g s is above the limit of 10 years (%.0f s)", target_s,
                 VOC_SLA_MAX_TARGET_S);
        return false;
    }
    return true;
}

int voc_sla_open_counts(struct voc_txn *txn, struct voc_sla_counts *counts)
{
    int64_t *fields[] = {&counts->running, &counts->paused, &counts->warning, &counts->breached};
    for (size_t i = 0; i < 4; i++) {
        char key[64];
        counter_key(key, sizeof key, open_statuses[i]);
        MDB_val v;
        int rc = voc_txn_get(txn, VOC_DB_META, key, strlen(key), &v);
        *fields[i] = rc == 0 && v.mv_size == 8 ? (int64_t)voc_key_get_u64(v.mv_data) : 0;
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

json_t *voc_sla_clocks_view(const json_t *clocks, int64_t now_us)
{
    json_t *out = json_array();
    size_t i;
    json_t *clock;
    json_array_foreach (clocks, i, clock) {
        json_t *v = json_object();
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *)clock, key, value) {
            if (key[0] != '_')
                json_object_set(v, key, value);
        }
        /* How late it is now (breached and still open) or was (stopped late). */
        int64_t due = time_field(clock, "due_at");
        int64_t end = is_stopped(clock) ? time_field(clock, "stopped_at") : now_us;
        if (due != INT64_MIN && end > due && strcmp(status_of(clock), "breached") == 0)
            json_object_set_new(v, "overdue_s", json_real((double)((end - due) / 1000) / 1e3));
        json_array_append_new(out, v);
    }
    return out;
}
