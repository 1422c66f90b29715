/* vocctl rules: run a Lua profile offline. `rules test` classifies one case file and shows
 * the clocks it would get; `rules replay` (rules_replay.c) re-runs a profile over a store.
 * Both load the profile exactly as vocd does (voc_rules_load, with the config's calendars,
 * budgets and lib_dir) and use the core's own code for the case view, the classification
 * and, through sla_sim, the clocks: a what-if that can differ from vocd only where it says
 * so. */
#define _GNU_SOURCE /* asprintf */
#include "rules_cmd.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calendar.h"
#include "case_view.h"
#include "config.h"
#include "diag.h"
#include "intake.h"
#include "jsonutil.h"
#include "output.h"
#include "policy.h"
#include "rules.h"
#include "sla_sim.h"
#include "timeutil.h"
#include "yaml_doc.h"

static const char rules_help[] =
    "usage: vocctl rules test|replay ...\n"
    "Run a Lua profile offline, without a daemon, URL or token.\n"
    "\n"
    "  vocctl rules test PROFILE.lua CASE.json [-c CONFIG] [--at TIME] [--json]\n"
    "      classify one case file and show the SLA clocks it would get\n"
    "  vocctl rules replay PROFILE.lua --data-dir DIR [-c CONFIG] [--limit N] [--at TIME]\n"
    "                      [--json]\n"
    "      re-run the profile over every stored case (read-only, also beside a running\n"
    "      vocd) and show what would change\n"
    "\n"
    "`vocctl rules test --help` and `vocctl rules replay --help` tell more.\n";

static const char test_help[] =
    "usage: vocctl rules test PROFILE.lua CASE.json [-c CONFIG] [--at TIME] [--json]\n"
    "Load PROFILE.lua as vocd would (its own tests included), classify the case in\n"
    "CASE.json and show every SLA clock of the profile: start and stop event, the target\n"
    "evaluated for this case, calendar, warning point, and the due time if the clock\n"
    "started at the case's received_at (or at --at). Clocks started at intake (received,\n"
    "classified) show what they are right after it.\n"
    "\n"
    "CASE.json: an intake record as POST /api/v1/cases takes it, a case as\n"
    "GET /api/v1/cases/{id} shows it (its intake fields are used), or a test\n"
    "{\"case\": {...}, \"expect\": {\"category\": ...}, \"clocks\": {\"respond\": 7200}}\n"
    "(expected classification fields and clock targets in seconds); or a list of these.\n"
    "\n"
    "  -c, --config FILE  calendars, budgets and rules.lib_dir (default etc/vocd.yaml when\n"
    "                     it exists; without a config only the 24x7 calendar is known)\n"
    "  --at TIME          the moment of intake (RFC 3339 or YYYY-MM-DD; default\n"
    "                     received_at, else now)\n"
    "  --json             print the result as JSON\n"
    "\n"
    "Rule errors are printed on stderr as file:line: message. Exit 0 ok, 1 rule error, a\n"
    "failed expectation, an invalid file or a usage error.\n";

#define OPT_AT 0x2001

/* ---- shared: loading ---------------------------------------------------------------- */

static void print_diag(const struct voc_diag *d)
{
    fflush(stdout);
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "%s\n", d->messages[i]);
}

/* rules.lib_dir from the config only when the config says so: its default is derived from
 * the config's own profile, not the one given here. */
static const char *explicit_lib_dir(const struct voc_config *cfg)
{
    if (!cfg || !cfg->rules.lib_dir)
        return NULL;
    struct voc_yaml_node *rules = voc_yaml_get(cfg->doc.root, "rules");
    return rules && voc_yaml_get(rules, "lib_dir") ? cfg->rules.lib_dir : NULL;
}

