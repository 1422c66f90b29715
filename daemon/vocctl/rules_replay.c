/* vocctl rules replay: what a profile would have done with the stored cases.
 *
 * The store is opened read-only (MDB_RDONLY: no write transaction can even begin), so it
 * works beside a running vocd. Cases are read in batches, newest first, each batch in its
 * own short read transaction: a long replay must not pin an old snapshot, which would keep
 * the daemon from reusing freed pages and make the file grow. The Lua runs between
 * transactions.
 *
 * Per case, two comparisons:
 *   classification  classify() on the case as it was at intake (its intake fields and the
 *                   received event only) against the classification the core recorded at
 *                   intake: the data of the first `classified` event by "rules" / "vocd".
 *                   That is the old profile's own decision; the current classification may
 *                   since have been changed by people (assigned, reclassified), which no
 *                   profile change would undo.
 *   clocks          the new profile's clocks re-run (sla_sim) over the case's actual events
 *                   with the new classification, judged at now (or --at), against the
 *                   stored clocks judged at the same moment; per clock name and cycle, the
 *                   outcome met / breached / warning / running / paused, or none.
 * What is not replayed: the new profile's on_event / on_clock actions (the history stays
 * the one that happened) and guards. */
#define _GNU_SOURCE /* asprintf */
#include <stdlib.h>
#include <string.h>

#include "case_view.h"
#include "casedb.h"
#include "config.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "output.h"
#include "rules.h"
#include "rules_cmd.h"
#include "sla_sim.h"
#include "store.h"
#include "timeutil.h"

static const char replay_help[] =
    "usage: vocctl rules replay PROFILE.lua --data-dir DIR [-c CONFIG] [--limit N] [--at TIME] "
    "[--json]\n"
    "Re-run PROFILE.lua over the cases stored in DIR, read-only (vocd may be running on\n"
    "it), and print what would change, newest case first: per changed case the\n"
    "classification fields and SLA clock outcomes, old -> new; then a summary.\n"
    "\n"
    "Old classification: the one the profile in force recorded at intake (the first\n"
    "`classified` event by rules). New: classify() on the case as it was at intake. Clocks:\n"
    "the new profile's clocks over the case's real events, with the new classification,\n"
    "against the stored clocks; both judged at --at (default now). Outcomes: met,\n"
    "breached, warning, running, paused, none. Actions and guards are not replayed.\n"
    "\n"
    "  --data-dir DIR     the LMDB store (default: data_dir of -c CONFIG)\n"
    "  -c, --config FILE  calendars, budgets and rules.lib_dir (default etc/vocd.yaml when\n"
    "                     it exists)\n"
    "  --limit N          only the newest N cases\n"
    "  --at TIME          judge open clocks at TIME (RFC 3339 or YYYY-MM-DD), not now\n"
    "  --json             print the changes and the summary as JSON\n"
    "\n"
    "Exit 0 when the replay ran (changes and rule errors are results), 1 when it could\n"
    "not (profile, config or store) or on a usage error.\n";

#define OPT_AT 0x2001
#define OPT_DATA_DIR 0x2002
#define OPT_LIMIT 0x2003

/* Cases per read transaction. */
#define BATCH 128
/* Subjects in the human output are cut to this many columns. */
#define SUBJECT_WIDTH 40

struct transition {
    char *clock, *from, *to;
    size_t cases;
};

struct stats {
    size_t scanned, changed, rule_errors, cases_with_errors;
    size_t by_field[VOC_CLASS_FIELDS];
    struct transition *moves;
    size_t nmoves, capmoves;
    bool oom;
};

static void count_move(struct stats *s, const char *clock, const char *from, const char *to)
{
    for (size_t i = 0; i < s->nmoves; i++) {
        struct transition *m = &s->moves[i];
        if (!strcmp(m->clock, clock) && !strcmp(m->from, from) && !strcmp(m->to, to)) {
            m->cases++;
            return;
        }
    }
    if (s->nmoves == s->capmoves) {
        size_t cap = s->capmoves ? s->capmoves * 2 : 16;
        struct transition *grown = realloc(s->moves, cap * sizeof *grown);
        if (!grown) {
            s->oom = true;
            return;
        }
        s->moves = grown;
        s->capmoves = cap;
    }
    struct transition *m = &s->moves[s->nmoves];
    m->clock = strdup(clock);
    m->from = strdup(from);
    m->to = strdup(to);
    m->cases = 1;
    if (!m->clock || !m->from || !m->to) {
        free(m->clock);
        free(m->from);
        free(m->to);
        s->oom = true;
        return;
    }
    s->nmoves++;
}

