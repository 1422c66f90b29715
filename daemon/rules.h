/* A compiled Lua profile: the company's classification, guard, SLA clock and scoring rules.
 *
 * One voc_rules owns one Lua state. It is not thread-safe: the daemon loads it on the main
 * thread and then only the writer thread calls into it (rules run inside the write
 * transaction, so a guard sees exactly the events it guards). Reload builds a new voc_rules,
 * validates it, and hands it to the writer, which swaps it between two batches.
 *
 * Every call into Lua goes through one protected-call wrapper with a traceback handler, an
 * instruction budget and a memory budget. A failing call never takes the daemon down: the
 * caller gets -1 and a message with file:line, and the stats count it.
 *
 * Case views: every hook receives the case as a JSON object shaped like
 * `GET /api/v1/cases/{id}` (docs/api.md): id, state, intake fields, classification,
 * events[]. The engine converts it to a Lua table and adds `normalized` (voc.normalize of
 * subject + "\n" + text), computed on first access; a view that already carries a
 * `normalized` string (stored at intake) is used as is. For a new case, `classification` is
 * absent and `events` holds only the received event.
 */
#ifndef VOC_RULES_H
#define VOC_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct voc_rules;

struct voc_rules_limits {
    uint64_t max_instructions; /* per hook call; 0 = default (10,000,000) */
    size_t max_memory;         /* per profile state, bytes; 0 = default (64 MiB) */
};

/* Counters read by /metrics from another thread: plain atomics. */
struct voc_rules_stats {
    _Atomic uint64_t calls;
    _Atomic uint64_t errors;       /* error() or wrong return values */
    _Atomic uint64_t instr_limit;  /* stopped by the instruction budget */
    _Atomic uint64_t memory_limit; /* stopped by the memory budget */
};

/* One SLA clock as declared in the profile (CONTRACT.md, "Lua profile"). */
struct voc_clock_def {
    char *name;      /* unique within the profile */
    char *start;     /* event type that starts it */
    char *stop;      /* event type that stops it */
    char *calendar;  /* calendar name from config, or "24x7" */
    double warn;     /* fraction of the target at which to warn, 0 = never */
    double target_s; /* fixed target in seconds; < 0 when target is a function */
    bool reopen;     /* `reopen = true`: a `reopened` event starts a new cycle */
};

/* Compile `profile_path` in a fresh sandboxed state and validate the returned table.
 * `lib_dir` is the shared Lua library folder (scripts/lib, may be NULL); `require` may load
 * modules from the profile's own folder and from there. `calendars` is a NULL-terminated list
 * of the calendar names known to the config ("24x7" is always known); a NULL list skips the
 * check (offline tools without a config). Runs the profile's optional `tests` table. Every
 * problem goes to diag as "file:line: message"; returns 0 and sets *out, or -1. */
int voc_rules_load(const char *profile_path, const char *lib_dir,
                   const struct voc_rules_limits *limits, const char *const *calendars,
                   struct voc_rules **out, struct voc_diag *diag);
void voc_rules_free(struct voc_rules *rules);

const char *voc_rules_name(const struct voc_rules *rules);
const char *voc_rules_path(const struct voc_rules *rules);
struct voc_rules_stats *voc_rules_stats(struct voc_rules *rules);

/* The built-in classification used when there is no classify hook or it fails:
 * the profile's `defaults` table merged over {kind="opinion", category="other",
 * severity="normal", department="", collaborators={}, priority=3, tags={}}.
 * Returns a new reference. */
json_t *voc_rules_default_classification(const struct voc_rules *rules);

/* Run `classify(case)`. Always sets *classification to a complete, validated object
 * (kind, category, severity, department, collaborators, priority, tags). On a rule failure
 * it is the default classification with "rule_error" in tags, *err is set (malloc'd,
 * "file:line: message") and -1 is returned. */
int voc_rules_classify(struct voc_rules *rules, const json_t *case_view, json_t **classification,
                       char **err);

/* Run `guard(case, event)` before an event is appended. Returns 1 allow, 0 refuse with
 * *reason (malloc'd), -1 when the guard failed (*err set): the caller refuses the event. */
int voc_rules_guard(struct voc_rules *rules, const json_t *case_view, const json_t *event,
                    char **reason, char **err);

/* Run `on_event(case, event)` after an event was appended (in the same transaction).
 * *actions is always set to a validated array (possibly empty) of
 *   {"event": TYPE, "data": {...}, "note": "..."} | {"tag": "vip"} |
 *   {"notify": NOTIFIER, "message": "..."}.
 * Returns 0, or -1 with *err when the hook failed or returned something invalid. */
int voc_rules_on_event(struct voc_rules *rules, const json_t *case_view, const json_t *event,
                       json_t **actions, char **err);

/* Run `on_clock(case, clock, status)`; status is "warning" or "breached"; `clock` is the
 * clock object as in the case view. Same action contract as on_event. */
int voc_rules_on_clock(struct voc_rules *rules, const json_t *case_view, const json_t *clock,
                       const char *status, json_t **actions, char **err);

size_t voc_rules_clock_count(const struct voc_rules *rules);
const struct voc_clock_def *voc_rules_clock(const struct voc_rules *rules, size_t index);
/* Target of clock `index` for this case in seconds (evaluates the target function when the
 * profile gave one). Returns 0, or -1 with *err (the caller then uses no deadline). */
int voc_rules_clock_target(struct voc_rules *rules, size_t index, const json_t *case_view,
                           double *target_s, char **err);

/* Is `type` an event type the profile declared in its `events` list? */
bool voc_rules_has_event_type(const struct voc_rules *rules, const char *type);

/* The `score` table as JSON (numbers, strings, nested tables; functions are omitted), for
 * reports. NULL when the profile has none. Borrowed reference. */
const json_t *voc_rules_score(const struct voc_rules *rules);

/* The classification fields. */
#define VOC_CLASS_FIELDS 7
/* kind, category, severity, department, collaborators, priority, tags: the canonical order. */
extern const char *const voc_class_fields[VOC_CLASS_FIELDS];
/* Position of `key` in voc_class_fields, or -1. */
int voc_rules_class_index(const char *key);

#endif
