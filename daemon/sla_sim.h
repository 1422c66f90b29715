/* SLA clocks computed in memory: what sla.c does inside the writer's transaction, as a pure
 * function of a profile, the calendars and a list of (event type, time). No store, no
 * deadline index, no on_clock hooks and no actions: for what-if runs such as
 * `vocctl rules test` (the clocks a new case would get) and `vocctl rules replay` (the
 * outcome a different profile would have given the stored cases).
 *
 * The rules are sla.c's, step for step (tests/unit/test_sla_sim.c drives both with the same
 * random events and compares): `waiting` pauses and `resumed` resumes every open clock; an
 * event stops the newest open clock of each definition whose `stop` it is, then starts each
 * definition whose `start` it is (or, with `reopen = true`, a `reopened` event) unless that
 * clock is already open or was stopped by this same event; a clock started while the case
 * waits is paused at once; a closed, rejected or duplicate case stops every open clock. A
 * warning or breach whose time has come (due at or before the moment looked at) fires before
 * an event at that moment is applied: a clock stopped exactly at its due time is breached,
 * as when vocd's timer fires first.
 *
 * Times are int64 microseconds since the epoch (UTC); INT64_MIN means "none". */
#ifndef VOC_SLA_SIM_H
#define VOC_SLA_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct voc_rules;
struct voc_policy;
struct voc_calendar;

enum voc_sim_status {
    VOC_SIM_RUNNING,
    VOC_SIM_PAUSED,
    VOC_SIM_WARNING,
    VOC_SIM_BREACHED,
    VOC_SIM_MET,
};

struct voc_sim_clock {
    size_t def;           /* index in the profile's clocks */
    const char *name;     /* borrowed from the profile */
    const char *calendar; /* as declared ("24x7" when not given); borrowed */
    bool calendar_known;  /* false: not in the policy, counted 24x7 (as sla.c does) */
    int cycle;
    bool has_target; /* false: the target function failed, the clock has no deadline */
    double target_s;
    int64_t started_us, stopped_us, paused_us;
    int64_t due_us, warn_us;
    enum voc_sim_status status;
    enum voc_sim_status paused_from;
    /* sla.c's bookkeeping: working time left at running_since. */
    int64_t running_since_us, remaining_us, warn_remaining_us; /* warn: -1 = none pending */
};

struct voc_sla_sim {
    struct voc_rules *rules;
    const struct voc_policy *policy; /* calendars; NULL = only the built-in 24x7 */
    /* The case view a target function gets; NULL: called with an empty object. Returns a
     * new reference. voc_sla_sim_replay sets its own. */
    json_t *(*view)(void *arg);
    void *view_arg;
    struct voc_sim_clock *clocks; /* in start order, as in a case record */
    size_t count, capacity;
    char **errors; /* rule errors of target functions, "file:line: message" */
    size_t error_count;
    bool oom;
};

/* A simulation for `rules` (not owned). `policy` gives the calendars (may be NULL). */
void voc_sla_sim_init(struct voc_sla_sim *sim, struct voc_rules *rules,
                      const struct voc_policy *policy);
void voc_sla_sim_free(struct voc_sla_sim *sim);

/* The calendar a clock definition counts on; *known = false when the policy does not have
 * it (then 24x7 is returned). */
const struct voc_calendar *voc_sla_sim_calendar(const struct voc_sla_sim *sim, const char *name,
                                                bool *known);

/* Fire every warning and breach due at or before t_us. */
void voc_sla_sim_fire(struct voc_sla_sim *sim, int64_t t_us);

/* An event of `type` happened at t_us and left the case in `state` (its state name after
 * the event): move the clocks as voc_sla_apply_event does. Deadlines are not fired here:
 * call voc_sla_sim_fire(sim, t_us) first for what fell due before the event. Returns 0, or
 * -1 when out of memory. */
int voc_sla_sim_apply(struct voc_sla_sim *sim, const char *type, const char *state, int64_t t_us);

/* Re-run the clocks over a stored case: `record` as stored, `events` its history (oldest
 * first). The case's state is folded from the events with the core's lifecycle; the
 * `received` event moves the clocks together with the next event, as at intake (so a
 * target function sees the classification); clock_warning / clock_breached events are
 * skipped (they belong to the clocks of the profile that recorded them). The first
 * `classified` event recorded by the core (actor "rules" or "vocd") counts as
 * `classification` when that is given (the new profile's decision), later `classified`
 * and `assigned` events change it as in the core. Deadlines up to now_us fire at the end.
 * Returns 0, or -1 when out of memory. */
int voc_sla_sim_replay(struct voc_sla_sim *sim, const json_t *record, const json_t *events,
                       const json_t *classification, int64_t now_us);

const char *voc_sla_sim_status_name(enum voc_sim_status s);

/* One clock as the API shows it (name, cycle, calendar, target_s, started_at, due_at,
 * warn_at, stopped_at, paused_at when paused, status). New reference. */
json_t *voc_sla_sim_clock_json(const struct voc_sim_clock *c);
/* All clocks, in start order. New reference. */
json_t *voc_sla_sim_clocks_json(const struct voc_sla_sim *sim);

/* The outcome of a stored clock (from a case record or the API) as of now_us: its status,
 * except that a running clock whose warning or due time has passed counts as warning or
 * breached (vocd fires those a moment later, or when it runs again). Returns a static
 * string: met, breached, warning, running, paused, or "?" for a clock without a status. */
const char *voc_sla_sim_stored_outcome(const json_t *clock, int64_t now_us);

#endif