static void stats_free(struct stats *s)
{
    for (size_t i = 0; i < s->nmoves; i++) {
        free(s->moves[i].clock);
        free(s->moves[i].from);
        free(s->moves[i].to);
    }
    free(s->moves);
}

/* ---- reading the store ---- */

struct batch {
    json_t *records[BATCH];
    json_t *events[BATCH];
    size_t n;
    size_t limit; /* read at most this many */
    bool bad_record;
};

static int collect_case(const MDB_val *key, const MDB_val *val, void *arg)
{
    struct batch *b = arg;
    if (key->mv_size != 8)
        return 0;
    if (b->n == b->limit)
        return 1;
    json_error_t jerr;
    json_t *rec = json_loadb(val->mv_data, val->mv_size, 0, &jerr);
    if (!json_is_object(rec)) {
        json_decref(rec);
        b->bad_record = true;
        return 0;
    }
    /* The key is the truth about the id (and where the next batch continues). */
    json_object_set_new(rec, "id", json_integer((json_int_t)voc_key_get_u64(key->mv_data)));
    b->records[b->n++] = rec;
    return b->n == b->limit ? 1 : 0;
}

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->records[i]);
        json_decref(b->events[i]);
        b->records[i] = b->events[i] = NULL;
    }
    b->n = 0;
}

/* Read the next batch of cases with ids below *below (0 = from the newest), with their
 * events, in one read transaction. Returns 0 (b->n == 0: no more) or an error. */
static int read_batch(struct voc_store *store, uint64_t below, struct batch *b)
{
    struct voc_txn txn;
    int rc = voc_txn_begin_read(store, &txn);
    if (rc)
        return rc;
    unsigned char to[8];
    voc_key_set_u64(to, below);
    rc = voc_txn_scan(&txn, VOC_DB_CASES, "", 0, NULL, 0, below ? to : NULL, below ? 8 : 0, true,
                      collect_case, b);
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        rc = voc_casedb_events(&txn, (uint64_t)voc_json_int(b->records[i], "id", 0), &b->events[i]);
    voc_txn_abort(&txn);
    return rc;
}

/* ---- one case ---- */

/* The first classification the core recorded (the profile's own), or NULL. */
static const json_t *recorded_classification(const json_t *events)
{
    size_t i;
    const json_t *e;
    const json_t *first = NULL;
    json_array_foreach (events, i, e) {
        if (strcmp(voc_json_str(e, "type") ? voc_json_str(e, "type") : "", "classified") != 0)
            continue;
        const char *actor = voc_json_str(e, "actor");
        if (actor && (!strcmp(actor, "rules") || !strcmp(actor, "vocd")))
            return json_object_get(e, "data");
        if (!first)
            first = json_object_get(e, "data");
    }
    return first;
}

/* The case as classify saw it at intake (case_ops.c, run_create): the stored record with
 * everything that happened since undone, and only the received event. */
static json_t *intake_view(const json_t *record, const json_t *events)
{
    json_t *rec = json_copy((json_t *)record);
    if (!rec)
        return NULL;
    json_object_set_new(rec, "state", json_string("new"));
    json_t *created = json_object_get(record, "created_at");
    if (created)
        json_object_set(rec, "updated_at", created);
    json_object_set_new(rec, "classification", json_null());
    json_object_set_new(rec, "duplicate_of", json_null());
    json_object_set_new(rec, "duplicates", json_array());
    json_object_set_new(rec, "reopen_count", json_integer(0));
    json_object_set_new(rec, "satisfaction", json_null());
    json_object_set_new(rec, "breached", json_false());
    json_object_set_new(rec, "event_count", json_integer(1));
    json_object_del(rec, "clocks");
    json_object_del(rec, "before_wait");
    json_t *first = json_array();
    const json_t *received = json_array_get(events, 0);
    if (received && !strcmp(voc_json_str(received, "type") ?: "", "received"))
        json_array_append(first, (json_t *)received);
    int64_t at = voc_now_us();
    const char *when = voc_json_str(received, "at");
    if (when)
        voc_parse_time(when, &at);
    json_t *view = voc_case_view(rec, first, at);
    json_decref(first);
    json_decref(rec);
    return view;
}

