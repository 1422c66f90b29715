#include "sla_sim.h"

#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "case_view.h"
#include "jsonutil.h"
#include "lifecycle.h"
#include "policy.h"
#include "rules.h"
#include "sla.h"
#include "timeutil.h"

#define NONE INT64_MIN

void voc_sla_sim_init(struct voc_sla_sim *sim, struct voc_rules *rules,
                      const struct voc_policy *policy)
{
    memset(sim, 0, sizeof *sim);
    sim->rules = rules;
    sim->policy = policy;
}

void voc_sla_sim_free(struct voc_sla_sim *sim)
{
    free(sim->clocks);
    for (size_t i = 0; i < sim->error_count; i++)
        free(sim->errors[i]);
    free(sim->errors);
    memset(sim, 0, sizeof *sim);
}

const struct voc_calendar *voc_sla_sim_calendar(const struct voc_sla_sim *sim, const char *name,
                                                bool *known)
{
    const struct voc_calendar *cal = voc_policy_calendar(sim->policy, name);
    *known = cal != NULL;
    return cal ? cal : voc_calendar_24x7();
}

static const struct voc_calendar *calendar_of(const struct voc_sla_sim *sim,
                                              const struct voc_sim_clock *c)
{
    bool known;
    return voc_sla_sim_calendar(sim, c->calendar, &known);
}

static void add_error(struct voc_sla_sim *sim, const char *message)
{
    char **grown = realloc(sim->errors, (sim->error_count + 1) * sizeof *grown);
    char *copy = strdup(message ? message : "?");
    if (!grown || !copy) {
        free(copy);
        if (grown)
            sim->errors = grown;
        sim->oom = true;
        return;
    }
    sim->errors = grown;
    sim->errors[sim->error_count++] = copy;
}

/* Whole milliseconds, rounded up: sla.c stores deadlines as millisecond texts. */
static int64_t ceil_ms(int64_t us)
{
    if (us == NONE || us == INT64_MAX)
        return us;
    int64_t r = us % 1000;
    if (r < 0)
        r += 1000;
    return r ? us + (1000 - r) : us;
}

static bool is_open(const struct voc_sim_clock *c)
{
    return c->stopped_us == NONE;
}

static void schedule(struct voc_sla_sim *sim, struct voc_sim_clock *c)
{
    if (!c->has_target || c->running_since_us == NONE) {
        c->due_us = c->warn_us = NONE;
        return;
    }
    const struct voc_calendar *cal = calendar_of(sim, c);
    c->due_us = ceil_ms(voc_calendar_add(cal, c->running_since_us, c->remaining_us));
    c->warn_us = c->warn_remaining_us >= 0
                     ? ceil_ms(voc_calendar_add(cal, c->running_since_us, c->warn_remaining_us))
                     : NONE;
}

static void pause_clock(struct voc_sla_sim *sim, struct voc_sim_clock *c, int64_t t)
{
    if (c->status != VOC_SIM_RUNNING && c->status != VOC_SIM_WARNING)
        return; /* a breached clock stays breached */
    if (c->has_target && c->running_since_us != NONE) {
        int64_t used = voc_calendar_working_between(calendar_of(sim, c), c->running_since_us, t);
        c->remaining_us = c->remaining_us - used > 0 ? c->remaining_us - used : 0;
        if (c->warn_remaining_us >= 0)
            c->warn_remaining_us =
                c->warn_remaining_us - used > 0 ? c->warn_remaining_us - used : 0;
    }
    c->paused_from = c->status;
    c->paused_us = t;
    c->due_us = c->warn_us = NONE;
    c->status = VOC_SIM_PAUSED;
}

static void resume_clock(struct voc_sla_sim *sim, struct voc_sim_clock *c, int64_t t)
{
    if (c->status != VOC_SIM_PAUSED)
        return;
    c->status = c->paused_from;
    c->paused_us = NONE;
    if (c->has_target)
        c->running_since_us = t;
    schedule(sim, c);
}

static void stop_clock(struct voc_sim_clock *c, int64_t t)
{
    c->status = c->status == VOC_SIM_BREACHED ? VOC_SIM_BREACHED : VOC_SIM_MET;
    c->stopped_us = t;
}

