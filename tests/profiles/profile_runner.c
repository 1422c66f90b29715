/* Checks a shipped profile against its folder of realistic cases.
 *
 *   profile_runner [-v] PROFILE.lua CASES_DIR [LIB_DIR]
 *
 * Each CASES_DIR/NAME.json is {"case": <intake record>, "expect": {classification fields},
 * "clocks": {"<clock name>": <target seconds>, ...}}. For every file the runner builds the
 * case the way the daemon does (intake validation, then the record case_ops makes: id, state
 * "new", the `received` event), classifies it twice — once with the text normalised by the
 * rule engine on demand, once with `normalized` precomputed as intake stores it — and
 * compares every expected field (lists in order). Then it adds the classification and the
 * `classified` event, as the daemon does before it starts the clocks waiting on `received`,
 * and evaluates the target of every clock of the profile: "clocks" must name each of them.
 * Then on_event runs for the `classified` event: it must assign the case to the expected
 * department and collaborators; and on_clock runs for every clock, warning and breached: no
 * errors, and a breach notifies someone. Mismatches are printed as `file: field: expected X, got
 * Y`; the last line is `N passed, N failed`. Exit 0 when every case passed. */
#include "apierror.h"
#include "case_view.h"
#include "diag.h"
#include "intake.h"
#include "log.h"
#include "rules.h"
#include "textnorm.h"
#include "timeutil.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const expect_fields[] = {"kind",          "category", "severity", "department",
                                            "collaborators", "priority", "tags",     NULL};
/* Required in every expectation: a case file that forgets one would test less than it says. */
static const char *const required_fields[] = {"kind",       "category", "severity",
                                              "department", "priority", NULL};

struct runner {
    struct voc_rules *rules;
    struct voc_textnorm *tn;
    bool verbose;
    int failures; /* of the current case */
    const char *file;
};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static char *text_of(const json_t *v)
{
    if (!v)
        return strdup("nothing");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : strdup("?");
}

static void fail(struct runner *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct runner *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", x->file);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    x->failures++;
}

/* The record case_ops.c run_create makes from a validated intake, with its received event. */
static json_t *new_record(const json_t *intake, json_int_t id, json_t **events)
{
    json_t *record = json_object();
    const char *received = json_string_value(json_object_get(intake, "received_at"));
    json_object_set_new(record, "id", json_integer(id));
    json_object_set_new(record, "state", json_string("new"));
    json_object_set_new(record, "created_at", json_string(received));
    json_object_set_new(record, "updated_at", json_string(received));
    json_object_update(record, (json_t *)intake);
    json_object_set_new(record, "classification", json_null());
    json_object_set_new(record, "duplicate_of", json_null());
    json_object_set_new(record, "duplicates", json_array());
    json_object_set_new(record, "reopen_count", json_integer(0));
    json_object_set_new(record, "satisfaction", json_null());
    json_object_set_new(record, "breached", json_false());
    json_object_set_new(record, "event_count", json_integer(1));
    *events = json_pack("[{s:i, s:s, s:s, s:O, s:n, s:{}}]", "seq", 1, "type", "received", "at",
                        received, "actor", json_object_get(intake, "channel"), "note", "data");
    return record;
}

static json_t *classify(struct runner *x, const json_t *record, const json_t *events,
                        const char *how)
{
    json_t *view = voc_case_view(record, events, 0);
    json_t *cls = NULL;
    char *err = NULL;
    if (voc_rules_classify(x->rules, view, &cls, &err) != 0) {
        fail(x, "classify (%s) failed: %s", how, err ? err : "?");
        json_decref(cls);
        cls = NULL;
    }
    free(err);
    json_decref(view);
    return cls;
}

static void compare_classification(struct runner *x, const json_t *expect, const json_t *cls,
                                   const char *how)
{
    const char *key;
    json_t *want;
    json_object_foreach ((json_t *)expect, key, want) {
        json_t *got = json_object_get(cls, key);
        if (got && json_equal(got, want))
            continue;
        char *w = text_of(want), *g = text_of(got);
        fail(x, "%s (%s): expected %s, got %s", key, how, w, g);
        free(w);
        free(g);
    }
}