static bool same(const json_t *a, const json_t *b)
{
    if (!a || json_is_null(a))
        return !b || json_is_null(b);
    return b && json_equal((json_t *)a, (json_t *)b);
}

static json_t *or_null(const json_t *v)
{
    return v ? json_incref((json_t *)v) : json_null();
}

/* One changed clock outcome, counted in the summary. */
static json_t *clock_change(struct stats *s, const char *name, long long cycle, const char *from,
                            const char *to, const json_t *stored, const struct voc_sim_clock *n)
{
    count_move(s, name, from, to);
    json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "clock", name, "cycle", (json_int_t)cycle, "old",
                          from, "new", to);
    if (!o)
        return NULL;
    json_object_set_new(o, "old_due_at",
                        or_null(stored ? json_object_get(stored, "due_at") : NULL));
    json_t *nj = n ? voc_sla_sim_clock_json(n) : NULL;
    json_object_set_new(o, "new_due_at", or_null(nj ? json_object_get(nj, "due_at") : NULL));
    json_decref(nj);
    return o;
}

/* Compare one case; returns its change object (new reference) or NULL when nothing
 * changed. */
static json_t *replay_case(struct voc_ctl_rules_env *env, const json_t *record,
                           const json_t *events, int64_t now, struct stats *s)
{
    json_t *change = json_object();
    json_t *fields = json_array();
    json_t *clocks = json_array();
    json_t *errors = json_array();

    json_t *view = intake_view(record, events);
    json_t *fresh = NULL;
    char *err = NULL;
    if (!view || voc_rules_classify(env->rules, view, &fresh, &err) != 0)
        json_array_append_new(errors, json_string(err ? err : "classify failed"));
    free(err);
    json_decref(view);

    const json_t *old = recorded_classification(events);
    for (size_t f = 0; fresh && old && f < VOC_CLASS_FIELDS; f++) {
        const json_t *a = json_object_get(old, voc_class_fields[f]);
        const json_t *b = json_object_get(fresh, voc_class_fields[f]);
        if (same(a, b))
            continue;
        s->by_field[f]++;
        json_array_append_new(fields, json_pack("{s:s, s:o, s:o}", "field", voc_class_fields[f],
                                                "old", or_null(a), "new", or_null(b)));
    }

    struct voc_sla_sim sim;
    voc_sla_sim_init(&sim, env->rules, env->policy);
    if (voc_sla_sim_replay(&sim, record, events, fresh, now) != 0)
        s->oom = true;
    for (size_t i = 0; i < sim.error_count; i++)
        json_array_append_new(errors, json_string(sim.errors[i]));
    /* Stored clocks first (their order), then the ones only the new profile has. */
    const json_t *stored = json_object_get(record, "clocks");
    bool *matched = calloc(sim.count ? sim.count : 1, sizeof *matched);
    if (!matched)
        s->oom = true;
    size_t i;
    const json_t *c;
    json_array_foreach (stored, i, c) {
        const char *name = voc_json_str(c, "name");
        long long cycle = voc_json_int(c, "cycle", 1);
        if (!name)
            continue;
        const struct voc_sim_clock *n = NULL;
        for (size_t k = 0; k < sim.count && !n; k++)
            if (!strcmp(sim.clocks[k].name, name) && sim.clocks[k].cycle == cycle) {
                n = &sim.clocks[k];
                if (matched)
                    matched[k] = true;
            }
        const char *from = voc_sla_sim_stored_outcome(c, now);
        const char *to = n ? voc_sla_sim_status_name(n->status) : "none";
        if (strcmp(from, to) != 0)
            json_array_append_new(clocks, clock_change(s, name, cycle, from, to, c, n));
    }
    for (size_t k = 0; k < sim.count; k++) {
        if (matched && matched[k])
            continue;
        const struct voc_sim_clock *n = &sim.clocks[k];
        json_array_append_new(clocks, clock_change(s, n->name, n->cycle, "none",
                                                   voc_sla_sim_status_name(n->status), NULL, n));
    }
    free(matched);
    voc_sla_sim_free(&sim);
    json_decref(fresh);

    s->scanned++;
    s->rule_errors += json_array_size(errors);
    s->cases_with_errors += json_array_size(errors) > 0;
    if (!json_array_size(fields) && !json_array_size(clocks) && !json_array_size(errors)) {
        json_decref(change);
        json_decref(fields);
        json_decref(clocks);
        json_decref(errors);
        return NULL;
    }
    s->changed += json_array_size(fields) || json_array_size(clocks);
    json_object_set(change, "id", json_object_get(record, "id"));
    json_object_set_new(change, "subject", or_null(json_object_get(record, "subject")));
    json_object_set_new(change, "state", or_null(json_object_get(record, "state")));
    json_object_set_new(change, "classification", fields);
    json_object_set_new(change, "clocks", clocks);
    json_object_set_new(change, "errors", errors);
    return change;
}