static int start_clock(struct voc_sla_sim *sim, size_t def_index, int cycle, int64_t t)
{
    const struct voc_clock_def *def = voc_rules_clock(sim->rules, def_index);
    if (sim->count == sim->capacity) {
        size_t cap = sim->capacity ? sim->capacity * 2 : 8;
        struct voc_sim_clock *grown = realloc(sim->clocks, cap * sizeof *grown);
        if (!grown) {
            sim->oom = true;
            return -1;
        }
        sim->clocks = grown;
        sim->capacity = cap;
    }
    double target = def->target_s;
    bool has_target = true;
    if (target < 0) {
        json_t *view = sim->view ? sim->view(sim->view_arg) : json_object();
        char *err = NULL;
        if (!view || voc_rules_clock_target(sim->rules, def_index, view, &target, &err) != 0) {
            add_error(sim, view ? err : "out of memory");
            has_target = false;
        }
        free(err);
        json_decref(view);
    }
    char why[160];
    if (has_target && !voc_sla_target_ok(target, why, sizeof why)) {
        /* As the daemon does: the clock runs without a deadline, the rule is at fault. */
        add_error(sim, why);
        has_target = false;
    }
    struct voc_sim_clock *c = &sim->clocks[sim->count++];
    memset(c, 0, sizeof *c);
    c->def = def_index;
    c->name = def->name;
    c->calendar = def->calendar ? def->calendar : VOC_CALENDAR_24X7;
    voc_sla_sim_calendar(sim, c->calendar, &c->calendar_known);
    c->cycle = cycle;
    c->has_target = has_target;
    c->target_s = has_target ? target : 0;
    c->started_us = t;
    c->stopped_us = c->paused_us = NONE;
    c->status = VOC_SIM_RUNNING;
    c->running_since_us = has_target ? t : NONE;
    c->remaining_us = has_target ? (int64_t)(target * 1e6) : 0;
    c->warn_remaining_us = has_target && def->warn > 0 ? (int64_t)(target * def->warn * 1e6) : -1;
    schedule(sim, c);
    return 0;
}

/* The newest clock of definition `def`, or NULL. */
static struct voc_sim_clock *latest(struct voc_sla_sim *sim, size_t def)
{
    for (size_t i = sim->count; i > 0; i--)
        if (sim->clocks[i - 1].def == def)
            return &sim->clocks[i - 1];
    return NULL;
}

void voc_sla_sim_fire(struct voc_sla_sim *sim, int64_t t)
{
    for (size_t i = 0; i < sim->count; i++) {
        struct voc_sim_clock *c = &sim->clocks[i];
        if (!is_open(c))
            continue;
        /* The warning key sorts before the breach key of the same time: warning first. */
        if (c->status == VOC_SIM_RUNNING && c->warn_us != NONE && c->warn_us <= t) {
            c->warn_remaining_us = -1;
            c->status = VOC_SIM_WARNING;
        }
        if ((c->status == VOC_SIM_RUNNING || c->status == VOC_SIM_WARNING) && c->due_us != NONE &&
            c->due_us <= t) {
            c->warn_remaining_us = -1;
            c->status = VOC_SIM_BREACHED;
        }
    }
}

int voc_sla_sim_apply(struct voc_sla_sim *sim, const char *type, const char *state, int64_t t)
{
    size_t defs = sim->rules ? voc_rules_clock_count(sim->rules) : 0;
    bool waiting = strcmp(type, "waiting") == 0;
    if (waiting || strcmp(type, "resumed") == 0) {
        for (size_t i = 0; i < sim->count; i++) {
            if (!is_open(&sim->clocks[i]))
                continue;
            if (waiting)
                pause_clock(sim, &sim->clocks[i], t);
            else
                resume_clock(sim, &sim->clocks[i], t);
        }
    }
    bool *stopped_now = calloc(defs ? defs : 1, sizeof *stopped_now);
    if (!stopped_now) {
        sim->oom = true;
        return -1;
    }
    for (size_t d = 0; d < defs; d++) {
        const struct voc_clock_def *def = voc_rules_clock(sim->rules, d);
        if (strcmp(def->stop, type) != 0)
            continue;
        struct voc_sim_clock *c = latest(sim, d);
        if (c && is_open(c)) {
            stop_clock(c, t);
            stopped_now[d] = true;
        }
    }
    int rc = 0;
    for (size_t d = 0; d < defs && rc == 0; d++) {
        const struct voc_clock_def *def = voc_rules_clock(sim->rules, d);
        bool starts = strcmp(def->start, type) == 0;
        bool recycles = def->reopen && strcmp(type, "reopened") == 0;
        if ((!starts && !recycles) || stopped_now[d])
            continue;
        struct voc_sim_clock *c = latest(sim, d);
        if (c && is_open(c))
            continue; /* already running: a second start event does not reset it */
        int cycle = c ? c->cycle + 1 : 1;
        rc = start_clock(sim, d, cycle, t);
        if (rc == 0 && state && strcmp(state, "waiting") == 0)
            pause_clock(sim, &sim->clocks[sim->count - 1], t);
    }
    free(stopped_now);
    if (state &&
        (!strcmp(state, "closed") || !strcmp(state, "rejected") || !strcmp(state, "duplicate"))) {
        for (size_t i = 0; i < sim->count; i++)
            if (is_open(&sim->clocks[i]))
                stop_clock(&sim->clocks[i], t);
    }
    return rc;
}