static void check_clocks(struct runner *x, const json_t *record, const json_t *events,
                         const json_t *clocks)
{
    json_t *view = voc_case_view(record, events, 0);
    size_t n = voc_rules_clock_count(x->rules);
    for (size_t i = 0; i < n; i++) {
        const struct voc_clock_def *def = voc_rules_clock(x->rules, i);
        json_t *want = json_object_get(clocks, def->name);
        double target = 0;
        char *err = NULL;
        int rc = voc_rules_clock_target(x->rules, i, view, &target, &err);
        if (x->verbose)
            printf("  clock %-20s %s -> %s  target %.0f s (%s)\n", def->name, def->start, def->stop,
                   target, def->calendar);
        if (rc != 0) {
            fail(x, "clock %s: the target failed: %s", def->name, err ? err : "?");
        } else if (!json_is_number(want)) {
            fail(x, "clock %s: \"clocks\" has no number for it (target is %.0f s)", def->name,
                 target);
        } else if (fabs(json_number_value(want) - target) > 1e-6) {
            fail(x, "clock %s: expected %.0f s, got %.0f s", def->name, json_number_value(want),
                 target);
        }
        free(err);
    }
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)clocks, name, v) {
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known = known || strcmp(voc_rules_clock(x->rules, i)->name, name) == 0;
        if (!known)
            fail(x, "clock %s: the profile has no such clock", name);
    }
    json_decref(view);
}

/* The shipped profiles hand a classified case to its department at once (an `assigned`
 * action with the classification's department and collaborators) and notify on every
 * breach: check both, and that on_event and on_clock run without errors for this case. */
static void check_hooks(struct runner *x, const json_t *record, const json_t *events,
                        const json_t *expect)
{
    json_t *view = voc_case_view(record, events, 0);
    json_t *event = json_array_get(events, json_array_size(events) - 1);
    json_t *actions = NULL;
    char *err = NULL;
    if (voc_rules_on_event(x->rules, view, event, &actions, &err) != 0)
        fail(x, "on_event(classified) failed: %s", err ? err : "?");
    free(err);
    const char *dept = json_string_value(json_object_get(expect, "department"));
    json_t *collab = json_object_get(expect, "collaborators");
    bool assigned = false;
    size_t i;
    json_t *a;
    json_array_foreach (actions, i, a) {
        const char *type = json_string_value(json_object_get(a, "event"));
        if (!type || strcmp(type, "assigned") != 0)
            continue;
        json_t *data = json_object_get(a, "data");
        const char *got = json_string_value(json_object_get(data, "department"));
        assigned = true;
        if (!dept || !got || strcmp(dept, got) != 0)
            fail(x, "on_event(classified): assigned to %s, expected %s", got ? got : "nothing",
                 dept ? dept : "nothing");
        if (collab && !json_equal(collab, json_object_get(data, "collaborators"))) {
            char *w = text_of(collab), *g = text_of(json_object_get(data, "collaborators"));
            fail(x, "on_event(classified): assigned collaborators %s, expected %s", g, w);
            free(w);
            free(g);
        }
    }
    if (dept && *dept && !assigned)
        fail(x, "on_event(classified) did not assign the case to %s", dept);
    if (x->verbose) {
        char *s = text_of(actions);
        printf("  on_event(classified) %s\n", s);
        free(s);
    }
    json_decref(actions);

    static const char *const statuses[] = {"warning", "breached"};
    for (size_t c = 0; c < voc_rules_clock_count(x->rules); c++) {
        const struct voc_clock_def *def = voc_rules_clock(x->rules, c);
        json_t *clock =
            json_pack("{s:s, s:i, s:i, s:s, s:s, s:n, s:s}", "name", def->name, "cycle", 1,
                      "target_s", 3600, "started_at", "2026-11-23T01:15:00.000Z", "due_at",
                      "2026-11-23T02:15:00.000Z", "stopped_at", "status", "running");
        for (size_t k = 0; k < 2; k++) {
            actions = NULL;
            err = NULL;
            if (voc_rules_on_clock(x->rules, view, clock, statuses[k], &actions, &err) != 0)
                fail(x, "on_clock(%s, %s) failed: %s", def->name, statuses[k], err ? err : "?");
            bool notified = false;
            json_array_foreach (actions, i, a)
                notified = notified || json_object_get(a, "notify") != NULL;
            if (k == 1 && !notified)
                fail(x, "on_clock(%s, breached) notifies nobody", def->name);
            free(err);
            json_decref(actions);
        }
        json_decref(clock);
    }
    json_decref(view);
}