/* ---- output ---- */

static char *value_text(const char *field, const json_t *v)
{
    char *text = v && !json_is_null(v) ? voc_ctl_scalar(field, v) : NULL;
    if (text && *text)
        return text;
    free(text);
    return strdup("-");
}

static int print_change(const json_t *change)
{
    const json_t *fields = json_object_get(change, "classification");
    const json_t *clocks = json_object_get(change, "clocks");
    const json_t *errors = json_object_get(change, "errors");
    size_t n = json_array_size(fields) + json_array_size(clocks) + json_array_size(errors);
    char **labels = calloc(n ? n : 1, sizeof *labels);
    char **values = calloc(n ? n : 1, sizeof *values);
    if (!labels || !values) {
        free(labels);
        free(values);
        return voc_ctl_error("out of memory");
    }
    size_t k = 0, i, width = 0;
    const json_t *x;
    json_array_foreach (fields, i, x) {
        const char *f = voc_json_str(x, "field");
        char *a = value_text(f, json_object_get(x, "old"));
        char *b = value_text(f, json_object_get(x, "new"));
        labels[k] = strdup(f);
        if (asprintf(&values[k], "%s → %s", a ? a : "?", b ? b : "?") < 0)
            values[k] = NULL;
        free(a);
        free(b);
        k++;
    }
    json_array_foreach (clocks, i, x) {
        char due[64], was[64];
        voc_ctl_local_time(voc_json_str(x, "new_due_at"), 0, due, sizeof due);
        voc_ctl_local_time(voc_json_str(x, "old_due_at"), 0, was, sizeof was);
        if (asprintf(&labels[k], "clock %s#%lld", voc_json_str(x, "clock"),
                     voc_json_int(x, "cycle", 1)) < 0)
            labels[k] = NULL;
        if (asprintf(&values[k], "%s → %s  (due %s, was %s)", voc_json_str(x, "old"),
                     voc_json_str(x, "new"), due, was) < 0)
            values[k] = NULL;
        k++;
    }
    json_array_foreach (errors, i, x) {
        labels[k] = strdup("rule error");
        values[k] = strdup(json_string_value(x));
        k++;
    }
    for (i = 0; i < k; i++)
        if (labels[i] && voc_ctl_width(labels[i]) > width)
            width = voc_ctl_width(labels[i]);
    char *subject = voc_ctl_clean(voc_json_str(change, "subject") ?: "", false);
    char *cut = subject ? voc_ctl_clip(subject, SUBJECT_WIDTH) : NULL;
    printf("case %lld  [%s]  %s\n", voc_json_int(change, "id", 0),
           voc_json_str(change, "state") ?: "?", cut && *cut ? cut : "-");
    free(cut);
    free(subject);
    for (i = 0; i < k; i++) {
        voc_ctl_kv(stdout, "  ", width, labels[i] ? labels[i] : "?", values[i]);
        free(labels[i]);
        free(values[i]);
    }
    free(labels);
    free(values);
    return 0;
}