const char *voc_sla_sim_status_name(enum voc_sim_status s)
{
    switch (s) {
    case VOC_SIM_RUNNING:
        return "running";
    case VOC_SIM_PAUSED:
        return "paused";
    case VOC_SIM_WARNING:
        return "warning";
    case VOC_SIM_BREACHED:
        return "breached";
    case VOC_SIM_MET:
        return "met";
    }
    return "?";
}

static void set_time(json_t *obj, const char *key, int64_t us)
{
    if (us == NONE || us == INT64_MAX) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    char buf[40];
    voc_format_time(us, buf, sizeof buf);
    json_object_set_new(obj, key, json_string(buf));
}

json_t *voc_sla_sim_clock_json(const struct voc_sim_clock *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "cycle", json_integer(c->cycle));
    json_object_set_new(o, "calendar", json_string(c->calendar));
    json_object_set_new(o, "target_s", c->has_target ? json_real(c->target_s) : json_null());
    set_time(o, "started_at", c->started_us);
    set_time(o, "due_at", c->due_us);
    set_time(o, "warn_at", c->warn_us);
    set_time(o, "stopped_at", c->stopped_us);
    if (c->status == VOC_SIM_PAUSED)
        set_time(o, "paused_at", c->paused_us);
    json_object_set_new(o, "status", json_string(voc_sla_sim_status_name(c->status)));
    return o;
}

json_t *voc_sla_sim_clocks_json(const struct voc_sla_sim *sim)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < sim->count; i++)
        json_array_append_new(a, voc_sla_sim_clock_json(&sim->clocks[i]));
    return a;
}

static int64_t time_of(const json_t *obj, const char *key)
{
    const char *s = voc_json_str(obj, key);
    int64_t us;
    return s && voc_parse_time(s, &us) == 0 ? us : NONE;
}

const char *voc_sla_sim_stored_outcome(const json_t *clock, int64_t now_us)
{
    static const char *const names[] = {"met", "breached", "warning", "running", "paused", NULL};
    const char *status = voc_json_str(clock, "status");
    const char *known = NULL;
    for (size_t i = 0; status && names[i] && !known; i++)
        if (strcmp(names[i], status) == 0)
            known = names[i];
    if (!known)
        return "?";
    bool open =
        json_is_null(json_object_get(clock, "stopped_at")) || !json_object_get(clock, "stopped_at");
    if (!open || (strcmp(known, "running") != 0 && strcmp(known, "warning") != 0))
        return known;
    int64_t due = time_of(clock, "due_at"), warn = time_of(clock, "warn_at");
    if (due != NONE && due <= now_us)
        return "breached";
    if (strcmp(known, "running") == 0 && warn != NONE && warn <= now_us)
        return "warning";
    return known;
}

/* ---- replay over a stored case ---- */

struct replay {
    struct voc_sla_sim *sim;
    const json_t *record;
    json_t *events; /* the events so far (a view shows them) */
    json_t *classification;
    struct voc_case_state state;
    json_int_t reopen_count;
    json_t *satisfaction;
    json_t *duplicate_of;
    int64_t at_us;
};

/* The case as a hook would see it at this point of its history, for target functions. */
static json_t *replay_view(void *arg)
{
    struct replay *r = arg;
    json_t *rec = json_copy((json_t *)r->record);
    if (!rec)
        return NULL;
    json_object_set_new(rec, "state", json_string(voc_state_name(r->state.state)));
    json_object_set(rec, "classification", r->classification ? r->classification : json_null());
    json_object_set_new(rec, "reopen_count", json_integer(r->reopen_count));
    json_object_set(rec, "satisfaction", r->satisfaction ? r->satisfaction : json_null());
    json_object_set(rec, "duplicate_of", r->duplicate_of ? r->duplicate_of : json_null());
    json_object_set_new(rec, "clocks", voc_sla_sim_clocks_json(r->sim));
    json_t *view = voc_case_view(rec, r->events, r->at_us);
    json_decref(rec);
    return view;
}