int voc_ctl_rules_load(const char *profile, const char *config, struct voc_ctl_rules_env *env)
{
    memset(env, 0, sizeof *env);
    struct voc_diag diag;
    voc_diag_init(&diag);
    int rc = VOC_CTL_EXIT_ERROR;
    char *lib_dir = NULL;
    const char **calendars = NULL;
    struct voc_rules *rules = NULL;

    if (!config && access(VOC_CTL_RULES_DEFAULT_CONFIG, F_OK) == 0)
        config = VOC_CTL_RULES_DEFAULT_CONFIG;
    if (config) {
        /* Only the config's errors matter here: its warnings are about running a daemon
         * (no tokens, ...), not about this profile. */
        struct voc_diag config_diag;
        voc_diag_init(&config_diag);
        env->cfg = voc_config_load(config, &config_diag);
        if (!env->cfg)
            print_diag(&config_diag);
        voc_diag_free(&config_diag);
        if (!env->cfg) {
            voc_ctl_error("config %s is invalid", config);
            goto done;
        }
    }
    const char *configured = explicit_lib_dir(env->cfg);
    if (configured) {
        lib_dir = strdup(configured);
    } else {
        char *copy = strdup(profile);
        if (copy && asprintf(&lib_dir, "%s/../lib", dirname(copy)) < 0)
            lib_dir = NULL;
        free(copy);
    }
    if (!lib_dir) {
        voc_ctl_error("out of memory");
        goto done;
    }
    struct voc_rules_limits limits = {0};
    if (env->cfg) {
        limits.max_instructions = (uint64_t)env->cfg->rules.max_instructions;
        limits.max_memory = (size_t)env->cfg->rules.max_memory;
        calendars = calloc(env->cfg->calendar_count + 1, sizeof *calendars);
        if (!calendars) {
            voc_ctl_error("out of memory");
            goto done;
        }
        for (size_t i = 0; i < env->cfg->calendar_count; i++)
            calendars[i] = env->cfg->calendars[i].name;
    }
    /* Without a config the calendar names cannot be checked (NULL list); such clocks are
     * counted 24x7 below, with a warning. */
    if (voc_rules_load(profile, lib_dir, &limits, calendars, &rules, &diag) != 0) {
        print_diag(&diag);
        voc_ctl_error("profile %s did not load", profile);
        goto done;
    }
    if (env->cfg) {
        if (voc_policy_new(env->cfg, rules, &env->policy, &diag) != 0) {
            rules = NULL; /* the policy took it */
            print_diag(&diag);
            voc_ctl_error("the calendars of %s are invalid", config);
            goto done;
        }
    } else {
        struct voc_policy *p = calloc(1, sizeof *p);
        if (!p) {
            voc_rules_free(rules);
            rules = NULL;
            voc_ctl_error("out of memory");
            goto done;
        }
        p->rules = rules;
        env->policy = p;
    }
    rules = NULL;
    env->rules = env->policy->rules;
    print_diag(&diag); /* warnings */
    for (size_t i = 0; i < voc_rules_clock_count(env->rules); i++) {
        const struct voc_clock_def *def = voc_rules_clock(env->rules, i);
        if (def->calendar && !voc_policy_calendar(env->policy, def->calendar))
            fprintf(stderr,
                    "vocctl: warning: no config (-c CONFIG, or %s): clock '%s' counts its "
                    "calendar '%s' as 24x7\n",
                    VOC_CTL_RULES_DEFAULT_CONFIG, def->name, def->calendar);
    }
    rc = VOC_CTL_EXIT_OK;
done:
    if (rc != VOC_CTL_EXIT_OK)
        voc_ctl_rules_env_free(env);
    voc_rules_free(rules);
    free(calendars);
    free(lib_dir);
    voc_diag_free(&diag);
    return rc;
}

void voc_ctl_rules_env_free(struct voc_ctl_rules_env *env)
{
    voc_policy_free(env->policy);
    voc_config_free(env->cfg);
    memset(env, 0, sizeof *env);
}