static json_t *summary_json(const struct stats *s)
{
    json_t *by_field = json_object();
    for (size_t f = 0; f < VOC_CLASS_FIELDS; f++)
        if (s->by_field[f])
            json_object_set_new(by_field, voc_class_fields[f],
                                json_integer((json_int_t)s->by_field[f]));
    json_t *moves = json_array();
    for (size_t i = 0; i < s->nmoves; i++)
        json_array_append_new(moves, json_pack("{s:s, s:s, s:s, s:I}", "clock", s->moves[i].clock,
                                               "old", s->moves[i].from, "new", s->moves[i].to,
                                               "cases", (json_int_t)s->moves[i].cases));
    return json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}", "scanned", (json_int_t)s->scanned, "changed",
                     (json_int_t)s->changed, "rule_errors", (json_int_t)s->rule_errors,
                     "cases_with_rule_errors", (json_int_t)s->cases_with_errors, "classification",
                     by_field, "clocks", moves);
}

static int move_cmp(const void *a, const void *b)
{
    const struct transition *x = a, *y = b;
    if (x->cases != y->cases)
        return x->cases < y->cases ? 1 : -1;
    int c = strcmp(x->clock, y->clock);
    return c ? c : strcmp(x->from, y->from) ? strcmp(x->from, y->from) : strcmp(x->to, y->to);
}

static int print_summary(struct stats *s, const char *profile_name, const char *dir, int64_t now)
{
    char when[64], buf[64];
    voc_ctl_rules_local(now, when, sizeof when);
    printf("%sSummary: profile %s over %s, open clocks judged at %s\n", s->scanned ? "\n" : "",
           profile_name, dir, when);
    snprintf(buf, sizeof buf, "%zu", s->scanned);
    voc_ctl_kv(stdout, "  ", 13, "cases scanned", buf);
    snprintf(buf, sizeof buf, "%zu", s->changed);
    voc_ctl_kv(stdout, "  ", 13, "cases changed", buf);
    snprintf(buf, sizeof buf, "%zu (in %zu case%s)", s->rule_errors, s->cases_with_errors,
             s->cases_with_errors == 1 ? "" : "s");
    voc_ctl_kv(stdout, "  ", 13, "rule errors", s->rule_errors ? buf : "0");
    int rc = 0;
    size_t fields = 0;
    for (size_t f = 0; f < VOC_CLASS_FIELDS; f++)
        fields += s->by_field[f] != 0;
    if (fields) {
        static const char *const headers[] = {"FIELD", "CASES CHANGED"};
        struct voc_ctl_table *t = voc_ctl_table_new(2, headers);
        if (!t)
            return voc_ctl_error("out of memory");
        voc_ctl_table_column(t, 1, VOC_CTL_COL_RIGHT, 0);
        for (size_t f = 0; f < VOC_CLASS_FIELDS; f++) {
            if (!s->by_field[f])
                continue;
            voc_ctl_table_row(t);
            voc_ctl_table_cell(t, voc_class_fields[f]);
            voc_ctl_table_cellf(t, "%zu", s->by_field[f]);
        }
        printf("\nClassification changes:\n");
        rc |= voc_ctl_table_print(t, stdout, "  ");
        voc_ctl_table_free(t);
    }
    if (s->nmoves) {
        qsort(s->moves, s->nmoves, sizeof *s->moves, move_cmp);
        static const char *const headers[] = {"CLOCK", "OLD", "NEW", "CASES"};
        struct voc_ctl_table *t = voc_ctl_table_new(4, headers);
        if (!t)
            return voc_ctl_error("out of memory");
        voc_ctl_table_column(t, 3, VOC_CTL_COL_RIGHT, 0);
        for (size_t i = 0; i < s->nmoves; i++) {
            voc_ctl_table_row(t);
            voc_ctl_table_cell(t, s->moves[i].clock);
            voc_ctl_table_cell(t, s->moves[i].from);
            voc_ctl_table_cell(t, s->moves[i].to);
            voc_ctl_table_cellf(t, "%zu", s->moves[i].cases);
        }
        printf("\nClock outcome changes:\n");
        rc |= voc_ctl_table_print(t, stdout, "  ");
        voc_ctl_table_free(t);
    }
    return rc ? VOC_CTL_EXIT_ERROR : VOC_CTL_EXIT_OK;
}

/* ---- the command ---- */