static bool is_core_classified(const json_t *event)
{
    const char *actor = voc_json_str(event, "actor");
    return actor && (strcmp(actor, "rules") == 0 || strcmp(actor, "vocd") == 0);
}

/* The record's consequences of one event, as case_ops.c's record_event has them. */
static void follow_event(struct replay *r, const json_t *event, const json_t *classification,
                         bool *first_classified)
{
    const char *type = voc_json_str(event, "type");
    const json_t *data = json_object_get(event, "data");
    if (strcmp(type, "classified") == 0) {
        bool take_new = classification && *first_classified && is_core_classified(event);
        if (take_new) {
            json_decref(r->classification);
            r->classification = json_deep_copy(classification);
            *first_classified = false;
        } else {
            if (!json_is_object(r->classification)) {
                json_decref(r->classification);
                r->classification = json_object();
            }
            if (json_is_object(data))
                json_object_update(r->classification, (json_t *)data);
            if (is_core_classified(event))
                *first_classified = false;
        }
    } else if (strcmp(type, "assigned") == 0 && json_is_object(r->classification)) {
        json_object_set(r->classification, "department", json_object_get(data, "department"));
        json_t *collab = json_object_get(data, "collaborators");
        if (collab)
            json_object_set(r->classification, "collaborators", collab);
    } else if (strcmp(type, "revisited") == 0) {
        json_decref(r->satisfaction);
        r->satisfaction = json_incref(json_object_get(data, "satisfaction"));
    } else if (strcmp(type, "reopened") == 0) {
        r->reopen_count++;
    } else if (strcmp(type, "duplicate") == 0) {
        json_decref(r->duplicate_of);
        r->duplicate_of = json_incref(json_object_get(data, "of"));
    }
    if (strcmp(type, "received") != 0) {
        struct voc_case_state next;
        char reason[256];
        /* These events were accepted when they happened; a type the profile at hand does
         * not declare still happened, and profile types never change the state. */
        if (voc_lifecycle_apply(&r->state, type, true, &next, reason, sizeof reason) == 0)
            r->state = next;
    }
}

int voc_sla_sim_replay(struct voc_sla_sim *sim, const json_t *record, const json_t *events,
                       const json_t *classification, int64_t now_us)
{
    struct replay r = {.sim = sim,
                       .record = record,
                       .events = json_array(),
                       .state = {VOC_STATE_NEW, VOC_STATE_NEW}};
    if (!r.events) {
        sim->oom = true;
        return -1;
    }
    sim->view = replay_view;
    sim->view_arg = &r;
    bool first_classified = true, received_pending = false;
    int rc = 0;
    size_t i;
    const json_t *event;
    json_array_foreach (events, i, event) {
        const char *type = voc_json_str(event, "type");
        int64_t at = time_of(event, "at");
        if (!type || at == NONE)
            continue;
        if (strcmp(type, "clock_warning") == 0 || strcmp(type, "clock_breached") == 0)
            continue;
        json_array_append((json_t *)r.events, (json_t *)event);
        follow_event(&r, event, classification, &first_classified);
        r.at_us = at;
        const char *state = voc_state_name(r.state.state);
        if (strcmp(type, "received") == 0 && i == 0) {
            /* At intake the clocks started by `received` wait for the classification. */
            received_pending = true;
            continue;
        }
        voc_sla_sim_fire(sim, at);
        if (received_pending) {
            received_pending = false;
            if ((rc = voc_sla_sim_apply(sim, "received", state, at)) != 0)
                break;
        }
        if ((rc = voc_sla_sim_apply(sim, type, state, at)) != 0)
            break;
    }
    /* A history that ends at `received` (no classification recorded) never moved the
     * clocks in vocd either. */
    if (rc == 0)
        voc_sla_sim_fire(sim, now_us);
    sim->view = NULL;
    sim->view_arg = NULL;
    json_decref(r.events);
    json_decref(r.classification);
    json_decref(r.satisfaction);
    json_decref(r.duplicate_of);
    return rc || sim->oom ? -1 : 0;
}