int voc_ctl_rules_print_json(const json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) : NULL;
    if (!text)
        return voc_ctl_error("out of memory");
    puts(text);
    free(text);
    return VOC_CTL_EXIT_OK;
}

void voc_ctl_rules_local(int64_t us, char *buf, size_t len)
{
    if (us == INT64_MIN || us == INT64_MAX) {
        snprintf(buf, len, "-");
        return;
    }
    char text[40];
    voc_format_time(us, text, sizeof text);
    voc_ctl_local_time(text, 0, buf, len);
}

/* ---- rules test --------------------------------------------------------------------- */

/* One case to test, taken apart from the file's forms. */
struct test_item {
    const json_t *record; /* intake fields (borrowed or owned_record) */
    json_t *owned_record;
    const json_t *expect; /* NULL: none */
    const json_t *clocks; /* expected targets {"name": seconds}; NULL: none */
    const char *label;    /* wrapper's name/description, NULL */
    json_int_t id;
};

/* Take one item of CASE.json apart. Returns 0, or -1 with msg. */
static int split_item(const json_t *item, struct test_item *t, char *msg, size_t len)
{
    static const char *const intake_fields[] = {
        "external_id", "channel", "source",   "received_at", "customer", "product",
        "subject",     "text",    "expected", "attachments", "fields",   NULL};
    static const char *const view_markers[] = {"id",     "state",      "events", "classification",
                                               "clocks", "created_at", NULL};
    memset(t, 0, sizeof *t);
    if (!json_is_object(item)) {
        snprintf(msg, len, "a case must be a JSON object");
        return -1;
    }
    if (json_object_get(item, "case")) {
        const char *key;
        const json_t *v;
        json_object_foreach ((json_t *)item, key, v) {
            if (strcmp(key, "case") && strcmp(key, "expect") && strcmp(key, "clocks") &&
                strcmp(key, "name") && strcmp(key, "description")) {
                snprintf(msg, len,
                         "unknown field '%s' next to 'case' (case, expect, clocks, "
                         "name, description)",
                         key);
                return -1;
            }
        }
        t->record = json_object_get(item, "case");
        t->expect = json_object_get(item, "expect");
        t->clocks = json_object_get(item, "clocks");
        if (t->clocks && !json_is_object(t->clocks)) {
            snprintf(msg, len, "'clocks' must be an object of clock names and target seconds");
            return -1;
        }
        json_object_foreach ((json_t *)t->clocks, key, v) {
            if (!json_is_number(v)) {
                snprintf(msg, len, "clocks: '%s' must be a number of seconds", key);
                return -1;
            }
        }
        t->label = json_string_value(json_object_get(item, "name"));
        if (!t->label)
            t->label = json_string_value(json_object_get(item, "description"));
        if (t->expect && !json_is_object(t->expect)) {
            snprintf(msg, len, "'expect' must be an object of classification fields");
            return -1;
        }
        const char *k;
        json_object_foreach ((json_t *)t->expect, k, v) {
            if (voc_rules_class_index(k) < 0) {
                snprintf(msg, len,
                         "expect: unknown field '%s' (kind, category, severity, "
                         "department, collaborators, priority, tags)",
                         k);
                return -1;
            }
        }
        if (!json_is_object(t->record)) {
            snprintf(msg, len, "'case' must be an object");
            return -1;
        }
        return 0;
    }
    bool view = false;
    for (size_t i = 0; view_markers[i]; i++)
        view |= json_object_get(item, view_markers[i]) != NULL;
    if (!view) {
        t->record = item;
        return 0;
    }
    /* A case as the API shows it: the intake fields are what classify saw. */
    t->owned_record = json_object();
    for (size_t i = 0; t->owned_record && intake_fields[i]; i++) {
        json_t *v = json_object_get(item, intake_fields[i]);
        if (v && !json_is_null(v))
            json_object_set(t->owned_record, intake_fields[i], v);
    }
    t->record = t->owned_record;
    json_t *id = json_object_get(item, "id");
    t->id = json_is_integer(id) ? json_integer_value(id) : 0;
    return t->record ? 0 : -1;
}