int voc_ctl_rules_replay(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        VOC_CTL_COMMON_OPTIONS,
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"at", required_argument, NULL, OPT_AT},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data_dir = NULL;
    size_t limit = 0;
    bool at_given = false;
    int64_t now = 0;
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":hc:", options, replay_help, &rc)) != -1) {
        switch (opt) {
        case -2:
            return rc;
        case 'c':
            config = optarg;
            break;
        case OPT_DATA_DIR:
            data_dir = optarg;
            break;
        case OPT_LIMIT: {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || v == 0)
                return voc_ctl_usage_error(argv[0], replay_help,
                                           "--limit needs a positive number, not '%s'", optarg);
            limit = (size_t)v;
            break;
        }
        case OPT_AT:
            if (voc_parse_time(optarg, &now) != 0)
                return voc_ctl_usage_error(argv[0], replay_help,
                                           "--at wants an RFC 3339 time or YYYY-MM-DD: '%s'",
                                           optarg);
            at_given = true;
            break;
        }
    }
    if (argc - optind != 1)
        return voc_ctl_usage_error(argv[0], replay_help, "wants one PROFILE.lua");
    if (!data_dir && !config)
        return voc_ctl_usage_error(argv[0], replay_help, "--data-dir DIR is required");
    const char *profile = argv[optind];

    struct voc_ctl_rules_env env;
    if (voc_ctl_rules_load(profile, config, &env) != 0)
        return VOC_CTL_EXIT_ERROR;
    if (!data_dir)
        data_dir = env.cfg->data_dir;
    /* The profile's print() at INFO would repeat for every case; problems are reported. */
    voc_log_set_level(VOC_LOG_WARN);

    struct voc_store *store = NULL;
    struct voc_store_options so = {.path = data_dir, .read_only = true};
    char err[512];
    if (voc_store_open(&store, &so, err, sizeof err) != 0) {
        voc_ctl_rules_env_free(&env);
        return voc_ctl_error("%s", err);
    }
    if (!at_given)
        now = voc_now_us();

    struct stats s = {0};
    json_t *changes = ctl->json ? json_array() : NULL;
    struct batch *b = calloc(1, sizeof *b);
    int ret = b ? VOC_CTL_EXIT_OK : voc_ctl_error("out of memory");
    uint64_t below = 0;
    size_t read = 0;
    while (ret == VOC_CTL_EXIT_OK) {
        b->limit = BATCH;
        if (limit && limit - read < BATCH)
            b->limit = limit - read;
        if (b->limit == 0)
            break;
        int src = read_batch(store, below, b);
        if (src != 0) {
            ret = voc_ctl_error("cannot read the store %s: %s", data_dir, mdb_strerror(src));
            break;
        }
        if (b->n == 0)
            break;
        for (size_t i = 0; i < b->n && ret == VOC_CTL_EXIT_OK; i++) {
            json_t *change = replay_case(&env, b->records[i], b->events[i], now, &s);
            if (change && changes)
                json_array_append(changes, change);
            else if (change && print_change(change) != 0)
                ret = VOC_CTL_EXIT_ERROR;
            json_decref(change);
        }
        read += b->n;
        below = (uint64_t)voc_json_int(b->records[b->n - 1], "id", 0);
        batch_clear(b);
        if (below <= 1)
            break;
    }
    if (ret == VOC_CTL_EXIT_OK && s.oom)
        ret = voc_ctl_error("out of memory");
    if (ret == VOC_CTL_EXIT_OK) {
        if (changes) {
            char when[40];
            voc_format_time(now, when, sizeof when);
            json_t *doc =
                json_pack("{s:{s:s, s:s}, s:s, s:s, s:O, s:o}", "profile", "name",
                          voc_rules_name(env.rules), "path", voc_rules_path(env.rules), "data_dir",
                          data_dir, "at", when, "changes", changes, "summary", summary_json(&s));
            ret = voc_ctl_rules_print_json(doc);
            json_decref(doc);
        } else {
            ret = print_summary(&s, voc_rules_name(env.rules), data_dir, now);
        }
    }
    if (b)
        batch_clear(b);
    free(b);
    json_decref(changes);
    stats_free(&s);
    voc_store_close(store);
    voc_ctl_rules_env_free(&env);
    return ret;
}