static void run_case(struct runner *x, const char *path, json_int_t id)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        fail(x, "line %d: %s", jerr.line, jerr.text);
        return;
    }
    json_t *intake_in = json_object_get(doc, "case");
    json_t *expect = json_object_get(doc, "expect");
    json_t *clocks = json_object_get(doc, "clocks");
    const char *key;
    json_t *v;
    json_object_foreach (doc, key, v) {
        if (strcmp(key, "case") && strcmp(key, "expect") && strcmp(key, "clocks"))
            fail(x, "unknown top-level field '%s' (case, expect, clocks)", key);
    }
    if (!json_is_object(intake_in) || !json_is_object(expect) || !json_is_object(clocks)) {
        fail(x, "needs objects \"case\", \"expect\" and \"clocks\"");
        json_decref(doc);
        return;
    }
    json_object_foreach (expect, key, v) {
        if (!in_list(expect_fields, key))
            fail(x, "expect: unknown field '%s'", key);
    }
    for (size_t i = 0; required_fields[i]; i++)
        if (!json_object_get(expect, required_fields[i]))
            fail(x, "expect: '%s' is missing", required_fields[i]);

    struct voc_err verr = {0};
    json_t *intake = NULL;
    /* A fixed "now" keeps a record without received_at reproducible. */
    int64_t now = 0;
    voc_parse_time("2026-11-23T09:00:00+08:00", &now);
    if (voc_intake_validate(intake_in, NULL, now, &intake, &verr) != 0) {
        fail(x, "the intake record is invalid: %s", verr.message);
        json_decref(doc);
        return;
    }
    json_t *events = NULL;
    json_t *record = new_record(intake, id, &events);

    json_t *lazy = classify(x, record, events, "normalised on demand");
    json_t *stored = NULL;
    if (voc_intake_add_normalized(record, x->tn) != 0)
        fail(x, "the text cannot be normalised");
    else
        stored = classify(x, record, events, "normalized precomputed");
    if (lazy)
        compare_classification(x, expect, lazy, "normalised on demand");
    if (stored)
        compare_classification(x, expect, stored, "normalized precomputed");
    if (lazy && stored && !json_equal(lazy, stored)) {
        char *a = text_of(lazy), *b = text_of(stored);
        fail(x, "the two ways of normalising disagree: %s vs %s", a, b);
        free(a);
        free(b);
    }
    if (x->verbose && lazy) {
        char *s = text_of(lazy);
        printf("  classification %s\n", s);
        free(s);
    }
    if (lazy) {
        /* The view the clocks waiting on `received` see: classified, with its event. */
        json_object_set(record, "classification", lazy);
        json_object_set_new(record, "state", json_string("classified"));
        json_object_set_new(record, "event_count", json_integer(2));
        json_t *ev = json_pack("{s:i, s:s, s:O, s:s, s:n, s:O}", "seq", 2, "type", "classified",
                               "at", json_object_get(record, "received_at"), "actor", "rules",
                               "note", "data", lazy);
        json_array_append_new(events, ev);
        check_clocks(x, record, events, clocks);
        check_hooks(x, record, events, expect);
    }
    json_decref(lazy);
    json_decref(stored);
    json_decref(record);
    json_decref(events);
    json_decref(intake);
    json_decref(doc);
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(int argc, char **argv)
{
    struct runner x = {0};
    int arg = 1;
    if (arg < argc && strcmp(argv[arg], "-v") == 0) {
        x.verbose = true;
        arg++;
    }
    if (argc - arg < 2 || argc - arg > 3) {
        fprintf(stderr, "usage: %s [-v] PROFILE.lua CASES_DIR [LIB_DIR]\n", argv[0]);
        return 2;
    }
    const char *profile = argv[arg], *dir = argv[arg + 1];
    const char *lib_dir = argc - arg == 3 ? argv[arg + 2] : NULL;
    voc_log_set_level(VOC_LOG_ERROR);

    static const char *const calendars[] = {"workdays", NULL};
    struct voc_diag diag;
    voc_diag_init(&diag);
    int rc = voc_rules_load(profile, lib_dir, NULL, calendars, &x.rules, &diag);
    for (size_t i = 0; i < diag.count; i++)
        printf("%s\n", diag.messages[i]);
    voc_diag_free(&diag);
    if (rc != 0) {
        printf("FAIL %s: the profile does not load\n0 passed, 1 failed\n", profile);
        return 1;
    }
    char *err = NULL;
    if (voc_textnorm_new(&x.tn, &err) != 0) {
        printf("FAIL: text normalisation: %s\n", err ? err : "?");
        free(err);
        voc_rules_free(x.rules);
        return 1;
    }

    struct dirent **names = NULL;
    int n = scandir(dir, &names, json_file, alphasort);
    if (n < 0) {
        perror(dir);
        voc_textnorm_free(x.tn);
        voc_rules_free(x.rules);
        return 1;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        x.file = names[i]->d_name;
        x.failures = 0;
        if (x.verbose)
            printf("%s\n", x.file);
        run_case(&x, path, (json_int_t)i + 1);
        if (x.failures)
            failed++;
        else
            passed++;
        free(names[i]);
    }
    free(names);
    if (n == 0) {
        printf("FAIL %s: no *.json cases\n", dir);
        failed++;
    }
    printf("%s: %d cases\n", voc_rules_name(x.rules), n);
    printf("%d passed, %d failed\n", passed, failed);
    voc_textnorm_free(x.tn);
    voc_rules_free(x.rules);
    return failed ? 1 : 0;
}