/* The record of a brand-new case as case_ops.c builds it. */
static json_t *new_case_record(const json_t *intake, json_int_t id, int64_t at)
{
    char when[40];
    voc_format_time(at, when, sizeof when);
    json_t *r = json_pack("{s:I, s:s, s:s, s:s}", "id", id, "state", "new", "created_at", when,
                          "updated_at", when);
    if (!r)
        return NULL;
    json_object_update(r, (json_t *)intake);
    json_object_set_new(r, "classification", json_null());
    json_object_set_new(r, "duplicate_of", json_null());
    json_object_set_new(r, "duplicates", json_array());
    json_object_set_new(r, "reopen_count", json_integer(0));
    json_object_set_new(r, "satisfaction", json_null());
    json_object_set_new(r, "breached", json_false());
    json_object_set_new(r, "event_count", json_integer(1));
    return r;
}

struct test_case {
    json_t *record; /* after classification */
    json_t *events;
    int64_t at;
};

static json_t *test_view(void *arg)
{
    struct test_case *c = arg;
    return voc_case_view(c->record, c->events, c->at);
}

static void add_error(json_t *errors, const char *message)
{
    size_t i;
    json_t *e;
    json_array_foreach (errors, i, e)
        if (strcmp(json_string_value(e), message) == 0)
            return;
    json_array_append_new(errors, json_string(message));
}

static void set_time(json_t *obj, const char *key, int64_t us)
{
    if (us == INT64_MIN || us == INT64_MAX) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    char buf[40];
    voc_format_time(us, buf, sizeof buf);
    json_object_set_new(obj, key, json_string(buf));
}

static const struct voc_sim_clock *clock_of_def(const struct voc_sla_sim *sim, size_t def)
{
    for (size_t i = sim->count; i > 0; i--)
        if (sim->clocks[i - 1].def == def)
            return &sim->clocks[i - 1];
    return NULL;
}

/* Every clock of the profile for this case: the ones intake started as they are right after
 * it, the others as if their start event came at `at`. */
static json_t *test_clocks(struct voc_ctl_rules_env *env, struct test_case *c, json_t *errors)
{
    json_t *out = json_array();
    struct voc_sla_sim sim;
    voc_sla_sim_init(&sim, env->rules, env->policy);
    sim.view = test_view;
    sim.view_arg = c;
    /* As at intake: received moves the clocks together with the classification. */
    voc_sla_sim_apply(&sim, "received", "classified", c->at);
    voc_sla_sim_apply(&sim, "classified", "classified", c->at);
    for (size_t i = 0; i < sim.error_count; i++)
        add_error(errors, sim.errors[i]);
    for (size_t d = 0; out && d < voc_rules_clock_count(env->rules); d++) {
        const struct voc_clock_def *def = voc_rules_clock(env->rules, d);
        const struct voc_sim_clock *clock = clock_of_def(&sim, d);
        struct voc_sla_sim what_if;
        voc_sla_sim_init(&what_if, env->rules, env->policy);
        what_if.view = test_view;
        what_if.view_arg = c;
        if (!clock) {
            voc_sla_sim_apply(&what_if, def->start, "classified", c->at);
            for (size_t i = 0; i < what_if.error_count; i++)
                add_error(errors, what_if.errors[i]);
            clock = clock_of_def(&what_if, d);
        }
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "name", def->name, "start", def->start, "stop", def->stop);
        if (clock && clock->has_target)
            json_object_set_new(o, "target_s", json_real(clock->target_s));
        else
            json_object_set_new(o, "target_s", json_null());
        bool known = true;
        const char *cal = def->calendar ? def->calendar : VOC_CALENDAR_24X7;
        voc_sla_sim_calendar(&sim, cal, &known);
        json_object_set_new(o, "calendar", json_string(cal));
        json_object_set_new(o, "calendar_known", json_boolean(known));
        json_object_set_new(o, "warn", json_real(def->warn));
        json_object_set_new(o, "reopen", json_boolean(def->reopen));
        bool started = clock && clock == clock_of_def(&sim, d);
        json_object_set_new(o, "at_intake",
                            started ? json_string(voc_sla_sim_status_name(clock->status))
                                    : json_null());
        set_time(o, "started_at", clock ? clock->started_us : INT64_MIN);
        set_time(o, "due_at", clock ? clock->due_us : INT64_MIN);
        set_time(o, "warn_at", clock ? clock->warn_us : INT64_MIN);
        set_time(o, "stopped_at", clock ? clock->stopped_us : INT64_MIN);
        json_array_append_new(out, o);
        voc_sla_sim_free(&what_if);
    }
    voc_sla_sim_free(&sim);
    return out;
}

/* Classify one case and build its result object. NULL with msg when the case is invalid. */
static json_t *run_test(struct voc_ctl_rules_env *env, const struct test_item *t, bool at_given,
                        int64_t at, char *msg, size_t len)
{
    int64_t now = at_given ? at : voc_now_us();
    json_t *intake = NULL;
    struct voc_err err = {0};
    if (voc_intake_validate(t->record, NULL, now, &intake, &err) != 0) {
        snprintf(msg, len, "%s", err.message);
        return NULL;
    }
    int64_t start = now;
    if (!at_given && voc_parse_time(voc_json_str(intake, "received_at"), &start) != 0)
        start = now;
    struct test_case c = {.at = start};
    c.record = new_case_record(intake, t->id, start);
    char when[40];
    voc_format_time(start, when, sizeof when);
    c.events = json_pack("[{s:i, s:s, s:s, s:s, s:n, s:{}}]", "seq", 1, "type", "received", "at",
                         when, "actor", voc_json_str(intake, "channel"), "note", "data");
    json_t *result = json_object();
    json_t *errors = json_array();
    if (!c.record || !c.events || !result || !errors) {
        snprintf(msg, len, "out of memory");
        goto fail;
    }
    json_t *view = voc_case_view(c.record, c.events, start);
    json_t *classification = NULL;
    char *rule_err = NULL;
    if (voc_rules_classify(env->rules, view, &classification, &rule_err) != 0)
        add_error(errors, rule_err ? rule_err : "classify failed");
    free(rule_err);
    json_decref(view);
    if (!classification) {
        snprintf(msg, len, "out of memory");
        goto fail;
    }
    /* The case as the clocks' target functions see it after intake. */
    json_object_set(c.record, "classification", classification);
    json_object_set_new(c.record, "state", json_string("classified"));
    json_object_set_new(c.record, "event_count", json_integer(2));
    json_array_append_new(c.events, json_pack("{s:i, s:s, s:s, s:s, s:n, s:O}", "seq", 2, "type",
                                              "classified", "at", when, "actor", "rules", "note",
                                              "data", classification));

    json_object_set_new(result, "profile",
                        json_pack("{s:s, s:s}", "name", voc_rules_name(env->rules), "path",
                                  voc_rules_path(env->rules)));
    if (t->label)
        json_object_set_new(result, "name", json_string(t->label));
    json_t *summary = json_object();
    static const char *const shown[] = {"subject", "channel", "source", "received_at", NULL};
    for (size_t i = 0; shown[i]; i++)
        json_object_set(summary, shown[i], json_object_get(intake, shown[i]));
    json_object_set_new(result, "case", summary);
    json_object_set_new(result, "started_at", json_string(when));
    json_object_set_new(result, "classification", classification);
    json_object_set_new(result, "clocks", test_clocks(env, &c, errors));
    if (t->expect || t->clocks) {
        json_t *mismatches = json_array();
        const char *key;
        json_t *want;
        json_object_foreach ((json_t *)t->expect, key, want) {
            json_t *got = json_object_get(classification, key);
            if (!got || !json_equal(got, want))
                json_array_append_new(mismatches,
                                      json_pack("{s:s, s:O, s:O}", "field", key, "expected", want,
                                                "got", got ? got : json_null()));
        }
        /* Expected targets, as the shipped profiles' case sets give them. */
        json_object_foreach ((json_t *)t->clocks, key, want) {
            json_t *got = NULL;
            size_t i;
            json_t *k;
            json_array_foreach (json_object_get(result, "clocks"), i, k)
                if (strcmp(json_string_value(json_object_get(k, "name")), key) == 0)
                    got = json_object_get(k, "target_s");
            if (!json_is_number(got) ||
                fabs(json_number_value(got) - json_number_value(want)) > 1e-6) {
                char field[128];
                snprintf(field, sizeof field, "clocks.%s", key);
                json_array_append_new(mismatches,
                                      json_pack("{s:s, s:O, s:O}", "field", field, "expected", want,
                                                "got", got ? got : json_null()));
            }
        }
        json_object_set_new(result, "expect",
                            json_pack("{s:b, s:o}", "ok", json_array_size(mismatches) == 0,
                                      "mismatches", mismatches));
    }
    json_object_set_new(result, "errors", errors);
    json_decref(intake);
    json_decref(c.record);
    json_decref(c.events);
    return result;
fail:
    json_decref(errors);
    json_decref(result);
    json_decref(intake);
    json_decref(c.record);
    json_decref(c.events);
    return NULL;
}

static void print_json_value(const char *key, const json_t *v, char *buf, size_t len)
{
    char *text = v ? voc_ctl_scalar(key, v) : NULL;
    snprintf(buf, len, "%s", text && *text ? text : "-");
    free(text);
}

static int print_test(const json_t *r, size_t index, size_t total)
{
    char buf[256], when[64];
    const json_t *c = json_object_get(r, "case");
    if (total > 1)
        printf("%sCase %zu of %zu%s%s\n", index ? "\n" : "", index + 1, total,
               json_object_get(r, "name") ? ": " : "",
               json_object_get(r, "name") ? json_string_value(json_object_get(r, "name")) : "");
    const json_t *p = json_object_get(r, "profile");
    snprintf(buf, sizeof buf, "%s (%s)", json_string_value(json_object_get(p, "name")),
             json_string_value(json_object_get(p, "path")));
    voc_ctl_kv(stdout, "", 9, "profile", buf);
    voc_ctl_kv(stdout, "", 9, "subject", json_string_value(json_object_get(c, "subject")));
    voc_ctl_local_time(json_string_value(json_object_get(r, "started_at")),
                       VOC_CTL_TIME_SECONDS | VOC_CTL_TIME_ZONE, when, sizeof when);
    voc_ctl_kv(stdout, "", 9, "intake", when);

    printf("\nClassification:\n");
    const json_t *cls = json_object_get(r, "classification");
    for (size_t k = 0; k < VOC_CLASS_FIELDS; k++) {
        const char *field = voc_class_fields[k];
        print_json_value(field, json_object_get(cls, field), buf, sizeof buf);
        voc_ctl_kv(stdout, "  ", 13, field, buf);
    }

    voc_ctl_local_time(json_string_value(json_object_get(r, "started_at")), VOC_CTL_TIME_ZONE, when,
                       sizeof when);
    printf("\nClocks (due if started at %s):\n", when);
    const json_t *clocks = json_object_get(r, "clocks");
    int rc = VOC_CTL_EXIT_OK;
    if (json_array_size(clocks) == 0) {
        printf("  (none)\n");
    } else {
        static const char *const headers[] = {"CLOCK", "START → STOP", "TARGET", "CALENDAR",
                                              "WARN",  "AT INTAKE",    "DUE",    "WARNING AT"};
        struct voc_ctl_table *t = voc_ctl_table_new(8, headers);
        if (!t)
            return voc_ctl_error("out of memory");
        size_t i;
        const json_t *k;
        json_array_foreach (clocks, i, k) {
            char target[64], due[64], warn_at[64], cal[128], warn[32];
            const json_t *ts = json_object_get(k, "target_s");
            if (json_is_number(ts))
                voc_ctl_duration(json_number_value(ts), target, sizeof target);
            else
                snprintf(target, sizeof target, "error");
            voc_ctl_local_time(json_string_value(json_object_get(k, "due_at")), 0, due, sizeof due);
            voc_ctl_local_time(json_string_value(json_object_get(k, "warn_at")), 0, warn_at,
                               sizeof warn_at);
            snprintf(cal, sizeof cal, "%s%s", json_string_value(json_object_get(k, "calendar")),
                     json_is_true(json_object_get(k, "calendar_known")) ? "" : " (as 24x7)");
            double w = json_number_value(json_object_get(k, "warn"));
            if (w > 0)
                snprintf(warn, sizeof warn, "%g%%", w * 100);
            else
                snprintf(warn, sizeof warn, "-");
            voc_ctl_table_row(t);
            voc_ctl_table_cell(t, json_string_value(json_object_get(k, "name")));
            voc_ctl_table_cellf(t, "%s → %s", json_string_value(json_object_get(k, "start")),
                                json_string_value(json_object_get(k, "stop")));
            voc_ctl_table_cell(t, target);
            voc_ctl_table_cell(t, cal);
            voc_ctl_table_cell(t, warn);
            voc_ctl_table_cell(t, json_string_value(json_object_get(k, "at_intake")));
            voc_ctl_table_cell(t, due);
            voc_ctl_table_cell(t, warn_at);
        }
        if (voc_ctl_table_print(t, stdout, "  ") != 0)
            rc = VOC_CTL_EXIT_ERROR;
        voc_ctl_table_free(t);
    }
    const json_t *expect = json_object_get(r, "expect");
    if (expect) {
        const json_t *mm = json_object_get(expect, "mismatches");
        if (json_array_size(mm) == 0) {
            printf("\nExpect: ok\n");
        } else {
            printf("\nExpect: FAILED\n");
            size_t i;
            const json_t *m;
            json_array_foreach (mm, i, m) {
                char *want = json_dumps(json_object_get(m, "expected"), JSON_ENCODE_ANY);
                char *got = json_dumps(json_object_get(m, "got"), JSON_ENCODE_ANY);
                char *line = NULL;
                if (asprintf(&line, "%s: expected %s, got %s",
                             json_string_value(json_object_get(m, "field")), want ? want : "?",
                             got ? got : "?") < 0)
                    line = NULL;
                char *clean = line ? voc_ctl_clean(line, false) : NULL;
                printf("  %s\n", clean ? clean : "?");
                free(clean);
                free(line);
                free(want);
                free(got);
            }
        }
    }
    return rc;
}

static int cmd_test(struct voc_ctl *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        VOC_CTL_COMMON_OPTIONS,
        {"config", required_argument, NULL, 'c'},
        {"at", required_argument, NULL, OPT_AT},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool at_given = false;
    int64_t at = 0;
    int opt, rc = 0;
    while ((opt = voc_ctl_getopt(ctl, argc, argv, ":hc:", options, test_help, &rc)) != -1) {
        switch (opt) {
        case -2:
            return rc;
        case 'c':
            config = optarg;
            break;
        case OPT_AT:
            if (voc_parse_time(optarg, &at) != 0)
                return voc_ctl_usage_error(
                    argv[0], test_help, "--at wants an RFC 3339 time or YYYY-MM-DD: '%s'", optarg);
            at_given = true;
            break;
        }
    }
    if (argc - optind != 2)
        return voc_ctl_usage_error(argv[0], test_help, "wants PROFILE.lua and CASE.json");
    const char *profile = argv[optind], *case_path = argv[optind + 1];

    json_error_t jerr;
    json_t *doc = json_load_file(case_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (jerr.line > 0)
            return voc_ctl_error("%s:%d:%d: %s", case_path, jerr.line, jerr.column, jerr.text);
        return voc_ctl_error("%s: %s", case_path, jerr.text);
    }
    struct voc_ctl_rules_env env;
    if (voc_ctl_rules_load(profile, config, &env) != 0) {
        json_decref(doc);
        return VOC_CTL_EXIT_ERROR;
    }
    size_t total = json_is_array(doc) ? json_array_size(doc) : 1;
    json_t *results = json_array();
    int ret = VOC_CTL_EXIT_OK;
    size_t failed_expect = 0, rule_errors = 0;
    for (size_t i = 0; i < total && ret == VOC_CTL_EXIT_OK; i++) {
        const json_t *item = json_is_array(doc) ? json_array_get(doc, i) : doc;
        struct test_item t;
        char msg[600];
        json_t *r = NULL;
        if (split_item(item, &t, msg, sizeof msg) == 0)
            r = run_test(&env, &t, at_given, at, msg, sizeof msg);
        json_decref(t.owned_record);
        if (!r) {
            if (total > 1)
                ret = voc_ctl_error("%s: case %zu: %s", case_path, i + 1, msg);
            else
                ret = voc_ctl_error("%s: %s", case_path, msg);
            break;
        }
        const json_t *errors = json_object_get(r, "errors");
        size_t e;
        const json_t *message;
        fflush(stdout);
        json_array_foreach (errors, e, message)
            fprintf(stderr, "%s\n", json_string_value(message));
        rule_errors += json_array_size(errors);
        failed_expect += json_is_false(json_object_get(json_object_get(r, "expect"), "ok"));
        if (!ctl->json && print_test(r, i, total) != 0)
            ret = VOC_CTL_EXIT_ERROR;
        json_array_append_new(results, r);
    }
    if (ret == VOC_CTL_EXIT_OK && ctl->json)
        ret = voc_ctl_rules_print_json(json_is_array(doc) ? results : json_array_get(results, 0));
    if (ret == VOC_CTL_EXIT_OK && (rule_errors || failed_expect)) {
        if (rule_errors)
            voc_ctl_error("%zu rule error%s", rule_errors, rule_errors == 1 ? "" : "s");
        if (failed_expect)
            voc_ctl_error("%zu of %zu case%s did not match the expectations", failed_expect, total,
                          total == 1 ? "" : "s");
        ret = VOC_CTL_EXIT_ERROR;
    }
    json_decref(results);
    json_decref(doc);
    voc_ctl_rules_env_free(&env);
    return ret;
}

/* ---- the command ---------------------------------------------------------------------- */

int voc_ctl_cmd_rules(struct voc_ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return voc_ctl_usage_error(argv[0], rules_help, "wants 'test' or 'replay'");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(rules_help, stdout);
        return VOC_CTL_EXIT_OK;
    }
    int (*run)(struct voc_ctl *, int, char **) = NULL;
    if (!strcmp(sub, "test"))
        run = cmd_test;
    else if (!strcmp(sub, "replay"))
        run = voc_ctl_rules_replay;
    else
        return voc_ctl_usage_error(argv[0], rules_help, "unknown subcommand '%s' (test, replay)",
                                   sub);
    /* The subcommand's argv, named "rules test" so that its messages say which one. */
    char **sub_argv = calloc((size_t)argc, sizeof *sub_argv);
    if (!sub_argv)
        return voc_ctl_error("out of memory");
    char name[32];
    snprintf(name, sizeof name, "rules %s", sub);
    sub_argv[0] = name;
    for (int i = 2; i < argc; i++)
        sub_argv[i - 1] = argv[i];
    optind = 0;
    int rc = run(ctl, argc - 1, sub_argv);
    free(sub_argv);
    return rc;
}
